//! Owns applying a group of appends as ONE PostgreSQL transaction.
//!
//! Order of work inside the transaction (READ COMMITTED):
//! 1. `SELECT ... FROM sijil_log_head FOR UPDATE` takes the single log-head
//!    row lock. Every group holds it until commit, so writers are
//!    serialised database-wide: positions are assigned and committed in
//!    order, and no reader can ever see position `n + 1` before `n` (the
//!    sequence-gap problem cannot arise). PostgreSQL marks a transaction
//!    visible before it releases its locks, so the next writer, and any
//!    snapshot taken after it, sees everything committed before.
//! 2. For each append of the group, in order (each sees the ones before):
//!    the idempotency check by event id (same content and place: the
//!    original result; anything else: [`StoreError::IdempotencyMismatch`]),
//!    the expected-version check against the stream's last stored event
//!    (the `(stream_id, version)` unique constraint backs it up), and its
//!    rows with the hash chain computed here ([`compute_hash`]). A refused
//!    append writes nothing and does not affect the others. In the common
//!    case (no event id of the group stored yet) this is one query for all
//!    stream heads and one `INSERT ... SELECT FROM UNNEST(...)` for the whole
//!    group; a group holding a retry is decided append by append. Should a
//!    unique constraint fire anyway (only possible if something else writes
//!    the table), the group fails as an [`StoreError::Io`] and nothing of it
//!    is written.
//! 3. The head update and `pg_notify` (delivered only on commit), then the
//!    commit, flushed (`synchronous_commit = on`) before anyone is answered.
//!
//! The cost of serialising: one transaction at a time per database, each
//! waiting for its own commit flush. A node therefore groups the appends
//! that queue up while a commit is in flight ([`super::writer`]), so one
//! flush acknowledges many appends; several nodes on one database still take
//! turns on the lock.

use std::collections::HashMap;

use deadpool_postgres::{Pool, Transaction};
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{AppendResult, ExpectedVersion, NewEvent, RecordedEvent};

use super::rows::{self, get, non_negative, to_bigint};
use super::{pg_err, pool_err, NOTIFY_CHANNEL};

/// One append of a group.
#[derive(Debug)]
pub struct Append {
    /// The stream appended to.
    pub stream: String,
    /// What the caller expects the stream's version to be.
    pub expected: ExpectedVersion,
    /// The validated events.
    pub events: Vec<NewEvent>,
}

/// Applies `group` in one transaction and commits; see the module docs. The
/// outer error (connection, storage, corruption) fails the whole group and
/// leaves its outcome unknown; the inner results are per append.
pub async fn append_group(
    pool: &Pool,
    group: &[Append],
    recorded_at: i64,
) -> Result<Vec<Result<AppendResult, StoreError>>, StoreError> {
    let mut client = pool.get().await.map_err(pool_err)?;
    let tx = client.transaction().await.map_err(pg_err("begin append"))?;
    let mut last_position = lock_head(&tx).await?;
    let start = last_position;
    let mut outcomes = Vec::with_capacity(group.len());
    let ids: Vec<Uuid> = group
        .iter()
        .flat_map(|a| a.events.iter().map(|e| e.event_id))
        .collect();
    let any_stored = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM sijil_events WHERE event_id = ANY($1))")
        .await
        .map_err(pg_err("prepare idempotency check"))?;
    let any_stored: bool = get(
        &tx.query_one(&any_stored, &[&ids])
            .await
            .map_err(pg_err("idempotency check"))?,
        0,
        0,
    )?;
    if any_stored {
        // A retry is in the group: decide each append on its own, in order.
        for append in group {
            let outcome = append_one(&tx, append, last_position, recorded_at).await?;
            if let Written::New(result) = outcome {
                last_position = result.last_position;
            }
            outcomes.push(outcome.into_result());
        }
    } else {
        // The common case, no id stored yet: read every stream head of the
        // group at once and insert the whole group with one statement.
        let streams: Vec<&str> = group.iter().map(|a| a.stream.as_str()).collect();
        let mut heads = stream_heads(&tx, &streams).await?;
        let mut columns = Columns::with_capacity(ids.len());
        for append in group {
            let head = heads
                .get(append.stream.as_str())
                .copied()
                .unwrap_or((None, [0; 32]));
            match build(append, head, last_position, recorded_at, &mut columns)? {
                Ok((result, new_head)) => {
                    last_position = result.last_position;
                    heads.insert(append.stream.clone(), new_head);
                    outcomes.push(Ok(result));
                }
                Err(refused) => outcomes.push(Err(refused)),
            }
        }
        if !columns.position.is_empty() {
            insert_rows(&tx, &columns)
                .await
                .map_err(pg_err("insert events"))?;
        }
    }
    if last_position == start {
        // Nothing written (all refused or duplicates): the rollback on drop
        // only releases the lock.
        return Ok(outcomes);
    }
    advance_head(&tx, last_position).await?;
    // An error here leaves the outcome unknown (the commit may have reached
    // the server); a retry with the same event ids is safe.
    tx.commit().await.map_err(pg_err("commit append"))?;
    Ok(outcomes)
}

