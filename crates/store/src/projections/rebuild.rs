//! Owns rebuilding a projection from position 0 into a fresh generation tree while the old
//! generation keeps serving queries (and keeps following the log), then swapping the pointer
//! atomically once the new generation has caught up with the head, and dropping the old tree.
//! Several projections can be rebuilt together ([`ProjectionHandle::rebuild_together`]):
//! their fresh generations are filled by one shared scan of the log, then each is swapped on
//! its own exactly as a single rebuild would.

use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, PoisonError};
use std::time::Instant;

use crate::store::Store;

use super::catchup::{apply_chunk_shared, ChunkFailure, Lane};
use super::error::ProjectionError;
use super::handle::{lock, Generation, ProjectionHandle, RebuildOptions};
use super::meta::{self, MetaRecord};
use super::status::RebuildStats;
use super::Projection;

/// Applies chunks to `tree` until it reaches the head (or `upto`). `tree` is a new generation
/// or a scratch tree, dropped whole if the fill does not end, so its commits are unguarded
/// ([`super::overlay::Overlay::unguarded`]). Returns the last position applied (`position`
/// when there was nothing to apply).
pub(crate) fn fill(
    store: &Store,
    projection: &dyn Projection,
    tree: &sled::Tree,
    upto: Option<u64>,
    position: u64,
    options: RebuildOptions,
) -> Result<u64, ProjectionError> {
    fill_shared(store, &[(projection, tree)], upto, options)
        .pop()
        .unwrap_or(Ok(0))
        .map(|filled| filled.max(position))
}

/// Applies chunks to every (projection, tree) with one scan of the log per chunk until each
/// reaches the head (or `upto`) or fails; the trees are filled from scratch, as in [`fill`],
/// each through one lane kept for the whole fill (so its overlay can carry state from chunk
/// to chunk). Returns each one's position or error, in order.
pub(crate) fn fill_shared(
    store: &Store,
    targets: &[(&dyn Projection, &sled::Tree)],
    upto: Option<u64>,
    options: RebuildOptions,
) -> Vec<Result<u64, ProjectionError>> {
    let mut outcomes: Vec<Option<Result<u64, ProjectionError>>> = vec![None; targets.len()];
    let mut positions = vec![0u64; targets.len()];
    // Lanes of the targets still filling, with their index in `targets`.
    let mut lanes = Vec::with_capacity(targets.len());
    let mut indexes = Vec::with_capacity(targets.len());
    for (index, (projection, tree)) in targets.iter().enumerate() {
        match Lane::open_fresh(*projection, tree, options.carry_bytes) {
            Ok(lane) => {
                lanes.push(lane);
                indexes.push(index);
            }
            Err(ChunkFailure { error, .. }) => outcomes[index] = Some(Err(error)),
        }
    }
    while !lanes.is_empty() {
        let results = apply_chunk_shared(store, &mut lanes, options.chunk_events.max(1), upto);
        let mut progressed = false;
        // The lanes that did not fail go on.
        let mut going = Vec::with_capacity(lanes.len());
        let mut going_indexes = Vec::with_capacity(lanes.len());
        for ((lane, index), result) in lanes.drain(..).zip(indexes.drain(..)).zip(results) {
            match result {
                Ok(done) => {
                    if let Some(last) = done {
                        positions[index] = last;
                        progressed = true;
                    }
                    going.push(lane);
                    going_indexes.push(index);
                }
                Err(ChunkFailure { error, .. }) => outcomes[index] = Some(Err(error)),
            }
        }
        lanes = going;
        indexes = going_indexes;
        if !progressed {
            break;
        }
    }
    // The fill has ended: what the lanes kept in memory over their commits is written now.
    for (lane, index) in lanes.iter_mut().zip(indexes) {
        if let Err(error) = lane.settle() {
            outcomes[index] = Some(Err(error));
        }
    }
    outcomes
        .into_iter()
        .zip(positions)
        .map(|(outcome, position)| outcome.unwrap_or(Ok(position)))
        .collect()
}

/// Clears the rebuilding flag however the rebuild ends.
struct RebuildingFlag<'a>(&'a ProjectionHandle);

impl Drop for RebuildingFlag<'_> {
    fn drop(&mut self) {
        self.0.rebuilding.store(false, Ordering::Release);
    }
}

/// A rebuild under way: the maintenance lock, the flag, and the new generation's tree.
struct Fresh<'h> {
    handle: &'h ProjectionHandle,
    _flag: RebuildingFlag<'h>,
    _maintenance: MutexGuard<'h, ()>,
    tree: sled::Tree,
    tree_name: String,
    number: u64,
    version: u32,
    started: Instant,
}

impl ProjectionHandle {
    /// Rebuilds the model from position 0 into a new generation and swaps it in once it has
    /// caught up with the head. Queries are served by the old generation until the swap. On
    /// an error the new generation is dropped and the old one stays active. Blocking.
    pub fn rebuild(&self, store: &Store) -> Result<RebuildStats, ProjectionError> {
        self.rebuild_with(store, RebuildOptions::default())
    }

    /// [`rebuild`](Self::rebuild) in chunks of `options.chunk_events` events.
    pub fn rebuild_with(
        &self,
        store: &Store,
        options: RebuildOptions,
    ) -> Result<RebuildStats, ProjectionError> {
        let fresh = self.prepare_rebuild()?;
        let bulk = fill(
            store,
            self.projection.as_ref(),
            &fresh.tree,
            None,
            0,
            options,
        );
        fresh.complete(store, bulk)
    }

