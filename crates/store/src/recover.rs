//! Owns making the indexes agree with the log when the store opens.
//!
//! The log's segments are the record of what is stored: an append is
//! acknowledged once its records, the last one flagged as ending a
//! committed write, are synced there. The stream index is in memory and
//! built from the log here. The `event_ids` tree and `meta`'s log end are
//! written to sled after the records and flushed by sled on its own, so a
//! crash can leave them behind the log, never (short of a power cut) ahead
//! of it. [`recover`]:
//!
//! 1. cuts the log after its last committed record (a write that did not
//!    finish was never acknowledged);
//! 2. if `meta` says the log ends past that (sled's flush reached the disk
//!    and the log's tail did not: a power cut), drops `event_ids` and
//!    rebuilds it from the whole log;
//! 3. if a write was putting index entries when the store stopped
//!    ([`META_INDEXING`]), removes every entry naming a position past the
//!    log's end;
//! 4. reads the whole log once: every record goes into the stream index,
//!    and the committed records past `meta`'s log end into `event_ids`,
//!    and `meta` moves with them.

use crate::bulk::plain_last_position;
use crate::codec;
use crate::error::StoreError;
use crate::layout::{decode_u64, META_INDEXING, META_LAST_POSITION};
use crate::stream_index::Entry;
use crate::trees::Trees;

/// What [`recover`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Records cut from the log's uncommitted tail.
    pub cut: u64,
    /// Committed records whose `event_ids` entries were missing and put.
    pub indexed: u64,
    /// Streams in the stream index.
    pub streams: usize,
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
        trees.event_ids.clear().map_err(sled_err)?;
        trees
            .meta
            .insert(META_LAST_POSITION, &0u64.to_be_bytes())
            .map_err(sled_err)?;
        indexed_to = 0;
        recovered.rebuilt = true;
    } else if marker.is_some() {
        recovered.stale = remove_entries_past(trees, end)?;
    }
    recovered.indexed = index(trees, indexed_to, end)?;
    recovered.streams = trees.streams.stream_count();
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

/// Removes every `event_ids` entry naming a position past `end`; returns
/// how many.
fn remove_entries_past(trees: &Trees, end: u64) -> Result<u64, StoreError> {
    let mut removed = 0;
    for item in trees.event_ids.iter() {
        let (key, value) = item.map_err(sled_err)?;
        if decode_u64(&value).is_none_or(|position| position > end) {
            trees.event_ids.remove(key).map_err(sled_err)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Builds the stream index from the log's records `1 ..= end`, puts the
/// `event_ids` entries of those past `after`, and moves `meta`'s log end to
/// `end`. Returns how many `event_ids` entries were put. A damaged record
/// (its checksum or its envelope) is left for reads and `verify` to report
/// where it is (see [`crate::stream_index::Builder`]).
fn index(trees: &Trees, after: u64, end: u64) -> Result<u64, StoreError> {
    let mut build = trees.streams.rebuild();
    let mut count = 0u64;
    let mut next = 1u64;
    while next <= end {
        let visited = trees.log.visit::<StoreError>(next, end, |position, bytes| {
            next = position + 1;
            let Some(entry) = readable(position, bytes) else {
                build.damaged(position);
                return Ok(true);
            };
            build.add(&entry.0);
            if position > after {
                trees
                    .event_ids
                    .insert(entry.1.as_bytes(), &position.to_be_bytes())
                    .map_err(sled_err)?;
                count += 1;
            }
            Ok(true)
        });
        match visited {
            Ok(stopped) if stopped <= end => {
                return Err(StoreError::corrupt(
                    stopped,
                    format!("the log ends before its last committed position {end}"),
                ))
            }
            Ok(_) => {}
            // A record that fails its checksum: skip it.
            Err(StoreError::Corrupt { position, .. }) if position == next => {
                build.damaged(position);
                next = position + 1;
            }
            Err(e) => return Err(e),
        }
    }
    if end > after {
        trees
            .meta
            .insert(META_LAST_POSITION, &end.to_be_bytes())
            .map_err(sled_err)?;
    }
    Ok(count)
}

/// The stream index entry and the event id of a record, `None` if its
/// envelope does not decode.
fn readable(position: u64, bytes: &[u8]) -> Option<(Entry<'_>, uuid::Uuid)> {
    let event = codec::decode_raw(position, bytes).ok()?;
    let hash = <[u8; 32]>::try_from(event.hash).ok()?;
    let entry = Entry {
        stream: event.stream_id,
        version: event.version,
        position,
        hash,
    };
    Some((entry, event.event_id))
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
        let head = trees.streams.head("a").unwrap();
        assert_eq!((head.version, head.position), (2, 2));
        assert!(trees.streams.head("b").is_none());
        assert_eq!(recovered.streams, 1);
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
        assert_eq!(trees.event_ids.len(), 4);
        assert_eq!(plain_last_position(&trees.meta).unwrap(), 4);
    }
}