/// Takes the log-head row lock (held until the transaction ends) and
/// returns the head position.
pub(super) async fn lock_head(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let lock = tx
        .prepare_cached("SELECT position FROM sijil_log_head WHERE id FOR UPDATE")
        .await
        .map_err(pg_err("prepare head lock"))?;
    let head_row = tx
        .query_one(&lock, &[])
        .await
        .map_err(pg_err("lock log head"))?;
    non_negative(get(&head_row, 0, 0)?, 0, "log head")
}

/// What one append of a group did.
enum Written {
    /// New events were inserted.
    New(AppendResult),
    /// Every event was already stored identically: the original result.
    Duplicate(AppendResult),
    /// Refused (conflict, idempotency mismatch); nothing inserted.
    Refused(StoreError),
}

impl Written {
    fn into_result(self) -> Result<AppendResult, StoreError> {
        match self {
            Written::New(r) | Written::Duplicate(r) => Ok(r),
            Written::Refused(e) => Err(e),
        }
    }
}

/// One append inside the group transaction, after position `last_position`.
async fn append_one(
    tx: &Transaction<'_>,
    append: &Append,
    last_position: u64,
    recorded_at: i64,
) -> Result<Written, StoreError> {
    let Append { stream, events, .. } = append;
    let stream = stream.as_str();
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let by_id = tx
        .prepare_cached(&format!(
            "SELECT {} FROM sijil_events WHERE event_id = ANY($1) ORDER BY position",
            rows::COLUMNS
        ))
        .await
        .map_err(pg_err("prepare idempotency check"))?;
    let stored = tx
        .query(&by_id, &[&ids])
        .await
        .map_err(pg_err("idempotency check"))?;
    if !stored.is_empty() {
        let stored = stored
            .iter()
            .map(rows::decode)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(match duplicate_result(stream, events, &stored) {
            Ok(original) => Written::Duplicate(original),
            Err(refused) => Written::Refused(refused),
        });
    }

    let heads = stream_heads(tx, &[stream]).await?;
    let head = heads.get(stream).copied().unwrap_or((None, [0; 32]));
    let mut columns = Columns::with_capacity(events.len());
    match build(append, head, last_position, recorded_at, &mut columns)? {
        Ok((result, _)) => {
            insert_rows(tx, &columns)
                .await
                .map_err(pg_err("insert events"))?;
            Ok(Written::New(result))
        }
        Err(refused) => Ok(Written::Refused(refused)),
    }
}

/// A stream's last version (`None`: no events) and hash.
pub(super) type StreamHead = (Option<u64>, [u8; 32]);

