//! Owns applying one group of appends: the idempotency check, the
//! expected-version check, building hashed envelopes, and writing them to
//! the log and its indexes (`streams`, `heads`, `event_ids`, `meta`) so that
//! a crash keeps the whole group or none of it.
//!
//! Decide first, write after. Every check reads the committed trees plus what
//! the group's earlier appends staged in memory, so a refused append, a
//! corrupt read or a storage error while deciding writes nothing. Then, from
//! this one thread and under the write gate: the group's records in one
//! write to the log's segment, the last one flagged as ending a committed
//! write; that flag is the commit point. Then the index entries, all plain
//! sled inserts under the `indexing` marker in `meta`: the group's
//! `streams` and `event_ids` entries, the stream heads, `meta`'s log end,
//! and the marker's removal ([`crate::bulk::move_heads_and_end`]).
//!
//! The syncer acknowledges the group once the log's segment is synced; sled
//! flushes the indexes on its own. After a crash, the store's recovery
//! (`crate::recover`) indexes every committed record sled did not keep and
//! cuts any unfinished tail. Until the sync nothing of a group is read:
//! reads stop at the durable position.

use std::borrow::Cow;
use std::collections::HashMap;

use uuid::Uuid;

use crate::bulk::{checked_log_end, move_heads_and_end, plain_head, IndexEntries};
use crate::codec;
use crate::error::StoreError;
use crate::event::{AppendResult, ExpectedVersion, NewEvent, RecordedEvent};
use crate::layout::{decode_u64, Head};
use crate::trees::Trees;

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// New events were written; the result is theirs.
    Written(AppendResult),
    /// Every event was already stored identically; nothing was written and
    /// the result is the original one.
    Duplicate(AppendResult),
}

/// One append of a group: events for one stream under an expectation.
#[derive(Clone, Copy, Debug)]
pub struct Append<'a> {
    /// The stream appended to.
    pub stream: &'a str,
    /// What the caller expects the stream's version to be.
    pub expected: ExpectedVersion,
    /// The validated events.
    pub events: &'a [NewEvent],
}

/// The outcome of one append of a group: written, duplicate, or refused
/// (conflict, idempotency mismatch) without writing anything.
pub type Outcome = Result<Applied, StoreError>;

/// Why a whole group failed.
#[derive(Debug)]
pub enum GroupFailure {
    /// Deciding failed (a storage read, corruption): nothing was written.
    Unwritten(StoreError),
    /// Writing the index entries failed after the group's records reached
    /// the log. Nothing more may be appended until the store is opened
    /// again, which indexes them (`crate::recover`).
    PartlyWritten(StoreError),
}

/// Applies a group of validated appends, in order: each append sees the ones
/// before it, and a refused append (conflict, idempotency mismatch) writes
/// nothing without affecting the others. All the written appends of the
/// group reach their commit point together, or (after a crash) none does.
pub fn apply_group(
    trees: &Trees,
    appends: &[Append<'_>],
    recorded_at: i64,
) -> Result<Vec<Outcome>, GroupFailure> {
    let staged = Staged::decide(trees, appends, recorded_at).map_err(GroupFailure::Unwritten)?;
    staged.write(trees)
}

/// A group decided and not yet written.
struct Staged<'a> {
    /// The log's end before the group.
    start: u64,
    outcomes: Vec<Outcome>,
    /// The written events, at positions `start + 1 ..`, with their envelopes.
    events: Vec<(RecordedEvent, Vec<u8>)>,
    /// The new head of every stream the group writes.
    heads: HashMap<&'a str, Head>,
    /// Where the group puts each event id it writes.
    ids: HashMap<Uuid, u64>,
}

impl<'a> Staged<'a> {
    fn decide(
        trees: &Trees,
        appends: &[Append<'a>],
        recorded_at: i64,
    ) -> Result<Staged<'a>, StoreError> {
        let start = checked_log_end(trees)?;
        let mut staged = Staged {
            start,
            outcomes: Vec::with_capacity(appends.len()),
            events: Vec::new(),
            heads: HashMap::new(),
            ids: HashMap::new(),
        };
        for append in appends {
            let outcome = staged.append(trees, append, recorded_at)?;
            staged.outcomes.push(outcome);
        }
        Ok(staged)
    }

    fn last_position(&self) -> u64 {
        self.start + self.events.len() as u64
    }

