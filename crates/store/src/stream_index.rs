//! Owns the stream index: for every stream, the position of each of its
//! events by version, and its head (last version, that event's hash and
//! position). It lives in memory only. The log is the record: the index is
//! built from the log when the store opens ([`crate::recover`]) and extended
//! by every write after its records reach the log, under the write gate, so
//! one writer extends it at a time while readers share it.
//!
//! Entries past the durable position are there as soon as the write is:
//! deciding the next append needs them. Readers skip them.
//!
//! Building at open never fails on what the log holds ([`Builder`]): a
//! damaged record (its checksum or envelope) is skipped, and a stream whose
//! versions then jump gets, for each missing version, the position of the
//! first damaged record between its neighbours (or of the record that jumps),
//! so reading it reports the damage there; a record repeating a version is
//! left out. `verify` reports all of these at their positions.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::StoreError;
use crate::event::{Direction, RecordedEvent};
use crate::layout::Head;

/// One stream: `positions[v - 1]` is where version `v` is in the log.
#[derive(Debug)]
struct Stream {
    positions: Vec<u64>,
    hash: [u8; 32],
}

impl Stream {
    fn head(&self) -> Option<Head> {
        self.positions.last().map(|&position| Head {
            version: self.positions.len() as u64,
            hash: self.hash,
            position,
        })
    }
}

/// One event as the index records it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'a> {
    pub stream: &'a str,
    pub version: u64,
    pub position: u64,
    pub hash: [u8; 32],
}

impl<'a> Entry<'a> {
    /// The entry of a recorded event.
    pub fn of(event: &'a RecordedEvent) -> Entry<'a> {
        Entry {
            stream: &event.stream_id,
            version: event.version,
            position: event.position,
            hash: event.hash,
        }
    }
}

/// What [`StreamIndex::record`] could not record, and why.
fn out_of_order(entry: &Entry<'_>, expected_version: u64) -> StoreError {
    StoreError::corrupt(
        entry.position,
        format!(
            "stream `{}` v{} recorded where v{expected_version} comes next",
            entry.stream, entry.version
        ),
    )
}

/// The index of every stream (see the module doc).
#[derive(Debug, Default)]
pub struct StreamIndex {
    streams: RwLock<HashMap<Box<str>, Stream>>,
}

impl StreamIndex {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<Box<str>, Stream>> {
        self.streams.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Box<str>, Stream>> {
        self.streams.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// `stream`'s head, durable or not; `None` if it has no event.
    pub fn head(&self, stream: &str) -> Option<Head> {
        self.read().get(stream).and_then(Stream::head)
    }

    /// Where version `version` of `stream` is, durable or not.
    pub fn position(&self, stream: &str, version: u64) -> Option<u64> {
        let index = usize::try_from(version.checked_sub(1)?).ok()?;
        self.read().get(stream)?.positions.get(index).copied()
    }

    /// Up to `limit` (version, position) pairs of `stream` at or past
    /// `durable`'s bound, from `from_version` in `direction` (backward from
    /// version 0 gives none). Entries past `durable` are skipped.
    pub fn positions(
        &self,
        stream: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
        durable: u64,
    ) -> Vec<(u64, u64)> {
        let streams = self.read();
        let Some(positions) = streams.get(stream).map(|s| &s.positions[..]) else {
            return Vec::new();
        };
        // Positions grow with versions: the durable ones are a prefix.
        let durable_len = positions.partition_point(|&p| p <= durable);
        let durable_positions = &positions[..durable_len];
        let versioned = |index: usize| (index as u64 + 1, durable_positions[index]);
        match direction {
            Direction::Forward => {
                let start = usize::try_from(from_version.max(1) - 1).unwrap_or(usize::MAX);
                (start.min(durable_len)..durable_len)
                    .take(limit)
                    .map(versioned)
                    .collect()
            }
            Direction::Backward => {
                let end = usize::try_from(from_version)
                    .unwrap_or(usize::MAX)
                    .min(durable_len);
                (0..end).rev().take(limit).map(versioned).collect()
            }
        }
    }

    /// The last version of `stream` at or before `durable`, `None` if none.
    pub fn durable_version(&self, stream: &str, durable: u64) -> Option<u64> {
        let streams = self.read();
        let positions = &streams.get(stream)?.positions;
        let len = positions.partition_point(|&p| p <= durable);
        (len > 0).then_some(len as u64)
    }

    /// Records events that just reached the log, in log order. Each must be
    /// its stream's next version, past every position already recorded for
    /// it; otherwise nothing of `entries` from that one on is recorded.
    pub(crate) fn record<'a>(
        &self,
        entries: impl IntoIterator<Item = Entry<'a>>,
    ) -> Result<(), StoreError> {
        let mut streams = self.write();
        for entry in entries {
            record_one(&mut streams, &entry)?;
        }
        Ok(())
    }

