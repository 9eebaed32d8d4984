//! Owns applying one append to the trees as a single sled transaction:
//! the idempotency check, the expected-version check, building hashed
//! envelopes, and updating `log`, `streams`, `heads`, `event_ids` and `meta`
//! together (all or nothing).

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use crate::codec;
use crate::error::StoreError;
use crate::event::{AppendResult, ExpectedVersion, NewEvent};
use crate::layout::{
    decode_last_position, decode_u64, position_key, stream_key, Head, META_LAST_POSITION,
};
use crate::trees::Trees;

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

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

/// Applies a group of validated appends in ONE sled transaction (all the
/// written ones or none of them survive a crash), in order: each append sees
/// the ones before it, and a refused append (conflict, idempotency mismatch)
/// writes nothing without affecting the others. The outer error is a storage
/// failure or corruption, which fails the whole group.
pub fn apply_group(
    trees: &Trees,
    appends: &[Append<'_>],
    recorded_at: i64,
) -> Result<Vec<Outcome>, StoreError> {
    let result = (
        &trees.log,
        &trees.streams,
        &trees.heads,
        &trees.event_ids,
        &trees.meta,
    )
        .transaction(|(log, streams, heads, event_ids, meta)| {
            let tx = Tx {
                log,
                streams,
                heads,
                event_ids,
                meta,
            };
            // The log's end is read (and checked) once per group; each written
            // append moves it on, and `meta` records the group's end once.
            let start = tx.last_position()?;
            let mut last_position = start;
            let mut outcomes = Vec::with_capacity(appends.len());
            for append in appends {
                outcomes.push(tx.append(append, recorded_at, &mut last_position)?);
            }
            if last_position != start {
                tx.meta
                    .insert(META_LAST_POSITION, &last_position.to_be_bytes())?;
            }
            Ok(outcomes)
        });
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::sled("append", e),
    })
}

/// The trees of the store inside one transaction.
struct Tx<'t> {
    log: &'t TransactionalTree,
    streams: &'t TransactionalTree,
    heads: &'t TransactionalTree,
    event_ids: &'t TransactionalTree,
    meta: &'t TransactionalTree,
}

impl Tx<'_> {
    /// The log's last position as `meta` records it, checked against the
    /// log: the next position must be free.
    fn last_position(&self) -> TxResult<u64> {
        let last_position =
            decode_last_position(self.meta.get(META_LAST_POSITION)?.as_deref()).map_err(abort)?;
        let next = last_position + 1;
        if self.log.get(position_key(next))?.is_some() {
            return Err(abort(StoreError::corrupt(
                next,
                format!("meta says the log ends at {last_position}, but position {next} is taken"),
            )));
        }
        Ok(last_position)
    }

    /// One append inside the group transaction, after the log's end
    /// `last_position` (which it advances if it writes). `Ok(Err(_))` is a
    /// refusal that wrote nothing; `Err(_)` aborts the whole transaction.
    fn append(
        &self,
        append: &Append<'_>,
        recorded_at: i64,
        last_position: &mut u64,
    ) -> TxResult<Outcome> {
        let Append {
            stream,
            expected,
            events,
        } = *append;
        match find_duplicate(self.log, self.event_ids, stream, events)? {
            Ok(Some(original)) => return Ok(Ok(Applied::Duplicate(original))),
            Ok(None) => {}
            Err(refused) => return Ok(Err(refused)),
        }
        let head = match self.heads.get(stream.as_bytes())? {
            Some(bytes) => Some(Head::decode(stream, &bytes).map_err(abort)?),
            None => None,
        };
        let actual = head.map(|h| h.version);
        if !expected.matches(actual) {
            return Ok(Err(StoreError::Conflict {
                stream: stream.to_owned(),
                expected,
                actual,
            }));
        }
        let first_position = *last_position + 1;
        let mut prev_hash = head.map(|h| h.hash).unwrap_or([0; 32]);
        let mut version = actual.unwrap_or(0);
        let mut position = *last_position;
        for new in events {
            position += 1;
            version += 1;
            let event = new.record(stream, position, version, recorded_at, prev_hash);
            prev_hash = event.hash;
            let envelope = codec::encode(&event).map_err(abort)?;
            let position_bytes = position.to_be_bytes();
            self.log.insert(&position_key(position), envelope)?;
            self.streams
                .insert(stream_key(stream, version), &position_bytes)?;
            self.event_ids
                .insert(new.event_id.as_bytes(), &position_bytes)?;
        }
        let new_head = Head {
            version,
            hash: prev_hash,
            position,
        };
        self.heads
            .insert(stream.as_bytes(), &new_head.encode()[..])?;
        *last_position = position;
        Ok(Ok(Applied::Written(AppendResult {
            first_position,
            last_position: position,
            next_version: version + 1,
        })))
    }
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

/// Returns the original result if every event of the batch is already
/// stored, identically and contiguously in `stream`; `None` if none is
/// stored; a refusal ([`StoreError::IdempotencyMismatch`]) otherwise.
fn find_duplicate(
    log: &TransactionalTree,
    event_ids: &TransactionalTree,
    stream: &str,
    events: &[NewEvent],
) -> TxResult<Result<Option<AppendResult>, StoreError>> {
    let mut found = Vec::new();
    for (index, new) in events.iter().enumerate() {
        if let Some(bytes) = event_ids.get(new.event_id.as_bytes())? {
            let position = decode_u64(&bytes).ok_or_else(|| {
                abort(StoreError::corrupt(
                    0,
                    format!("event_ids entry of {} is not 8 bytes", new.event_id),
                ))
            })?;
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
        // Some events are stored and some are not: report the first one that
        // is stored, since that is the id being reused.
        return Ok(Err(mismatch(first_index)));
    }
    let mut stored = Vec::with_capacity(found.len());
    for &(index, position) in &found {
        let bytes = log.get(position_key(position))?.ok_or_else(|| {
            abort(StoreError::corrupt(
                position,
                format!(
                    "event_ids points {} at a missing log entry",
                    events[index].event_id
                ),
            ))
        })?;
        stored.push(codec::decode(position, &bytes).map_err(abort)?);
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
