//! Owns [`PgLog`], the PostgreSQL backend of the event log: the same
//! envelope, hash chains, optimistic concurrency and idempotency as the sled
//! [`Store`](crate::Store), behind the backend-neutral [`EventLog`] and
//! [`EventSubscription`] traits.
//!
//! - Connections come from a `deadpool-postgres` pool; every connection runs
//!   with `synchronous_commit = on`, and an append is acknowledged only after
//!   its commit returned.
//! - The schema is versioned and migrated on connect ([`schema`]).
//! - Appends are serialised on a one-row log head (see [`append`] for why
//!   this makes global positions gap-free for readers and what it costs);
//!   a node groups concurrent appends into one transaction ([`writer`]).
//! - Subscriptions poll the log and are woken early by `LISTEN/NOTIFY`
//!   ([`subscription`]); a lost notification only delays an event by one
//!   poll interval.
//! - [`PgLog::verify`] re-checks positions, versions and every hash chain
//!   ([`verify`]).

mod append;
mod import;
mod rows;
pub mod schema;
pub mod shared;
pub mod subscription;
mod verify;
mod writer;

use std::future::poll_fn;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::error::StoreError;
use crate::event::{AppendResult, Direction, ExpectedVersion, NewEvent, RecordedEvent};
use crate::event_log::EventLog;
use crate::upcast::Upcasters;
use crate::validate;
use crate::verify::VerifyReport;

pub use subscription::PgSubscription;

/// The `LISTEN/NOTIFY` channel appends notify on (payload: the new head).
pub const NOTIFY_CHANNEL: &str = "sijil_log";

/// How to reach PostgreSQL and how the backend behaves. Its `Debug` output
/// leaves out the connection string, which may hold a password.
#[derive(Clone)]
pub struct PgConfig {
    /// A libpq-style connection string or `postgres://` URL.
    pub url: String,
    /// Most pooled connections (at least 1).
    pub pool_size: usize,
    /// How often a caught-up subscription re-reads the head when no
    /// notification arrives.
    pub poll_interval: Duration,
    /// Payload migrations applied on read.
    pub upcasters: Upcasters,
}

impl PgConfig {
    /// Defaults for `url`: 16 connections, 500 ms poll fallback, no
    /// upcasters.
    pub fn new(url: impl Into<String>) -> PgConfig {
        PgConfig {
            url: url.into(),
            pool_size: 16,
            poll_interval: Duration::from_millis(500),
            upcasters: Upcasters::new(),
        }
    }
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &"<redacted>")
            .field("pool_size", &self.pool_size)
            .field("poll_interval", &self.poll_interval)
            .field("upcasters", &self.upcasters)
            .finish()
    }
}

/// The PostgreSQL event log. Cheap to clone; clones share one pool and one
/// notification listener.
#[derive(Clone, Debug)]
pub struct PgLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    upcasters: Upcasters,
    poll_interval: Duration,
    /// Bumped on every local commit and every notification.
    wake: watch::Sender<u64>,
    /// `true` once [`PgLog::close`] ran.
    closed: watch::Sender<bool>,
    listener: JoinHandle<()>,
    writer: writer::WriterHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Wraps a PostgreSQL error that happened during `operation`.
pub(crate) fn pg_err(operation: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::Io {
        operation,
        detail: match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        },
    }
}

/// Wraps a failure to get a pooled connection.
pub(crate) fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Closed => StoreError::Closed,
        PoolError::Backend(e) => pg_err("connect")(e),
        other => StoreError::Io {
            operation: "get connection",
            detail: other.to_string(),
        },
    }
}

impl PgLog {
    /// Connects with default settings and migrates the schema.
    pub async fn connect(url: &str) -> Result<PgLog, StoreError> {
        PgLog::connect_with(PgConfig::new(url)).await
    }

    /// Connects as `config` says, migrates the schema, and starts the
    /// notification listener.
    pub async fn connect_with(config: PgConfig) -> Result<PgLog, StoreError> {
        let mut pg = tokio_postgres::Config::from_str(&config.url)
            .map_err(|e| StoreError::Invalid(format!("PostgreSQL connection string: {e}")))?;
        // Acknowledge an append only once its commit is flushed (and, with a
        // synchronous standby, replicated): never lose an acknowledged event.
        let options = match pg.get_options() {
            Some(existing) => format!("{existing} -c synchronous_commit=on"),
            None => "-c synchronous_commit=on".to_owned(),
        };
        pg.options(&options);
        if pg.get_application_name().is_none() {
            pg.application_name("sijil");
        }

        let (mut client, connection) = pg.connect(NoTls).await.map_err(pg_err("connect"))?;
        let driver = tokio::spawn(async move {
            // The connection ends when `client` is dropped below.
            let _ = connection.await;
        });
        schema::migrate(&mut client).await?;
        drop(client);
        let _ = driver.await;

        let manager = Manager::from_config(
            pg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .build()
            .map_err(|e| StoreError::Io {
                operation: "build connection pool",
                detail: e.to_string(),
            })?;

        let (wake, _) = watch::channel(0);
        let (closed, _) = watch::channel(false);
        let listener = tokio::spawn(listen(pg, wake.clone(), closed.subscribe()));
        let writer = writer::WriterHandle::spawn(pool.clone(), wake.clone());
        Ok(PgLog {
            inner: Arc::new(Inner {
                pool,
                upcasters: config.upcasters,
                poll_interval: config.poll_interval,
                wake,
                closed,
                listener,
                writer,
            }),
        })
    }

    /// Stops accepting work: appends and reads fail with
    /// [`StoreError::Closed`], subscriptions end, connections are closed.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
        self.inner.pool.close();
        self.inner.listener.abort();
    }