    /// Forgets every stream and starts building the index again from the
    /// log's first record (see [`Builder`]).
    pub(crate) fn rebuild(&self) -> Builder<'_> {
        let mut streams = self.write();
        streams.clear();
        Builder {
            streams,
            damaged: Vec::new(),
        }
    }

    /// How many streams have at least one event.
    pub fn stream_count(&self) -> usize {
        self.read().len()
    }

    /// Every stream and its head whose position is at or before `durable`
    /// bound: (stream, number of durable events, last durable position),
    /// sorted by stream, for `verify`.
    pub(crate) fn durable_heads(&self, durable: u64) -> Vec<(String, u64, u64)> {
        let streams = self.read();
        let mut heads: Vec<(String, u64, u64)> = streams
            .iter()
            .filter_map(|(name, stream)| {
                let len = stream.positions.partition_point(|&p| p <= durable);
                let last = *stream.positions[..len].last()?;
                Some((name.to_string(), len as u64, last))
            })
            .collect();
        heads.sort_unstable();
        heads
    }
}

/// Builds the index from the log's records in order, holding it for the
/// whole build (see the module doc for what it does with damage).
pub(crate) struct Builder<'a> {
    streams: RwLockWriteGuard<'a, HashMap<Box<str>, Stream>>,
    /// Positions of the damaged records seen so far, in order.
    damaged: Vec<u64>,
}

impl Builder<'_> {
    /// The record at `position` is damaged: its stream is unknown.
    pub fn damaged(&mut self, position: u64) {
        self.damaged.push(position);
    }

    /// Records the next readable record of the log.
    pub fn add(&mut self, entry: &Entry<'_>) {
        let Some(stream) = self.streams.get_mut(entry.stream) else {
            let mut positions = Vec::with_capacity(1);
            let previous = 0;
            fill_gap(&mut positions, &self.damaged, previous, entry);
            positions.push(entry.position);
            self.streams.insert(
                entry.stream.into(),
                Stream {
                    positions,
                    hash: entry.hash,
                },
            );
            return;
        };
        let next = stream.positions.len() as u64 + 1;
        if entry.version < next {
            return;
        }
        let previous = stream.positions.last().copied().unwrap_or(0);
        fill_gap(&mut stream.positions, &self.damaged, previous, entry);
        stream.positions.push(entry.position);
        stream.hash = entry.hash;
    }
}

/// Fills the versions missing before `entry` with where the damage that
/// took them is: the first damaged record between `previous` and `entry`,
/// else `entry`'s own position.
fn fill_gap(positions: &mut Vec<u64>, damaged: &[u64], previous: u64, entry: &Entry<'_>) {
    let missing = entry.version.saturating_sub(positions.len() as u64 + 1);
    if missing == 0 {
        return;
    }
    let first = damaged.partition_point(|&p| p <= previous);
    let at = damaged
        .get(first)
        .copied()
        .filter(|&p| p < entry.position)
        .unwrap_or(entry.position);
    let missing = usize::try_from(missing).unwrap_or(usize::MAX);
    // A version beyond any log this store could hold is damage, not a gap to fill.
    if missing > 1 << 20 {
        return;
    }
    positions.extend(std::iter::repeat_n(at, missing));
}

