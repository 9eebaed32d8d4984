//! Owns making the sled indexes agree with the log when the store opens.
//!
//! The log's segments are the record of what is stored: an append is
//! acknowledged once its records, the last one flagged as ending a
//! committed write, are synced there. The `streams`, `event_ids` and
//! `heads` trees and `meta`'s log end are written to sled after the records
//! and flushed by sled on its own, so a crash can leave them behind the
//! log, never (short of a power cut) ahead of it. [`recover`]:
//!
//! 1. cuts the log after its last committed record (a write that did not
//!    finish was never acknowledged);
//! 2. if `meta` says the log ends past that (sled's flush reached the disk
//!    and the log's tail did not: a power cut), drops the indexes and
//!    rebuilds them from the whole log;
//! 3. if a write was putting index entries or heads when the store stopped
//!    ([`META_INDEXING`]), removes every entry naming a position past the
//!    log's end and puts every head naming one back to the stream's last
//!    event the log holds;
//! 4. indexes the committed records past `meta`'s log end, moving the heads
//!    and `meta` with them.

use std::collections::HashMap;

use crate::bulk::{move_heads_and_end, plain_last_position};
use crate::codec;
use crate::error::StoreError;
use crate::layout::{
    decode_u64, stream_key, stream_prefix, Head, META_INDEXING, META_LAST_POSITION,
};
use crate::trees::Trees;

/// What [`recover`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Records cut from the log's uncommitted tail.
    pub cut: u64,
    /// Committed records that were indexed.
    pub indexed: u64,
    /// Index entries removed because they named no record.
    pub stale: u64,
    /// The indexes were rebuilt from the whole log.
    pub rebuilt: bool,
}

fn sled_err(e: sled::Error) -> StoreError {
    StoreError::sled("recover the indexes", e)
}

/// Makes the indexes agree with the log (see the module doc).
pub(crate) fn recover(trees: &Trees) -> Result<Recovered, StoreError> {
    let mut recovered = Recovered::default();
    let end = trees.log.last_commit();
    recovered.cut = trees.log.truncate_after(end)?;
    if recovered.cut > 0 {
        tracing::warn!(
            removed = recovered.cut,
            "removed the unfinished tail of the log"
        );
    }
    let mut indexed_to = plain_last_position(&trees.meta)?;
    let marker = trees.meta.get(META_INDEXING).map_err(sled_err)?;
    if end == 0 && indexed_to > 0 {
        // Not what a crash leaves (it loses at most the unsynced tail): the
        // segment files are gone. Refuse rather than empty the indexes.
        return Err(StoreError::corrupt(
            1,
            format!("the log's segment files are missing, but the store held {indexed_to} events"),
        ));
    }
    if indexed_to > end {
        tracing::warn!(
            log_end = end,
            indexed_to,
            "the indexes name events the log does not hold; rebuilding them from the log"
        );
        for tree in [&trees.streams, &trees.event_ids, &trees.heads] {
            tree.clear().map_err(sled_err)?;
        }
        trees
            .meta
            .insert(META_LAST_POSITION, &0u64.to_be_bytes())
            .map_err(sled_err)?;
        indexed_to = 0;
        recovered.rebuilt = true;
    } else if marker.is_some() {
        recovered.stale = remove_entries_past(trees, end)? + put_heads_back(trees, end)?;
    }
    recovered.indexed = index(trees, indexed_to, end)?;
    if marker.is_some() {
        trees.meta.remove(META_INDEXING).map_err(sled_err)?;
    }
    if recovered.indexed > 0 {
        tracing::info!(
            events = recovered.indexed,
            "indexed the log's committed events sled had not kept"
        );
    }
    Ok(recovered)
}