    /// Whether [`close`](PgLog::close) ran.
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    /// Appends `events` to `stream` if it is at `expected`, and returns once
    /// the transaction committed.
    ///
    /// Re-appending a batch whose event ids are all stored, identically and
    /// in the same stream, writes nothing and returns the original result.
    pub async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        validate::batch(stream, &events)?;
        if self.is_closed() {
            return Err(StoreError::Closed);
        }
        self.inner
            .writer
            .submit(append::Append {
                stream: stream.to_owned(),
                expected,
                events,
            })
            .await
    }

    /// Up to `limit` events from `from_position`, at current schema versions.
    pub async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
        types: Option<&[String]>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let events = self.scan(from_position, u64::MAX, limit, types).await?;
        self.upcast_all(events)
    }

    /// Up to `limit` stored events with `from <= position <= upto`, as
    /// stored (no upcasting).
    pub async fn read_all_raw(
        &self,
        from: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.scan(from, upto, limit, None).await
    }

    /// Like [`read_all_raw`](PgLog::read_all_raw), optionally filtered by
    /// type, for subscriptions (which upcast after advancing their cursor).
    pub(crate) async fn read_all_raw_filtered(
        &self,
        from: u64,
        upto: u64,
        limit: usize,
        types: Option<&[String]>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.scan(from, upto, limit, types).await
    }

    async fn scan(
        &self,
        from: u64,
        upto: u64,
        limit: usize,
        types: Option<&[String]>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 || from > upto {
            return Ok(Vec::new());
        }
        let from = clamp(from.max(1));
        let upto = clamp(upto);
        let limit = clamp(limit as u64);
        let client = self.client().await?;
        let rows = match types {
            None => {
                let statement = client
                    .prepare_cached(&format!(
                        "SELECT {} FROM sijil_events WHERE position >= $1 AND position <= $2 \
                         ORDER BY position LIMIT $3",
                        rows::COLUMNS
                    ))
                    .await
                    .map_err(pg_err("prepare read log"))?;
                client.query(&statement, &[&from, &upto, &limit]).await
            }
            Some(types) => {
                let statement = client
                    .prepare_cached(&format!(
                        "SELECT {} FROM sijil_events WHERE position >= $1 AND position <= $2 \
                         AND event_type = ANY($4) ORDER BY position LIMIT $3",
                        rows::COLUMNS
                    ))
                    .await
                    .map_err(pg_err("prepare read log"))?;
                client
                    .query(&statement, &[&from, &upto, &limit, &types])
                    .await
            }
        }
        .map_err(pg_err("read log"))?;
        rows.iter().map(rows::decode).collect()
    }

    /// Up to `limit` events of `stream` from `from_version` in `direction`,
    /// at current schema versions.
    pub async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate::stream_id(stream)?;
        if limit == 0 || (direction == Direction::Backward && from_version == 0) {
            return Ok(Vec::new());
        }
        let version = clamp(from_version);
        let limit = clamp(limit as u64);
        let sql = match direction {
            Direction::Forward => format!(
                "SELECT {} FROM sijil_events WHERE stream_id = $1 AND version >= $2 \
                 ORDER BY version LIMIT $3",
                rows::COLUMNS
            ),
            Direction::Backward => format!(
                "SELECT {} FROM sijil_events WHERE stream_id = $1 AND version <= $2 \
                 ORDER BY version DESC LIMIT $3",
                rows::COLUMNS
            ),
        };
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&sql)
            .await
            .map_err(pg_err("prepare read stream"))?;
        let rows = client
            .query(&statement, &[&stream, &version, &limit])
            .await
            .map_err(pg_err("read stream"))?;
        let events = rows.iter().map(rows::decode).collect::<Result<_, _>>()?;
        self.upcast_all(events)
    }

    /// The last version of `stream`, `None` if it has no events.
    pub async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        validate::stream_id(stream)?;
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT MAX(version) FROM sijil_events WHERE stream_id = $1")
            .await
            .map_err(pg_err("prepare stream version"))?;
        let row = client
            .query_one(&statement, &[&stream])
            .await
            .map_err(pg_err("read stream version"))?;
        rows::get::<Option<i64>>(&row, 0, 0)?
            .map(|v| rows::non_negative(v, 0, "stream version"))
            .transpose()
    }

    /// The last committed global position (0 if the log is empty).
    pub async fn head(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT position FROM sijil_log_head WHERE id")
            .await
            .map_err(pg_err("prepare read head"))?;
        let row = client
            .query_one(&statement, &[])
            .await
            .map_err(pg_err("read head"))?;
        rows::non_negative(rows::get(&row, 0, 0)?, 0, "log head")
    }

    /// A feed of the log from `from_position` (inclusive): catch-up, then
    /// live.
    pub fn subscribe_all(&self, from_position: u64) -> PgSubscription {
        PgSubscription::new(self.clone(), from_position)
    }

    /// Re-checks the whole log in one consistent snapshot: positions 1..=head
    /// without gaps, versions 1, 2, 3 per stream, every `prev_hash` and hash.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut client = self.client().await?;
        verify::verify_all(&mut client).await
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        if self.is_closed() {
            return Err(StoreError::Closed);
        }
        self.inner.pool.get().await.map_err(pool_err)
    }

    pub(crate) fn upcast_all(
        &self,
        events: Vec<RecordedEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if self.inner.upcasters.is_empty() {
            return Ok(events);
        }
        events
            .into_iter()
            .map(|e| self.inner.upcasters.apply(e))
            .collect()
    }

    /// A receiver bumped on every commit of this node and every notification from another
    /// node (its value is the newest head heard of), so a follower knows when to read again.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.wake.subscribe()
    }

    pub(crate) fn wake(&self) -> watch::Receiver<u64> {
        self.inner.wake.subscribe()
    }

    pub(crate) fn closed(&self) -> watch::Receiver<bool> {
        self.inner.closed.subscribe()
    }

    /// How often a caught-up reader re-reads the head when no notification arrives.
    pub fn poll_interval(&self) -> Duration {
        self.inner.poll_interval
    }
}

