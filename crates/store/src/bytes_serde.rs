//! Owns the serde helpers that encode byte fields (payloads, hashes) as
//! MessagePack `bin` values instead of arrays of integers.

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// Upper bound on capacity reserved up front from an untrusted length hint.
const PREALLOC_LIMIT: usize = 64 * 1024;

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let hint = seq.size_hint().unwrap_or(0).min(PREALLOC_LIMIT);
        let mut out = Vec::with_capacity(hint);
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

/// `serde(with = ...)` module for `Vec<u8>` fields.
pub(crate) mod vec {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

/// `serde(with = ...)` module for `[u8; 32]` fields (SHA-256 digests).
pub(crate) mod array32 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let bytes = d.deserialize_byte_buf(BytesVisitor)?;
        let len = bytes.len();
        <[u8; 32]>::try_from(bytes)
            .map_err(|_| D::Error::custom(format!("expected 32 bytes, found {len}")))
    }
}
