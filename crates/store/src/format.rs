//! Owns the store's format version: stamping new stores, accepting older
//! formats (upgrading them in place), and refusing newer ones.

use crate::error::StoreError;
use crate::layout::{decode_u32, META_FORMAT_VERSION, META_LAST_POSITION};

/// The newest on-disk format this build reads and writes.
///
/// History:
/// - 1: the first format (see [`crate::layout`] and [`crate::codec`]).
pub const CURRENT_FORMAT: u32 = 1;

/// The oldest format this build can upgrade from.
pub const OLDEST_SUPPORTED_FORMAT: u32 = 1;

/// Checks (and if needed stamps or upgrades) the format of the store whose
/// `meta` and `log` trees are given. Returns the format found on disk
/// (`CURRENT_FORMAT` for a fresh store).
pub fn check_and_upgrade(meta: &sled::Tree, log: &sled::Tree) -> Result<u32, StoreError> {
    let stored = meta
        .get(META_FORMAT_VERSION)
        .map_err(|e| StoreError::sled("read format version", e))?;
    let found = match stored {
        None => {
            let empty = log.is_empty();
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
    upgrade(meta, found)?;
    Ok(found)
}

/// Upgrades a store of format `from` to [`CURRENT_FORMAT`], one step at a
/// time. Each step rewrites what changed and then bumps the stored version,
/// so an interrupted upgrade resumes at the step it was in.
fn upgrade(meta: &sled::Tree, from: u32) -> Result<(), StoreError> {
    let mut version = from;
    while version < CURRENT_FORMAT {
        // Format 1 is the first format: there is no step to run yet. A future
        // format N adds its `N-1 => N` rewrite here before the bump below.
        version += 1;
        meta.insert(META_FORMAT_VERSION, &version.to_be_bytes())
            .map_err(|e| StoreError::sled("upgrade format version", e))?;
    }
    Ok(())
}
