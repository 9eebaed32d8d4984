//! Owns the value types that cross the store's public surface: the
//! [`NewEvent`] a caller appends, the [`RecordedEvent`] envelope the store
//! returns, and the small enums and results around an append or a read.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bytes_serde;

/// An event as a caller hands it to [`append`](crate::Store::append).
///
/// The payload is MessagePack and opaque to the store (it is only checked to
/// be one well-formed MessagePack value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Caller-chosen id (UUID v7), also the idempotency key.
    pub event_id: Uuid,
    /// The workspace (tenant) the event belongs to.
    pub workspace_id: Uuid,
    /// The event's type name, e.g. `CustomerCreated` (1..=100 bytes).
    pub event_type: String,
    /// The payload's schema version for this type.
    pub schema_version: u16,
    /// When it happened, unix milliseconds UTC (caller's clock).
    pub occurred_at: i64,
    /// Who caused it, e.g. `token:<id>`, `agent:<uuid>`, `system:sla`.
    pub actor: String,
    /// The principal the actor acted for, if any.
    pub on_behalf_of: Option<String>,
    /// Groups events of one business operation.
    pub correlation_id: Option<Uuid>,
    /// The event or command id that caused this event.
    pub causation_id: Option<Uuid>,
    /// MessagePack payload.
    #[serde(with = "bytes_serde::vec")]
    pub payload: Vec<u8>,
}

impl NewEvent {
    /// This event as stored at `position`, as `version` of `stream`, chained to `prev_hash`
    /// (the stream's previous hash, zeros for its first event), with its own hash computed:
    /// the one place every backend turns an append into an envelope.
    pub fn record(
        &self,
        stream: &str,
        position: u64,
        version: u64,
        recorded_at: i64,
        prev_hash: [u8; 32],
    ) -> RecordedEvent {
        let mut event = RecordedEvent {
            position,
            stream_id: stream.to_owned(),
            version,
            event_id: self.event_id,
            workspace_id: self.workspace_id,
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            occurred_at: self.occurred_at,
            recorded_at,
            actor: self.actor.clone(),
            on_behalf_of: self.on_behalf_of.clone(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            payload: self.payload.clone(),
            prev_hash,
            hash: [0; 32],
        };
        event.hash = crate::canonical::compute_hash(&event);
        event
    }

    /// Whether `stored` carries exactly what this event asks to append
    /// (the idempotency check of every backend: same id, same content).
    pub fn is_stored_as(&self, stored: &RecordedEvent) -> bool {
        self.event_id == stored.event_id
            && self.workspace_id == stored.workspace_id
            && self.event_type == stored.event_type
            && self.schema_version == stored.schema_version
            && self.occurred_at == stored.occurred_at
            && self.actor == stored.actor
            && self.on_behalf_of == stored.on_behalf_of
            && self.correlation_id == stored.correlation_id
            && self.causation_id == stored.causation_id
            && self.payload == stored.payload
    }
}

/// A stored event with everything the store added at append time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Global position, gap-free from 1. Not part of the hash.
    pub position: u64,
    /// The stream, e.g. `customer-<uuid>`.
    pub stream_id: String,
    /// Version within the stream, gap-free from 1.
    pub version: u64,
    /// Caller-chosen id (UUID v7).
    pub event_id: Uuid,
    /// The workspace (tenant) the event belongs to.
    pub workspace_id: Uuid,
    /// The event's type name.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u16,
    /// When it happened, unix milliseconds UTC (caller's clock).
    pub occurred_at: i64,
    /// When the store appended it, unix milliseconds UTC (store's clock).
    pub recorded_at: i64,
    /// Who caused it.
    pub actor: String,
    /// The principal the actor acted for, if any.
    pub on_behalf_of: Option<String>,
    /// Groups events of one business operation.
    pub correlation_id: Option<Uuid>,
    /// The event or command id that caused this event.
    pub causation_id: Option<Uuid>,
    /// MessagePack payload.
    #[serde(with = "bytes_serde::vec")]
    pub payload: Vec<u8>,
    /// Hash of the previous event in the stream; all zeros for version 1.
    #[serde(with = "bytes_serde::array32")]
    pub prev_hash: [u8; 32],
    /// `SHA-256(prev_hash ‖ canonical bytes)`, see [`crate::canonical`].
    #[serde(with = "bytes_serde::array32")]
    pub hash: [u8; 32],
}

/// What the caller believes about the stream's version before an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version is.
    Any,
    /// The stream must have no events yet.
    NoStream,
    /// The stream's last version must be exactly this. `Exact(0)` means the
    /// same as `NoStream`.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    pub fn matches(self, actual: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => actual.is_none(),
            ExpectedVersion::Exact(v) => actual == Some(v),
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// Where a successful append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AppendResult {
    /// Global position of the batch's first event.
    pub first_position: u64,
    /// Global position of the batch's last event.
    pub last_position: u64,
    /// The version the stream's next event will get.
    pub next_version: u64,
}

/// Reading order for [`read_stream`](crate::Store::read_stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Ascending versions, starting at `from_version`.
    Forward,
    /// Descending versions, starting at `from_version` (`u64::MAX` = the end).
    Backward,
}

/// An event with a fresh id and an empty payload, for unit tests.
#[cfg(test)]
pub(crate) fn sample_event() -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        workspace_id: Uuid::nil(),
        event_type: "Noted".into(),
        schema_version: 1,
        occurred_at: 1,
        actor: "test".into(),
        on_behalf_of: None,
        correlation_id: None,
        causation_id: None,
        payload: vec![0x80],
    }
}