    /// One append after the ones staged so far. `Ok(Err(_))` is a refusal
    /// that stages nothing; `Err(_)` fails the whole group.
    fn append(
        &mut self,
        trees: &Trees,
        append: &Append<'a>,
        recorded_at: i64,
    ) -> Result<Outcome, StoreError> {
        let Append {
            stream,
            expected,
            events,
        } = *append;
        match self.find_duplicate(trees, stream, events)? {
            Ok(Some(original)) => return Ok(Ok(Applied::Duplicate(original))),
            Ok(None) => {}
            Err(refused) => return Ok(Err(refused)),
        }
        let head = self.head(trees, stream)?;
        let actual = head.map(|h| h.version);
        if !expected.matches(actual) {
            return Ok(Err(StoreError::Conflict {
                stream: stream.to_owned(),
                expected,
                actual,
            }));
        }
        let first_position = self.last_position() + 1;
        let mut prev_hash = head.map_or([0; 32], |h| h.hash);
        let mut version = actual.unwrap_or(0);
        let mut position = self.last_position();
        let mut staged = Vec::with_capacity(events.len());
        for new in events {
            position += 1;
            version += 1;
            let event = new.record(stream, position, version, recorded_at, prev_hash);
            prev_hash = event.hash;
            let envelope = codec::encode(&event)?;
            staged.push((event, envelope));
        }
        for (event, _) in &staged {
            self.ids.insert(event.event_id, event.position);
        }
        self.events.extend(staged);
        self.heads.insert(
            stream,
            Head {
                version,
                hash: prev_hash,
                position,
            },
        );
        Ok(Ok(Applied::Written(AppendResult {
            first_position,
            last_position: position,
            next_version: version + 1,
        })))
    }

    /// `stream`'s head, as staged by this group or as committed.
    fn head(&self, trees: &Trees, stream: &str) -> Result<Option<Head>, StoreError> {
        match self.heads.get(stream) {
            Some(head) => Ok(Some(*head)),
            None => plain_head(&trees.heads, stream),
        }
    }

    /// Where event `id` is, as staged by this group or as committed.
    fn position_of(&self, trees: &Trees, id: &Uuid) -> Result<Option<u64>, StoreError> {
        if let Some(position) = self.ids.get(id) {
            return Ok(Some(*position));
        }
        match trees
            .event_ids
            .get(id.as_bytes())
            .map_err(|e| StoreError::sled("read event ids", e))?
        {
            Some(bytes) => decode_u64(&bytes).map(Some).ok_or_else(|| {
                StoreError::corrupt(0, format!("event_ids entry of {id} is not 8 bytes"))
            }),
            None => Ok(None),
        }
    }

