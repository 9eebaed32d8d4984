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
//! imports wait), every envelope is built first; then the log entries, the
//! `streams` entries and the `event_ids` entries are inserted in key order as
//! plain sled inserts (a sled transaction buffers writes in a hash map and
//! applies them in hash order, which made loading 1.6x slower), and finally
//! one small transaction moves the stream heads and `meta`'s log end: that is
//! the commit point. Before the first insert a marker in `meta` naming the
//! first position is made durable; until the commit nothing of it is visible
//! (reads stop at the durable position), and after a crash [`recover`] finds
//! the marker when the store is opened and removes everything written from
//! that position on.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use crate::codec;
use crate::error::StoreError;
use crate::event::{AppendResult, ExpectedVersion, NewEvent, RecordedEvent};
use crate::layout::{
    decode_last_position, decode_u64, position_key, stream_key, Head, META_BULK_FROM,
    META_LAST_POSITION,
};
use crate::store::Store;
use crate::validate;

/// Most events one bulk append may hold (bounded so one transaction stays
/// a reasonable amount of memory).
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

pub(crate) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

pub(crate) fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

pub(crate) fn finish_tx<T>(
    result: Result<T, TransactionError<StoreError>>,
    operation: &'static str,
) -> Result<T, StoreError> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::sled(operation, e),
    })
}

/// The log's last position as `meta` records it, inside a transaction.
pub(crate) fn tx_last_position(meta: &TransactionalTree) -> TxResult<u64> {
    decode_last_position(meta.get(META_LAST_POSITION)?.as_deref()).map_err(abort)
}