    /// Rebuilds every handle in `handles` like [`rebuild`](Self::rebuild), filling their new
    /// generations with one shared scan of the log (each event read and decoded once), then
    /// swapping each in on its own. Returns each handle's outcome, in order; one failing
    /// leaves the others' rebuilds unaffected. Blocking.
    pub fn rebuild_together(
        store: &Store,
        handles: &[&ProjectionHandle],
    ) -> Vec<Result<RebuildStats, ProjectionError>> {
        // Maintenance locks are taken in name order, so concurrent calls cannot deadlock.
        let mut order: Vec<usize> = (0..handles.len()).collect();
        order.sort_by_key(|&i| handles[i].name());
        let mut prepared: Vec<Option<Result<Fresh<'_>, ProjectionError>>> =
            (0..handles.len()).map(|_| None).collect();
        for &i in &order {
            if handles[..i].iter().any(|h| h.name() == handles[i].name()) {
                prepared[i] = Some(Err(ProjectionError::InvalidQuery(format!(
                    "projection `{}` is listed twice",
                    handles[i].name()
                ))));
                continue;
            }
            prepared[i] = Some(handles[i].prepare_rebuild());
        }
        let targets: Vec<(&dyn Projection, &sled::Tree)> = prepared
            .iter()
            .filter_map(|p| match p {
                Some(Ok(fresh)) => Some((fresh.handle.projection.as_ref(), &fresh.tree)),
                _ => None,
            })
            .collect();
        let mut bulk = fill_shared(store, &targets, None, RebuildOptions::default()).into_iter();
        drop(targets);
        prepared
            .into_iter()
            .map(|p| match p {
                Some(Ok(fresh)) => {
                    let filled = bulk.next().unwrap_or(Ok(0));
                    fresh.complete(store, filled)
                }
                Some(Err(error)) => Err(error),
                None => Err(ProjectionError::Task("rebuild was not prepared".into())),
            })
            .collect()
    }

    /// Takes the maintenance lock, raises the rebuilding flag and opens an empty tree for
    /// the next generation.
    fn prepare_rebuild(&self) -> Result<Fresh<'_>, ProjectionError> {
        let maintenance = lock(&self.maintenance);
        self.rebuilding.store(true, Ordering::Release);
        let flag = RebuildingFlag(self);
        let started = Instant::now();
        let version = self.projection.version();
        let number = self.generation().number.saturating_add(1);
        let tree_name = meta::tree_name(self.projection.name(), version, number);
        self.db
            .drop_tree(&tree_name)
            .map_err(|e| ProjectionError::sled("drop stale generation", e))?;
        let tree = self
            .db
            .open_tree(&tree_name)
            .map_err(|e| ProjectionError::sled("open new generation", e))?;
        Ok(Fresh {
            handle: self,
            _flag: flag,
            _maintenance: maintenance,
            tree,
            tree_name,
            number,
            version,
            started,
        })
    }

    /// Fills `tree` from `bulk` to the head under the writer lock, points the meta record
    /// and the handle at it, and drops the previous generation. Returns the new position.
    fn swap_in(
        &self,
        store: &Store,
        tree: &sled::Tree,
        tree_name: &str,
        number: u64,
        version: u32,
        bulk: u64,
    ) -> Result<u64, ProjectionError> {
        let projection = self.projection.as_ref();
        let writer = lock(&self.writer);
        let position = fill(
            store,
            projection,
            tree,
            None,
            bulk,
            RebuildOptions::default(),
        )?;
        let record = MetaRecord {
            version,
            generation: number,
            tree: tree_name.to_owned(),
        };
        meta::save(&self.meta, projection.name(), &record)?;
        let old = {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            let old = std::mem::replace(
                &mut *current,
                Generation {
                    tree: tree.clone(),
                    tree_name: tree_name.to_owned(),
                    number,
                    version,
                },
            );
            // Cleared under the same lock as the swap, so a status snapshot never shows the
            // new generation as still rebuilding (the flag guard clears it again harmlessly).
            self.rebuilding.store(false, Ordering::Release);
            old
        };
        self.mark_live_if_at_head(store, position);
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

impl Fresh<'_> {
    /// Finishes the rebuild after the bulk fill: swaps the new generation in, or drops it
    /// when the fill or the swap failed.
    fn complete(
        self,
        store: &Store,
        bulk: Result<u64, ProjectionError>,
    ) -> Result<RebuildStats, ProjectionError> {
        let handle = self.handle;
        let name = handle.projection.name();
        let built = bulk.and_then(|bulk| {
            handle.swap_in(
                store,
                &self.tree,
                &self.tree_name,
                self.number,
                self.version,
                bulk,
            )
        });
        let position = match built {
            Ok(position) => position,
            Err(error) => {
                let Fresh {
                    tree, tree_name, ..
                } = self;
                drop(tree);
                if let Err(e) = handle.db.drop_tree(&tree_name) {
                    tracing::warn!(projection = name, error = %e, "could not drop a failed generation");
                }
                return Err(error);
            }
        };
        let elapsed = self.started.elapsed();
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
            generation: self.number,
        })
    }
}