/// The current heads of `streams` (absent: no events yet), in one query.
pub(super) async fn stream_heads(
    tx: &Transaction<'_>,
    streams: &[&str],
) -> Result<HashMap<String, StreamHead>, StoreError> {
    let statement = tx
        .prepare_cached(
            "SELECT DISTINCT ON (stream_id) stream_id, version, hash FROM sijil_events \
             WHERE stream_id = ANY($1) ORDER BY stream_id, version DESC",
        )
        .await
        .map_err(pg_err("prepare stream heads"))?;
    let rows = tx
        .query(&statement, &[&streams])
        .await
        .map_err(pg_err("read stream heads"))?;
    let mut heads = HashMap::with_capacity(rows.len());
    for row in &rows {
        let stream: String = get(row, 0, 0)?;
        let version = non_negative(get(row, 1, 0)?, 0, "stream version")?;
        let hash: Vec<u8> = get(row, 2, 0)?;
        let hash: [u8; 32] = hash.try_into().map_err(|_| {
            StoreError::corrupt(0, format!("head hash of `{stream}` is not 32 bytes"))
        })?;
        heads.insert(stream, (Some(version), hash));
    }
    Ok(heads)
}

/// Checks `append` against its stream's `head` and, if it may be written,
/// adds its hashed events after `last_position` to `columns`. The inner
/// error is a refusal (conflict); the outer one a value out of range.
#[allow(clippy::type_complexity)]
fn build(
    append: &Append,
    head: StreamHead,
    last_position: u64,
    recorded_at: i64,
    columns: &mut Columns,
) -> Result<Result<(AppendResult, StreamHead), StoreError>, StoreError> {
    let (actual, mut prev_hash) = head;
    if !append.expected.matches(actual) {
        return Ok(Err(StoreError::Conflict {
            stream: append.stream.clone(),
            expected: append.expected,
            actual,
        }));
    }
    let mut version = actual.unwrap_or(0);
    let mut position = last_position;
    for new in &append.events {
        position += 1;
        version += 1;
        let event = new.record(&append.stream, position, version, recorded_at, prev_hash);
        prev_hash = event.hash;
        columns.push(event)?;
    }
    Ok(Ok((
        AppendResult {
            first_position: last_position + 1,
            last_position: position,
            next_version: version + 1,
        },
        (Some(version), prev_hash),
    )))
}

/// Sets the log head to `last_position` and notifies [`NOTIFY_CHANNEL`]
/// (delivered only on commit).
pub(super) async fn advance_head(
    tx: &Transaction<'_>,
    last_position: u64,
) -> Result<(), StoreError> {
    let advance = tx
        .prepare_cached(&format!(
            "WITH h AS (UPDATE sijil_log_head SET position = $1 WHERE id RETURNING position) \
             SELECT pg_notify('{NOTIFY_CHANNEL}', position::text) FROM h"
        ))
        .await
        .map_err(pg_err("prepare head update"))?;
    let new_head = to_bigint(last_position, "position")?;
    tx.query_one(&advance, &[&new_head])
        .await
        .map_err(pg_err("advance log head"))?;
    Ok(())
}

/// Inserts every row of `columns`, as given (positions, versions, times,
/// hashes), with one `INSERT ... SELECT FROM UNNEST`.
pub(super) async fn insert_rows(
    tx: &Transaction<'_>,
    columns: &Columns,
) -> Result<(), tokio_postgres::Error> {
    let insert = tx
        .prepare_cached(
            "INSERT INTO sijil_events (position, stream_id, version, event_id, workspace_id, \
               event_type, schema_version, occurred_at, recorded_at, actor, on_behalf_of, \
               correlation_id, causation_id, payload, prev_hash, hash) \
             SELECT u.position, u.stream_id, u.version, u.event_id, u.workspace_id, \
               u.event_type, u.schema_version, u.occurred_at, u.recorded_at, u.actor, \
               u.on_behalf_of, u.correlation_id, u.causation_id, u.payload, u.prev_hash, u.hash \
             FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::uuid[], \
               $6::text[], $7::integer[], $8::bigint[], $9::bigint[], $10::text[], $11::text[], \
               $12::uuid[], $13::uuid[], $14::bytea[], $15::bytea[], $16::bytea[]) \
             AS u(position, stream_id, version, event_id, workspace_id, event_type, \
               schema_version, occurred_at, recorded_at, actor, on_behalf_of, correlation_id, \
               causation_id, payload, prev_hash, hash)",
        )
        .await?;
    let c = columns;
    tx.execute(
        &insert,
        &[
            &c.position,
            &c.stream_id,
            &c.version,
            &c.event_id,
            &c.workspace_id,
            &c.event_type,
            &c.schema_version,
            &c.occurred_at,
            &c.recorded_at,
            &c.actor,
            &c.on_behalf_of,
            &c.correlation_id,
            &c.causation_id,
            &c.payload,
            &c.prev_hash,
            &c.hash,
        ],
    )
    .await?;
    Ok(())
}

