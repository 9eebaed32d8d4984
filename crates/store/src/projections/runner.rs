//! Owns [`Projections`], the async runner: one tokio task per projection that catches up
//! from its checkpoint (rebuilding first after a version change) and then follows the store's
//! durable head, plus read-your-writes waiting, on-demand rebuilds and checks, and status.
//! [`Projections::rebuild_all`] rebuilds every projection with one shared scan of the log.
//! The blocking work runs on tokio's blocking pool.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::Store;

use super::error::ProjectionError;
use super::handle::ProjectionHandle;
use super::status::{CheckReport, ProjectionStatus, RebuildStats};
use super::{default_projections, default_projections_with_vault, Projection};

/// The running projections of one store. Cheap to clone; the tasks stop when the last clone
/// is dropped (a chunk being applied finishes and commits first).
#[derive(Clone, Debug)]
pub struct Projections {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    handles: Vec<Arc<ProjectionHandle>>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        for handle in &self.handles {
            handle.stop.store(true, Ordering::Release);
        }
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Projections {
    /// Opens and starts the four standard projections (timeline, escalation, metrics,
    /// directory). Must be called inside a tokio runtime.
    pub fn start(store: Store) -> Result<Projections, ProjectionError> {
        Projections::start_with(store, default_projections())
    }

    /// Like [`Projections::start`], for a store whose personal fields may be sealed by
    /// `vault` (see [`default_projections_with_vault`]).
    pub fn start_with_vault(
        store: Store,
        vault: Option<crate::vault::Vault>,
    ) -> Result<Projections, ProjectionError> {
        Projections::start_with(store, default_projections_with_vault(vault))
    }

    /// Opens and starts the given projections (names must be unique).
    pub fn start_with(
        store: Store,
        projections: Vec<Arc<dyn Projection>>,
    ) -> Result<Projections, ProjectionError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ProjectionError::NoRuntime)?;
        let mut handles: Vec<Arc<ProjectionHandle>> = Vec::with_capacity(projections.len());
        for projection in projections {
            if handles.iter().any(|h| h.name() == projection.name()) {
                return Err(ProjectionError::InvalidQuery(format!(
                    "projection `{}` is listed twice",
                    projection.name()
                )));
            }
            handles.push(Arc::new(ProjectionHandle::open(store.db(), projection)?));
        }
        let (shutdown, _) = watch::channel(false);
        let tasks = handles
            .iter()
            .map(|handle| {
                runtime.spawn(follow(
                    store.clone(),
                    Arc::clone(handle),
                    shutdown.subscribe(),
                ))
            })
            .collect();
        Ok(Projections {
            inner: Arc::new(Inner {
                store,
                handles,
                shutdown,
                tasks: Mutex::new(tasks),
            }),
        })
    }

    /// The store the projections follow.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The handle of the projection called `name`.
    pub fn handle(&self, name: &str) -> Result<&Arc<ProjectionHandle>, ProjectionError> {
        self.inner
            .handles
            .iter()
            .find(|h| h.name() == name)
            .ok_or_else(|| ProjectionError::UnknownProjection(name.chars().take(100).collect()))
    }

    /// Runs `query` on the current tree of the projection called `name`.
    pub fn read<R>(
        &self,
        name: &str,
        query: impl FnOnce(&sled::Tree) -> R,
    ) -> Result<R, ProjectionError> {
        Ok(self.handle(name)?.read(query))
    }

    /// The last position the projection called `name` has applied.
    pub fn applied_position(&self, name: &str) -> Result<u64, ProjectionError> {
        Ok(self.handle(name)?.applied_position())
    }

    /// A snapshot of every projection.
    pub fn status(&self) -> Vec<ProjectionStatus> {
        self.inner.handles.iter().map(|h| h.status()).collect()
    }

    /// Waits until every projection has applied `position` (read-your-writes after an append
    /// at that position). Fails with [`ProjectionError::Timeout`] after `timeout`, or with
    /// [`ProjectionError::Stopped`] if a projection stopped on an error before reaching it.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), ProjectionError> {
        let wait = async {
            for handle in &self.inner.handles {
                let mut rx = handle.subscribe();
                loop {
                    if *rx.borrow_and_update() >= position {
                        break;
                    }
                    if let Some((failed_at, error)) = handle.failure() {
                        return Err(ProjectionError::Stopped {
                            name: handle.name().to_owned(),
                            position: failed_at,
                            reason: error.to_string(),
                        });
                    }
                    if rx.changed().await.is_err() {
                        return Err(ProjectionError::Task("projection runner stopped".into()));
                    }
                }
            }
            Ok(())
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(result) => result,
            Err(_) => Err(ProjectionError::Timeout {
                position,
                waited_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Rebuilds the projection called `name` into a new generation and swaps it in; queries
    /// are served by the old generation meanwhile.
    pub async fn rebuild(&self, name: &str) -> Result<RebuildStats, ProjectionError> {
        let handle = Arc::clone(self.handle(name)?);
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || handle.rebuild(&store))
            .await
            .map_err(|e| ProjectionError::Task(e.to_string()))?
    }

    /// Rebuilds every projection, filling the new generations with one shared scan of the
    /// log, and swaps each in once it has caught up; queries are served by the old
    /// generations meanwhile. Returns each projection's name and outcome, in start order.
    pub async fn rebuild_all(
        &self,
    ) -> Result<Vec<(&'static str, Result<RebuildStats, ProjectionError>)>, ProjectionError> {
        let handles = self.inner.handles.clone();
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&ProjectionHandle> = handles.iter().map(Arc::as_ref).collect();
            let names = refs.iter().map(|h| h.name());
            names
                .zip(ProjectionHandle::rebuild_together(&store, &refs))
                .collect()
        })
        .await
        .map_err(|e| ProjectionError::Task(e.to_string()))
    }

    /// Compares the projection called `name` with a from-scratch rebuild at the same position.
    pub async fn check(&self, name: &str) -> Result<CheckReport, ProjectionError> {
        let handle = Arc::clone(self.handle(name)?);
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || handle.check(&store))
            .await
            .map_err(|e| ProjectionError::Task(e.to_string()))?
    }

    /// Clears the failure of the projection called `name` and lets it try again.
    pub fn resume(&self, name: &str) -> Result<(), ProjectionError> {
        let handle = self.handle(name)?;
        handle.clear_failure();
        handle.kick.notify_one();
        Ok(())
    }
}

/// One projection's task: catch up, then follow the head; on failure wait for a kick.
async fn follow(store: Store, handle: Arc<ProjectionHandle>, mut shutdown: watch::Receiver<bool>) {
    let mut head = store.watch_head();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if handle.failure().is_none() {
            let (h, s) = (Arc::clone(&handle), store.clone());
            if let Err(e) = tokio::task::spawn_blocking(move || h.catch_up(&s)).await {
                handle.fail(
                    handle.applied_position().saturating_add(1),
                    ProjectionError::Task(e.to_string()),
                );
            }
        }
        let applied = handle.applied_position();
        let failed = handle.failure().is_some();
        tokio::select! {
            changed = head.wait_for(|h| *h > applied), if !failed => {
                if changed.is_err() {
                    return;
                }
            }
            _ = handle.kick.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}
