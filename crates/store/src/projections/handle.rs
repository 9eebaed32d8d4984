//! Owns [`ProjectionHandle`]: one projection's active generation tree (behind a lock readers
//! go through), its applied position (published on a `watch` channel), its state, and the
//! blocking catch-up loop. Rebuild and check live in their own modules as further `impl`
//! blocks. Usable without tokio (the CLI's offline commands) and by the async runner.
//!
//! Locking: `writer` is held while a chunk is applied to the active tree and while a rebuild
//! swaps generations, so a chunk never lands in a tree that is being replaced; `current` is
//! read-locked for the duration of a query and write-locked only for the swap, so the old
//! tree is dropped only after the queries running on it finish; `maintenance` serialises
//! rebuilds and checks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use tokio::sync::{watch, Notify};

use crate::store::Store;

use super::catchup::{
    apply_chunk, apply_chunk_shared, ChunkFailure, Lane, LIVE_CHUNK, REBUILD_CHUNK,
};
use super::error::ProjectionError;
use super::meta::{self, MetaRecord};
use super::overlay::{checkpoint, recover, CARRY_BYTES};
use super::status::{ProjectionState, ProjectionStatus};
use super::Projection;

/// The tree serving queries and what it holds.
#[derive(Clone, Debug)]
pub(crate) struct Generation {
    pub(crate) tree: sled::Tree,
    pub(crate) tree_name: String,
    pub(crate) number: u64,
    pub(crate) version: u32,
}

/// Log size from which [`ProjectionHandle::catch_up`] fills a projection that has applied
/// nothing yet like a rebuild (the 1M-event demo store: five projections caught up at serve
/// start in ~70 s through guarded live chunks).
pub const FILL_FROM_SCRATCH_AT: u64 = 50_000;

/// How far and in what steps [`ProjectionHandle::catch_up_with`] applies the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchUpOptions {
    /// Events per committed chunk (at least 1).
    pub chunk_events: usize,
    /// Stop after this position (`None`: the durable head).
    pub upto: Option<u64>,
}

/// In what steps [`ProjectionHandle::rebuild_with`] fills the new generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildOptions {
    /// Events per committed chunk (at least 1): bigger chunks coalesce more writes, smaller
    /// ones hold less in memory.
    pub chunk_events: usize,
    /// Bytes of rows each projection may keep in memory, unwritten, from one chunk to the
    /// next (see [`Overlay::carry_budget`](super::Overlay::carry_budget)); 0 writes
    /// everything at every commit.
    pub carry_bytes: usize,
}

impl Default for RebuildOptions {
    fn default() -> RebuildOptions {
        RebuildOptions {
            chunk_events: REBUILD_CHUNK,
            carry_bytes: CARRY_BYTES,
        }
    }
}

impl Default for CatchUpOptions {
    fn default() -> CatchUpOptions {
        CatchUpOptions {
            chunk_events: LIVE_CHUNK,
            upto: None,
        }
    }
}

/// One projection's model in the database. Open one handle per projection name per database.
pub struct ProjectionHandle {
    pub(crate) projection: Arc<dyn Projection>,
    pub(crate) db: sled::Db,
    pub(crate) meta: sled::Tree,
    pub(crate) current: RwLock<Generation>,
    pub(crate) writer: Mutex<()>,
    pub(crate) maintenance: Mutex<()>,
    pub(crate) applied: watch::Sender<u64>,
    pub(crate) failure: RwLock<Option<(u64, ProjectionError)>>,
    pub(crate) live: AtomicBool,
    pub(crate) rebuilding: AtomicBool,
    pub(crate) stop: AtomicBool,
    pub(crate) kick: Notify,
}

impl std::fmt::Debug for ProjectionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionHandle")
            .field("name", &self.projection.name())
            .field("applied", &*self.applied.borrow())
            .finish_non_exhaustive()
    }
}

