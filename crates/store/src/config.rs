//! Owns [`StoreConfig`], the knobs for opening a [`crate::Store`].

use std::path::{Path, PathBuf};

use crate::disk::SyncMode;
use crate::upcast::Upcasters;

/// How to open a store. Build with [`StoreConfig::new`] and the `with_*`
/// methods.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Directory of the sled database (created if missing).
    pub path: PathBuf,
    /// Payload migrations applied on read.
    pub upcasters: Upcasters,
    /// sled page cache size in bytes.
    pub cache_capacity_bytes: u64,
    /// Most appends one group commit (one flush) covers.
    pub max_group_appends: usize,
    /// Appends that may wait for the writer before callers are slowed down.
    pub queue_capacity: usize,
    /// sled's own background flush interval. Appends never rely on it: each
    /// group commit syncs the log's segment before acknowledging, and the
    /// indexes sled had not flushed are rebuilt from the log when the store
    /// opens. `None` disables it.
    pub background_flush_ms: Option<u64>,
    /// A log segment file is closed once it would grow past this many bytes.
    pub max_segment_bytes: u64,
    /// How far an append is pushed to disk before it is acknowledged
    /// (default: `fdatasync` of the log's segment).
    pub sync_mode: SyncMode,
}

impl StoreConfig {
    /// Defaults for a store at `path`.
    pub fn new(path: impl AsRef<Path>) -> StoreConfig {
        StoreConfig {
            path: path.as_ref().to_path_buf(),
            upcasters: Upcasters::new(),
            cache_capacity_bytes: 256 * 1024 * 1024,
            max_group_appends: 1024,
            queue_capacity: 8192,
            background_flush_ms: Some(1000),
            max_segment_bytes: 256 * 1024 * 1024,
            sync_mode: SyncMode::Fsync,
        }
    }

    /// Uses `upcasters` on read.
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> StoreConfig {
        self.upcasters = upcasters;
        self
    }

    /// Sets the sled page cache size.
    pub fn with_cache_capacity_bytes(mut self, bytes: u64) -> StoreConfig {
        self.cache_capacity_bytes = bytes;
        self
    }

    /// Sets how many appends one flush may cover (at least 1).
    pub fn with_max_group_appends(mut self, appends: usize) -> StoreConfig {
        self.max_group_appends = appends.max(1);
        self
    }

    /// Sets the writer queue capacity (at least 1).
    pub fn with_queue_capacity(mut self, appends: usize) -> StoreConfig {
        self.queue_capacity = appends.max(1);
        self
    }

    /// Sets how appends are made durable (see [`SyncMode`]).
    pub fn with_sync_mode(mut self, mode: SyncMode) -> StoreConfig {
        self.sync_mode = mode;
        self
    }

    /// Sets the size at which a log segment file is closed (at least 1
    /// byte, at most 2 GiB).
    pub fn with_max_segment_bytes(mut self, bytes: u64) -> StoreConfig {
        self.max_segment_bytes = bytes.max(1);
        self
    }

    /// Sets sled's background flush interval.
    pub fn with_background_flush_ms(mut self, ms: Option<u64>) -> StoreConfig {
        self.background_flush_ms = ms;
        self
    }
}
