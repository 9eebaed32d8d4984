//! Owns making written data durable: the log's segment (what an
//! acknowledgement needs) and, when asked, sled's indexes too (sled's
//! `flush` followed by an `fdatasync` of its data file).
//!
//! An append is acknowledged once its records are in the log's segment and
//! that segment is `fdatasync`ed ([`DiskSync::sync`]); the sled trees that
//! index the log are flushed by sled in the background, and whatever of
//! them a crash loses is rebuilt from the log when the store opens
//! ([`crate::recover`]). sled 0.34 writes with `pwrite` and then
//! `sync_file_range`, which neither flushes the device's write cache nor
//! persists a grown file's size, so [`DiskSync::sync_all`] adds a real
//! `fdatasync` after sled's flush. [`SyncMode::NoFsync`] skips the
//! `fdatasync`s, for benchmarks that want to show what they cost; it is
//! never the default.

use std::fs::File;
use std::path::Path;

use crate::error::StoreError;
use crate::segments::SegmentLog;

/// How far an acknowledged append is pushed towards the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// `fdatasync` of the log: survives power loss.
    #[default]
    Fsync,
    /// Written to the log file, not synced: survives a killed process, not
    /// a power cut. For measurements only.
    NoFsync,
}

/// Syncs the log and the sled database durably.
#[derive(Debug)]
pub struct DiskSync {
    db: sled::Db,
    log: SegmentLog,
    /// sled's data file, `None` with [`SyncMode::NoFsync`].
    file: Option<File>,
    /// Fails every sync (tests of what a failed flush does).
    #[cfg(test)]
    fail: bool,
}

impl DiskSync {
    /// Prepares durable syncs of `log` and of `db`, whose directory is
    /// `path`. Also syncs the directory itself once, so the files sled
    /// created survive.
    pub fn open(
        db: sled::Db,
        log: SegmentLog,
        path: &Path,
        mode: SyncMode,
    ) -> Result<DiskSync, StoreError> {
        let file = match mode {
            SyncMode::NoFsync => None,
            SyncMode::Fsync => {
                let data = File::open(path.join("db"))
                    .map_err(StoreError::io("open the data file for fsync"))?;
                data.sync_all()
                    .map_err(StoreError::io("fsync the data file"))?;
                File::open(path)
                    .and_then(|dir| dir.sync_all())
                    .map_err(StoreError::io("fsync the store directory"))?;
                Some(data)
            }
        };
        Ok(DiskSync {
            db,
            log,
            file,
            #[cfg(test)]
            fail: false,
        })
    }

    /// A `DiskSync` whose syncs always fail, for tests of what a failed
    /// flush does.
    #[cfg(test)]
    pub(crate) fn failing(db: sled::Db, log: SegmentLog) -> DiskSync {
        DiskSync {
            db,
            log,
            file: None,
            fail: true,
        }
    }

    fn check_failing(&self) -> Result<(), StoreError> {
        #[cfg(test)]
        if self.fail {
            return Err(StoreError::Io {
                operation: "fdatasync",
                detail: "failing on purpose (test)".into(),
            });
        }
        Ok(())
    }

    /// Makes every record appended to the log so far durable: all an
    /// acknowledgement needs.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.check_failing()?;
        if self.file.is_some() {
            self.log.sync()?;
        }
        Ok(())
    }

    /// Makes the log and everything written to sled so far durable.
    pub fn sync_all(&self) -> Result<(), StoreError> {
        self.sync()?;
        self.db.flush().map_err(|e| StoreError::sled("flush", e))?;
        if let Some(file) = &self.file {
            file.sync_data().map_err(StoreError::io("fdatasync"))?;
        }
        Ok(())
    }
}