/// Locks a mutex, ignoring poisoning (the guarded data is `()`; a commit a panicking holder
/// left half-written is finished from its redo record before the tree is applied to again:
/// see [`super::overlay::recover`]).
pub(crate) fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ProjectionHandle {
    /// Opens `projection`'s active generation in `db`, creating generation 1 on first use and
    /// dropping leftovers of interrupted rebuilds or checks. A model built by another version
    /// keeps serving queries until [`catch_up`](Self::catch_up) has rebuilt it, but its
    /// applied position reads 0 until then, so [`Projections::wait_for`] waits for the
    /// rebuild.
    ///
    /// [`Projections::wait_for`]: super::Projections::wait_for
    pub fn open(
        db: &sled::Db,
        projection: Arc<dyn Projection>,
    ) -> Result<ProjectionHandle, ProjectionError> {
        let name = projection.name();
        let meta_tree = db
            .open_tree(meta::META_TREE)
            .map_err(|e| ProjectionError::sled("open projection meta", e))?;
        let record = match meta::load(&meta_tree, name)? {
            Some(record) => record,
            None => {
                let record = MetaRecord {
                    version: projection.version(),
                    generation: 1,
                    tree: meta::tree_name(name, projection.version(), 1),
                };
                meta::save(&meta_tree, name, &record)?;
                record
            }
        };
        meta::drop_leftovers(db, name, &record.tree)?;
        let tree = db
            .open_tree(&record.tree)
            .map_err(|e| ProjectionError::sled("open projection tree", e))?;
        // A chunk whose split commit a crash interrupted is finished before anything reads.
        recover(&tree)?;
        // A model built by another version has applied nothing this version can vouch for:
        // waiting for a position must wait for the rebuild, not return on the old model.
        let applied = if record.version == projection.version() {
            checkpoint(&tree)?
        } else {
            0
        };
        let (applied_tx, _) = watch::channel(applied);
        Ok(ProjectionHandle {
            projection,
            db: db.clone(),
            meta: meta_tree,
            current: RwLock::new(Generation {
                tree,
                tree_name: record.tree,
                number: record.generation,
                version: record.version,
            }),
            writer: Mutex::new(()),
            maintenance: Mutex::new(()),
            applied: applied_tx,
            failure: RwLock::new(None),
            live: AtomicBool::new(false),
            rebuilding: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            kick: Notify::new(),
        })
    }

    /// The projection's name.
    pub fn name(&self) -> &'static str {
        self.projection.name()
    }

    /// Runs `query` on the tree currently serving queries. A rebuild's swap waits for
    /// running queries, so the tree stays valid for the whole call.
    pub fn read<R>(&self, query: impl FnOnce(&sled::Tree) -> R) -> R {
        let generation = self.current.read().unwrap_or_else(PoisonError::into_inner);
        query(&generation.tree)
    }

    pub(crate) fn generation(&self) -> Generation {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The last position applied to the model serving queries.
    pub fn applied_position(&self) -> u64 {
        *self.applied.borrow()
    }

    /// A receiver of the applied position; it also wakes when the projection fails.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Whether the active model was built by another version of the projection.
    pub fn is_stale(&self) -> bool {
        self.generation().version != self.projection.version()
    }

    /// The error that stopped the projection, if any, with its position.
    pub fn failure(&self) -> Option<(u64, ProjectionError)> {
        self.failure
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What the projection is doing.
    pub fn state(&self) -> ProjectionState {
        if let Some((position, error)) = self.failure() {
            ProjectionState::Failed { position, error }
        } else if self.rebuilding.load(Ordering::Acquire) {
            ProjectionState::Rebuilding
        } else if self.live.load(Ordering::Acquire) {
            ProjectionState::Live
        } else {
            ProjectionState::CatchingUp
        }
    }

    /// A snapshot of the projection.
    /// Generation and state are read under the generation lock, which a rebuild's swap holds
    /// while it replaces the generation and clears its flag, so the two always agree.
    pub fn status(&self) -> ProjectionStatus {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let state = self.state();
        ProjectionStatus {
            name: self.projection.name(),
            version: self.projection.version(),
            model_version: current.version,
            generation: current.number,
            applied_position: self.applied_position(),
            state,
        }
    }

    /// Raises the published applied position (never lowers it).
    pub(crate) fn publish(&self, position: u64) {
        self.applied.send_if_modified(|current| {
            if position > *current {
                *current = position;
                true
            } else {
                false
            }
        });
    }

    /// Marks the projection live when `position` is the store's durable head, before that
    /// position is published: whoever waited for it then sees the projection live, not still
    /// catching up.
    pub(crate) fn mark_live_if_at_head(&self, store: &Store, position: u64) {
        if position >= store.head_position() {
            self.live.store(true, Ordering::Release);
        }
    }

    /// Records a failure, logs it and wakes everyone waiting on the applied position.
    pub(crate) fn fail(&self, position: u64, error: ProjectionError) {
        tracing::error!(
            projection = self.projection.name(),
            position,
            error = %error,
            code = error.code(),
            "projection stopped"
        );
        *self.failure.write().unwrap_or_else(PoisonError::into_inner) = Some((position, error));
        self.live.store(false, Ordering::Release);
        self.applied.send_modify(|_| {});
    }

    /// Clears a recorded failure so the projection tries again.
    pub fn clear_failure(&self) {
        *self.failure.write().unwrap_or_else(PoisonError::into_inner) = None;
        self.applied.send_modify(|_| {});
    }

    /// Applies the log up to the durable head (rebuilding first if the model is stale).
    /// A projection that has applied nothing yet while the log holds at least
    /// [`FILL_FROM_SCRATCH_AT`] events (a store made by `sijil demo` or an import) is filled
    /// like a rebuild instead: a fresh generation without the redo record, in rebuild-sized
    /// chunks, swapped in at the head; the result is the same rows. Blocking; returns the
    /// applied position.
    pub fn catch_up(&self, store: &Store) -> Result<u64, ProjectionError> {
        self.catch_up_filling_from(store, FILL_FROM_SCRATCH_AT)
    }

    /// [`catch_up`](Self::catch_up) with the log size from which a projection at position 0
    /// is filled like a rebuild.
    pub fn catch_up_filling_from(
        &self,
        store: &Store,
        fill_at: u64,
    ) -> Result<u64, ProjectionError> {
        if !self.is_stale()
            && self.applied_position() == 0
            && store.head_position() >= fill_at.max(1)
        {
            // A failed fill leaves the model as it was; catching up chunk by chunk then
            // stops exactly at the failing event and records it.
            if let Err(error) = self.rebuild(store) {
                tracing::warn!(projection = self.name(), %error, "fill from scratch failed");
            }
        }
        self.catch_up_with(store, CatchUpOptions::default())
    }

    /// Applies the log as `options` say, committing one chunk at a time. On an error the
    /// events before the failing one are committed, the failure is recorded and returned.
    pub fn catch_up_with(
        &self,
        store: &Store,
        options: CatchUpOptions,
    ) -> Result<u64, ProjectionError> {
        // A model past the log's end has seen events the log no longer holds (a power cut
        // lost the log's unsynced tail after sled had flushed the model): like a model of
        // another version, it vouches for nothing until it is rebuilt from the log.
        if self.applied_position() > store.head_position() {
            tracing::warn!(
                projection = self.name(),
                applied = self.applied_position(),
                log_end = store.head_position(),
                "the model is past the log's end; rebuilding it from the log"
            );
            self.applied.send_replace(0);
            self.rebuild(store)?;
        } else if self.is_stale() {
            self.rebuild(store)?;
        }
        loop {
            if self.stop.load(Ordering::Acquire) {
                return Ok(self.applied_position());
            }
            let outcome = {
                let _writer = lock(&self.writer);
                let generation = self.generation();
                apply_chunk(
                    store,
                    self.projection.as_ref(),
                    &generation.tree,
                    options.chunk_events,
                    options.upto,
                )
            };
            match outcome {
                Ok(Some(position)) => {
                    if options.upto.is_none() {
                        self.mark_live_if_at_head(store, position);
                    }
                    self.publish(position);
                }
                Ok(None) => {
                    self.live.store(options.upto.is_none(), Ordering::Release);
                    return Ok(self.applied_position());
                }
                Err(ChunkFailure { position, error }) => {
                    // The good prefix of the chunk may have been committed.
                    if let Ok(done) = checkpoint(&self.generation().tree) {
                        self.publish(done);
                    }
                    self.fail(position, error.clone());
                    return Err(error);
                }
            }
        }
    }

    /// Catches every handle up to the durable head like [`catch_up`](Self::catch_up), but
    /// with one shared scan of the log per chunk (each event read and decoded once for all
    /// of them): stale models are rebuilt together first, then the others advance chunk by
    /// chunk, each committing its own tree and checkpoint. A handle that fails is recorded
    /// as failed and left behind; the others go on. Returns each handle's applied position
    /// or error, in order. Blocking.
    pub fn catch_up_together(
        store: &Store,
        handles: &[&ProjectionHandle],
    ) -> Vec<Result<u64, ProjectionError>> {
        let mut outcomes: Vec<Option<Result<u64, ProjectionError>>> = vec![None; handles.len()];
        let stale: Vec<usize> = (0..handles.len())
            .filter(|&i| handles[i].is_stale())
            .collect();
        if !stale.is_empty() {
            let group: Vec<&ProjectionHandle> = stale.iter().map(|&i| handles[i]).collect();
            for (&i, rebuilt) in stale
                .iter()
                .zip(ProjectionHandle::rebuild_together(store, &group))
            {
                if let Err(error) = rebuilt {
                    outcomes[i] = Some(Err(error));
                }
            }
        }
        // Writer locks are taken in name order, so concurrent callers cannot deadlock.
        let mut order: Vec<usize> = (0..handles.len())
            .filter(|&i| outcomes[i].is_none())
            .collect();
        order.sort_by_key(|&i| handles[i].name());
        order.dedup_by_key(|i| handles[*i].name());
        loop {
            order.retain(|&i| outcomes[i].is_none());
            if order.is_empty()
                || order
                    .iter()
                    .any(|&i| handles[i].stop.load(Ordering::Acquire))
            {
                break;
            }
            let guards: Vec<_> = order.iter().map(|&i| lock(&handles[i].writer)).collect();
            let generations: Vec<Generation> =
                order.iter().map(|&i| handles[i].generation()).collect();
            let mut lanes = Vec::with_capacity(order.len());
            let mut lane_of = Vec::with_capacity(order.len());
            for (&i, generation) in order.iter().zip(&generations) {
                match Lane::open(handles[i].projection.as_ref(), &generation.tree) {
                    Ok(lane) => {
                        lanes.push(lane);
                        lane_of.push(i);
                    }
                    Err(ChunkFailure { position, error }) => {
                        handles[i].fail(position, error.clone());
                        outcomes[i] = Some(Err(error));
                    }
                }
            }
            let results = apply_chunk_shared(store, &mut lanes, REBUILD_CHUNK, None);
            drop(lanes);
            let mut progressed = false;
            for (i, result) in lane_of.into_iter().zip(results) {
                let handle = handles[i];
                match result {
                    Ok(Some(position)) => {
                        handle.mark_live_if_at_head(store, position);
                        handle.publish(position);
                        progressed = true;
                    }
                    Ok(None) => {}
                    Err(ChunkFailure { position, error }) => {
                        // The good prefix of the chunk may have been committed.
                        if let Ok(done) = checkpoint(&handle.generation().tree) {
                            handle.publish(done);
                        }
                        handle.fail(position, error.clone());
                        outcomes[i] = Some(Err(error));
                    }
                }
            }
            drop(guards);
            if !progressed {
                for &i in &order {
                    handles[i].live.store(true, Ordering::Release);
                }
                break;
            }
        }
        outcomes
            .into_iter()
            .zip(handles)
            .map(|(outcome, handle)| outcome.unwrap_or_else(|| Ok(handle.applied_position())))
            .collect()
    }
}
