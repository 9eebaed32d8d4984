//! Owns applying one group of appends to the trees: the idempotency check,
//! the expected-version check, building hashed envelopes, and updating `log`,
//! `streams`, `heads`, `event_ids` and `meta` so that a crash keeps the whole
//! group or none of it.
//!
//! Decide first, write after. Every check reads the committed trees plus what
//! the group's earlier appends staged in memory, so a refused append, a
//! corrupt read or a storage error while deciding writes nothing. Then, from
//! this one thread and under the write gate, plain sled inserts: the group's
//! log entries in position order, then its `streams` and `event_ids` entries,
//! and last one small transaction that moves the stream heads and `meta`'s
//! log end together. That transaction is the commit point. A group of a few
//! events is written in one transaction instead, which costs less for them.
//!
//! A five-tree sled transaction per group did the same in one step, but it
//! buffered every write, tracked every read and was most of the writer's
//! time (BENCHMARKS.md, "Appends at 64 writers").
//!
//! After a crash: sled recovers a prefix of what one thread wrote (its own
//! crash tests check exactly that), so every `streams` or `event_ids` entry of
//! a group that did not reach its commit point has its log entry, past
//! `meta`'s log end. [`remove_uncommitted`] finds those log entries when the
//! store opens and removes them with their index entries. Until the flush
//! that follows the commit nothing of a group is read: reads stop at the
//! durable position.

use std::borrow::Cow;
use std::collections::HashMap;

use sled::transaction::TransactionalTree;
use sled::Transactional;
use uuid::Uuid;

use crate::bulk::{checked_log_end, finish_tx, plain_head, plain_last_position, TxResult};
use crate::codec;
use crate::error::StoreError;
use crate::event::{AppendResult, ExpectedVersion, NewEvent, RecordedEvent};
use crate::layout::{decode_u64, position_key, stream_key, Head, META_LAST_POSITION};
use crate::trees::Trees;

/// Groups of at most this many events are written in one transaction: for
/// a few events its fixed cost is less than that of separate inserts plus
/// the commit transaction (a lone writer's append was ~10 % slower without it).
const ONE_TRANSACTION_UP_TO: usize = 8;

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
    /// Writing failed part way: some of the group may be in the trees, not
    /// committed. Nothing more may be appended until the store is opened
    /// again, which removes it ([`remove_uncommitted`]).
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
    let outcomes = staged.write(trees).map_err(GroupFailure::PartlyWritten)?;
    Ok(outcomes)
}

