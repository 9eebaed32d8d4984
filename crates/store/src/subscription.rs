//! Owns [`Subscription`]: a cursor over the global log that catches up from
//! disk and then follows live appends.
//!
//! The subscriber always reads from disk, in bounded batches, from its own
//! cursor, and waits on the durable-position watch once caught up. Catch-up
//! and live following are therefore the same code path, so there is no gap
//! and no duplicate at the switch; a slow subscriber never slows writers and
//! holds at most one batch in memory.

use std::collections::VecDeque;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::store::Store;

/// Events read from disk per batch.
pub const DEFAULT_BATCH: usize = 256;

/// A live, ordered feed of the global log from a starting position.
#[derive(Debug)]
pub struct Subscription {
    store: Store,
    next_position: u64,
    types: Option<Vec<String>>,
    batch: usize,
    buffer: VecDeque<RecordedEvent>,
    head: watch::Receiver<u64>,
}

impl Subscription {
    pub(crate) fn new(store: Store, from_position: u64) -> Subscription {
        let head = store.watch_head();
        Subscription {
            store,
            next_position: from_position.max(1),
            types: None,
            batch: DEFAULT_BATCH,
            buffer: VecDeque::new(),
            head,
        }
    }

    /// Only yields events whose type is in `types`.
    pub fn with_types(mut self, types: Vec<String>) -> Subscription {
        self.types = Some(types);
        self
    }

    /// Reads `batch` log entries per disk read (at least 1).
    pub fn with_batch_size(mut self, batch: usize) -> Subscription {
        self.batch = batch.max(1);
        self
    }

    /// The position of the next event this subscription can yield:
    /// everything before it has been yielded or filtered out.
    pub fn position(&self) -> u64 {
        self.buffer
            .front()
            .map_or(self.next_position, |e| e.position)
    }

    /// The next event, waiting for new appends when caught up. `None` once
    /// the store has shut down. After an error the subscription stays where
    /// it was, so calling again retries the same read.
    pub async fn next(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some(Ok(event));
            }
            match self.fill().await? {
                Ok(()) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The next non-empty batch of events (at most the batch size), waiting
    /// for new appends when caught up. `None` once the store has shut down.
    pub async fn next_batch(&mut self) -> Option<Result<Vec<RecordedEvent>, StoreError>> {
        loop {
            if !self.buffer.is_empty() {
                return Some(Ok(self.buffer.drain(..).collect()));
            }
            match self.fill().await? {
                Ok(()) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Reads the next batch from disk into the buffer, first waiting for the
    /// durable position to pass the cursor. `None` when the store is gone.
    async fn fill(&mut self) -> Option<Result<(), StoreError>> {
        loop {
            let durable = *self.head.borrow_and_update();
            if self.next_position <= durable {
                let scan = self.store.scan_durable(
                    self.next_position,
                    durable,
                    self.batch,
                    self.types.as_deref(),
                );
                return Some(scan.map(|(events, next)| {
                    self.next_position = next;
                    self.buffer.extend(events);
                }));
            }
            if self.head.changed().await.is_err() {
                return None;
            }
        }
    }
}
