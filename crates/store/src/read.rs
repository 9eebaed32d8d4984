//! Owns reading the log and the stream index, bounded by the durable
//! position: nothing past it is ever returned.

use crate::codec;
use crate::error::StoreError;
use crate::event::{Direction, RecordedEvent};
use crate::layout::{decode_u64, split_stream_key, stream_key, stream_prefix, Head};
use crate::trees::Trees;

/// The outcome of a bounded log scan.
#[derive(Debug)]
pub struct Scan {
    /// Matching events, in position order.
    pub events: Vec<RecordedEvent>,
    /// The first position not yet scanned.
    pub next: u64,
}

/// Reads and decodes the envelope at `position`.
pub fn load(trees: &Trees, position: u64) -> Result<RecordedEvent, StoreError> {
    let bytes = trees
        .log
        .get(position)?
        .ok_or_else(|| StoreError::corrupt(position, "an index points at a missing log entry"))?;
    codec::decode(position, &bytes)
}

/// Scans the log from `from` (inclusive) up to `upto` (inclusive), looking
/// at no more than `max_scan` entries and keeping no more than `max_match`
/// events whose type is in `types` (all types if `None`).
///
/// Gaps and a log ending before `upto` are reported as corruption. With
/// `keep_prefix`, a failure after some events were read returns those events
/// instead (with `next` at the failing position), so the next scan reports
/// the error; otherwise any failure fails the whole scan.
pub fn scan_log(
    trees: &Trees,
    from: u64,
    upto: u64,
    max_scan: usize,
    max_match: usize,
    types: Option<&[String]>,
    keep_prefix: bool,
) -> Result<Scan, StoreError> {
    let mut scan = Scan {
        events: Vec::new(),
        next: from.max(1),
    };
    match scan_into(&mut scan, trees, upto, max_scan, max_match, types) {
        Err(_) if keep_prefix && !scan.events.is_empty() => Ok(scan),
        Err(e) => Err(e),
        Ok(()) => Ok(scan),
    }
}

/// The body of [`scan_log`]: fills `scan`, advancing `scan.next` only past
/// entries that were read successfully.
fn scan_into(
    scan: &mut Scan,
    trees: &Trees,
    upto: u64,
    max_scan: usize,
    max_match: usize,
    types: Option<&[String]>,
) -> Result<(), StoreError> {
    let from = scan.next;
    if from > upto || max_scan == 0 || max_match == 0 {
        return Ok(());
    }
    let mut scanned = 0usize;
    trees
        .log
        .visit::<StoreError>(from, upto, |position, value| {
            let event = codec::decode(position, value)?;
            scan.next = position + 1;
            scanned += 1;
            if types.is_none_or(|t| t.contains(&event.event_type)) {
                scan.events.push(event);
            }
            Ok(scanned < max_scan && scan.events.len() < max_match)
        })?;
    if scanned >= max_scan || scan.events.len() >= max_match {
        return Ok(());
    }
    if scan.next <= upto {
        return Err(StoreError::corrupt(
            scan.next,
            format!("log ends before the durable position {upto}"),
        ));
    }
    Ok(())
}

