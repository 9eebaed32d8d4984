//! Reads a customer's timeline: Relay-style cursor paging in both directions over a key range
//! (the time filter becomes the range; channel and kind filters skip within the scan, at most
//! [`SKIP_BUDGET`] entries per page), entry counts, and merge redirects.

use sijil_domain::{Channel, CustomerId, Timestamp, WorkspaceId};

use super::super::cursor;
use super::super::error::ProjectionError;
use super::super::keys::{order_i64, typed, Key, Reader};
use super::super::paging::{Pager, Scanned, Window, MAX_PAGE, SKIP_BUDGET};
use super::{block, decode_entry, header, EntryKind, TimelineEntry, COUNT, ENTRY, REDIRECT};

/// Entries per page when neither `first` nor `last` is given.
pub const DEFAULT_PAGE: usize = 50;
/// Cursor length in bytes: `at` (8) ‖ position (8).
const CURSOR_LEN: usize = 16;

/// A timeline page request (Relay connection arguments plus filters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimelineQuery {
    /// Page forward: this many entries after `after`.
    pub first: Option<usize>,
    /// Exclusive start cursor (in reading order).
    pub after: Option<String>,
    /// Page backward: this many entries before `before`.
    pub last: Option<usize>,
    /// Exclusive end cursor (in reading order).
    pub before: Option<String>,
    /// Read newest entries first (reading order is then descending time).
    pub newest_first: bool,
    /// Only entries on these channels (entries without a channel are then left out).
    pub channels: Option<Vec<Channel>>,
    /// Only entries of these kinds.
    pub kinds: Option<Vec<EntryKind>>,
    /// Only entries at or after this time.
    pub from: Option<Timestamp>,
    /// Only entries before this time.
    pub to: Option<Timestamp>,
}

/// One page of a timeline, in reading order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimelinePage {
    pub entries: Vec<TimelineEntry>,
    /// More entries may follow `end_cursor` in reading order.
    pub has_next: bool,
    /// More entries may precede `start_cursor` in reading order.
    pub has_previous: bool,
    /// Cursor of the first entry (or, when a scan gave up early, of where it stopped).
    pub start_cursor: Option<String>,
    /// Cursor of the last entry (or, when a scan gave up early, of where it stopped).
    pub end_cursor: Option<String>,
}

fn prefix(ws: WorkspaceId, customer: CustomerId) -> Vec<u8> {
    Key::new(ENTRY)
        .uuid(ws.as_uuid())
        .uuid(customer.as_uuid())
        .build()
}

/// The first key of `prefix`'s range at time `at`.
fn time_key(prefix: &[u8], at: Timestamp) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&order_i64(at.millis()).to_be_bytes());
    key
}

fn decode_cursor(prefix: &[u8], text: &str) -> Result<Vec<u8>, ProjectionError> {
    let suffix = cursor::decode(text, CURSOR_LEN)?;
    let mut key = prefix.to_vec();
    key.extend_from_slice(&suffix);
    Ok(key)
}

fn encode_cursor(prefix_len: usize, key: &[u8]) -> String {
    cursor::encode(key.get(prefix_len..).unwrap_or_default())
}

/// The paging cursor of an entry at `at` whose event is at log position `position`: the
/// part of its key after the customer's prefix, as [`page`] hands out and takes back. A
/// page's entries carry no cursor text; a reader that shows them makes it (the gateway
/// makes each from the entry's workspace-local position, which it looks up anyway).
pub fn cursor_at(at: Timestamp, position: u64) -> String {
    cursor::encode(&block::order_of(at, position))
}

/// Decodes one entry from its key and value.
fn entry(prefix_len: usize, key: &[u8], value: &[u8]) -> Result<TimelineEntry, ProjectionError> {
    let mut reader = Reader::new(key, "timeline key");
    reader.skip(prefix_len)?;
    let at = reader.i64()?;
    let position = reader.u64()?;
    let (kind, channel, mut stored) = decode_entry(value)?;
    let summary = stored.take_summary();
    Ok(TimelineEntry {
        position,
        at: Timestamp(at),
        kind,
        channel,
        actor: stored.actor,
        summary,
        case_id: stored.case_id,
        interaction_id: stored.interaction_id,
        survey_id: stored.survey_id,
        follow_up_id: stored.follow_up_id,
        agent_id: stored.agent_id,
        origin_customer: stored.origin_customer,
    })
}

/// Walks the entries under `prefix` in `window` (see [`block::walk`]) into a page: `want`
/// accepted entries, whether more follow, where a spent `budget` stopped it.
fn scan<T>(
    tree: &sled::Tree,
    prefix: &[u8],
    window: &Window,
    reverse: bool,
    want: usize,
    budget: &mut usize,
    accept: impl FnMut(&[u8], &[u8]) -> Result<Option<T>, ProjectionError>,
) -> Result<Scanned<T>, ProjectionError> {
    let mut pager = Pager::new(want, budget, accept);
    block::walk(tree, prefix, window, reverse, |key, value| {
        pager.offer(key, value)
    })?;
    Ok(pager.finish())
}

