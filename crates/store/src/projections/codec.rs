//! Owns the payload codec between [`DomainEvent`]s and the MessagePack bytes the store keeps:
//! struct-as-map encoding (field names on the wire, so fields can be added compatibly), with
//! the type name and schema version in the envelope. The gateway uses the same two functions.

use sijil_domain::DomainEvent;

use crate::event::RecordedEvent;

use super::error::ProjectionError;

/// Encodes the payload of `event` (the variant's struct, as a MessagePack map).
pub fn encode_event(event: &DomainEvent) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    // Writing into a Vec cannot fail and every payload type serialises (no maps with
    // non-string keys, no unsupported types), so an error here would be a bug in the
    // domain types; it is reported as an empty payload rather than a panic, which the
    // store's MessagePack check then refuses.
    if event
        .serialize_payload(&mut rmp_serde::Serializer::new(&mut buf).with_struct_map())
        .is_err()
    {
        buf.clear();
    }
    buf
}

/// Decodes the domain event stored in `event`, by its type name and schema version.
pub fn decode_event(event: &RecordedEvent) -> Result<DomainEvent, ProjectionError> {
    decode_payload(
        event.position,
        &event.event_type,
        event.schema_version,
        &event.payload,
    )
}

/// Decodes a payload given its envelope facts (the log scan's in-place form of
/// [`decode_event`]); `position` only names the event in errors.
pub fn decode_payload(
    position: u64,
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
) -> Result<DomainEvent, ProjectionError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(payload);
    DomainEvent::deserialize_payload(event_type, schema_version, &mut de).map_err(|e| {
        ProjectionError::Decode {
            position,
            event_type: event_type.chars().take(100).collect(),
            detail: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sijil_domain::events::CaseClosed;
    use sijil_domain::{CaseId, Timestamp};
    use uuid::Uuid;

    fn recorded(event_type: &str, payload: Vec<u8>) -> RecordedEvent {
        RecordedEvent {
            position: 7,
            stream_id: "case-x".into(),
            version: 1,
            event_id: Uuid::now_v7(),
            workspace_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            occurred_at: 0,
            recorded_at: 0,
            actor: "test".into(),
            on_behalf_of: None,
            correlation_id: None,
            causation_id: None,
            payload,
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    #[test]
    fn round_trips_and_refuses_garbage() {
        let ev = DomainEvent::CaseClosed(CaseClosed {
            case_id: CaseId::new(Uuid::now_v7()).expect("v7"),
            at: Timestamp(5),
        });
        let bytes = encode_event(&ev);
        assert_eq!(
            decode_event(&recorded("CaseClosed", bytes.clone())).ok(),
            Some(ev)
        );
        let err = decode_event(&recorded("CaseOpened", bytes)).expect_err("wrong type");
        assert_eq!(err.code(), "UNDECODABLE_EVENT");
        assert!(decode_event(&recorded("CaseClosed", vec![0xc1, 0xff])).is_err());
        assert!(decode_event(&recorded("Nope", vec![0x80])).is_err());
    }
}