/// The batch's columns as arrays, for the `UNNEST` insert.
pub(super) struct Columns {
    position: Vec<i64>,
    stream_id: Vec<String>,
    version: Vec<i64>,
    event_id: Vec<Uuid>,
    workspace_id: Vec<Uuid>,
    event_type: Vec<String>,
    schema_version: Vec<i32>,
    occurred_at: Vec<i64>,
    recorded_at: Vec<i64>,
    actor: Vec<String>,
    on_behalf_of: Vec<Option<String>>,
    correlation_id: Vec<Option<Uuid>>,
    causation_id: Vec<Option<Uuid>>,
    payload: Vec<Vec<u8>>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl Columns {
    pub(super) fn with_capacity(n: usize) -> Columns {
        Columns {
            position: Vec::with_capacity(n),
            stream_id: Vec::with_capacity(n),
            version: Vec::with_capacity(n),
            event_id: Vec::with_capacity(n),
            workspace_id: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            schema_version: Vec::with_capacity(n),
            occurred_at: Vec::with_capacity(n),
            recorded_at: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            on_behalf_of: Vec::with_capacity(n),
            correlation_id: Vec::with_capacity(n),
            causation_id: Vec::with_capacity(n),
            payload: Vec::with_capacity(n),
            prev_hash: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
        }
    }

    /// Adds `event` as it is, its `recorded_at` included.
    pub(super) fn push(&mut self, event: RecordedEvent) -> Result<(), StoreError> {
        self.position.push(to_bigint(event.position, "position")?);
        self.stream_id.push(event.stream_id);
        self.version.push(to_bigint(event.version, "version")?);
        self.event_id.push(event.event_id);
        self.workspace_id.push(event.workspace_id);
        self.event_type.push(event.event_type);
        self.schema_version.push(i32::from(event.schema_version));
        self.occurred_at.push(event.occurred_at);
        self.recorded_at.push(event.recorded_at);
        self.actor.push(event.actor);
        self.on_behalf_of.push(event.on_behalf_of);
        self.correlation_id.push(event.correlation_id);
        self.causation_id.push(event.causation_id);
        self.payload.push(event.payload);
        self.prev_hash.push(event.prev_hash.to_vec());
        self.hash.push(event.hash.to_vec());
        Ok(())
    }
}

/// Decides a batch some of whose ids are already stored (`stored`, in
/// position order): the original result if every event is stored
/// identically and contiguously in `stream`, a mismatch otherwise.
fn duplicate_result(
    stream: &str,
    events: &[NewEvent],
    stored: &[RecordedEvent],
) -> Result<AppendResult, StoreError> {
    let mismatch = |event_id: Uuid| StoreError::IdempotencyMismatch { event_id };
    if stored.len() != events.len() {
        // Report the first event of the batch that is stored: that id is
        // being reused.
        let first = events
            .iter()
            .find(|e| stored.iter().any(|s| s.event_id == e.event_id))
            .map(|e| e.event_id)
            .or_else(|| stored.first().map(|s| s.event_id));
        return match first {
            Some(id) => Err(mismatch(id)),
            None => Err(StoreError::corrupt(0, "idempotency check found no rows")),
        };
    }
    let (Some(first), Some(last)) = (stored.first(), stored.last()) else {
        return Err(StoreError::corrupt(0, "idempotency check found no rows"));
    };
    for (index, (new, event)) in events.iter().zip(stored).enumerate() {
        let in_place = event.version == first.version + index as u64
            && event.position == first.position + index as u64;
        if !in_place || event.stream_id != stream || !new.is_stored_as(event) {
            return Err(mismatch(new.event_id));
        }
    }
    Ok(AppendResult {
        first_position: first.position,
        last_position: last.position,
        next_version: last.version + 1,
    })
}