/// Visits the log entries `from..=upto` in order, at most `max_scan` of them, decoded in
/// place ([`codec::RawEvent`]: nothing is allocated per event), and returns the first
/// position not visited. The checks are those of [`scan_log`]: a gap, an undecodable entry
/// or a log ending before `upto` is corruption. `visit` errors stop the scan and are
/// returned as they are.
pub fn visit_log<E: From<StoreError>>(
    trees: &Trees,
    from: u64,
    upto: u64,
    max_scan: usize,
    mut visit: impl FnMut(codec::RawEvent<'_>) -> Result<(), E>,
) -> Result<u64, E> {
    let mut next = from.max(1);
    if next > upto || max_scan == 0 {
        return Ok(next);
    }
    let mut scanned = 0usize;
    trees.log.visit::<E>(next, upto, |position, value| {
        visit(codec::decode_raw(position, value)?)?;
        next = position + 1;
        scanned += 1;
        Ok(scanned < max_scan)
    })?;
    if scanned >= max_scan {
        return Ok(next);
    }
    if next <= upto {
        return Err(StoreError::corrupt(
            next,
            format!("log ends before the durable position {upto}"),
        )
        .into());
    }
    Ok(next)
}

/// Reads up to `limit` events of `stream` from `from_version` in `direction`,
/// skipping events past `durable`.
pub fn read_stream(
    trees: &Trees,
    stream: &str,
    from_version: u64,
    direction: Direction,
    limit: usize,
    durable: u64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events = Vec::new();
    if limit == 0 {
        return Ok(events);
    }
    let entries = match direction {
        Direction::Forward => {
            let start = stream_key(stream, from_version.max(1));
            let end = stream_key(stream, u64::MAX);
            Box::new(trees.streams.range(start..=end)) as Box<dyn Iterator<Item = _>>
        }
        Direction::Backward => {
            if from_version == 0 {
                return Ok(events);
            }
            let start = stream_key(stream, 1);
            let end = stream_key(stream, from_version);
            Box::new(trees.streams.range(start..=end).rev())
        }
    };
    for entry in entries {
        let (key, value) = entry.map_err(|e| StoreError::sled("read stream index", e))?;
        let position = stream_entry_position(stream, &value)?;
        if position > durable {
            match direction {
                // Positions grow with versions: nothing durable follows.
                Direction::Forward => break,
                Direction::Backward => continue,
            }
        }
        let event = load(trees, position)?;
        let version = split_stream_key(&key).map(|(_, v)| v);
        if event.stream_id != stream || Some(event.version) != version {
            return Err(StoreError::corrupt(
                position,
                format!(
                    "stream index says `{stream}` v{version:?}, the log says `{}` v{}",
                    event.stream_id, event.version
                ),
            ));
        }
        events.push(event);
        if events.len() >= limit {
            break;
        }
    }
    Ok(events)
}

/// The last durable version of `stream`, `None` if it has no durable event.
pub fn stream_version(
    trees: &Trees,
    stream: &str,
    durable: u64,
) -> Result<Option<u64>, StoreError> {
    let Some(bytes) = trees
        .heads
        .get(stream.as_bytes())
        .map_err(|e| StoreError::sled("read stream head", e))?
    else {
        return Ok(None);
    };
    let head = Head::decode(stream, &bytes)?;
    if head.position <= durable {
        return Ok(Some(head.version));
    }
    // The head is not flushed yet: find the last flushed version.
    let prefix = stream_prefix(stream);
    for entry in trees.streams.scan_prefix(&prefix).rev() {
        let (key, value) = entry.map_err(|e| StoreError::sled("read stream index", e))?;
        if stream_entry_position(stream, &value)? <= durable {
            return split_stream_key(&key).map(|(_, v)| Some(v)).ok_or_else(|| {
                StoreError::corrupt(0, format!("malformed stream index key for `{stream}`"))
            });
        }
    }
    Ok(None)
}

/// The durable position of `event_id`, if stored.
pub fn event_position(
    trees: &Trees,
    event_id: uuid::Uuid,
    durable: u64,
) -> Result<Option<u64>, StoreError> {
    let Some(bytes) = trees
        .event_ids
        .get(event_id.as_bytes())
        .map_err(|e| StoreError::sled("read event id index", e))?
    else {
        return Ok(None);
    };
    let position = decode_u64(&bytes).ok_or_else(|| {
        StoreError::corrupt(0, format!("event_ids entry of {event_id} is not 8 bytes"))
    })?;
    Ok((position <= durable).then_some(position))
}

fn stream_entry_position(stream: &str, value: &[u8]) -> Result<u64, StoreError> {
    decode_u64(value).ok_or_else(|| {
        StoreError::corrupt(
            0,
            format!("stream index entry of `{stream}` is not 8 bytes"),
        )
    })
}
