//! Owns the bundle of sled tree handles the store works on and opening them
//! from a database.

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
        })
    }
}
