//! Owns bulk appends: many appends to many streams committed at once and made
//! durable by one flush, for loaders (the demo generator, migrations) that
//! write far more than interactive callers.
//!
//! A bulk append follows exactly the rules of [`Store::append`]: the same
//! input validation, the same expected-version checks, the same envelopes,
//! positions and hash chains ([`crate::canonical`]). It differs in three ways:
//! it is all-or-nothing over every append it holds; event ids that are
//! already stored are refused rather than treated as a repeat (a loader
//! knows what it wrote); and the caller may ask for each event's
//! `recorded_at` to be its `occurred_at` ([`RecordedAt::OccurredAt`]), so a
//! simulated history hashes the same whenever it is loaded.
//!
//! How it is written: under the store's write gate (so the single writer and
//! imports wait), every envelope is built first; then they go to the log's
//! segment in one write whose last record is flagged as committed, then the
//! `streams` and `event_ids` entries are inserted in key order as plain sled
//! inserts (a sled transaction buffers writes in a hash map and applies them
//! in hash order, which made loading 1.6x slower), and finally the stream
//! heads and `meta`'s log end, plain inserts too (`move_heads_and_end`).
//! A marker in `meta` ([`META_INDEXING`]) is there while the index entries
//! and heads are written; nothing of it is visible until the log is synced
//! (reads stop at the durable position), and after a crash the store's
//! recovery (`crate::recover`) keeps it whole if its records reached the log
//! and removes every index entry and head of it otherwise.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::codec;
use crate::error::StoreError;
use crate::event::{AppendResult, ExpectedVersion, NewEvent, RecordedEvent};
use crate::layout::{decode_last_position, stream_key, Head, META_INDEXING, META_LAST_POSITION};
use crate::store::Store;
use crate::validate;

/// Most events one bulk append may hold (bounded so one write's envelopes
/// and index entries stay a reasonable amount of memory).
pub const MAX_BULK_EVENTS: usize = 200_000;

/// One stream's part of a bulk append: like the arguments of
/// [`Store::append`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkAppend {
    /// The stream, e.g. `customer-<uuid>`.
    pub stream: String,
    /// What the stream's version must be before these events (checked after
    /// the earlier appends of the same bulk append are applied).
    pub expected: ExpectedVersion,
    /// The events, in order (1..=1000 per append, as for [`Store::append`]).
    pub events: Vec<NewEvent>,
}

/// Where the `recorded_at` of bulk-appended events comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordedAt {
    /// The store's clock when the bulk append is committed (like
    /// [`Store::append`]).
    StoreClock,
    /// Each event's own `occurred_at`: for replaying a known history, so
    /// the same history always gives the same hashes.
    OccurredAt,
}

/// The log's last position as `meta` records it (0 for an empty store).
pub(crate) fn plain_last_position(meta: &sled::Tree) -> Result<u64, StoreError> {
    let value = meta
        .get(META_LAST_POSITION)
        .map_err(|e| StoreError::sled("read meta", e))?;
    decode_last_position(value.as_deref())
}

/// A stream's head, `None` if the stream has no events.
pub(crate) fn plain_head(heads: &sled::Tree, stream: &str) -> Result<Option<Head>, StoreError> {
    match heads
        .get(stream.as_bytes())
        .map_err(|e| StoreError::sled("read heads", e))?
    {
        Some(bytes) => Ok(Some(Head::decode(stream, &bytes)?)),
        None => Ok(None),
    }
}

/// The log's last position as `meta` records it, checked against the log:
/// the log must end there too (else the store is corrupt, or a write failed
/// part way and the store must be opened again).
pub(crate) fn checked_log_end(trees: &crate::trees::Trees) -> Result<u64, StoreError> {
    let last = plain_last_position(&trees.meta)?;
    let end = trees.log.last_position();
    if end != last {
        return Err(StoreError::corrupt(
            last + 1,
            format!("meta says the log ends at {last}, but it ends at {end}"),
        ));
    }
    Ok(last)
}

