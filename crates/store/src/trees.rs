//! Owns the bundle of sled tree handles the store works on and opening them
//! from a database, and the write gate every writer of the log holds.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::StoreError;
use crate::layout::{EVENT_IDS_TREE, HEADS_TREE, LOG_TREE, META_TREE, STREAMS_TREE};

/// Handles to the store's trees (cheap to clone).
#[derive(Clone, Debug)]
pub struct Trees {
    /// position → envelope.
    pub log: sled::Tree,
    /// (stream, version) → position.
    pub streams: sled::Tree,
    /// stream → head.
    pub heads: sled::Tree,
    /// event id → position.
    pub event_ids: sled::Tree,
    /// metadata.
    pub meta: sled::Tree,
    /// Held by whoever writes the log (the writer thread per group, a bulk
    /// append or an import for their whole write), so a bulk append, which
    /// writes outside a sled transaction, never interleaves with another writer.
    gate: Arc<Mutex<()>>,
}

impl Trees {
    /// Opens (creating if missing) every tree of the store in `db`.
    pub fn open(db: &sled::Db) -> Result<Trees, StoreError> {
        let open = |name: &str| {
            db.open_tree(name)
                .map_err(|e| StoreError::sled("open tree", e))
        };
        Ok(Trees {
            log: open(LOG_TREE)?,
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
