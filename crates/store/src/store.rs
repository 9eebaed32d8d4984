//! Owns [`Store`]: opening the database, and the public append, read,
//! subscribe and verify operations that tie the other modules together.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use uuid::Uuid;

use crate::config::StoreConfig;
use crate::disk::DiskSync;
use crate::durable::Durable;
use crate::error::StoreError;
use crate::event::{AppendResult, Direction, ExpectedVersion, NewEvent, RecordedEvent};
use crate::format;
use crate::pg::PgLog;
use crate::read;
use crate::subscription::Subscription;
use crate::trees::Trees;
use crate::upcast::Upcasters;
use crate::validate;
use crate::verify::{self, VerifyReport};
use crate::writer::WriterHandle;

/// The directory, inside the store's, of the log's segment files.
pub const SEGMENTS_DIR: &str = "segments";

/// The durable event store. Cheap to clone; all clones share one database
/// and one writer. The database closes when the last clone (including
/// subscriptions) is dropped.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    // Field order matters for drop: the writer stops (and flushes) before
    // the database handle goes away.
    writer: WriterHandle,
    trees: Trees,
    upcasters: Upcasters,
    durable: Arc<Durable>,
    disk: Arc<DiskSync>,
    /// Set when this store is a node's local copy of a PostgreSQL log
    /// ([`crate::replica`]): appends then go there, and only the follower
    /// writes the local log.
    upstream: OnceLock<PgLog>,
    db: sled::Db,
}

