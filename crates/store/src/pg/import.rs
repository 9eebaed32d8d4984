//! Owns importing recorded envelopes into PostgreSQL as they are (positions,
//! versions, `recorded_at`, hashes): the PostgreSQL counterpart of
//! [`Store::import_events`](crate::Store::import_events), with the same
//! checks ([`crate::import`]) and the same errors.
//!
//! One call is one transaction (READ COMMITTED):
//! 1. Every envelope's fields and hash are checked before anything is
//!    locked.
//! 2. The log-head row is taken `FOR UPDATE`, as every append does
//!    ([`super::append`]), so an import is serialised with appends from any
//!    node and no reader ever sees a gap.
//! 3. Envelopes at positions the log already holds must be the stored rows
//!    (identical: skipped; otherwise [`ImportError::DifferentLog`]); the
//!    others must continue the log at its head, continue their stream's
//!    chain (every stream head of the call is read with one query) and use
//!    event ids not stored yet.
//! 4. The new rows go in with one `INSERT ... SELECT FROM UNNEST(...)`, the
//!    head advances with the same `pg_notify` as an append, and the commit
//!    returns once flushed (`synchronous_commit = on`).
//!
//! A refused call writes nothing. Importing the same envelopes twice writes
//! nothing the second time.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::event::RecordedEvent;
use crate::import::{check_continues, check_envelope, check_same_as_stored, invalid, ImportError};

use super::append::{advance_head, insert_rows, lock_head, stream_heads, Columns};
use super::rows::{self, get, to_bigint};
use super::{pg_err, PgLog};

impl PgLog {
    /// Writes `events` (in position order) as they are, as one transaction,
    /// and returns once it committed. Envelopes at positions the log already
    /// holds are skipped if identical and refused otherwise; the others must
    /// continue the log and every stream's chain. Returns how many were
    /// written; a refused call writes nothing.
    pub async fn import_events(&self, events: &[RecordedEvent]) -> Result<u64, ImportError> {
        if events.is_empty() {
            return Ok(0);
        }
        for event in events {
            check_envelope(event)?;
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err("begin import"))?;
        let head = lock_head(&tx).await?;

        let mut held = Vec::new();
        let mut new_streams = HashSet::new();
        let mut new_ids = Vec::new();
        for event in events {
            if event.position <= head {
                held.push(to_bigint(event.position, "position")?);
            } else {
                new_streams.insert(event.stream_id.as_str());
                new_ids.push(event.event_id);
            }
        }
        let stored = stored_rows(&tx, &held).await?;
        let streams: Vec<&str> = new_streams.into_iter().collect();
        let mut heads = if streams.is_empty() {
            HashMap::new()
        } else {
            stream_heads(&tx, &streams).await?
        };
        let taken = stored_ids(&tx, &new_ids).await?;

        let mut columns = Columns::with_capacity(new_ids.len());
        // The envelopes written by this call, at positions head+1, head+2...
        let mut written: Vec<&RecordedEvent> = Vec::with_capacity(new_ids.len());
        let mut ids = HashSet::with_capacity(new_ids.len());
        let mut last = head;
        for event in events {
            let position = event.position;
            if position <= head {
                let Some(stored) = stored.get(&position) else {
                    return Err(ImportError::Store(crate::StoreError::corrupt(
                        position,
                        "the log has a gap below its head",
                    )));
                };
                check_same_as_stored(stored, event)?;
                continue;
            }
            if position <= last {
                // Repeated within this call: compare with what it writes.
                let index = usize::try_from(position - head - 1).unwrap_or(usize::MAX);
                match written.get(index) {
                    Some(earlier) => check_same_as_stored(earlier, event)?,
                    None => return Err(invalid(position, "position repeated out of order")),
                }
                continue;
            }
            if position != last + 1 {
                if last == head {
                    return Err(ImportError::Gap {
                        first: position,
                        head,
                    });
                }
                return Err(invalid(
                    position,
                    format!(
                        "the log ends at {last}, so position {} comes next",
                        last + 1
                    ),
                ));
            }
            let (version, prev) = heads
                .get(event.stream_id.as_str())
                .map_or((0, [0; 32]), |(v, h)| (v.unwrap_or(0), *h));
            check_continues(event, version, prev)?;
            if taken.contains(&event.event_id) || !ids.insert(event.event_id) {
                return Err(invalid(
                    position,
                    format!("event id {} is already stored", event.event_id),
                ));
            }
            columns.push(event.clone())?;
            written.push(event);
            heads.insert(event.stream_id.clone(), (Some(event.version), event.hash));
            last = position;
        }
        if written.is_empty() {
            // Everything already held: the rollback on drop releases the lock.
            return Ok(0);
        }
        insert_rows(&tx, &columns)
            .await
            .map_err(pg_err("insert imported events"))?;
        advance_head(&tx, last).await?;
        tx.commit().await.map_err(pg_err("commit import"))?;
        self.inner.wake.send_modify(|h| *h = (*h).max(last));
        Ok(written.len() as u64)
    }
}

/// The stored rows at `positions`, by position, in one query.
async fn stored_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    positions: &[i64],
) -> Result<HashMap<u64, RecordedEvent>, ImportError> {
    if positions.is_empty() {
        return Ok(HashMap::new());
    }
    let statement = tx
        .prepare_cached(&format!(
            "SELECT {} FROM sijil_events WHERE position = ANY($1)",
            rows::COLUMNS
        ))
        .await
        .map_err(pg_err("prepare read held positions"))?;
    let found = tx
        .query(&statement, &[&positions])
        .await
        .map_err(pg_err("read held positions"))?;
    let mut by_position = HashMap::with_capacity(found.len());
    for row in &found {
        let event = rows::decode(row)?;
        by_position.insert(event.position, event);
    }
    Ok(by_position)
}

/// Which of `ids` are already stored, in one query.
async fn stored_ids(
    tx: &deadpool_postgres::Transaction<'_>,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, ImportError> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let statement = tx
        .prepare_cached("SELECT event_id FROM sijil_events WHERE event_id = ANY($1)")
        .await
        .map_err(pg_err("prepare event id check"))?;
    let found = tx
        .query(&statement, &[&ids])
        .await
        .map_err(pg_err("event id check"))?;
    found
        .iter()
        .map(|row| get::<Uuid>(row, 0, 0).map_err(ImportError::from))
        .collect()
}
