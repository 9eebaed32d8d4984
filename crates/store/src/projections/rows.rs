//! Owns the encoding of projection rows (values): compact MessagePack (a struct is an array of
//! its fields in declaration order). Changing a row type's fields is a layout change and must
//! bump that projection's version, which rebuilds it.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ProjectionError;

/// Encodes a row.
pub fn encode<T: Serialize>(row: &T) -> Result<Vec<u8>, ProjectionError> {
    rmp_serde::to_vec(row)
        .map_err(|e| ProjectionError::corrupt(format!("row does not encode: {e}")))
}

/// Decodes a row, naming it `what` in errors.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, ProjectionError> {
    rmp_serde::from_slice(bytes)
        .map_err(|e| ProjectionError::corrupt(format!("{what} does not decode: {e}")))
}
