//! Owns the bundle of handles the store works on (the log's segment files
//! and the sled trees indexing them) and opening them, and the write gate
//! every writer of the log holds.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::StoreError;
use crate::layout::{EVENT_IDS_TREE, HEADS_TREE, LOG_TREE, META_TREE, STREAMS_TREE};
use crate::segments::SegmentLog;

/// Handles to the store's log and trees (cheap to clone).
#[derive(Clone, Debug)]
pub struct Trees {
    /// position → envelope, in segment files.
    pub log: SegmentLog,
    /// Format 1 kept the envelopes in this sled tree; only the upgrade to
    /// format 2 reads it (and then empties it).
    pub legacy_log: sled::Tree,
    /// (stream, version) → position.
    pub streams: sled::Tree,
    /// stream → head.
    pub heads: sled::Tree,
    /// event id → position.
    pub event_ids: sled::Tree,
    /// metadata.
    pub meta: sled::Tree,
    /// Held by whoever writes the log (the writer thread per group, a bulk
    /// append or an import for their whole write), so writes, which are
    /// plain sled inserts, never interleave with another writer's.
    gate: Arc<Mutex<()>>,
}

impl Trees {
    /// Opens (creating if missing) every tree of the store in `db`, and the
    /// log's segments in `segments` (see [`SegmentLog::open`]).
    pub fn open(
        db: &sled::Db,
        segments: &Path,
        max_segment_bytes: u64,
    ) -> Result<Trees, StoreError> {
        let open = |name: &str| {
            db.open_tree(name)
                .map_err(|e| StoreError::sled("open tree", e))
        };
        Ok(Trees {
            log: SegmentLog::open(segments, max_segment_bytes)?,
            legacy_log: open(LOG_TREE)?,
            streams: open(STREAMS_TREE)?,
            heads: open(HEADS_TREE)?,
            event_ids: open(EVENT_IDS_TREE)?,
            meta: open(META_TREE)?,
            gate: Arc::new(Mutex::new(())),
        })
    }

    /// Takes the write gate (see [`Trees::gate`]).
    pub fn write_gate(&self) -> MutexGuard<'_, ()> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
