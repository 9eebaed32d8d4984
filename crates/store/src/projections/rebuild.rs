//! Owns rebuilding a projection from position 0 into a fresh generation tree while the old
//! generation keeps serving queries (and keeps following the log), then swapping the pointer
//! atomically once the new generation has caught up with the head, and dropping the old tree.

use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Instant;

use crate::store::Store;

use super::catchup::{apply_chunk, ChunkFailure, REBUILD_CHUNK};
use super::error::ProjectionError;
use super::handle::{lock, Generation, ProjectionHandle};
use super::meta::{self, MetaRecord};
use super::status::RebuildStats;
use super::Projection;

/// Applies chunks to `tree` until it reaches the head (or `upto`).
pub(crate) fn fill(
    store: &Store,
    projection: &dyn Projection,
    tree: &sled::Tree,
    upto: Option<u64>,
    mut position: u64,
) -> Result<u64, ProjectionError> {
    loop {
        match apply_chunk(store, projection, tree, REBUILD_CHUNK, upto) {
            Ok(Some(last)) => position = last,
            Ok(None) => return Ok(position),
            Err(ChunkFailure { error, .. }) => return Err(error),
        }
    }
}

/// Clears the rebuilding flag however the rebuild ends.
struct RebuildingFlag<'a>(&'a ProjectionHandle);

impl Drop for RebuildingFlag<'_> {
    fn drop(&mut self) {
        self.0.rebuilding.store(false, Ordering::Release);
    }
}

impl ProjectionHandle {
    /// Rebuilds the model from position 0 into a new generation and swaps it in once it has
    /// caught up with the head. Queries are served by the old generation until the swap. On
    /// an error the new generation is dropped and the old one stays active. Blocking.
    pub fn rebuild(&self, store: &Store) -> Result<RebuildStats, ProjectionError> {
        let _maintenance = lock(&self.maintenance);
        self.rebuilding.store(true, Ordering::Release);
        let _flag = RebuildingFlag(self);
        let started = Instant::now();
        let name = self.projection.name();
        let version = self.projection.version();
        let number = self.generation().number.saturating_add(1);
        let tree_name = meta::tree_name(name, version, number);
        self.db
            .drop_tree(&tree_name)
            .map_err(|e| ProjectionError::sled("drop stale generation", e))?;
        let tree = self
            .db
            .open_tree(&tree_name)
            .map_err(|e| ProjectionError::sled("open new generation", e))?;
        let built = self.build_and_swap(store, &tree, &tree_name, number, version);
        let position = match built {
            Ok(position) => position,
            Err(error) => {
                drop(tree);
                if let Err(e) = self.db.drop_tree(&tree_name) {
                    tracing::warn!(projection = name, error = %e, "could not drop a failed generation");
                }
                return Err(error);
            }
        };
        let elapsed = started.elapsed();
        let secs = elapsed.as_secs_f64();
        let events_per_sec = if secs > 0.0 {
            position as f64 / secs
        } else {
            0.0
        };
        tracing::info!(
            projection = name,
            events = position,
            ?elapsed,
            events_per_sec,
            "projection rebuilt"
        );
        Ok(RebuildStats {
            events: position,
            elapsed,
            events_per_sec,
            position,
            generation: number,
        })
    }

    /// Fills `tree`, then under the writer lock finishes it, points the meta record and the
    /// handle at it, and drops the previous generation. Returns the new position.
    fn build_and_swap(
        &self,
        store: &Store,
        tree: &sled::Tree,
        tree_name: &str,
        number: u64,
        version: u32,
    ) -> Result<u64, ProjectionError> {
        let projection = self.projection.as_ref();
        let bulk = fill(store, projection, tree, None, 0)?;
        let writer = lock(&self.writer);
        let position = fill(store, projection, tree, None, bulk)?;
        let record = MetaRecord {
            version,
            generation: number,
            tree: tree_name.to_owned(),
        };
        meta::save(&self.meta, projection.name(), &record)?;
        let old = {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(
                &mut *current,
                Generation {
                    tree: tree.clone(),
                    tree_name: tree_name.to_owned(),
                    number,
                    version,
                },
            )
        };
        self.publish(position);
        *self.failure.write().unwrap_or_else(PoisonError::into_inner) = None;
        self.applied.send_modify(|_| {});
        drop(writer);
        let old_name = old.tree_name.clone();
        drop(old);
        if old_name != tree_name {
            self.db
                .drop_tree(&old_name)
                .map_err(|e| ProjectionError::sled("drop old generation", e))?;
        }
        self.kick.notify_one();
        Ok(position)
    }
}