/// Index entries to put: `streams` (key, position) and `event_ids` (id,
/// position).
#[derive(Debug, Default)]
pub(crate) struct IndexEntries {
    /// The first position they name.
    pub first: u64,
    /// `streams` entries.
    pub streams: Vec<(Vec<u8>, [u8; 8])>,
    /// `event_ids` entries.
    pub ids: Vec<([u8; 16], [u8; 8])>,
}

impl IndexEntries {
    /// Adds the entries of the event at `position`.
    pub fn push(&mut self, stream: &str, version: u64, id: &uuid::Uuid, position: u64) {
        if self.streams.is_empty() {
            self.first = position;
        }
        self.streams
            .push((stream_key(stream, version), position.to_be_bytes()));
        self.ids.push((*id.as_bytes(), position.to_be_bytes()));
    }

    /// The entries of `events`, in order.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> IndexEntries {
        let mut entries = IndexEntries::default();
        for event in events {
            entries.push(
                &event.stream_id,
                event.version,
                &event.event_id,
                event.position,
            );
        }
        entries
    }

    /// Puts the entries (of events already in the log) as plain inserts,
    /// each tree in key order, under the [`META_INDEXING`] marker;
    /// [`move_heads_and_end`] removes the marker. Shared by the writer's
    /// groups, bulk appends and imports.
    pub fn put(mut self, trees: &crate::trees::Trees) -> Result<(), StoreError> {
        if self.streams.is_empty() {
            return Ok(());
        }
        let sled_err = |e| StoreError::sled("index appended events", e);
        trees
            .meta
            .insert(META_INDEXING, &self.first.to_be_bytes())
            .map_err(sled_err)?;
        self.streams.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in &self.streams {
            trees
                .streams
                .insert(&key[..], &value[..])
                .map_err(sled_err)?;
        }
        self.ids.sort_unstable_by_key(|a| a.0);
        for (key, value) in &self.ids {
            trees
                .event_ids
                .insert(&key[..], &value[..])
                .map_err(sled_err)?;
        }
        Ok(())
    }
}

/// The last step of a write whose records are in the log and whose index
/// entries are put ([`IndexEntries::put`]): the stream heads, then `meta`'s
/// log end, then the removal of the [`META_INDEXING`] marker, as plain sled
/// inserts in that order. sled keeps a prefix of its writes in a crash, so
/// if anything of this step is lost the marker is still there, and the
/// store's recovery repairs the heads (`crate::recover`). A sled
/// transaction here, which made the step atomic, cost appends of one event
/// at 64 writers about a third of their rate (BENCHMARKS.md, session 19).
pub(crate) fn move_heads_and_end<'a>(
    trees: &crate::trees::Trees,
    heads: impl IntoIterator<Item = (&'a str, Head)>,
    last: u64,
    operation: &'static str,
) -> Result<(), StoreError> {
    let sled_err = |e| StoreError::sled(operation, e);
    for (stream, head) in heads {
        trees
            .heads
            .insert(stream.as_bytes(), &head.encode()[..])
            .map_err(sled_err)?;
    }
    trees
        .meta
        .insert(META_LAST_POSITION, &last.to_be_bytes())
        .map_err(sled_err)?;
    trees.meta.remove(META_INDEXING).map_err(sled_err)?;
    Ok(())
}

