//! Owns input validation for appends and reads: stream ids, batch and field
//! size limits, and the check that payloads are well-formed MessagePack.

use std::collections::HashSet;

use crate::error::StoreError;
use crate::event::NewEvent;

/// Longest stream id, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 200;
/// Longest event type name, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 100;
/// Largest payload, in bytes (1 MiB).
pub const MAX_PAYLOAD_LEN: usize = 1024 * 1024;
/// Most events in one append.
pub const MAX_BATCH_EVENTS: usize = 1000;
/// Most payload bytes in one append, summed over its events (16 MiB).
pub const MAX_BATCH_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;
/// Longest `actor` / `on_behalf_of`, in bytes.
pub const MAX_ACTOR_LEN: usize = 256;

/// Checks that `stream` is 1..=200 bytes of `[A-Za-z0-9_.:-]`.
pub fn stream_id(stream: &str) -> Result<(), StoreError> {
    if stream.is_empty() || stream.len() > MAX_STREAM_ID_LEN {
        return Err(StoreError::Invalid(format!(
            "stream id must be 1..={MAX_STREAM_ID_LEN} bytes, got {}",
            stream.len()
        )));
    }
    if let Some(bad) = stream
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
    {
        return Err(StoreError::Invalid(format!(
            "stream id `{}` contains {bad:?}; allowed are A-Z a-z 0-9 _ . : -",
            stream.escape_debug()
        )));
    }
    Ok(())
}

/// Checks a whole append batch for `stream`.
pub fn batch(stream: &str, events: &[NewEvent]) -> Result<(), StoreError> {
    stream_id(stream)?;
    if events.is_empty() {
        return Err(StoreError::Invalid(
            "an append needs at least one event".into(),
        ));
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(StoreError::Invalid(format!(
            "an append holds at most {MAX_BATCH_EVENTS} events, got {}",
            events.len()
        )));
    }
    let total: usize = events.iter().map(|e| e.payload.len()).sum();
    if total > MAX_BATCH_PAYLOAD_BYTES {
        return Err(StoreError::Invalid(format!(
            "an append holds at most {MAX_BATCH_PAYLOAD_BYTES} payload bytes, got {total}"
        )));
    }
    let mut seen = HashSet::with_capacity(events.len());
    for event in events {
        if !seen.insert(event.event_id) {
            return Err(StoreError::Invalid(format!(
                "event id {} appears twice in one append",
                event.event_id
            )));
        }
        new_event(event)?;
    }
    Ok(())
}

/// Checks one event's fields.
fn new_event(event: &NewEvent) -> Result<(), StoreError> {
    let id = event.event_id;
    text("event_type", &event.event_type, MAX_EVENT_TYPE_LEN, id)?;
    text("actor", &event.actor, MAX_ACTOR_LEN, id)?;
    if let Some(obo) = &event.on_behalf_of {
        text("on_behalf_of", obo, MAX_ACTOR_LEN, id)?;
    }
    if event.payload.len() > MAX_PAYLOAD_LEN {
        return Err(StoreError::Invalid(format!(
            "event {id}: payload is {} bytes, at most {MAX_PAYLOAD_LEN} allowed",
            event.payload.len()
        )));
    }
    msgpack(&event.payload)
        .map_err(|detail| StoreError::Invalid(format!("event {id}: payload {detail}")))
}

/// Checks a non-empty, bounded text field without control characters.
fn text(field: &str, value: &str, max: usize, id: uuid::Uuid) -> Result<(), StoreError> {
    if value.is_empty() || value.len() > max {
        return Err(StoreError::Invalid(format!(
            "event {id}: {field} must be 1..={max} bytes, got {}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "event {id}: {field} contains control characters"
        )));
    }
    Ok(())
}

/// Checks that `bytes` is exactly one well-formed MessagePack value.
pub fn msgpack(bytes: &[u8]) -> Result<(), String> {
    crate::msgpack_check::check(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids() {
        assert!(stream_id("customer-0190a0e2-aaaa").is_ok());
        assert!(stream_id("a.b:c_d-E9").is_ok());
        assert!(stream_id("").is_err());
        assert!(stream_id("has space").is_err());
        assert!(stream_id("nul\0").is_err());
        assert!(stream_id("é").is_err());
        assert!(stream_id(&"x".repeat(200)).is_ok());
        assert!(stream_id(&"x".repeat(201)).is_err());
    }

    #[test]
    fn msgpack_checks() {
        assert!(msgpack(&[0xc0]).is_ok());
        assert!(msgpack(&[]).is_err());
        assert!(msgpack(&[0xc0, 0xc0]).is_err());
        assert!(msgpack(&[0xc1]).is_err());
        assert!(msgpack(&[0xdb, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