/// Removes every `streams` and `event_ids` entry naming a position past
/// `end`; returns how many.
fn remove_entries_past(trees: &Trees, end: u64) -> Result<u64, StoreError> {
    let mut removed = 0;
    for index in [&trees.streams, &trees.event_ids] {
        for item in index.iter() {
            let (key, value) = item.map_err(sled_err)?;
            if decode_u64(&value).is_none_or(|position| position > end) {
                index.remove(key).map_err(sled_err)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Puts every head naming a position past `end` back to its stream's last
/// entry in `streams` (whose entries past `end` are removed already), or
/// removes it if the stream has none; returns how many heads changed.
fn put_heads_back(trees: &Trees, end: u64) -> Result<u64, StoreError> {
    let mut changed = 0;
    for item in trees.heads.iter() {
        let (key, value) = item.map_err(sled_err)?;
        let stream = std::str::from_utf8(&key)
            .map_err(|_| StoreError::corrupt(0, "a stream head's key is not UTF-8"))?;
        if Head::decode(stream, &value).is_ok_and(|head| head.position <= end) {
            continue;
        }
        let last = trees
            .streams
            .scan_prefix(stream_prefix(stream))
            .next_back()
            .transpose()
            .map_err(sled_err)?;
        match last {
            Some((_, at)) => {
                let position = decode_u64(&at).ok_or_else(|| {
                    StoreError::corrupt(
                        0,
                        format!("a `streams` entry of `{stream}` is not 8 bytes"),
                    )
                })?;
                let head = head_at(trees, stream, position)?;
                trees
                    .heads
                    .insert(&key, &head.encode()[..])
                    .map_err(sled_err)?;
            }
            None => {
                trees.heads.remove(&key).map_err(sled_err)?;
            }
        }
        changed += 1;
    }
    Ok(changed)
}

/// The head `stream` has when its last event is the log's record at
/// `position`.
fn head_at(trees: &Trees, stream: &str, position: u64) -> Result<Head, StoreError> {
    let bytes = trees
        .log
        .get(position)?
        .ok_or_else(|| StoreError::corrupt(position, "a `streams` entry names a missing record"))?;
    let event = codec::decode_raw(position, &bytes)?;
    if event.stream_id != stream {
        return Err(StoreError::corrupt(
            position,
            format!(
                "a `streams` entry of `{stream}` names an event of `{}`",
                event.stream_id
            ),
        ));
    }
    head_of(&event, position)
}

/// The head an event leaves its stream at.
fn head_of(event: &codec::RawEvent<'_>, position: u64) -> Result<Head, StoreError> {
    let hash = <[u8; 32]>::try_from(event.hash)
        .map_err(|_| StoreError::corrupt(position, "an event's hash is not 32 bytes"))?;
    Ok(Head {
        version: event.version,
        hash,
        position,
    })
}

/// Indexes the log's records `after + 1 ..= end`: their `streams` and
/// `event_ids` entries, then the heads and `meta`'s log end. Returns how
/// many records.
fn index(trees: &Trees, after: u64, end: u64) -> Result<u64, StoreError> {
    if end <= after {
        return Ok(0);
    }
    let mut heads: HashMap<String, Head> = HashMap::new();
    let mut count = 0u64;
    let next = trees
        .log
        .visit::<StoreError>(after + 1, end, |position, bytes| {
            let event = codec::decode_raw(position, bytes)?;
            let at = position.to_be_bytes();
            trees
                .streams
                .insert(stream_key(event.stream_id, event.version), &at[..])
                .map_err(sled_err)?;
            trees
                .event_ids
                .insert(event.event_id.as_bytes(), &at[..])
                .map_err(sled_err)?;
            heads.insert(event.stream_id.to_owned(), head_of(&event, position)?);
            count += 1;
            Ok(true)
        })?;
    if next <= end {
        return Err(StoreError::corrupt(
            next,
            format!("the log ends before its last committed position {end}"),
        ));
    }
    let moved = heads.iter().map(|(stream, head)| (stream.as_str(), *head));
    move_heads_and_end(trees, moved, end, "recover the indexes")?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{apply_group, Append};
    use crate::event::{sample_event as event, ExpectedVersion, NewEvent};

    /// `a` v1-2, then `b` v1, then `a` v3: positions 1..=4, indexed.
    fn four_events(dir: &std::path::Path) -> (Trees, Vec<Vec<NewEvent>>) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let trees = Trees::open(&db, dir, 1 << 20).unwrap();
        let batches = vec![vec![event(), event()], vec![event()], vec![event()]];
        for (stream, expected, events) in [
            ("a", ExpectedVersion::NoStream, &batches[0]),
            ("b", ExpectedVersion::NoStream, &batches[1]),
            ("a", ExpectedVersion::Exact(2), &batches[2]),
        ] {
            apply_group(
                &trees,
                &[Append {
                    stream,
                    expected,
                    events,
                }],
                7,
            )
            .unwrap();
        }
        (trees, batches)
    }

    #[test]
    fn indexes_naming_events_the_log_lost_are_rebuilt_from_the_log() {
        // Given the log cut after position 2 while sled kept the indexes of 1..=4
        // (a power cut: sled's own flush reached the disk, the log's tail did not)
        let dir = tempfile::tempdir().unwrap();
        let (trees, batches) = four_events(dir.path());
        trees.log.truncate_after(2).unwrap();
        // When the store opens
        let recovered = recover(&trees).unwrap();
        // Then the indexes are those of positions 1..=2 exactly
        assert!(recovered.rebuilt);
        assert_eq!(recovered.indexed, 2);
        assert_eq!(plain_last_position(&trees.meta).unwrap(), 2);
        let head = Head::decode("a", &trees.heads.get("a").unwrap().unwrap()).unwrap();
        assert_eq!((head.version, head.position), (2, 2));
        assert!(trees.heads.get("b").unwrap().is_none());
        assert_eq!(trees.streams.len(), 2);
        assert_eq!(trees.event_ids.len(), 2);
        assert!(trees
            .event_ids
            .get(batches[2][0].event_id.as_bytes())
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_log_whose_files_are_gone_is_refused_and_the_indexes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (trees, _) = four_events(dir.path());
        trees.log.truncate_after(0).unwrap();
        let refused = recover(&trees);
        assert!(
            matches!(refused, Err(StoreError::Corrupt { position: 1, .. })),
            "{refused:?}"
        );
        assert_eq!(trees.streams.len(), 4);
        assert_eq!(plain_last_position(&trees.meta).unwrap(), 4);
    }
}
