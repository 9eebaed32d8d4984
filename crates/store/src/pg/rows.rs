//! Owns the mapping between a `sijil_events` row and a [`RecordedEvent`]:
//! the column list every query selects, and a decoder that turns malformed
//! rows into [`StoreError::Corrupt`] instead of panicking.

use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::RecordedEvent;

/// The columns of `sijil_events`, in the order [`decode`] expects.
pub const COLUMNS: &str = "position, stream_id, version, event_id, workspace_id, event_type, \
     schema_version, occurred_at, recorded_at, actor, on_behalf_of, correlation_id, \
     causation_id, payload, prev_hash, hash";

/// Decodes one row selected with [`COLUMNS`].
pub fn decode(row: &Row) -> Result<RecordedEvent, StoreError> {
    let raw_position: i64 = get(row, 0, 0)?;
    let position = non_negative(raw_position, 0, "position")?;
    let at = position;
    let version = non_negative(get(row, 2, at)?, at, "version")?;
    let schema_version: i32 = get(row, 6, at)?;
    let schema_version = u16::try_from(schema_version).map_err(|_| {
        StoreError::corrupt(at, format!("schema_version {schema_version} is not a u16"))
    })?;
    Ok(RecordedEvent {
        position,
        stream_id: get(row, 1, at)?,
        version,
        event_id: get::<Uuid>(row, 3, at)?,
        workspace_id: get::<Uuid>(row, 4, at)?,
        event_type: get(row, 5, at)?,
        schema_version,
        occurred_at: get(row, 7, at)?,
        recorded_at: get(row, 8, at)?,
        actor: get(row, 9, at)?,
        on_behalf_of: get(row, 10, at)?,
        correlation_id: get(row, 11, at)?,
        causation_id: get(row, 12, at)?,
        payload: get(row, 13, at)?,
        prev_hash: hash32(get(row, 14, at)?, at, "prev_hash")?,
        hash: hash32(get(row, 15, at)?, at, "hash")?,
    })
}

/// Reads column `index`, reporting a type mismatch as corruption at `at`.
pub fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
    at: u64,
) -> Result<T, StoreError> {
    row.try_get(index)
        .map_err(|e| StoreError::corrupt(at, format!("column {index}: {e}")))
}

/// A stored `bigint` that must not be negative.
pub fn non_negative(value: i64, at: u64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(at, format!("{what} {value} is negative")))
}

/// A stored hash that must be exactly 32 bytes.
fn hash32(bytes: Vec<u8>, at: u64, what: &str) -> Result<[u8; 32], StoreError> {
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| StoreError::corrupt(at, format!("{what} is {len} bytes, not 32")))
}

/// A position or version as PostgreSQL `bigint`, refusing values past
/// `i64::MAX` (which no real log reaches).
pub fn to_bigint(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Invalid(format!("{what} {value} is past the largest bigint")))
}