/// Writes events decided under the write gate, which continue the log
/// (`envelopes` from position `entries.first`), as a bulk append and an
/// import do: the log in one write flagged as committed (the commit point),
/// then the index entries under their marker (see [`IndexEntries::put`]),
/// then the heads and `meta`'s log end ([`move_heads_and_end`]).
pub(crate) fn write_decided(
    trees: &crate::trees::Trees,
    envelopes: &[Vec<u8>],
    entries: IndexEntries,
    heads: &HashMap<&str, Option<Head>>,
    operation: &'static str,
) -> Result<(), StoreError> {
    let first = entries.first;
    let last = first + envelopes.len() as u64 - 1;
    trees
        .log
        .append(first, envelopes.iter().map(Vec::as_slice), true)?;
    entries.put(trees)?;
    let moved = heads
        .iter()
        .filter_map(|(stream, head)| head.map(|head| (*stream, head)));
    move_heads_and_end(trees, moved, last, operation)
}

/// The store's clock: unix milliseconds UTC (0 before 1970).
fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Checks a bulk append before anything is written: every append as
/// [`Store::append`] would, the total size, and ids unique across appends.
fn check(appends: &[BulkAppend]) -> Result<(), StoreError> {
    let total: usize = appends.iter().map(|a| a.events.len()).sum();
    if total > MAX_BULK_EVENTS {
        return Err(StoreError::Invalid(format!(
            "a bulk append holds at most {MAX_BULK_EVENTS} events, got {total}"
        )));
    }
    let mut seen = HashSet::with_capacity(total);
    for append in appends {
        validate::batch(&append.stream, &append.events)?;
        for event in &append.events {
            if !seen.insert(event.event_id) {
                return Err(StoreError::Invalid(format!(
                    "event id {} appears twice in one bulk append",
                    event.event_id
                )));
            }
        }
    }
    Ok(())
}

