//! Owns the on-disk layout: the names of the store's sled trees and the
//! byte encoding of their keys and small fixed-size values.
//!
//! The envelopes themselves are in the log's segment files (see
//! `crate::segments`); these trees index them.
//!
//! | tree        | key                                   | value                                        |
//! |-------------|---------------------------------------|----------------------------------------------|
//! | `log`       | position (u64 BE)                     | format 1 only: the envelope (emptied by the upgrade) |
//! | `streams`   | stream id ‖ `0x00` ‖ version (u64 BE) | position (u64 BE)                            |
//! | `heads`     | stream id                             | version (u64 BE) ‖ last hash (32) ‖ position (u64 BE) |
//! | `event_ids` | event id (16 raw UUID bytes)          | position (u64 BE)                            |
//! | `meta`      | `format_version` / `last_position`    | u32 BE / u64 BE                              |
//!
//! Stream ids never contain `0x00` (see [`crate::validate`]), so a stream's
//! `streams` keys are exactly those starting with `stream id ‖ 0x00`.

use crate::error::StoreError;

/// Tree of envelopes by global position (format 1; see [`crate::format`]).
pub const LOG_TREE: &str = "log";
/// Tree mapping (stream, version) to position.
pub const STREAMS_TREE: &str = "streams";
/// Tree of each stream's head (version, hash, position).
pub const HEADS_TREE: &str = "heads";
/// Tree mapping event id to position.
pub const EVENT_IDS_TREE: &str = "event_ids";
/// Tree of store metadata.
pub const META_TREE: &str = "meta";
/// Every tree name the store owns. Projections sharing the database
/// ([`crate::Store::db`]) must pick other names.
pub const RESERVED_TREES: [&str; 5] = [
    LOG_TREE,
    STREAMS_TREE,
    HEADS_TREE,
    EVENT_IDS_TREE,
    META_TREE,
];

/// `meta` key of the format version (u32 BE).
pub const META_FORMAT_VERSION: &[u8] = b"format_version";
/// `meta` key of the last assigned position (u64 BE).
pub const META_LAST_POSITION: &[u8] = b"last_position";
/// Key in `meta` a format-1 bulk append left while it wrote outside a
/// transaction: the first position it wrote (u64 BE). Read only by the
/// upgrade to format 2.
pub const META_BULK_FROM: &[u8] = b"bulk_from";
/// Key in `meta` present while a write puts its index entries (`streams`,
/// `event_ids`) and stream heads: the first position it writes (u64 BE).
/// Found when the store opens, it means some index entries or heads may name
/// positions the log does not keep. See `crate::recover`.
pub const META_INDEXING: &[u8] = b"indexing_from";

/// Key of `position` in `log`.
pub fn position_key(position: u64) -> [u8; 8] {
    position.to_be_bytes()
}

/// The log's last position from `meta`'s stored value (0 when absent).
pub fn decode_last_position(value: Option<&[u8]>) -> Result<u64, StoreError> {
    match value {
        Some(bytes) => decode_u64(bytes)
            .ok_or_else(|| StoreError::corrupt(0, "meta last_position is not 8 bytes")),
        None => Ok(0),
    }
}

/// Decodes a big-endian u64 (a `log` key or a position value).
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

/// Decodes a big-endian u32.
pub fn decode_u32(bytes: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(bytes).ok().map(u32::from_be_bytes)
}

/// The prefix shared by every `streams` key of `stream`.
pub fn stream_prefix(stream: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream.len() + 1);
    key.extend_from_slice(stream.as_bytes());
    key.push(0);
    key
}

/// Key of (`stream`, `version`) in `streams`.
pub fn stream_key(stream: &str, version: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream.len() + 9);
    key.extend_from_slice(stream.as_bytes());
    key.push(0);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// Splits a `streams` key into (stream id, version).
pub fn split_stream_key(key: &[u8]) -> Option<(&str, u64)> {
    if key.len() < 10 {
        return None;
    }
    let (head, version) = key.split_at(key.len() - 8);
    let (stream, sep) = head.split_at(head.len() - 1);
    if sep != [0] {
        return None;
    }
    let stream = std::str::from_utf8(stream).ok()?;
    Some((stream, decode_u64(version)?))
}

/// A stream's head: its last version, that event's hash and position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Last version in the stream.
    pub version: u64,
    /// Hash of the last event.
    pub hash: [u8; 32],
    /// Global position of the last event.
    pub position: u64,
}

impl Head {
    /// Encoded length in bytes.
    const LEN: usize = 8 + 32 + 8;

    /// Encodes the head as `version ‖ hash ‖ position`.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.version.to_be_bytes());
        out[8..40].copy_from_slice(&self.hash);
        out[40..].copy_from_slice(&self.position.to_be_bytes());
        out
    }

    /// Decodes a head written by [`Head::encode`].
    pub fn decode(stream: &str, bytes: &[u8]) -> Result<Head, StoreError> {
        let bad = || {
            StoreError::corrupt(
                0,
                format!(
                    "head of stream `{stream}` has {} bytes, expected {}",
                    bytes.len(),
                    Self::LEN
                ),
            )
        };
        if bytes.len() != Self::LEN {
            return Err(bad());
        }
        let version = decode_u64(&bytes[..8]).ok_or_else(bad)?;
        let hash = <[u8; 32]>::try_from(&bytes[8..40]).map_err(|_| bad())?;
        let position = decode_u64(&bytes[40..]).ok_or_else(bad)?;
        Ok(Head {
            version,
            hash,
            position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keys_round_trip() {
        let key = stream_key("case-1", 42);
        assert_eq!(split_stream_key(&key), Some(("case-1", 42)));
        assert!(key.starts_with(&stream_prefix("case-1")));
        assert!(!key.starts_with(&stream_prefix("case")));
        assert_eq!(split_stream_key(b"short"), None);
    }

    #[test]
    fn heads_round_trip() {
        let head = Head {
            version: 3,
            hash: [7; 32],
            position: 9,
        };
        assert_eq!(Head::decode("s", &head.encode()), Ok(head));
        assert!(Head::decode("s", &[1, 2, 3]).is_err());
    }
}
