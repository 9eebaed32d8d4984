//! Shared helpers for the store's integration tests: temporary stores and
//! event builders.
#![allow(dead_code)]

use serde::Serialize;
use sijil_store::{NewEvent, Store};
use tempfile::TempDir;
use uuid::Uuid;

/// The workspace every test event belongs to.
pub const WORKSPACE: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);

/// A fresh store in a temporary directory (kept alive by the `TempDir`).
pub fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let store = Store::open(dir.path()).expect("open store");
    (dir, store)
}

/// MessagePack (with field names) of `value`.
pub fn msgpack(value: &impl Serialize) -> Vec<u8> {
    rmp_serde::to_vec_named(value).expect("encode test payload")
}

/// A new event of `event_type` at schema version 1 with `payload`.
pub fn event(event_type: &str, payload: &impl Serialize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        workspace_id: WORKSPACE,
        event_type: event_type.to_owned(),
        schema_version: 1,
        occurred_at: 1_700_000_000_000,
        actor: "system:test".to_owned(),
        on_behalf_of: None,
        correlation_id: None,
        causation_id: None,
        payload: msgpack(payload),
    }
}

/// `n` small events of `event_type`, numbered from 0 in their payload.
pub fn events(event_type: &str, n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| event(event_type, &Note { n: i as u64 }))
        .collect()
}

/// A tiny test payload.
#[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
pub struct Note {
    pub n: u64,
}
