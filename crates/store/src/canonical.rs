//! Owns the canonical byte encoding of an event and its hash chain.
//!
//! `hash = SHA-256(prev_hash ‖ canonical_bytes(event))`, with `prev_hash`
//! the previous event's hash in the same stream (32 zero bytes for
//! version 1).
//!
//! The canonical bytes are written by hand so they never depend on a
//! serializer. All integers are big-endian. A *string* or *bytes* value is a
//! `u64` length followed by the raw bytes (UTF-8 for strings). An *optional*
//! value is one byte `0x00` (absent) or `0x01` followed by the value. In
//! order:
//!
//! | # | field            | encoding                         |
//! |---|------------------|----------------------------------|
//! | 0 | domain tag       | bytes `sijil.event.v1`           |
//! | 1 | `stream_id`      | string                           |
//! | 2 | `version`        | u64                              |
//! | 3 | `event_id`       | 16 raw UUID bytes                |
//! | 4 | `workspace_id`   | 16 raw UUID bytes                |
//! | 5 | `event_type`     | string                           |
//! | 6 | `schema_version` | u16                              |
//! | 7 | `occurred_at`    | i64 (two's complement)           |
//! | 8 | `recorded_at`    | i64 (two's complement)           |
//! | 9 | `actor`          | string                           |
//! |10 | `on_behalf_of`   | optional string                  |
//! |11 | `correlation_id` | optional 16 raw UUID bytes       |
//! |12 | `causation_id`   | optional 16 raw UUID bytes       |
//! |13 | `payload`        | bytes (the stored MessagePack)   |
//!
//! `position` is deliberately excluded: it is a property of one store's log,
//! not of the event, so a log exported and re-imported elsewhere (where the
//! positions may differ) keeps every hash valid. `prev_hash` is not repeated
//! in the canonical bytes because it already prefixes the hash input, and
//! `hash` obviously cannot hash itself.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::event::RecordedEvent;

/// Domain-separation tag that starts every canonical encoding.
const DOMAIN_TAG: &[u8] = b"sijil.event.v1";

/// The canonical bytes of `event` (see the module docs for the layout).
pub fn canonical_bytes(event: &RecordedEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + event.payload.len() + event.actor.len());
    put_bytes(&mut out, DOMAIN_TAG);
    put_bytes(&mut out, event.stream_id.as_bytes());
    out.extend_from_slice(&event.version.to_be_bytes());
    out.extend_from_slice(event.event_id.as_bytes());
    out.extend_from_slice(event.workspace_id.as_bytes());
    put_bytes(&mut out, event.event_type.as_bytes());
    out.extend_from_slice(&event.schema_version.to_be_bytes());
    out.extend_from_slice(&event.occurred_at.to_be_bytes());
    out.extend_from_slice(&event.recorded_at.to_be_bytes());
    put_bytes(&mut out, event.actor.as_bytes());
    match &event.on_behalf_of {
        Some(s) => {
            out.push(1);
            put_bytes(&mut out, s.as_bytes());
        }
        None => out.push(0),
    }
    put_opt_uuid(&mut out, event.correlation_id);
    put_opt_uuid(&mut out, event.causation_id);
    put_bytes(&mut out, &event.payload);
    out
}

/// `SHA-256(event.prev_hash ‖ canonical_bytes(event))`.
pub fn compute_hash(event: &RecordedEvent) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(event.prev_hash);
    hasher.update(canonical_bytes(event));
    hasher.finalize().into()
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_opt_uuid(out: &mut Vec<u8>, id: Option<Uuid>) {
    match id {
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
        }
        None => out.push(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RecordedEvent {
        RecordedEvent {
            position: 7,
            stream_id: "s-1".into(),
            version: 1,
            event_id: Uuid::from_u128(1),
            workspace_id: Uuid::from_u128(2),
            event_type: "T".into(),
            schema_version: 1,
            occurred_at: -5,
            recorded_at: 10,
            actor: "system:test".into(),
            on_behalf_of: None,
            correlation_id: None,
            causation_id: Some(Uuid::from_u128(3)),
            payload: vec![0xc0],
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    #[test]
    fn position_does_not_change_the_hash() {
        let a = sample();
        let mut b = sample();
        b.position = 99;
        assert_eq!(compute_hash(&a), compute_hash(&b));
    }

    #[test]
    fn optional_fields_are_unambiguous() {
        let mut a = sample();
        a.on_behalf_of = Some(String::new());
        assert_ne!(canonical_bytes(&a), canonical_bytes(&sample()));
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = compute_hash(&sample());
        let mut variants: Vec<RecordedEvent> = Vec::new();
        let mut e = sample();
        e.stream_id = "s-2".into();
        variants.push(e);
        let mut e = sample();
        e.version = 2;
        variants.push(e);
        let mut e = sample();
        e.recorded_at = 11;
        variants.push(e);
        let mut e = sample();
        e.payload = vec![0xc3];
        variants.push(e);
        let mut e = sample();
        e.prev_hash = [1; 32];
        variants.push(e);
        for v in variants {
            assert_ne!(compute_hash(&v), base);
        }
    }
}
