//! Owns the backend-neutral [`EventLog`] and [`EventSubscription`] traits,
//! the surface the rest of sijil programs against, and their implementation
//! for the sled-backed [`Store`]. A PostgreSQL backend can implement the same
//! traits later.

use std::future::Future;

use crate::error::StoreError;
use crate::event::{AppendResult, Direction, ExpectedVersion, NewEvent, RecordedEvent};
use crate::store::Store;
use crate::subscription::Subscription;

/// A durable, ordered, append-only log of events grouped in streams.
pub trait EventLog: Clone + Send + Sync + 'static {
    /// The live feed type returned by [`subscribe_all`](EventLog::subscribe_all).
    type Subscription: EventSubscription;

    /// Appends a batch to one stream if it is at `expected`; resolves once
    /// the batch is durable.
    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send;

    /// Up to `limit` events from `from_position` (inclusive), optionally
    /// filtered by type, at current schema versions.
    fn read_all(
        &self,
        from_position: u64,
        limit: usize,
        types: Option<&[String]>,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Up to `limit` events of one stream from `from_version` in `direction`,
    /// at current schema versions.
    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// The last durable version of a stream, `None` if it has no events.
    fn stream_version(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// The last durable global position (0 if empty).
    fn head(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// A feed of the global log from `from_position` (inclusive), optionally
    /// filtered by type: catch-up first, then live.
    fn subscribe(&self, from_position: u64, types: Option<Vec<String>>) -> Self::Subscription;
}

/// A feed of events in global position order.
pub trait EventSubscription: Send {
    /// The next event; `None` once the log is shut down.
    fn next(&mut self) -> impl Future<Output = Option<Result<RecordedEvent, StoreError>>> + Send;
}

impl EventLog for Store {
    type Subscription = Subscription;

    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send {
        Store::append(self, stream, expected, events)
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
        types: Option<&[String]>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Store::read_all(self, from_position, limit, types)
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Store::read_stream(self, stream, from_version, direction, limit)
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        Store::stream_version(self, stream)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.head_position())
    }

    fn subscribe(&self, from_position: u64, types: Option<Vec<String>>) -> Subscription {
        let subscription = self.subscribe_all(from_position);
        match types {
            Some(types) => subscription.with_types(types),
            None => subscription,
        }
    }
}

impl EventSubscription for Subscription {
    fn next(&mut self) -> impl Future<Output = Option<Result<RecordedEvent, StoreError>>> + Send {
        Subscription::next(self)
    }
}