/// A `u64` position, version or count as `bigint`, saturating at
/// `i64::MAX` (bounds only: no stored value can be larger).
fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Keeps one dedicated connection listening on [`NOTIFY_CHANNEL`] and bumps
/// `wake` on every notification, reconnecting after failures, until closed.
async fn listen(
    pg: tokio_postgres::Config,
    wake: watch::Sender<u64>,
    mut closed: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    while !*closed.borrow() {
        let outcome = tokio::select! {
            outcome = listen_once(&pg, &wake) => outcome,
            _ = closed.changed() => return,
        };
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "PostgreSQL notification listener failed; subscriptions poll until it reconnects");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = closed.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One listening connection, until it fails.
async fn listen_once(
    pg: &tokio_postgres::Config,
    wake: &watch::Sender<u64>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = pg.connect(NoTls).await?;
    let drive = async {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    // `send_modify` wakes every receiver even if the value
                    // stays the same (a malformed payload still wakes).
                    let head = n.payload().parse::<u64>().unwrap_or(0);
                    wake.send_modify(|h| *h = (*h).max(head));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    };
    let subscribe = async {
        client
            .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
            .await?;
        // Anything committed while we were not listening: wake everyone once.
        wake.send_modify(|_| {});
        std::future::pending::<Result<(), tokio_postgres::Error>>().await
    };
    tokio::select! {
        outcome = drive => outcome,
        outcome = subscribe => outcome,
    }
}

impl EventLog for PgLog {
    type Subscription = PgSubscription;

    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl std::future::Future<Output = Result<AppendResult, StoreError>> + Send {
        PgLog::append(self, stream, expected, events)
    }

    fn read_all(
        &self,
        from_position: u64,
        limit: usize,
        types: Option<&[String]>,
    ) -> impl std::future::Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        PgLog::read_all(self, from_position, limit, types)
    }

    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        PgLog::read_stream(self, stream, from_version, direction, limit)
    }

    fn stream_version(
        &self,
        stream: &str,
    ) -> impl std::future::Future<Output = Result<Option<u64>, StoreError>> + Send {
        PgLog::stream_version(self, stream)
    }

    fn head(&self) -> impl std::future::Future<Output = Result<u64, StoreError>> + Send {
        PgLog::head(self)
    }

    fn subscribe(&self, from_position: u64, types: Option<Vec<String>>) -> PgSubscription {
        let subscription = self.subscribe_all(from_position);
        match types {
            Some(types) => subscription.with_types(types),
            None => subscription,
        }
    }
}
