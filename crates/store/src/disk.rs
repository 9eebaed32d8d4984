//! Owns making written data durable: sled's `flush` followed by an
//! `fdatasync` of sled's data file.
//!
//! sled 0.34 writes its log with `pwrite` and then `sync_file_range` on Linux,
//! which survives a killed process but neither flushes the device's write
//! cache nor persists a grown file's size, so it does not survive a power cut.
//! Every acknowledgement therefore waits for [`DiskSync::sync`], which adds a
//! real `fdatasync` (on the same inode, through our own handle) after sled's
//! flush. [`SyncMode::SledFlush`] skips it, for benchmarks that want to show
//! what the fsync costs; it is never the default.

use std::fs::File;
use std::path::Path;

use crate::error::StoreError;

/// How far an acknowledged append is pushed towards the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// sled's flush and an `fdatasync` of the data file: survives power loss.
    #[default]
    Fsync,
    /// sled's flush only (`sync_file_range`): survives a killed process, not
    /// necessarily a power cut. For measurements only.
    SledFlush,
}

/// Flushes a sled database durably.
#[derive(Debug)]
pub struct DiskSync {
    db: sled::Db,
    file: Option<File>,
}

impl DiskSync {
    /// Prepares durable flushes of `db`, whose directory is `path`. Also
    /// syncs the directory itself once, so the files sled created survive.
    pub fn open(db: sled::Db, path: &Path, mode: SyncMode) -> Result<DiskSync, StoreError> {
        let file = match mode {
            SyncMode::SledFlush => None,
            SyncMode::Fsync => {
                let io = |operation: &'static str| {
                    move |e: std::io::Error| StoreError::Io {
                        operation,
                        detail: e.to_string(),
                    }
                };
                let data =
                    File::open(path.join("db")).map_err(io("open the data file for fsync"))?;
                data.sync_all().map_err(io("fsync the data file"))?;
                File::open(path)
                    .and_then(|dir| dir.sync_all())
                    .map_err(io("fsync the store directory"))?;
                Some(data)
            }
        };
        Ok(DiskSync { db, file })
    }

    /// A `DiskSync` whose `fdatasync` always fails (it syncs `/dev/full`, which
    /// cannot be synced), for tests of what a failed flush does.
    #[cfg(test)]
    pub(crate) fn failing(db: sled::Db) -> DiskSync {
        let file = File::open("/dev/full").expect("open /dev/full");
        DiskSync {
            db,
            file: Some(file),
        }
    }

    /// Makes everything written so far durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| StoreError::sled("flush", e))?;
        if let Some(file) = &self.file {
            file.sync_data().map_err(|e| StoreError::Io {
                operation: "fdatasync",
                detail: e.to_string(),
            })?;
        }
        Ok(())
    }
}