fn record_one(
    streams: &mut HashMap<Box<str>, Stream>,
    entry: &Entry<'_>,
) -> Result<(), StoreError> {
    match streams.get_mut(entry.stream) {
        Some(stream) => {
            let next = stream.positions.len() as u64 + 1;
            let after_last = stream.positions.last().is_none_or(|&p| p < entry.position);
            if entry.version != next || !after_last {
                return Err(out_of_order(entry, next));
            }
            stream.positions.push(entry.position);
            stream.hash = entry.hash;
        }
        None => {
            if entry.version != 1 {
                return Err(out_of_order(entry, 1));
            }
            streams.insert(
                entry.stream.into(),
                Stream {
                    positions: vec![entry.position],
                    hash: entry.hash,
                },
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stream: &str, version: u64, position: u64) -> Entry<'_> {
        Entry {
            stream,
            version,
            position,
            hash: [position as u8; 32],
        }
    }

    /// `a` v1..=3 at 1, 3, 5 and `b` v1..=2 at 2, 4.
    fn interleaved() -> StreamIndex {
        let index = StreamIndex::default();
        index
            .record([
                entry("a", 1, 1),
                entry("b", 1, 2),
                entry("a", 2, 3),
                entry("b", 2, 4),
                entry("a", 3, 5),
            ])
            .unwrap();
        index
    }

    #[test]
    fn heads_and_positions_follow_what_was_recorded() {
        let index = interleaved();
        let head = index.head("a").unwrap();
        assert_eq!((head.version, head.position, head.hash), (3, 5, [5; 32]));
        assert_eq!(index.head("c"), None);
        assert_eq!(index.position("b", 2), Some(4));
        assert_eq!(index.position("b", 0), None);
        assert_eq!(index.position("b", 3), None);
        assert_eq!(index.stream_count(), 2);
    }

    #[test]
    fn reads_stop_at_the_durable_position_in_both_directions() {
        let index = interleaved();
        let forward = index.positions("a", 1, Direction::Forward, 10, 4);
        assert_eq!(forward, vec![(1, 1), (2, 3)]);
        let from_two = index.positions("a", 2, Direction::Forward, 1, 5);
        assert_eq!(from_two, vec![(2, 3)]);
        let backward = index.positions("a", u64::MAX, Direction::Backward, 10, 4);
        assert_eq!(backward, vec![(2, 3), (1, 1)]);
        assert!(index
            .positions("a", 0, Direction::Backward, 10, 5)
            .is_empty());
        assert!(index
            .positions("a", 9, Direction::Forward, 10, 5)
            .is_empty());
        assert_eq!(index.durable_version("a", 4), Some(2));
        assert_eq!(index.durable_version("a", 0), None);
        assert_eq!(
            index.durable_heads(4),
            vec![("a".to_string(), 2, 3), ("b".to_string(), 2, 4)]
        );
    }

    #[test]
    fn an_entry_out_of_order_is_refused_and_the_ones_before_it_stay() {
        let index = interleaved();
        let gap = index.record([entry("b", 3, 6), entry("a", 5, 7)]);
        assert!(matches!(gap, Err(StoreError::Corrupt { position: 7, .. })));
        assert_eq!(index.head("b").unwrap().version, 3);
        assert_eq!(index.head("a").unwrap().version, 3);
        let behind = index.record([entry("a", 4, 5)]);
        assert!(behind.is_err());
        let fresh = index.record([entry("c", 2, 9)]);
        assert!(fresh.is_err());
        assert_eq!(index.head("c"), None);
    }

    #[test]
    fn a_build_over_damage_points_the_missing_versions_at_it() {
        // Given a log: a v1 @1, damaged @2 (a v2), b v1 @3, a v3 @4, a v3 again @5,
        // b v3 @6 (no damage explains b v2), damaged @7
        let index = interleaved();
        let mut build = index.rebuild();
        build.add(&entry("a", 1, 1));
        build.damaged(2);
        build.add(&entry("b", 1, 3));
        build.add(&entry("a", 3, 4));
        build.add(&entry("a", 3, 5));
        build.add(&entry("b", 3, 6));
        build.damaged(7);
        drop(build);
        // Then each stream reads its versions at the positions that explain them
        assert_eq!(
            index.positions("a", 1, Direction::Forward, 9, 9),
            vec![(1, 1), (2, 2), (3, 4)]
        );
        assert_eq!(
            index.positions("b", 1, Direction::Forward, 9, 9),
            vec![(1, 3), (2, 6), (3, 6)]
        );
        assert_eq!(index.head("a").unwrap().position, 4);
        assert_eq!(index.stream_count(), 2);
    }
}
