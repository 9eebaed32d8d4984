//! Owns [`PgSubscription`]: a cursor over the PostgreSQL log that catches up
//! in bounded batches and then follows new commits.
//!
//! The cursor always reads the committed head first and then only positions
//! up to it. Because appends are serialised on the head row, everything up
//! to the head is committed and visible, so the cursor can move past it
//! without ever skipping an event. When caught up it waits for a local
//! commit or a `NOTIFY`, or at most one poll interval.

use std::collections::VecDeque;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::event_log::EventSubscription;
use crate::subscription::DEFAULT_BATCH;

use super::PgLog;

/// A live, ordered feed of the PostgreSQL log from a starting position.
#[derive(Debug)]
pub struct PgSubscription {
    log: PgLog,
    next_position: u64,
    types: Option<Vec<String>>,
    batch: usize,
    buffer: VecDeque<RecordedEvent>,
    wake: watch::Receiver<u64>,
    closed: watch::Receiver<bool>,
}

impl PgSubscription {
    pub(crate) fn new(log: PgLog, from_position: u64) -> PgSubscription {
        let wake = log.wake();
        let closed = log.closed();
        PgSubscription {
            log,
            next_position: from_position.max(1),
            types: None,
            batch: DEFAULT_BATCH,
            buffer: VecDeque::new(),
            wake,
            closed,
        }
    }

    /// Only yields events whose type is in `types`.
    pub fn with_types(mut self, types: Vec<String>) -> PgSubscription {
        self.types = Some(types);
        self
    }

    /// Reads `batch` events per query (at least 1).
    pub fn with_batch_size(mut self, batch: usize) -> PgSubscription {
        self.batch = batch.max(1);
        self
    }

    /// The position of the next event this subscription can yield.
    pub fn position(&self) -> u64 {
        self.buffer
            .front()
            .map_or(self.next_position, |e| e.position)
    }

    /// The next event, waiting for new commits when caught up. `None` once
    /// the log is closed. After an error the cursor stays where it was.
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

    /// Reads the next batch into the buffer, waiting while caught up.
    async fn fill(&mut self) -> Option<Result<(), StoreError>> {
        loop {
            if *self.closed.borrow() {
                return None;
            }
            // Mark the wake signal seen *before* reading the head, so a
            // commit after the read still wakes the wait below.
            self.wake.borrow_and_update();
            let head = match self.log.head().await {
                Ok(head) => head,
                Err(StoreError::Closed) => return None,
                Err(e) => return Some(Err(e)),
            };
            if self.next_position <= head {
                return Some(self.read_upto(head).await);
            }
            let poll = tokio::time::sleep(self.log.poll_interval());
            tokio::select! {
                _ = self.wake.changed() => {}
                _ = self.closed.changed() => {}
                _ = poll => {}
            }
        }
    }

    /// One batch from the cursor to at most `head`.
    async fn read_upto(&mut self, head: u64) -> Result<(), StoreError> {
        let mut events = self
            .log
            .read_all_raw_filtered(self.next_position, head, self.batch, self.types.as_deref())
            .await?;
        let next = if events.len() >= self.batch {
            // A full batch: more may follow before the head.
            events
                .last()
                .map_or(head + 1, |e| e.position.saturating_add(1))
        } else {
            // Fewer than asked: nothing else (of these types) up to the head.
            head + 1
        };
        events = self.log.upcast_all(events)?;
        self.next_position = next;
        self.buffer.extend(events);
        Ok(())
    }
}

impl EventSubscription for PgSubscription {
    fn next(
        &mut self,
    ) -> impl std::future::Future<Output = Option<Result<RecordedEvent, StoreError>>> + Send {
        PgSubscription::next(self)
    }
}