impl Store {
    /// Opens (or creates) the store at `path` with default settings.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_with(StoreConfig::new(path))
    }

    /// Opens (or creates) the store described by `config`.
    ///
    /// Fails with [`StoreError::IncompatibleFormat`] if the store was written
    /// by a newer format; older formats are upgraded in place.
    pub fn open_with(config: StoreConfig) -> Result<Store, StoreError> {
        crate::compact::finish_swap(&config.path)?;
        let db = open_db(&config)?;
        let trees = Trees::open(
            &db,
            &config.path.join(SEGMENTS_DIR),
            config.max_segment_bytes,
        )?;
        format::check_and_upgrade(&trees)?;
        crate::recover::recover(&trees)?;
        db.flush()
            .map_err(|e| StoreError::sled("flush after open", e))?;
        let durable = Arc::new(Durable::new(trees.log.last_position()));
        let disk = Arc::new(DiskSync::open(
            db.clone(),
            trees.log.clone(),
            &config.path,
            config.sync_mode,
        )?);
        let writer = WriterHandle::spawn(
            Arc::clone(&disk),
            trees.clone(),
            Arc::clone(&durable),
            config.max_group_appends,
            config.queue_capacity,
        )?;
        Ok(Store {
            inner: Arc::new(Inner {
                writer,
                trees,
                upcasters: config.upcasters,
                durable,
                disk,
                upstream: OnceLock::new(),
                db,
            }),
        })
    }

    /// The underlying sled database, so projections can keep their own trees
    /// (named outside [`crate::RESERVED_TREES`]) and checkpoints in it and
    /// update them transactionally.
    pub fn db(&self) -> &sled::Db {
        &self.inner.db
    }

    /// The PostgreSQL log this store is a local copy of, if it is one.
    pub fn upstream(&self) -> Option<&PgLog> {
        self.inner.upstream.get()
    }

    /// Makes this store a local copy of `log`: from now on appends go to
    /// PostgreSQL and return once the local copy holds them (see
    /// [`crate::replica`]). Fails if it already follows a log.
    pub(crate) fn set_upstream(&self, log: PgLog) -> Result<(), StoreError> {
        self.inner
            .upstream
            .set(log)
            .map_err(|_| StoreError::Invalid("this store already follows a PostgreSQL log".into()))
    }

    /// The store's trees, for the crate's bulk append and import paths.
    pub(crate) fn trees(&self) -> &Trees {
        &self.inner.trees
    }

    /// The upcasting steps reads apply, for the crate's projection log scans.
    pub(crate) fn upcasters(&self) -> &Upcasters {
        &self.inner.upcasters
    }

    /// Makes everything appended to the log so far durable (what an
    /// acknowledgement needs), for the crate's bulk append and import paths.
    pub(crate) fn sync_to_disk(&self) -> Result<(), StoreError> {
        self.inner.disk.sync()
    }

    /// The durable position, for the crate's bulk append and import paths
    /// (they flush and then advance it).
    pub(crate) fn durable(&self) -> &Durable {
        &self.inner.durable
    }

    /// Appends `events` to `stream` if it is at the `expected` version, and
    /// returns once they are flushed to disk.
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
        if let Some(upstream) = self.inner.upstream.get() {
            return crate::replica::append_upstream(self, upstream, stream, expected, events).await;
        }
        self.inner
            .writer
            .submit(stream.to_owned(), expected, events)
            .await
    }

    /// Up to `limit` events of `stream` from `from_version` (inclusive) in
    /// `direction`, upcast to current schema versions. Backward reads start
    /// at the end with `from_version = u64::MAX`.
    pub fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let events = self.read_stream_raw(stream, from_version, direction, limit)?;
        self.upcast(events)
    }

    /// Like [`read_stream`](Store::read_stream) but with the stored bytes
    /// (no upcasting).
    pub fn read_stream_raw(
        &self,
        stream: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate::stream_id(stream)?;
        read::read_stream(
            &self.inner.trees,
            stream,
            from_version,
            direction,
            limit,
            self.head_position(),
        )
    }

    /// Up to `limit` events from `from_position` (inclusive), optionally only
    /// of the given types, upcast to current schema versions.
    pub fn read_all(
        &self,
        from_position: u64,
        limit: usize,
        types: Option<&[String]>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let events = self.read_all_raw(from_position, limit, types)?;
        self.upcast(events)
    }

    /// Like [`read_all`](Store::read_all) but with the stored bytes (no
    /// upcasting), as export and verification need.
    pub fn read_all_raw(
        &self,
        from_position: u64,
        limit: usize,
        types: Option<&[String]>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let durable = self.head_position();
        let scan = read::scan_log(
            &self.inner.trees,
            from_position,
            durable,
            usize::MAX,
            limit,
            types,
            false,
        )?;
        Ok(scan.events)
    }

    /// The last durable version of `stream`, `None` if it has no events.
    pub fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        validate::stream_id(stream)?;
        read::stream_version(&self.inner.trees, stream, self.head_position())
    }

    /// The durable head: the last position flushed to disk (0 if empty).
    pub fn head_position(&self) -> u64 {
        self.inner.durable.get()
    }

    /// A receiver of the durable head, updated after every group commit.
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.durable.watch()
    }

    /// The durable position of `event_id`, if stored.
    pub fn event_position(&self, event_id: Uuid) -> Result<Option<u64>, StoreError> {
        read::event_position(&self.inner.trees, event_id, self.head_position())
    }

    /// A subscription to the global log from `from_position` (inclusive):
    /// catches up from disk, then follows live appends.
    pub fn subscribe_all(&self, from_position: u64) -> Subscription {
        Subscription::new(self.clone(), from_position)
    }

    /// Checks the whole store: gap-free positions and versions, indexes
    /// agreeing with the log, every hash chain, every envelope decoding.
    /// Problems are reported in the [`VerifyReport`]; `Err` means the check
    /// itself could not run.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        verify::verify_all(&self.inner.trees, self.head_position())
    }

    /// Checks one stream like [`verify`](Store::verify) does.
    pub fn verify_stream(&self, stream: &str) -> Result<VerifyReport, StoreError> {
        validate::stream_id(stream)?;
        verify::verify_stream(&self.inner.trees, stream, self.head_position())
    }

    /// One bounded scan for subscriptions: events in `from..=durable`, at most
    /// `batch` log entries, upcast; with the next position to read.
    pub(crate) fn scan_durable(
        &self,
        from: u64,
        durable: u64,
        batch: usize,
        types: Option<&[String]>,
    ) -> Result<(Vec<RecordedEvent>, u64), StoreError> {
        let scan = read::scan_log(&self.inner.trees, from, durable, batch, batch, types, true)?;
        Ok((self.upcast(scan.events)?, scan.next))
    }

    fn upcast(&self, events: Vec<RecordedEvent>) -> Result<Vec<RecordedEvent>, StoreError> {
        let upcasters = &self.inner.upcasters;
        if upcasters.is_empty() {
            return Ok(events);
        }
        events.into_iter().map(|e| upcasters.apply(e)).collect()
    }
}

/// How long [`open_db`] keeps trying when another handle holds the database's file lock.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Opens the sled database of `config`. sled's background threads may hold the file lock for
/// a moment after the last handle of a closed store is dropped, so a lock held by someone
/// else is retried for up to [`LOCK_WAIT`] before the error is returned (a store served by
/// another process stays locked and fails then).
pub(crate) fn open_db(config: &StoreConfig) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut pause = Duration::from_millis(5);
    loop {
        let opened = sled::Config::new()
            .path(&config.path)
            .cache_capacity(config.cache_capacity_bytes)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(config.background_flush_ms)
            .open();
        match opened {
            Err(e) if crate::error::sled_lock_held(&e) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other.map_err(|e| StoreError::sled("open database", e)),
        }
    }
}
