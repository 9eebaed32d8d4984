//! Owns a node's local copy of a PostgreSQL log: the follower that keeps a sled [`Store`]
//! identical to the log in PostgreSQL, and the append path of such a store.
//!
//! With `sijil serve --store postgres://…` the PostgreSQL log is the one source of truth and
//! every node keeps, in its own sled database, a copy of it (same positions, versions, times
//! and hashes) next to its projections. Everything that reads the log — projections, the
//! gateway, verify, export — reads the local copy through the ordinary [`Store`] API, so it
//! works unchanged.
//!
//! - **Writes** ([`Store::append`] on a following store) go to PostgreSQL; the result is
//!   returned once PostgreSQL committed (acknowledged, durable) *and* the local copy holds
//!   the events (bounded by [`ACK_WAIT`]), so a node reads its own writes. A version conflict
//!   is returned at once; the command bus reads the winner's events from PostgreSQL itself
//!   before it decides again.
//! - **Following**: the follower reads the log after the local head in batches and writes
//!   each batch with [`Store::import_events`] (which re-checks positions, versions and hash
//!   chains and flushes). It is woken by `LISTEN/NOTIFY` ([`PgLog::changes`]) and polls as a
//!   fallback, and retries with a pause when PostgreSQL is unreachable (a failover).
//!   PostgreSQL assigns positions serially under one row lock, so a reader can never see
//!   position `n + 1` before `n` and the follower never skips an event.
//! - **Start**: [`Replica::start`] refuses a local copy that is not a prefix of the
//!   PostgreSQL log ([`ReplicaError::Diverged`]) and reports one that is ahead of it
//!   ([`ReplicaError::LocalAhead`]; [`upload`] sends the missing tail, e.g. after
//!   `serve --demo` filled the local store, or to move a sled store to PostgreSQL).
//! - **Hooks** ([`ReplicaHook`]): the gateway uses them to fetch the data keys of customers
//!   registered on other nodes before their events land, and to destroy the keys of customers
//!   forgotten on other nodes right after.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::StoreError;
use crate::event::{AppendResult, ExpectedVersion, NewEvent, RecordedEvent};
use crate::import::ImportError;
use crate::pg::PgLog;
use crate::store::Store;

/// How long an append waits for the local copy to hold what PostgreSQL acknowledged.
pub const ACK_WAIT: Duration = Duration::from_secs(10);
/// Events read from PostgreSQL per batch.
pub const BATCH: usize = 2_000;
/// Pause before retrying after PostgreSQL failed.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// A boxed future, for the object-safe [`ReplicaHook`].
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Work a node does around each batch the follower writes.
pub trait ReplicaHook: Send + Sync + 'static {
    /// Before `events` are written to the local copy; an error leaves the batch unwritten
    /// (the follower retries it).
    fn before<'a>(&'a self, events: &'a [RecordedEvent]) -> HookFuture<'a>;
    /// After `events` are durable in the local copy; an error is logged.
    fn after<'a>(&'a self, events: &'a [RecordedEvent]) -> HookFuture<'a>;
}

/// Why a node's local copy cannot follow the PostgreSQL log.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The local copy holds a different event than PostgreSQL at `position`.
    #[error("this node's local copy differs from the PostgreSQL log at position {position}: {detail}; move the data directory away and start again to copy the log afresh")]
    Diverged { position: u64, detail: String },
    /// The local copy holds events PostgreSQL does not (a prefix of them matches).
    #[error("this node's local copy holds positions {} to {local} that the PostgreSQL log (head {upstream}) does not", upstream + 1)]
    LocalAhead { local: u64, upstream: u64 },
    /// Writing to PostgreSQL refused the local log.
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ReplicaError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ReplicaError::Diverged { .. } => "REPLICA_DIVERGED",
            ReplicaError::LocalAhead { .. } => "REPLICA_AHEAD",
            ReplicaError::Import(e) => e.code(),
            ReplicaError::Store(e) => e.code(),
        }
    }
}

/// How the follower stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The newest PostgreSQL head the follower has seen.
    pub upstream_head: u64,
    /// The local copy's durable head.
    pub local_head: u64,
    /// Failed reads or writes so far.
    pub errors: u64,
    /// The last failure, cleared by the next batch that lands.
    pub last_error: Option<String>,
}

