//! Owns the single writer thread and group commit: it drains queued
//! appends, applies them in one transaction, syncs to disk once for the whole
//! group, advances the durable position, and only then answers every caller.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use crate::apply::{apply_group, Append, Applied, Outcome};
use crate::disk::DiskSync;
use crate::durable::Durable;
use crate::error::StoreError;
use crate::event::{AppendResult, ExpectedVersion, NewEvent};
use crate::trees::Trees;

/// One queued append and where to send its outcome.
struct Request {
    stream: String,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// The caller side of the writer. Dropping it stops the writer after the
/// queued appends are done and waits for the thread to exit.
#[derive(Debug)]
pub struct WriterHandle {
    queue: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    /// Starts the writer thread.
    pub fn spawn(
        disk: Arc<DiskSync>,
        trees: Trees,
        durable: Arc<Durable>,
        max_group: usize,
        queue_capacity: usize,
    ) -> Result<WriterHandle, StoreError> {
        let (queue, receiver) = mpsc::channel(queue_capacity.max(1));
        let writer = Writer {
            disk,
            trees,
            durable,
            max_group: max_group.max(1),
            failed: None,
        };
        let thread = std::thread::Builder::new()
            .name("sijil-store-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::Io {
                operation: "start writer thread",
                detail: e.to_string(),
            })?;
        Ok(WriterHandle {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues an append and waits until it is durable (or failed).
    pub async fn submit(
        &self,
        stream: String,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let queue = self.queue.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        let request = Request {
            stream,
            expected,
            events,
            reply,
        };
        queue.send(request).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            // A panicking writer already answered nobody; nothing to add.
            let _ = thread.join();
        }
    }
}

/// The writer thread's state.
struct Writer {
    disk: Arc<DiskSync>,
    trees: Trees,
    durable: Arc<Durable>,
    max_group: usize,
    /// Set when a flush failed: from then on nothing is acknowledged, since
    /// what reached the disk is unknown. Reopening the store recovers.
    failed: Option<String>,
}

impl Writer {
    fn run(mut self, mut receiver: mpsc::Receiver<Request>) {
        let mut group = Vec::with_capacity(self.max_group);
        while let Some(first) = receiver.blocking_recv() {
            group.push(first);
            while group.len() < self.max_group {
                match receiver.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            self.commit_group(&mut group);
        }
        if self.failed.is_none() {
            if let Err(e) = self.disk.sync() {
                tracing::error!(error = %e, "final flush of the event store failed");
            }
        }
    }

    /// Applies, flushes and answers one group of appends.
    fn commit_group(&mut self, group: &mut Vec<Request>) {
        if let Some(reason) = &self.failed {
            for request in group.drain(..) {
                let _ = request.reply.send(Err(failed_error(reason)));
            }
            return;
        }
        let recorded_at = now_millis();
        let appends: Vec<Append<'_>> = group
            .iter()
            .map(|request| Append {
                stream: &request.stream,
                expected: request.expected,
                events: &request.events,
            })
            .collect();
        // One transaction for the whole group; if it fails (storage error or
        // corruption), every request of the group gets that error.
        let gate = self.trees.write_gate();
        let applied = apply_group(&self.trees, &appends, recorded_at);
        drop(gate);
        let outcomes: Vec<Outcome> = match applied {
            Ok(outcomes) => outcomes,
            Err(e) => {
                drop(appends);
                for request in group.drain(..) {
                    let _ = request.reply.send(Err(e.clone()));
                }
                return;
            }
        };
        drop(appends);
        let wrote_up_to = outcomes
            .iter()
            .filter_map(|o| match o {
                Ok(Applied::Written(result)) => Some(result.last_position),
                _ => None,
            })
            .max();
        // Flush whenever some append succeeded: written events need it, and a
        // duplicate may point at events written earlier in this same group.
        // A group of only rejected appends wrote nothing and skips the flush.
        let needs_flush = outcomes.iter().any(|o| o.is_ok());
        if needs_flush {
            if let Err(e) = self.disk.sync() {
                let reason = e.to_string();
                tracing::error!(error = %reason, "event store flush failed; refusing further appends");
                for request in group.drain(..) {
                    let _ = request.reply.send(Err(StoreError::Io {
                        operation: "flush",
                        detail: reason.clone(),
                    }));
                }
                self.failed = Some(reason);
                return;
            }
            if let Some(position) = wrote_up_to {
                self.durable.advance(position);
            }
        }
        for (request, outcome) in group.drain(..).zip(outcomes) {
            let answer = outcome.map(|applied| match applied {
                Applied::Written(result) | Applied::Duplicate(result) => result,
            });
            // The caller may have stopped waiting; the append stands anyway.
            let _ = request.reply.send(answer);
        }
    }
}

fn failed_error(reason: &str) -> StoreError {
    StoreError::Io {
        operation: "append",
        detail: format!("an earlier flush failed ({reason}); reopen the store"),
    }
}

/// The store's clock: unix milliseconds UTC (0 if the clock is before 1970).
fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