    /// The event at `position`, staged by this group or committed.
    fn stored(
        &self,
        trees: &Trees,
        position: u64,
        id: &Uuid,
    ) -> Result<Cow<'_, RecordedEvent>, StoreError> {
        if let Some(index) = position.checked_sub(self.start + 1) {
            let index = usize::try_from(index).unwrap_or(usize::MAX);
            return match self.events.get(index) {
                Some((event, _)) => Ok(Cow::Borrowed(event)),
                None => Err(StoreError::corrupt(
                    position,
                    format!("event_ids points {id} past the log's end"),
                )),
            };
        }
        let bytes = trees.log.get(position)?.ok_or_else(|| {
            StoreError::corrupt(
                position,
                format!("event_ids points {id} at a missing log entry"),
            )
        })?;
        Ok(Cow::Owned(codec::decode(position, &bytes)?))
    }

    /// Returns the original result if every event of the batch is already
    /// stored, identically and contiguously in `stream`; `None` if none is
    /// stored; a refusal ([`StoreError::IdempotencyMismatch`]) otherwise.
    fn find_duplicate(
        &self,
        trees: &Trees,
        stream: &str,
        events: &[NewEvent],
    ) -> Result<Result<Option<AppendResult>, StoreError>, StoreError> {
        let mut found = Vec::new();
        for (index, new) in events.iter().enumerate() {
            if let Some(position) = self.position_of(trees, &new.event_id)? {
                found.push((index, position));
            }
        }
        let Some(&(first_index, _)) = found.first() else {
            return Ok(Ok(None));
        };
        let mismatch = |index: usize| StoreError::IdempotencyMismatch {
            event_id: events[index].event_id,
        };
        if found.len() != events.len() {
            // Some events are stored and some are not: report the first one
            // that is stored, since that is the id being reused.
            return Ok(Err(mismatch(first_index)));
        }
        let mut stored = Vec::with_capacity(found.len());
        for &(index, position) in &found {
            stored.push(self.stored(trees, position, &events[index].event_id)?);
        }
        let (Some(first), Some(last)) = (stored.first(), stored.last()) else {
            return Ok(Ok(None));
        };
        for (index, (new, event)) in events.iter().zip(&stored).enumerate() {
            let in_place = event.version == first.version + index as u64;
            if !in_place || event.stream_id != stream || !new.is_stored_as(event) {
                return Ok(Err(mismatch(index)));
            }
        }
        Ok(Ok(Some(AppendResult {
            first_position: first.position,
            last_position: last.position,
            next_version: last.version + 1,
        })))
    }

    /// Writes what was decided (see the module doc for the order) and
    /// returns the outcomes.
    fn write(self, trees: &Trees) -> Result<Vec<Outcome>, GroupFailure> {
        if self.events.is_empty() {
            return Ok(self.outcomes);
        }
        // If the log write fails, the log is as it was: nothing is written.
        trees
            .log
            .append(
                self.start + 1,
                self.events.iter().map(|(_, envelope)| envelope.as_slice()),
                true,
            )
            .map_err(GroupFailure::Unwritten)?;
        let indexed = self.put_entries(trees).and_then(|()| self.commit(trees));
        indexed.map_err(GroupFailure::PartlyWritten)?;
        Ok(self.outcomes)
    }

    /// The group's `streams` and `event_ids` entries, not committed yet.
    fn put_entries(&self, trees: &Trees) -> Result<(), StoreError> {
        let entries = IndexEntries::of(self.events.iter().map(|(event, _)| event));
        entries.put(trees)
    }

    /// The stream heads, then `meta`'s log end.
    fn commit(&self, trees: &Trees) -> Result<(), StoreError> {
        let heads = self.heads.iter().map(|(stream, head)| (*stream, *head));
        move_heads_and_end(trees, heads, self.last_position(), "append")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::plain_last_position;
    use crate::event::sample_event as event;
    use crate::layout::{stream_key, META_INDEXING};

    /// A store's trees and log in a temporary directory.
    struct Scratch {
        trees: Trees,
        _dir: tempfile::TempDir,
    }

    impl std::ops::Deref for Scratch {
        type Target = Trees;
        fn deref(&self) -> &Trees {
            &self.trees
        }
    }

    fn trees() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let trees = Trees::open(&db, &dir.path().join("segments"), 1 << 20).unwrap();
        Scratch { trees, _dir: dir }
    }

    fn log_of(trees: &Trees) -> Vec<(u64, Vec<u8>)> {
        let mut records = Vec::new();
        trees
            .log
            .visit::<StoreError>(1, u64::MAX, |position, bytes| {
                records.push((position, bytes.to_vec()));
                Ok(true)
            })
            .unwrap();
        records
    }

    fn written(outcome: &Outcome) -> AppendResult {
        match outcome {
            Ok(Applied::Written(result)) => *result,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    fn position_of(tree: &sled::Tree, key: &[u8]) -> Option<u64> {
        tree.get(key).unwrap().and_then(|v| decode_u64(&v))
    }

    #[test]
    fn an_append_sees_what_earlier_appends_of_its_group_staged() {
        // Given an empty store
        let trees = trees();
        let first = vec![event(), event()];
        let other = vec![event()];
        let elsewhere = vec![event()];
        // When one group appends to `a`, repeats that append, appends to `a` expecting
        // the version the first append left, and conflicts on `b`
        let outcomes = apply_group(
            &trees,
            &[
                Append {
                    stream: "a",
                    expected: ExpectedVersion::NoStream,
                    events: &first,
                },
                Append {
                    stream: "a",
                    expected: ExpectedVersion::NoStream,
                    events: &first,
                },
                Append {
                    stream: "a",
                    expected: ExpectedVersion::Exact(2),
                    events: &other,
                },
                Append {
                    stream: "b",
                    expected: ExpectedVersion::Exact(1),
                    events: &elsewhere,
                },
            ],
            7,
        )
        .unwrap();
        // Then the repeat is the first append's result, the third follows it, and the
        // conflict wrote nothing
        let one = written(&outcomes[0]);
        assert_eq!((one.first_position, one.last_position), (1, 2));
        assert_eq!(outcomes[1], Ok(Applied::Duplicate(one)));
        assert_eq!(written(&outcomes[2]).last_position, 3);
        assert!(matches!(
            outcomes[3],
            Err(StoreError::Conflict { actual: None, .. })
        ));
        assert_eq!(plain_last_position(&trees.meta).unwrap(), 3);
        let head = Head::decode("a", &trees.heads.get("a").unwrap().unwrap()).unwrap();
        assert_eq!((head.version, head.position), (3, 3));
        assert_eq!(position_of(&trees.streams, &stream_key("a", 3)), Some(3));
        assert_eq!(
            position_of(&trees.event_ids, other[0].event_id.as_bytes()),
            Some(3)
        );
    }

    #[test]
    fn one_group_and_a_group_per_append_leave_the_same_trees() {
        // Given the same appends (three streams, five events each), applied once as
        // one group and once in groups of one append each
        let batches: Vec<Vec<NewEvent>> =
            (0..3).map(|_| (0..5).map(|_| event()).collect()).collect();
        let streams = ["a", "b", "c"];
        let appends: Vec<Append<'_>> = streams
            .iter()
            .zip(&batches)
            .map(|(stream, events)| Append {
                stream,
                expected: ExpectedVersion::NoStream,
                events,
            })
            .collect();
        let whole = trees();
        apply_group(&whole, &appends, 7).unwrap();
        let apart = trees();
        for append in &appends {
            apply_group(&apart, std::slice::from_ref(append), 7).unwrap();
        }
        // Then every tree holds the same entries
        let dump = |tree: &sled::Tree| -> Vec<(sled::IVec, sled::IVec)> {
            tree.iter().map(|item| item.unwrap()).collect()
        };
        assert_eq!(log_of(&whole), log_of(&apart), "log");
        for (name, l, s) in [
            ("streams", &whole.streams, &apart.streams),
            ("heads", &whole.heads, &apart.heads),
            ("event_ids", &whole.event_ids, &apart.event_ids),
            ("meta", &whole.meta, &apart.meta),
        ] {
            assert_eq!(dump(l), dump(s), "{name}");
        }
        assert_eq!(log_of(&whole).len(), 15);
        assert_eq!(whole.event_ids.len(), 15);
        assert_eq!(whole.streams.len(), 15);
        assert_eq!(plain_last_position(&whole.meta).unwrap(), 15);
    }

    /// `a` at versions 1-2 (positions 1-2) committed, and a group (a at
    /// version 3, c at version 1) decided on top of it.
    fn committed_and_next() -> (Scratch, [Vec<NewEvent>; 3]) {
        let trees = trees();
        let events = [vec![event(), event()], vec![event()], vec![event()]];
        apply_group(
            &trees,
            &[Append {
                stream: "a",
                expected: ExpectedVersion::NoStream,
                events: &events[0],
            }],
            7,
        )
        .unwrap();
        (trees, events)
    }

    fn next_group(events: &[Vec<NewEvent>; 3]) -> [Append<'_>; 2] {
        [
            Append {
                stream: "a",
                expected: ExpectedVersion::Exact(2),
                events: &events[1],
            },
            Append {
                stream: "c",
                expected: ExpectedVersion::NoStream,
                events: &events[2],
            },
        ]
    }

    #[test]
    fn a_group_whose_records_reached_the_log_is_indexed_whole_when_the_store_opens() {
        // Given the next group's records in the log, flagged as committed, and
        // its index entries written but not its commit (a crash between the two)
        let (trees, events) = committed_and_next();
        let group = next_group(&events);
        let staged = Staged::decide(&trees, &group, 7).unwrap();
        trees
            .log
            .append(3, staged.events.iter().map(|(_, e)| e.as_slice()), true)
            .unwrap();
        staged.put_entries(&trees).unwrap();
        // When the store opens
        let recovered = crate::recover::recover(&trees).unwrap();
        // Then the group is committed whole: indexed, heads and log end moved
        assert_eq!(recovered.indexed, 2);
        assert_eq!(plain_last_position(&trees.meta).unwrap(), 4);
        let head = Head::decode("c", &trees.heads.get("c").unwrap().unwrap()).unwrap();
        assert_eq!((head.version, head.position), (1, 4));
        assert_eq!(position_of(&trees.streams, &stream_key("a", 3)), Some(3));
        assert!(trees.meta.get(META_INDEXING).unwrap().is_none());
        // and making the same appends again finds them stored
        let outcomes = apply_group(&trees, &group, 7).unwrap();
        assert!(matches!(outcomes[0], Ok(Applied::Duplicate(_))));
        assert!(matches!(outcomes[1], Ok(Applied::Duplicate(_))));
        // and opening again changes nothing
        assert_eq!(
            crate::recover::recover(&trees).unwrap(),
            crate::recover::Recovered::default()
        );
    }

    #[test]
    fn index_entries_of_records_the_log_lost_are_removed_and_their_appends_can_be_made_again() {
        // Given the next group's index entries written, and its records not in
        // the log (lost in a power cut)
        let (trees, events) = committed_and_next();
        let group = next_group(&events);
        Staged::decide(&trees, &group, 7)
            .unwrap()
            .put_entries(&trees)
            .unwrap();
        // When the store opens
        let recovered = crate::recover::recover(&trees).unwrap();
        // Then the entries naming nothing are gone and the committed ones stand
        assert_eq!(recovered.stale, 4);
        assert_eq!(position_of(&trees.streams, &stream_key("a", 3)), None);
        assert_eq!(position_of(&trees.streams, &stream_key("c", 1)), None);
        assert_eq!(position_of(&trees.streams, &stream_key("a", 2)), Some(2));
        assert_eq!(
            position_of(&trees.event_ids, events[1][0].event_id.as_bytes()),
            None
        );
        assert_eq!(
            position_of(&trees.event_ids, events[0][1].event_id.as_bytes()),
            Some(2)
        );
        assert!(trees.heads.get("c").unwrap().is_none());
        // and the same appends are written anew (not taken for repeats), at the
        // same positions
        let outcomes = apply_group(&trees, &group, 7).unwrap();
        assert_eq!(written(&outcomes[0]).first_position, 3);
        assert_eq!(written(&outcomes[1]).first_position, 4);
    }

    #[test]
    fn heads_naming_records_the_log_lost_are_put_back_when_the_store_opens() {
        // Given the next group's index entries and stream heads written, but not
        // `meta`'s log end, and its records not in the log (a power cut after sled
        // kept part of the group's last step)
        let (trees, events) = committed_and_next();
        let before = trees.heads.get("a").unwrap().unwrap();
        let group = next_group(&events);
        let staged = Staged::decide(&trees, &group, 7).unwrap();
        staged.put_entries(&trees).unwrap();
        for (stream, head) in &staged.heads {
            trees
                .heads
                .insert(stream.as_bytes(), &head.encode()[..])
                .unwrap();
        }
        assert_ne!(trees.heads.get("a").unwrap().unwrap(), before);
        // When the store opens
        let recovered = crate::recover::recover(&trees).unwrap();
        // Then `a`'s head is its last committed event again (version, hash and
        // position) and `c`, which has no event, has no head
        assert_eq!(recovered.stale, 4 + 2);
        assert_eq!(trees.heads.get("a").unwrap().unwrap(), before);
        assert!(trees.heads.get("c").unwrap().is_none());
        assert!(trees.meta.get(META_INDEXING).unwrap().is_none());
        // and the same appends are written anew, chained on the committed head
        let outcomes = apply_group(&trees, &group, 7).unwrap();
        assert_eq!(written(&outcomes[0]).first_position, 3);
        assert_eq!(written(&outcomes[1]).first_position, 4);
        let store_like = log_of(&trees);
        assert_eq!(store_like.len(), 4);
        let third = codec::decode(3, &store_like[2].1).unwrap();
        let second = codec::decode(2, &store_like[1].1).unwrap();
        assert_eq!(third.prev_hash, second.hash);
    }

    #[test]
    fn an_unfinished_write_at_the_end_of_the_log_is_cut_when_the_store_opens() {
        // Given the next group's records in the log without the commit flag
        let (trees, events) = committed_and_next();
        let group = next_group(&events);
        let staged = Staged::decide(&trees, &group, 7).unwrap();
        trees
            .log
            .append(3, staged.events.iter().map(|(_, e)| e.as_slice()), false)
            .unwrap();
        // When the store opens
        let recovered = crate::recover::recover(&trees).unwrap();
        // Then they are cut, and the appends are written anew at the same positions
        assert_eq!(recovered.cut, 2);
        assert_eq!(trees.log.last_position(), 2);
        let outcomes = apply_group(&trees, &group, 7).unwrap();
        assert_eq!(written(&outcomes[1]).last_position, 4);
    }

    #[test]
    fn a_committed_record_past_the_end_that_does_not_decode_stops_the_opening() {
        // Given a committed event at position 1, and at position 2 a record
        // flagged as committed whose envelope claims another position
        let trees = trees();
        let one = vec![event()];
        apply_group(
            &trees,
            &[Append {
                stream: "a",
                expected: ExpectedVersion::NoStream,
                events: &one,
            }],
            7,
        )
        .unwrap();
        let envelope = trees.log.get(1).unwrap().unwrap();
        trees
            .log
            .append(2, [envelope.as_slice()].into_iter(), true)
            .unwrap();
        // When the store opens, it refuses with a typed error and the log stays
        assert!(matches!(
            crate::recover::recover(&trees),
            Err(StoreError::Corrupt { position: 2, .. })
        ));
        assert_eq!(trees.log.last_position(), 2);
        assert_eq!(plain_last_position(&trees.meta).unwrap(), 1);
        assert_eq!(position_of(&trees.streams, &stream_key("a", 1)), Some(1));
    }
}