/// A running follower. Dropping it stops following (the store keeps sending appends to
/// PostgreSQL, but they then wait [`ACK_WAIT`] for a copy that no longer comes).
pub struct Replica {
    task: JoinHandle<()>,
    status: watch::Receiver<ReplicaStatus>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Replica {
    /// Makes `store` a local copy of `log` and starts following it. The local copy must be a
    /// prefix of the log (an empty store always is); see the module docs.
    pub async fn start(
        store: Store,
        log: PgLog,
        hook: Option<Arc<dyn ReplicaHook>>,
    ) -> Result<Replica, ReplicaError> {
        let upstream = log.head().await?;
        let local = store.head_position();
        check_prefix(&store, &log, local, upstream).await?;
        if local > upstream {
            return Err(ReplicaError::LocalAhead { local, upstream });
        }
        store.set_upstream(log.clone())?;
        let (tx, status) = watch::channel(ReplicaStatus {
            upstream_head: upstream,
            local_head: local,
            ..ReplicaStatus::default()
        });
        let task = tokio::spawn(follow(store, log, hook, tx));
        Ok(Replica { task, status })
    }

    /// The follower's state, updated after every batch and failure.
    pub fn status(&self) -> watch::Receiver<ReplicaStatus> {
        self.status.clone()
    }
}

/// Checks that the local copy in `store` and the log (whose head is `upstream`) hold the
/// same event at the last position both have ([`ReplicaError::Diverged`] otherwise).
pub async fn check_copy(store: &Store, log: &PgLog, upstream: u64) -> Result<(), ReplicaError> {
    check_prefix(store, log, store.head_position(), upstream).await
}

/// Refuses a local copy whose last shared position differs from PostgreSQL's. Positions
/// and hash chains below it are then the same too: each event's hash covers its stream's
/// previous one, and [`Store::import_events`] only ever wrote events PostgreSQL served.
async fn check_prefix(
    store: &Store,
    log: &PgLog,
    local: u64,
    upstream: u64,
) -> Result<(), ReplicaError> {
    let shared = local.min(upstream);
    if shared == 0 {
        return Ok(());
    }
    let mine = store.read_all_raw(shared, 1, None)?;
    let theirs = log.read_all_raw(shared, shared, 1).await?;
    match (mine.first(), theirs.first()) {
        (Some(a), Some(b)) if a == b => Ok(()),
        (Some(a), Some(b)) => Err(ReplicaError::Diverged {
            position: shared,
            detail: format!(
                "here event {} of `{}`, there event {} of `{}`",
                a.event_id, a.stream_id, b.event_id, b.stream_id
            ),
        }),
        _ => Err(ReplicaError::Diverged {
            position: shared,
            detail: "the event is missing on one side".to_owned(),
        }),
    }
}

/// Sends the events the local store holds beyond PostgreSQL's head to PostgreSQL, as they
/// are (positions, times and hashes kept), in chunks; returns how many it wrote. The local
/// store must not follow a log yet and PostgreSQL's log must be a prefix of it.
pub async fn upload(store: &Store, log: &PgLog) -> Result<u64, ReplicaError> {
    let mut upstream = log.head().await?;
    let local = store.head_position();
    check_prefix(store, log, local, upstream).await?;
    let mut written = 0;
    while upstream < local {
        let chunk = store.read_all_raw(upstream + 1, 5_000, None)?;
        let Some(last) = chunk.last() else { break };
        let last = last.position;
        written += log.import_events(&chunk).await?;
        upstream = last;
    }
    Ok(written)
}

/// Appends through PostgreSQL for a store that follows it; see the module docs.
pub(crate) async fn append_upstream(
    store: &Store,
    log: &PgLog,
    stream: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<AppendResult, StoreError> {
    let result = log.append(stream, expected, events).await?;
    if !copied(store, result.last_position, ACK_WAIT).await {
        tracing::warn!(
            position = result.last_position,
            "acknowledged by PostgreSQL, but the local copy has not caught up yet"
        );
    }
    Ok(result)
}

/// Waits (at most `limit`) until the local copy in `store` holds `position`; `false` on
/// time-out.
pub async fn copied(store: &Store, position: u64, limit: Duration) -> bool {
    let mut head = store.watch_head();
    tokio::time::timeout(limit, head.wait_for(|h| *h >= position))
        .await
        .is_ok_and(|r| r.is_ok())
}

async fn follow(
    store: Store,
    log: PgLog,
    hook: Option<Arc<dyn ReplicaHook>>,
    status: watch::Sender<ReplicaStatus>,
) {
    let mut changes = log.changes();
    let poll = log.poll_interval();
    loop {
        if log.is_closed() {
            return;
        }
        changes.borrow_and_update();
        let from = store.head_position() + 1;
        match step(&store, &log, hook.as_deref(), from).await {
            Ok(0) => {
                if let Ok(head) = log.head().await {
                    status.send_modify(|s| s.upstream_head = head);
                    if head >= from {
                        continue;
                    }
                }
                tokio::select! {
                    _ = changes.changed() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
            Ok(_) => {
                let local = store.head_position();
                status.send_modify(|s| {
                    s.local_head = local;
                    s.upstream_head = s.upstream_head.max(local);
                    s.last_error = None;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, code = e.code(), from, "following the PostgreSQL log failed; retrying");
                status.send_modify(|s| {
                    s.errors += 1;
                    s.last_error = Some(e.to_string());
                });
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// Reads one batch from `from` and writes it locally; returns how many events it held.
async fn step(
    store: &Store,
    log: &PgLog,
    hook: Option<&dyn ReplicaHook>,
    from: u64,
) -> Result<usize, ReplicaError> {
    let batch = log.read_all_raw(from, u64::MAX, BATCH).await?;
    if batch.is_empty() {
        return Ok(0);
    }
    if let Some(hook) = hook {
        hook.before(&batch).await?;
    }
    let local = store.clone();
    let batch = Arc::new(batch);
    let events = Arc::clone(&batch);
    tokio::task::spawn_blocking(move || local.import_events(&events))
        .await
        .map_err(|e| StoreError::Io {
            operation: "write the local copy",
            detail: e.to_string(),
        })??;
    if let Some(hook) = hook {
        if let Err(e) = hook.after(&batch).await {
            tracing::error!(error = %e, "a node's work after copying events failed");
        }
    }
    Ok(batch.len())
}
