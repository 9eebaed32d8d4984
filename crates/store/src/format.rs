//! Owns the store's format version: stamping new stores, accepting older
//! formats (upgrading them in place), and refusing newer ones.

use crate::bulk::plain_last_position;
use crate::codec;
use crate::error::StoreError;
use crate::layout::{
    decode_u32, decode_u64, position_key, stream_key, META_BULK_FROM, META_FORMAT_VERSION,
    META_LAST_POSITION,
};
use crate::trees::Trees;

/// The newest on-disk format this build reads and writes.
///
/// History:
/// - 1: the first format (see [`crate::layout`] and [`crate::codec`]).
/// - 2: the envelopes move from the `log` tree to the log's segment files;
///   the trees only index them.
pub const CURRENT_FORMAT: u32 = 2;

/// The oldest format this build can upgrade from.
pub const OLDEST_SUPPORTED_FORMAT: u32 = 1;

/// Checks (and if needed stamps or upgrades) the format of the store whose
/// trees are given. Returns the format found on disk (`CURRENT_FORMAT` for a
/// fresh store).
pub(crate) fn check_and_upgrade(trees: &Trees) -> Result<u32, StoreError> {
    let meta = &trees.meta;
    let stored = meta
        .get(META_FORMAT_VERSION)
        .map_err(|e| StoreError::sled("read format version", e))?;
    let found = match stored {
        None => {
            let empty = trees.legacy_log.is_empty() && trees.log.is_empty();
            if !empty {
                return Err(StoreError::corrupt(
                    0,
                    "the log holds events but the store has no format version",
                ));
            }
            meta.insert(META_FORMAT_VERSION, &CURRENT_FORMAT.to_be_bytes())
                .map_err(|e| StoreError::sled("stamp format version", e))?;
            meta.insert(META_LAST_POSITION, &0u64.to_be_bytes())
                .map_err(|e| StoreError::sled("stamp format version", e))?;
            return Ok(CURRENT_FORMAT);
        }
        Some(bytes) => decode_u32(&bytes).ok_or_else(|| {
            StoreError::corrupt(
                0,
                format!("format version has {} bytes, expected 4", bytes.len()),
            )
        })?,
    };
    if found > CURRENT_FORMAT {
        return Err(StoreError::IncompatibleFormat {
            found,
            supported: CURRENT_FORMAT,
        });
    }
    if found < OLDEST_SUPPORTED_FORMAT {
        return Err(StoreError::corrupt(
            0,
            format!(
                "unknown format version {found}; the oldest format is {OLDEST_SUPPORTED_FORMAT}"
            ),
        ));
    }
    upgrade(trees, found)?;
    if !trees.legacy_log.is_empty() {
        // An upgrade to format 2 stopped after its bump, before it emptied
        // the old tree: every envelope in it is in the segments already.
        trees
            .legacy_log
            .clear()
            .map_err(|e| StoreError::sled("empty the format 1 log", e))?;
    }
    Ok(found)
}

/// Upgrades a store of format `from` to [`CURRENT_FORMAT`], one step at a
/// time. Each step rewrites what changed and then bumps the stored version,
/// so an interrupted upgrade resumes at the step it was in.
fn upgrade(trees: &Trees, from: u32) -> Result<(), StoreError> {
    let mut version = from;
    while version < CURRENT_FORMAT {
        if version == 1 {
            log_tree_to_segments(trees)?;
        }
        version += 1;
        trees
            .meta
            .insert(META_FORMAT_VERSION, &version.to_be_bytes())
            .map_err(|e| StoreError::sled("upgrade format version", e))?;
        trees
            .meta
            .flush()
            .map_err(|e| StoreError::sled("upgrade format version", e))?;
    }
    Ok(())
}

/// Envelopes copied per segment write by [`log_tree_to_segments`].
const COPY_BATCH: usize = 4096;

/// Format 1 → 2: first what format 1 did when it opened (remove the log
/// entries past `meta`'s end, which were never committed, with the index
/// entries naming them), then copy the `log` tree into the segments, from
/// scratch if an earlier attempt stopped part way, and sync them. The
/// caller bumps the version; the old tree is emptied after that.
fn log_tree_to_segments(trees: &Trees) -> Result<(), StoreError> {
    let sled_err = |e| StoreError::sled("upgrade the log to segments", e);
    let committed = plain_last_position(&trees.meta)?;
    for item in trees.legacy_log.range(position_key(committed + 1)..) {
        let (key, bytes) = item.map_err(sled_err)?;
        let position = decode_u64(&key)
            .ok_or_else(|| StoreError::corrupt(committed, "a log key is not 8 bytes"))?;
        let event = codec::decode(position, &bytes)?;
        let at = position.to_be_bytes();
        for (index, key) in [
            (&trees.streams, stream_key(&event.stream_id, event.version)),
            (&trees.event_ids, event.event_id.as_bytes().to_vec()),
        ] {
            // Only an entry naming this position is the tail's own.
            let _ = index
                .compare_and_swap(&key, Some(&at[..]), None as Option<&[u8]>)
                .map_err(sled_err)?;
        }
        trees.legacy_log.remove(key).map_err(sled_err)?;
    }
    trees.meta.remove(META_BULK_FROM).map_err(sled_err)?;
    trees.log.truncate_after(0)?;
    let mut batch: Vec<sled::IVec> = Vec::with_capacity(COPY_BATCH);
    let mut first = 1u64;
    let mut next = 1u64;
    let flush = |batch: &mut Vec<sled::IVec>, first: u64, commit: bool| {
        let written = trees
            .log
            .append(first, batch.iter().map(|v| &v[..]), commit);
        batch.clear();
        written
    };
    for item in trees.legacy_log.range(..=position_key(committed)) {
        let (key, bytes) = item.map_err(sled_err)?;
        if decode_u64(&key) != Some(next) {
            return Err(StoreError::corrupt(
                next,
                format!("position {next} is missing from the format 1 log"),
            ));
        }
        batch.push(bytes);
        next += 1;
        if batch.len() == COPY_BATCH {
            flush(&mut batch, first, next > committed)?;
            first = next;
        }
    }
    if next <= committed {
        return Err(StoreError::corrupt(
            next,
            format!("the format 1 log ends before its last position {committed}"),
        ));
    }
    if !batch.is_empty() {
        flush(&mut batch, first, true)?;
    }
    trees.log.sync()?;
    tracing::info!(
        events = committed,
        "moved the log into segment files (format 2)"
    );
    Ok(())
}
