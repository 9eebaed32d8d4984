//! Owns the on-disk layout: the names of the store's sled trees and the
//! byte encoding of their keys and small fixed-size values.
//!
//! The envelopes themselves are in the log's segment files (see
//! `crate::segments`); the stream index is in memory (`crate::stream_index`),
//! built from the log at open; these trees index the rest.
//!
//! | tree        | key                                   | value                                        |
//! |-------------|---------------------------------------|----------------------------------------------|
//! | `log`       | position (u64 BE)                     | format 1 only: the envelope (emptied by the upgrade) |
//! | `streams`   | stream id ‖ `0x00` ‖ version (u64 BE) | formats 1 and 2 only: position (u64 BE) (dropped by the upgrade to 3) |
//! | `heads`     | stream id                             | formats 1 and 2 only: version (u64 BE) ‖ last hash (32) ‖ position (u64 BE) (dropped) |
//! | `event_ids` | event id (16 raw UUID bytes)          | position (u64 BE)                            |
//! | `meta`      | `format_version` / `last_position`    | u32 BE / u64 BE                              |

use crate::error::StoreError;

/// Tree of envelopes by global position (format 1; see [`crate::format`]).
pub const LOG_TREE: &str = "log";
/// Tree mapping (stream, version) to position (formats 1 and 2).
pub const STREAMS_TREE: &str = "streams";
/// Tree of each stream's head (version, hash, position; formats 1 and 2).
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
/// Key in `meta` present while a write puts index entries (`streams`,
/// `event_ids`) outside the transaction that commits it: the first position
/// it writes (u64 BE). Found when the store opens, it means some index
/// entries may name positions the log does not keep. See `crate::recover`.
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