impl Store {
    /// Appends every stream's events of `appends`, in order, as one
    /// write, flushes once, and returns one result per append.
    ///
    /// All or nothing: if any append's expected version does not hold, or
    /// any event id is already stored, nothing is written. Blocking (it
    /// flushes); call it from a blocking context.
    pub fn append_bulk(
        &self,
        appends: &[BulkAppend],
        recorded_at: RecordedAt,
    ) -> Result<Vec<AppendResult>, StoreError> {
        check(appends)?;
        if appends.is_empty() {
            return Ok(Vec::new());
        }
        if self.upstream().is_some() {
            return Err(StoreError::Invalid(
                "this store is a copy of a PostgreSQL log: bulk appends go to PostgreSQL".into(),
            ));
        }
        let clock = now_millis();
        let trees = self.trees();
        let _gate = trees.write_gate();
        let last = checked_log_end(trees)?;
        // Decide everything first (no write yet): versions, ids, envelopes.
        let mut heads: HashMap<&str, Option<Head>> = HashMap::new();
        let mut position = last;
        let mut results = Vec::with_capacity(appends.len());
        let mut envelopes = Vec::new();
        let mut entries = IndexEntries::default();
        for append in appends {
            let stream = append.stream.as_str();
            let head = match heads.get(stream) {
                Some(head) => *head,
                None => plain_head(&trees.heads, stream)?,
            };
            let actual = head.map(|h| h.version);
            if !append.expected.matches(actual) {
                return Err(StoreError::Conflict {
                    stream: stream.to_owned(),
                    expected: append.expected,
                    actual,
                });
            }
            let first_position = position + 1;
            let mut prev_hash = head.map_or([0; 32], |h| h.hash);
            let mut version = actual.unwrap_or(0);
            for new in &append.events {
                if trees
                    .event_ids
                    .contains_key(new.event_id.as_bytes())
                    .map_err(|e| StoreError::sled("read event ids", e))?
                {
                    return Err(StoreError::IdempotencyMismatch {
                        event_id: new.event_id,
                    });
                }
                position += 1;
                version += 1;
                let at = match recorded_at {
                    RecordedAt::StoreClock => clock,
                    RecordedAt::OccurredAt => new.occurred_at,
                };
                let event = new.record(stream, position, version, at, prev_hash);
                prev_hash = event.hash;
                envelopes.push(codec::encode(&event)?);
                entries.push(stream, version, &new.event_id, position);
            }
            heads.insert(
                stream,
                Some(Head {
                    version,
                    hash: prev_hash,
                    position,
                }),
            );
            results.push(AppendResult {
                first_position,
                last_position: position,
                next_version: version + 1,
            });
        }
        write_decided(trees, &envelopes, entries, &heads, "bulk append")?;
        self.sync_to_disk()?;
        self.durable().advance(position);
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Direction;

    fn event(n: u128, at: i64) -> NewEvent {
        NewEvent {
            event_id: Uuid::from_u128(n),
            workspace_id: Uuid::from_u128(9),
            event_type: "Tested".into(),
            schema_version: 1,
            occurred_at: at,
            actor: "system:test".into(),
            on_behalf_of: None,
            correlation_id: None,
            causation_id: None,
            payload: vec![0x90],
        }
    }

    use uuid::Uuid;

    fn append(stream: &str, expected: ExpectedVersion, ids: &[u128]) -> BulkAppend {
        BulkAppend {
            stream: stream.into(),
            expected,
            events: ids.iter().map(|&n| event(n, 1000 + n as i64)).collect(),
        }
    }

    #[test]
    fn given_many_streams_when_bulk_appended_then_chains_verify_and_times_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let results = store
            .append_bulk(
                &[
                    append("a", ExpectedVersion::NoStream, &[1, 2]),
                    append("b", ExpectedVersion::NoStream, &[3]),
                    append("a", ExpectedVersion::Exact(2), &[4]),
                ],
                RecordedAt::OccurredAt,
            )
            .expect("bulk");
        assert_eq!(results[2].first_position, 4);
        assert_eq!(results[2].next_version, 4);
        assert_eq!(store.head_position(), 4);
        let a = store
            .read_stream("a", 1, Direction::Forward, 10)
            .expect("read");
        assert_eq!(a.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(a.iter().all(|e| e.recorded_at == e.occurred_at));
        assert!(store.verify().expect("verify").is_ok());
    }

    /// A store holding `a` v1..=2 (positions 1..=2), left as a bulk append
    /// of positions 3..=4 leaves it when the process stops before its commit
    /// point: its marker and index entries written, and its records in the
    /// log (flagged as committed) or not (lost in a power cut).
    fn interrupted_bulk(dir: &std::path::Path, records_in_log: bool) {
        let store = Store::open(dir).expect("open");
        store
            .append_bulk(
                &[append("a", ExpectedVersion::NoStream, &[1, 2])],
                RecordedAt::OccurredAt,
            )
            .expect("bulk");
        // The same history one bulk append further, to copy its events from
        let scratch = tempfile::tempdir().expect("tempdir");
        let second = Store::open(scratch.path()).expect("scratch store");
        second
            .append_bulk(
                &[append("a", ExpectedVersion::NoStream, &[1, 2, 3, 4])],
                RecordedAt::OccurredAt,
            )
            .expect("scratch bulk");
        let events = second.read_all_raw(3, 2, None).expect("read");
        let trees = store.trees();
        if records_in_log {
            let envelopes: Vec<Vec<u8>> = events
                .iter()
                .map(|e| codec::encode(e).expect("encode"))
                .collect();
            trees
                .log
                .append(3, envelopes.iter().map(Vec::as_slice), true)
                .expect("log");
        }
        let entries = IndexEntries::of(&events);
        entries.put(trees).expect("index entries");
        store.trees().meta.flush().expect("flush");
        store.sync_to_disk().expect("sync");
    }

    /// Appends `ids` to `a` at `version`, expecting them at `first`, and verifies.
    fn goes_on(store: &Store, version: u64, ids: &[u128], first: u64) {
        let results = store
            .append_bulk(
                &[append("a", ExpectedVersion::Exact(version), ids)],
                RecordedAt::OccurredAt,
            )
            .expect("append after recovery");
        assert_eq!(results[0].first_position, first);
        assert!(store.verify().expect("verify").is_ok());
    }

    #[test]
    fn given_a_bulk_interrupted_before_its_records_reached_the_log_when_reopened_then_it_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        interrupted_bulk(dir.path(), false);
        // When the store is opened again
        let store = Store::open(dir.path()).expect("reopen");
        // Then nothing of the interrupted events is left in the log or its indexes
        assert_eq!(store.head_position(), 2);
        assert_eq!(store.trees().log.last_position(), 2);
        assert_eq!(store.trees().streams.len(), 2);
        assert_eq!(store.trees().event_ids.len(), 2);
        assert!(store
            .trees()
            .meta
            .get(META_INDEXING)
            .expect("meta")
            .is_none());
        assert_eq!(
            store.event_position(Uuid::from_u128(3)).expect("lookup"),
            None
        );
        assert!(store.verify().expect("verify").is_ok());
        // And the same events can be appended again, at the same positions
        goes_on(&store, 2, &[3, 4], 3);
    }