/// One page of `customer`'s timeline in workspace `ws`.
pub fn page(
    tree: &sled::Tree,
    ws: WorkspaceId,
    customer: CustomerId,
    query: &TimelineQuery,
) -> Result<TimelinePage, ProjectionError> {
    if query.first.is_some() && query.last.is_some() {
        return Err(ProjectionError::InvalidQuery(
            "give `first` or `last`, not both".into(),
        ));
    }
    let size = query.first.or(query.last).unwrap_or(DEFAULT_PAGE);
    if size > MAX_PAGE {
        return Err(ProjectionError::InvalidQuery(format!(
            "a page holds at most {MAX_PAGE} entries"
        )));
    }
    let prefix = prefix(ws, customer);
    let after = query
        .after
        .as_deref()
        .map(|c| decode_cursor(&prefix, c))
        .transpose()?;
    let before = query
        .before
        .as_deref()
        .map(|c| decode_cursor(&prefix, c))
        .transpose()?;

    // The time filter is the base window; cursors narrow it in reading order.
    let mut base = Window::prefix(&prefix);
    if let Some(from) = query.from {
        base.at_least(time_key(&prefix, from));
    }
    if let Some(to) = query.to {
        base.below(time_key(&prefix, to));
    }
    let ascending = !query.newest_first;
    let mut window = base.clone();
    if let Some(after) = &after {
        if ascending {
            window.above(after)
        } else {
            window.below(after.clone())
        }
    }
    if let Some(before) = &before {
        if ascending {
            window.below(before.clone())
        } else {
            window.above(before)
        }
    }

    let channels = query.channels.as_deref();
    let kinds = query.kinds.as_deref();
    let prefix_len = prefix.len();
    let accept = |key: &[u8], value: &[u8]| -> Result<Option<TimelineEntry>, ProjectionError> {
        let (kind, channel) = header(value)?;
        if kinds.is_some_and(|k| !k.contains(&kind)) {
            return Ok(None);
        }
        if let Some(wanted) = channels {
            if !channel.is_some_and(|c| wanted.contains(&c)) {
                return Ok(None);
            }
        }
        entry(prefix_len, key, value).map(Some)
    };
    // Whether any matching entry lies in `probe`, nearest first.
    let exists =
        |probe: &Window, reverse: bool, budget: &mut usize| -> Result<bool, ProjectionError> {
            Ok(scan(tree, &prefix, probe, reverse, 0, budget, accept)?.more)
        };

    let mut budget = SKIP_BUDGET;
    let mut out = TimelinePage::default();
    if query.last.is_some() {
        // Read backwards from the end of the window, then restore reading order.
        let Scanned {
            items,
            more,
            stopped_at,
        } = scan(tree, &prefix, &window, ascending, size, &mut budget, accept)?;
        out.entries = items.into_iter().rev().map(|(_, e)| e).collect();
        out.has_previous = more;
        out.start_cursor = match &stopped_at {
            Some(key) => Some(encode_cursor(prefix_len, key)),
            None => out.entries.first().map(|e| e.cursor()),
        };
        out.end_cursor = out.entries.last().map(|e| e.cursor());
        if let Some(before) = &before {
            let mut probe = base.clone();
            if ascending {
                probe.at_least(before.clone())
            } else {
                probe.at_most(before)
            }
            out.has_next = exists(&probe, !ascending, &mut budget)?;
        }
    } else {
        let Scanned {
            items,
            more,
            stopped_at,
        } = scan(
            tree,
            &prefix,
            &window,
            !ascending,
            size,
            &mut budget,
            accept,
        )?;
        out.entries = items.into_iter().map(|(_, e)| e).collect();
        out.has_next = more;
        out.start_cursor = out.entries.first().map(|e| e.cursor());
        out.end_cursor = match &stopped_at {
            Some(key) => Some(encode_cursor(prefix_len, key)),
            None => out.entries.last().map(|e| e.cursor()),
        };
        if let Some(after) = &after {
            let mut probe = base.clone();
            if ascending {
                probe.at_most(after)
            } else {
                probe.at_least(after.clone())
            }
            out.has_previous = exists(&probe, ascending, &mut budget)?;
        }
    }
    Ok(out)
}

/// How many entries `customer`'s timeline holds.
pub fn count(
    tree: &sled::Tree,
    ws: WorkspaceId,
    customer: CustomerId,
) -> Result<u64, ProjectionError> {
    let key = Key::new(COUNT)
        .uuid(ws.as_uuid())
        .uuid(customer.as_uuid())
        .build();
    match tree
        .get(key)
        .map_err(|e| ProjectionError::sled("read timeline count", e))?
    {
        Some(bytes) => Reader::new(&bytes, "timeline count").u64(),
        None => Ok(0),
    }
}

/// The customer whose timeline now holds `customer`'s later events (itself unless merged).
pub fn survivor(
    tree: &sled::Tree,
    ws: WorkspaceId,
    customer: CustomerId,
) -> Result<CustomerId, ProjectionError> {
    let mut current = customer;
    for _ in 0..64 {
        let key = Key::new(REDIRECT)
            .uuid(ws.as_uuid())
            .uuid(current.as_uuid())
            .build();
        match tree
            .get(key)
            .map_err(|e| ProjectionError::sled("read timeline redirect", e))?
        {
            Some(bytes) => {
                let next = typed(
                    Reader::new(&bytes, "timeline redirect").uuid()?,
                    "customer id",
                )?;
                if next == customer {
                    break;
                }
                current = next;
            }
            None => break,
        }
    }
    Ok(current)
}