/// A stream's head inside a transaction, `None` if the stream has no events.
pub(crate) fn tx_head(heads: &TransactionalTree, stream: &str) -> TxResult<Option<Head>> {
    match heads.get(stream.as_bytes())? {
        Some(bytes) => Ok(Some(Head::decode(stream, &bytes).map_err(abort)?)),
        None => Ok(None),
    }
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
/// the next position must be free (else the store is corrupt).
pub(crate) fn checked_log_end(trees: &crate::trees::Trees) -> Result<u64, StoreError> {
    let last = plain_last_position(&trees.meta)?;
    let next = last + 1;
    if trees
        .log
        .contains_key(position_key(next))
        .map_err(|e| StoreError::sled("read log", e))?
    {
        return Err(StoreError::corrupt(
            next,
            format!("meta says the log ends at {last}, but position {next} is taken"),
        ));
    }
    Ok(last)
}

/// Removes what an interrupted bulk append wrote (envelopes from the
/// position its `meta` marker names, and every `streams` / `event_ids` entry
/// naming such a position), so the store reopens exactly at its last
/// committed append; then drops the marker. Returns how many envelopes were
/// removed. Runs when the store is opened; the index scans happen only after
/// such an interruption.
pub(crate) fn recover(trees: &crate::trees::Trees) -> Result<u64, StoreError> {
    let sled_err = |e| StoreError::sled("remove an interrupted bulk append", e);
    let Some(bytes) = trees.meta.get(META_BULK_FROM).map_err(sled_err)? else {
        return Ok(0);
    };
    let from = decode_u64(&bytes)
        .ok_or_else(|| StoreError::corrupt(0, "meta bulk_from is not 8 bytes"))?;
    let committed = plain_last_position(&trees.meta)?;
    if committed >= from {
        // The commit point was reached; only the marker is left over.
        trees.meta.remove(META_BULK_FROM).map_err(sled_err)?;
        return Ok(0);
    }
    let mut removed = 0u64;
    for item in trees.log.range(position_key(from)..) {
        let (key, _) = item.map_err(sled_err)?;
        trees.log.remove(key).map_err(sled_err)?;
        removed += 1;
    }
    for index in [&trees.streams, &trees.event_ids] {
        for item in index.iter() {
            let (key, value) = item.map_err(sled_err)?;
            if decode_u64(&value).is_some_and(|position| position >= from) {
                index.remove(key).map_err(sled_err)?;
            }
        }
    }
    trees.meta.remove(META_BULK_FROM).map_err(sled_err)?;
    Ok(removed)
}

/// Writes one finished envelope and its `streams` and `event_ids` entries.
/// The caller updates `heads` and `meta`.
pub(crate) fn tx_put_event(
    log: &TransactionalTree,
    streams: &TransactionalTree,
    event_ids: &TransactionalTree,
    event: &RecordedEvent,
) -> TxResult<()> {
    let envelope = codec::encode(event).map_err(abort)?;
    let position_bytes = event.position.to_be_bytes();
    log.insert(&position_key(event.position), envelope)?;
    streams.insert(stream_key(&event.stream_id, event.version), &position_bytes)?;
    event_ids.insert(event.event_id.as_bytes(), &position_bytes)?;
    Ok(())
}

/// The store's clock: unix milliseconds UTC (0 before 1970).
fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Checks a bulk append before the transaction: every append as
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
    /// transaction, flushes once, and returns one result per append.
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
        let mut stream_entries = Vec::new();
        let mut id_entries = Vec::new();
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
                envelopes.push((position_key(position), codec::encode(&event)?));
                stream_entries.push((stream_key(stream, version), position.to_be_bytes()));
                id_entries.push((*new.event_id.as_bytes(), position.to_be_bytes()));
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
        // Then write in key order: until `meta` moves, none of it is part of
        // the log (reads stop at the durable position). The durable marker
        // says where an interrupted write starts; see `recover`.
        let sled_err = |e| StoreError::sled("bulk append", e);
        trees
            .meta
            .insert(META_BULK_FROM, &(last + 1).to_be_bytes())
            .map_err(sled_err)?;
        self.sync_to_disk()?;
        for (key, envelope) in envelopes {
            trees.log.insert(key, envelope).map_err(sled_err)?;
        }
        stream_entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in &stream_entries {
            trees
                .streams
                .insert(&key[..], &value[..])
                .map_err(sled_err)?;
        }
        id_entries.sort_unstable_by_key(|a| a.0);
        for (key, value) in &id_entries {
            trees
                .event_ids
                .insert(&key[..], &value[..])
                .map_err(sled_err)?;
        }
        // The commit point: the heads and the log's end move together.
        let outcome = (&trees.heads, &trees.meta).transaction(|(tx_heads, meta)| {
            for (stream, head) in &heads {
                if let Some(head) = head {
                    tx_heads.insert(stream.as_bytes(), &head.encode()[..])?;
                }
            }
            meta.insert(META_LAST_POSITION, &position.to_be_bytes())?;
            meta.remove(META_BULK_FROM)?;
            Ok(())
        });
        finish_tx(outcome, "bulk append commit")?;
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

    #[test]
    fn given_a_bulk_interrupted_before_its_commit_when_reopened_then_it_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (committed, uncommitted) = {
            let store = Store::open(dir.path()).expect("open");
            store
                .append_bulk(
                    &[append("a", ExpectedVersion::NoStream, &[1, 2])],
                    RecordedAt::OccurredAt,
                )
                .expect("bulk");
            // Given what a bulk append writes before its commit point (the
            // marker, envelopes and index entries of positions 3..=4), then a crash
            let second =
                Store::open(tempfile::tempdir().expect("tempdir").path()).expect("scratch store");
            second
                .append_bulk(
                    &[append("a", ExpectedVersion::NoStream, &[1, 2, 3, 4])],
                    RecordedAt::OccurredAt,
                )
                .expect("scratch bulk");
            let trees = store.trees();
            trees
                .meta
                .insert(META_BULK_FROM, &3u64.to_be_bytes())
                .expect("marker");
            for position in 3..=4u64 {
                let event = &second.read_all_raw(position, 1, None).expect("read")[0];
                tx_free_put(trees, event);
            }
            store.sync_to_disk().expect("sync");
            (2u64, 2u64)
        };
        // When the store is opened again
        let store = Store::open(dir.path()).expect("reopen");
        // Then the uncommitted events are gone from the log and its indexes
        assert_eq!(store.head_position(), committed);
        assert_eq!(store.trees().log.len(), committed as usize);
        assert_eq!(store.trees().streams.len(), committed as usize);
        assert_eq!(store.trees().event_ids.len(), committed as usize);
        assert!(store
            .trees()
            .meta
            .get(META_BULK_FROM)
            .expect("meta")
            .is_none());
        assert_eq!(
            store.event_position(Uuid::from_u128(3)).expect("lookup"),
            None,
            "{uncommitted} uncommitted events must not be found"
        );
        assert!(store.verify().expect("verify").is_ok());
        // And the same events can be appended again, at the same positions
        let results = store
            .append_bulk(
                &[append("a", ExpectedVersion::Exact(2), &[3, 4])],
                RecordedAt::OccurredAt,
            )
            .expect("append after recovery");
        assert_eq!(results[0].first_position, 3);
        assert!(store.verify().expect("verify").is_ok());
    }

    /// Writes an envelope and its index entries the way a bulk append does before its commit.
    fn tx_free_put(trees: &crate::trees::Trees, event: &RecordedEvent) {
        let position = event.position.to_be_bytes();
        trees
            .log
            .insert(
                position_key(event.position),
                codec::encode(event).expect("encode"),
            )
            .expect("log");
        trees
            .streams
            .insert(stream_key(&event.stream_id, event.version), &position)
            .expect("streams");
        trees
            .event_ids
            .insert(event.event_id.as_bytes(), &position)
            .expect("event ids");
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