    #[test]
    fn given_a_bulk_interrupted_after_its_records_reached_the_log_when_reopened_then_it_is_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        interrupted_bulk(dir.path(), true);
        // When the store is opened again
        let store = Store::open(dir.path()).expect("reopen");
        // Then the events are stored whole: indexed, at the head, verified
        assert_eq!(store.head_position(), 4);
        assert_eq!(store.trees().event_ids.len(), 4);
        assert_eq!(
            store.event_position(Uuid::from_u128(4)).expect("lookup"),
            Some(4)
        );
        let a = store
            .read_stream("a", 1, Direction::Forward, 10)
            .expect("read");
        assert_eq!(
            a.iter().map(|e| e.version).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(store
            .trees()
            .meta
            .get(META_INDEXING)
            .expect("meta")
            .is_none());
        assert!(store.verify().expect("verify").is_ok());
        // And the stream goes on from there
        goes_on(&store, 4, &[5], 5);
    }

    #[test]
    fn given_a_wrong_expectation_when_bulk_appended_then_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let err = store
            .append_bulk(
                &[
                    append("a", ExpectedVersion::NoStream, &[1]),
                    append("a", ExpectedVersion::NoStream, &[2]),
                ],
                RecordedAt::StoreClock,
            )
            .expect_err("conflict");
        assert_eq!(err.code(), "CONFLICT");
        assert_eq!(store.head_position(), 0);
        assert_eq!(store.read_all(1, 10, None).expect("read").len(), 0);
    }

    #[test]
    fn given_a_stored_id_when_bulk_appended_again_then_it_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store
            .append_bulk(
                &[append("a", ExpectedVersion::Any, &[1])],
                RecordedAt::OccurredAt,
            )
            .expect("first");
        let err = store
            .append_bulk(
                &[append("b", ExpectedVersion::Any, &[1])],
                RecordedAt::OccurredAt,
            )
            .expect_err("reused id");
        assert_eq!(err.code(), "IDEMPOTENCY_MISMATCH");
        let err = store
            .append_bulk(
                &[
                    append("c", ExpectedVersion::Any, &[5]),
                    append("d", ExpectedVersion::Any, &[5]),
                ],
                RecordedAt::OccurredAt,
            )
            .expect_err("twice in one bulk");
        assert_eq!(err.code(), "VALIDATION");
        assert_eq!(store.head_position(), 1);
    }

    #[test]
    fn given_the_same_history_when_bulk_appended_twice_then_hashes_are_equal() {
        let hashes = || {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(dir.path()).expect("open");
            store
                .append_bulk(
                    &[append("a", ExpectedVersion::Any, &[1, 2, 3])],
                    RecordedAt::OccurredAt,
                )
                .expect("bulk");
            store
                .read_all(1, 10, None)
                .expect("read")
                .into_iter()
                .map(|e| e.hash)
                .collect::<Vec<_>>()
        };
        assert_eq!(hashes(), hashes());
    }
}