/// Removes what a group wrote without reaching its commit point (log
/// entries past `meta`'s log end, and the `streams` and `event_ids` entries
/// naming them), so the store opens exactly at its last committed group.
/// Returns how many log entries were removed. Runs when the store opens.
pub(crate) fn remove_uncommitted(trees: &Trees) -> Result<u64, StoreError> {
    let sled_err = |e| StoreError::sled("remove an uncommitted append", e);
    let committed = plain_last_position(&trees.meta)?;
    let mut removed = 0u64;
    for item in trees.log.range(position_key(committed + 1)..) {
        let (key, bytes) = item.map_err(sled_err)?;
        let position = decode_u64(&key)
            .ok_or_else(|| StoreError::corrupt(committed, "a log key is not 8 bytes"))?;
        let event = codec::decode(position, &bytes)?;
        let at = position.to_be_bytes();
        for (index, key) in [
            (&trees.streams, stream_key(&event.stream_id, event.version)),
            (&trees.event_ids, event.event_id.as_bytes().to_vec()),
        ] {
            // Only an entry naming this position is the group's own.
            let _ = index
                .compare_and_swap(&key, Some(&at[..]), None as Option<&[u8]>)
                .map_err(sled_err)?;
        }
        trees.log.remove(key).map_err(sled_err)?;
        removed += 1;
    }
    Ok(removed)
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
        let bytes = trees
            .log
            .get(position_key(position))
            .map_err(|e| StoreError::sled("read log", e))?
            .ok_or_else(|| {
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
    fn write(self, trees: &Trees) -> Result<Vec<Outcome>, StoreError> {
        if self.events.len() > ONE_TRANSACTION_UP_TO {
            self.put_entries(trees)?;
            self.commit(trees)?;
        } else if !self.events.is_empty() {
            self.commit_all(trees)?;
        }
        Ok(self.outcomes)
    }

    /// A small group: everything in one transaction (nothing to remove after
    /// a crash). Its reads were made while deciding; this only writes.
    fn commit_all(&self, trees: &Trees) -> Result<(), StoreError> {
        let result = (
            &trees.log,
            &trees.streams,
            &trees.event_ids,
            &trees.heads,
            &trees.meta,
        )
            .transaction(|(log, streams, event_ids, heads, meta)| {
                for (event, envelope) in &self.events {
                    let position = event.position.to_be_bytes();
                    log.insert(&position_key(event.position), envelope.as_slice())?;
                    streams.insert(stream_key(&event.stream_id, event.version), &position)?;
                    event_ids.insert(event.event_id.as_bytes(), &position)?;
                }
                self.move_heads_and_end(heads, meta)
            });
        finish_tx(result, "append")
    }

    /// The log entries in position order, then the `streams` and
    /// `event_ids` entries naming them: none of it committed yet.
    fn put_entries(&self, trees: &Trees) -> Result<(), StoreError> {
        let sled_err = |e| StoreError::sled("append", e);
        for (event, envelope) in &self.events {
            trees
                .log
                .insert(position_key(event.position), envelope.as_slice())
                .map_err(sled_err)?;
        }
        for (event, _) in &self.events {
            trees
                .streams
                .insert(
                    stream_key(&event.stream_id, event.version),
                    &event.position.to_be_bytes(),
                )
                .map_err(sled_err)?;
        }
        for (event, _) in &self.events {
            trees
                .event_ids
                .insert(event.event_id.as_bytes(), &event.position.to_be_bytes())
                .map_err(sled_err)?;
        }
        Ok(())
    }

    /// The commit point: the stream heads and `meta`'s log end move together.
    fn commit(&self, trees: &Trees) -> Result<(), StoreError> {
        let result = (&trees.heads, &trees.meta)
            .transaction(|(heads, meta)| self.move_heads_and_end(heads, meta));
        finish_tx(result, "append")
    }

    /// Inside a transaction: the new heads of the group's streams and the
    /// log's new end.
    fn move_heads_and_end(
        &self,
        heads: &TransactionalTree,
        meta: &TransactionalTree,
    ) -> TxResult<()> {
        for (stream, head) in &self.heads {
            heads.insert(stream.as_bytes(), &head.encode()[..])?;
        }
        meta.insert(META_LAST_POSITION, &self.last_position().to_be_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample_event as event;

    fn trees() -> Trees {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Trees::open(&db).unwrap()
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
    fn small_and_large_groups_leave_the_same_trees() {
        // Given the same appends (three streams, five events each), applied once as a
        // large group (plain inserts and a commit) and once in small groups of one
        // append each (one transaction each)
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
        assert!(appends.iter().map(|a| a.events.len()).sum::<usize>() > ONE_TRANSACTION_UP_TO);
        assert!(appends[0].events.len() <= ONE_TRANSACTION_UP_TO);
        let large = trees();
        apply_group(&large, &appends, 7).unwrap();
        let small = trees();
        for append in &appends {
            apply_group(&small, std::slice::from_ref(append), 7).unwrap();
        }
        // Then every tree holds the same entries
        let dump = |tree: &sled::Tree| -> Vec<(sled::IVec, sled::IVec)> {
            tree.iter().map(|item| item.unwrap()).collect()
        };
        for (name, l, s) in [
            ("log", &large.log, &small.log),
            ("streams", &large.streams, &small.streams),
            ("heads", &large.heads, &small.heads),
            ("event_ids", &large.event_ids, &small.event_ids),
            ("meta", &large.meta, &small.meta),
        ] {
            assert_eq!(dump(l), dump(s), "{name}");
        }
        assert_eq!(large.log.len(), 15);
        assert_eq!(large.event_ids.len(), 15);
        assert_eq!(large.streams.len(), 15);
        assert_eq!(plain_last_position(&large.meta).unwrap(), 15);
    }

    #[test]
    fn a_group_written_without_its_commit_is_removed_and_its_appends_can_be_made_again() {
        // Given a committed group: `a` at versions 1-2 (positions 1-2)
        let trees = trees();
        let committed = vec![event(), event()];
        let append = |stream, expected, events| Append {
            stream,
            expected,
            events,
        };
        apply_group(
            &trees,
            &[append("a", ExpectedVersion::NoStream, &committed)],
            7,
        )
        .unwrap();
        // and a group (a at version 3, c at version 1) whose entries were written but
        // whose commit never happened (a crash between the two)
        let more = vec![event()];
        let fresh = vec![event()];
        let group = [
            append("a", ExpectedVersion::Exact(2), &more),
            append("c", ExpectedVersion::NoStream, &fresh),
        ];
        let staged = Staged::decide(&trees, &group, 7).unwrap();
        staged.put_entries(&trees).unwrap();
        assert_eq!(trees.log.len(), 4);
        // When the store opens
        let removed = remove_uncommitted(&trees).unwrap();
        // Then the uncommitted entries are gone and the committed ones stand
        assert_eq!(removed, 2);
        assert_eq!(trees.log.len(), 2);
        assert_eq!(position_of(&trees.streams, &stream_key("a", 3)), None);
        assert_eq!(position_of(&trees.streams, &stream_key("c", 1)), None);
        assert_eq!(position_of(&trees.streams, &stream_key("a", 2)), Some(2));
        assert_eq!(
            position_of(&trees.event_ids, more[0].event_id.as_bytes()),
            None
        );
        assert_eq!(
            position_of(&trees.event_ids, fresh[0].event_id.as_bytes()),
            None
        );
        assert_eq!(
            position_of(&trees.event_ids, committed[1].event_id.as_bytes()),
            Some(2)
        );
        assert!(trees.heads.get("c").unwrap().is_none());
        // and the same appends are written anew (not taken for repeats), at the same
        // positions
        let outcomes = apply_group(&trees, &group, 7).unwrap();
        assert_eq!(written(&outcomes[0]).first_position, 3);
        assert_eq!(written(&outcomes[1]).first_position, 4);
        // and opening again removes nothing
        assert_eq!(remove_uncommitted(&trees).unwrap(), 0);
    }

    #[test]
    fn a_log_entry_past_the_end_that_does_not_decode_stops_the_opening() {
        // Given a committed event at position 1, and at position 2 an envelope that
        // claims another position
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
        let envelope = trees.log.get(position_key(1)).unwrap().unwrap();
        trees.log.insert(position_key(2), envelope).unwrap();
        // When the store opens, it refuses with a typed error and removes nothing
        assert!(matches!(
            remove_uncommitted(&trees),
            Err(StoreError::Corrupt { position: 2, .. })
        ));
        assert_eq!(trees.log.len(), 2);
        assert_eq!(position_of(&trees.streams, &stream_key("a", 1)), Some(1));
        assert_eq!(
            position_of(&trees.event_ids, one[0].event_id.as_bytes()),
            Some(1)
        );
    }
}
