//! Owns the MessagePack encoding of envelopes stored in the `log` tree.
//!
//! Envelopes are [`RecordedEvent`]s serialized with `rmp-serde` in its
//! compact form (a struct is an array of its fields in declaration order;
//! byte fields are `bin`). Changing the field list or order is a format
//! change and must bump [`crate::format::CURRENT_FORMAT`].

use crate::error::StoreError;
use crate::event::RecordedEvent;

/// Encodes an envelope for the `log` tree.
pub fn encode(event: &RecordedEvent) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec(event).map_err(|e| StoreError::Io {
        operation: "encode envelope",
        detail: e.to_string(),
    })
}

/// Decodes the envelope stored at `position`, checking that it claims the
/// same position.
pub fn decode(position: u64, bytes: &[u8]) -> Result<RecordedEvent, StoreError> {
    let event: RecordedEvent = rmp_serde::from_slice(bytes)
        .map_err(|e| StoreError::corrupt(position, format!("envelope does not decode: {e}")))?;
    if event.position != position {
        return Err(StoreError::corrupt(
            position,
            format!("envelope claims position {}", event.position),
        ));
    }
    Ok(event)
}

/// An envelope read in place: every text and byte field borrows from the stored bytes, so a
/// scan that only routes events by type (projections) allocates nothing per event. Same
/// field order as [`RecordedEvent`], so it reads exactly what [`encode`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct RawEvent<'a> {
    /// Global position.
    pub position: u64,
    /// The stream.
    #[serde(borrow)]
    pub stream_id: &'a str,
    /// Version within the stream.
    pub version: u64,
    /// Caller-chosen id.
    pub event_id: uuid::Uuid,
    /// The workspace (tenant).
    pub workspace_id: uuid::Uuid,
    /// The event's type name.
    #[serde(borrow)]
    pub event_type: &'a str,
    /// The payload's schema version.
    pub schema_version: u16,
    /// When it happened.
    pub occurred_at: i64,
    /// When the store appended it.
    pub recorded_at: i64,
    /// Who caused it.
    #[serde(borrow)]
    pub actor: &'a str,
    /// The principal the actor acted for.
    #[serde(borrow)]
    pub on_behalf_of: Option<&'a str>,
    /// Groups events of one business operation.
    pub correlation_id: Option<uuid::Uuid>,
    /// The event or command id that caused this event.
    pub causation_id: Option<uuid::Uuid>,
    /// MessagePack payload.
    #[serde(borrow)]
    pub payload: &'a [u8],
    /// Hash of the previous event in the stream.
    #[serde(borrow)]
    pub prev_hash: &'a [u8],
    /// This event's hash.
    #[serde(borrow)]
    pub hash: &'a [u8],
}

impl RawEvent<'_> {
    /// The owned envelope (for the rare event that must be upcast).
    pub fn to_recorded(self) -> Result<RecordedEvent, StoreError> {
        let hash = |bytes: &[u8], what: &str| {
            <[u8; 32]>::try_from(bytes).map_err(|_| {
                StoreError::corrupt(
                    self.position,
                    format!("{what} has {} bytes, expected 32", bytes.len()),
                )
            })
        };
        Ok(RecordedEvent {
            position: self.position,
            stream_id: self.stream_id.to_owned(),
            version: self.version,
            event_id: self.event_id,
            workspace_id: self.workspace_id,
            event_type: self.event_type.to_owned(),
            schema_version: self.schema_version,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            actor: self.actor.to_owned(),
            on_behalf_of: self.on_behalf_of.map(str::to_owned),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            payload: self.payload.to_vec(),
            prev_hash: hash(self.prev_hash, "prev_hash")?,
            hash: hash(self.hash, "hash")?,
        })
    }
}

/// Decodes the envelope stored at `position` in place (see [`RawEvent`]), checking that it
/// claims the same position and that its hashes have the right length, as [`decode`] does.
pub fn decode_raw(position: u64, bytes: &[u8]) -> Result<RawEvent<'_>, StoreError> {
    let event: RawEvent<'_> = rmp_serde::from_slice(bytes)
        .map_err(|e| StoreError::corrupt(position, format!("envelope does not decode: {e}")))?;
    if event.position != position {
        return Err(StoreError::corrupt(
            position,
            format!("envelope claims position {}", event.position),
        ));
    }
    if event.prev_hash.len() != 32 || event.hash.len() != 32 {
        return Err(StoreError::corrupt(
            position,
            "envelope does not decode: a hash is not 32 bytes",
        ));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RecordedEvent {
        RecordedEvent {
            position: 9,
            stream_id: "case-1".into(),
            version: 3,
            event_id: uuid::Uuid::now_v7(),
            workspace_id: uuid::Uuid::now_v7(),
            event_type: "CaseClosed".into(),
            schema_version: 2,
            occurred_at: -5,
            recorded_at: 77,
            actor: "agent:x".into(),
            on_behalf_of: Some("user:y".into()),
            correlation_id: Some(uuid::Uuid::now_v7()),
            causation_id: None,
            payload: vec![0x81, 0xa1, b'a', 0x01],
            prev_hash: [3; 32],
            hash: [4; 32],
        }
    }

    #[test]
    fn raw_decoding_reads_what_owned_decoding_reads() -> Result<(), StoreError> {
        // Given an envelope as the log stores it
        let event = sample();
        let bytes = encode(&event)?;
        // When it is read in place
        let raw = decode_raw(9, &bytes)?;
        // Then every field matches the owned decoding
        assert_eq!(raw.to_recorded()?, decode(9, &bytes)?);
        assert_eq!(raw.to_recorded()?, event);
        Ok(())
    }

    #[test]
    fn raw_decoding_refuses_what_owned_decoding_refuses() -> Result<(), StoreError> {
        let bytes = encode(&sample())?;
        assert!(decode_raw(8, &bytes).is_err());
        assert!(decode_raw(9, &bytes[..bytes.len() - 3]).is_err());
        assert!(decode_raw(9, &[0xc1]).is_err());
        let mut short_hash = sample();
        short_hash.payload.clear();
        let mut bytes = encode(&short_hash)?;
        // The last field is the 32-byte hash (`bin8` header 0xc4 0x20): cut it to 31 bytes.
        let cut = bytes.len() - 33;
        bytes[cut] = 31;
        bytes.pop();
        assert!(decode_raw(9, &bytes).is_err());
        assert!(decode(9, &bytes).is_err());
        Ok(())
    }
}
