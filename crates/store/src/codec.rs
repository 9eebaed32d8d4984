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
