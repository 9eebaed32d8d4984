//! Owns the single writer and group commit. The writer thread drains queued
//! appends and applies them as one group that commits whole; the syncer
//! thread flushes to disk once for every group applied meanwhile, advances
//! the durable position, and only then answers their callers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use crate::apply::{apply_group, Append, Applied, GroupFailure, Outcome};
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
/// queued appends are done and waits for its threads to exit.
#[derive(Debug)]
pub struct WriterHandle {
    queue: Option<mpsc::Sender<Request>>,
    threads: Vec<JoinHandle<()>>,
}

impl WriterHandle {
    /// Starts the writer and syncer threads.
    pub fn spawn(
        disk: Arc<DiskSync>,
        trees: Trees,
        durable: Arc<Durable>,
        max_group: usize,
        queue_capacity: usize,
    ) -> Result<WriterHandle, StoreError> {
        let (queue, receiver) = mpsc::channel(queue_capacity.max(1));
        let (to_syncer, from_writer) = std::sync::mpsc::sync_channel(SYNC_QUEUE);
        let syncer = Arc::new(Syncer {
            disk,
            durable,
            failed: OnceLock::new(),
            in_flight: AtomicUsize::new(0),
        });
        let writer = Writer {
            trees,
            max_group: max_group.max(1),
            syncer: Arc::clone(&syncer),
            to_syncer,
        };
        let start = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| StoreError::Io {
                    operation: "start writer thread",
                    detail: e.to_string(),
                })
        };
        let syncing = start(
            "sijil-store-sync",
            Box::new(move || syncer.run(from_writer)),
        )?;
        let writing = start("sijil-store-writer", Box::new(move || writer.run(receiver)))?;
        Ok(WriterHandle {
            queue: Some(queue),
            threads: vec![writing, syncing],
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
        // Closing the queue lets the writer finish what is queued and exit,
        // and the syncer then flushes and answers what the writer handed on.
        drop(self.queue.take());
        for thread in self.threads.drain(..) {
            // A panicking thread already answered nobody; nothing to add.
            let _ = thread.join();
        }
    }
}

/// Most applied groups waiting for the syncer before the writer waits too.
const SYNC_QUEUE: usize = 64;

/// A group applied to the trees and waiting to be made durable.
struct Settled {
    requests: Vec<Request>,
    outcomes: Vec<Outcome>,
    /// The last position the group wrote, if it wrote.
    wrote_up_to: Option<u64>,
}

/// The writer thread: applies groups, one after the other, and hands each
/// to the syncer when more appends are waiting, so that applying the next
/// group overlaps with flushing this one. With nothing waiting and nothing
/// being flushed it settles the group itself, which spares a lone caller
/// the hand-over between threads.
struct Writer {
    trees: Trees,
    max_group: usize,
    syncer: Arc<Syncer>,
    to_syncer: std::sync::mpsc::SyncSender<Settled>,
}

impl Writer {
    fn run(self, mut receiver: mpsc::Receiver<Request>) {
        let mut group = Vec::with_capacity(self.max_group);
        while let Some(first) = receiver.blocking_recv() {
            group.push(first);
            while group.len() < self.max_group {
                match receiver.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            let settled = self.commit_group(std::mem::take(&mut group));
            if let Some(settled) = settled {
                self.hand_on(settled, receiver.is_empty());
            }
        }
    }

    /// Settles an applied group here when nothing else waits (no append
    /// queued, no group with the syncer), otherwise hands it to the syncer.
    fn hand_on(&self, settled: Settled, idle: bool) {
        if idle && self.syncer.in_flight.load(Ordering::Acquire) == 0 {
            self.syncer.settle(&mut vec![settled]);
            return;
        }
        self.syncer.in_flight.fetch_add(1, Ordering::AcqRel);
        if let Err(unsent) = self.to_syncer.send(settled) {
            // The syncer is gone (it panicked): nothing can be made durable.
            self.syncer.in_flight.fetch_sub(1, Ordering::AcqRel);
            for request in unsent.0.requests {
                let _ = request.reply.send(Err(StoreError::Closed));
            }
        }
    }

    /// Applies one group of appends; `None` when it failed whole (its
    /// callers are answered).
    fn commit_group(&self, mut group: Vec<Request>) -> Option<Settled> {
        if let Some(reason) = self.syncer.failed.get() {
            for request in group.drain(..) {
                let _ = request.reply.send(Err(failed_error(reason)));
            }
            return None;
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
        // The group commits whole (see `apply`); if it fails (storage error
        // or corruption), every request of the group gets that error.
        let gate = self.trees.write_gate();
        let applied = apply_group(&self.trees, &appends, recorded_at);
        drop(gate);
        drop(appends);
        let outcomes: Vec<Outcome> = match applied {
            Ok(outcomes) => outcomes,
            Err(failure) => {
                let e = match failure {
                    GroupFailure::Unwritten(e) => e,
                    GroupFailure::PartlyWritten(e) => {
                        // What reached the trees is not committed; reopening
                        // removes it. Until then nothing more is appended.
                        tracing::error!(error = %e, "an append failed part way; refusing further appends");
                        let _ = self.syncer.failed.set(e.to_string());
                        e
                    }
                };
                for request in group.drain(..) {
                    let _ = request.reply.send(Err(e.clone()));
                }
                return None;
            }
        };
        let wrote_up_to = outcomes
            .iter()
            .filter_map(|o| match o {
                Ok(Applied::Written(result)) => Some(result.last_position),
                _ => None,
            })
            .max();
        Some(Settled {
            requests: group,
            outcomes,
            wrote_up_to,
        })
    }
}

/// The syncer thread: makes applied groups durable, advances the durable
/// position and only then answers their callers, in the order the groups
/// were applied. Groups that queued up while it flushed share one flush.
struct Syncer {
    disk: Arc<DiskSync>,
    durable: Arc<Durable>,
    /// Set once, when a flush or a write failed part way: from then on
    /// nothing is acknowledged, since what reached the disk is unknown.
    /// Reopening the store recovers.
    failed: OnceLock<String>,
    /// Groups handed to the syncer thread and not yet settled.
    in_flight: AtomicUsize,
}

impl Syncer {
    fn run(&self, from_writer: std::sync::mpsc::Receiver<Settled>) {
        let mut batch = Vec::new();
        while let Ok(first) = from_writer.recv() {
            batch.push(first);
            while let Ok(next) = from_writer.try_recv() {
                batch.push(next);
            }
            let settled = batch.len();
            self.settle(&mut batch);
            self.in_flight.fetch_sub(settled, Ordering::AcqRel);
        }
        if self.failed.get().is_none() {
            if let Err(e) = self.disk.sync_all() {
                tracing::error!(error = %e, "final flush of the event store failed");
            }
        }
    }

    /// Flushes and answers the groups of `batch`.
    fn settle(&self, batch: &mut Vec<Settled>) {
        if let Some(reason) = self.failed.get() {
            for settled in batch.drain(..) {
                for request in settled.requests {
                    let _ = request.reply.send(Err(failed_error(reason)));
                }
            }
            return;
        }
        // Flush whenever some append succeeded: written events need it, and a
        // duplicate may point at events written earlier, not yet flushed.
        // Groups of only refused appends wrote nothing and need no flush.
        let needs_flush = batch
            .iter()
            .any(|settled| settled.outcomes.iter().any(|o| o.is_ok()));
        if needs_flush {
            if let Err(e) = self.disk.sync() {
                let reason = e.to_string();
                tracing::error!(error = %reason, "event store flush failed; refusing further appends");
                let _ = self.failed.set(reason.clone());
                for settled in batch.drain(..) {
                    for request in settled.requests {
                        let _ = request.reply.send(Err(StoreError::Io {
                            operation: "flush",
                            detail: reason.clone(),
                        }));
                    }
                }
                return;
            }
            if let Some(position) = batch.iter().filter_map(|s| s.wrote_up_to).max() {
                self.durable.advance(position);
            }
        }
        for settled in batch.drain(..) {
            for (request, outcome) in settled.requests.into_iter().zip(settled.outcomes) {
                let answer = outcome.map(|applied| match applied {
                    Applied::Written(result) | Applied::Duplicate(result) => result,
                });
                // The caller may have stopped waiting; the append stands anyway.
                let _ = request.reply.send(answer);
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample_event as event;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_failed_flush_nothing_is_acknowledged_and_the_durable_position_stays() {
        // Given a writer whose flushes fail
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let trees = Trees::open(&db, dir.path(), 1 << 20).unwrap();
        let durable = Arc::new(Durable::new(0));
        let writer = Arc::new(
            WriterHandle::spawn(
                Arc::new(DiskSync::failing(db.clone(), trees.log.clone())),
                trees,
                Arc::clone(&durable),
                64,
                64,
            )
            .unwrap(),
        );
        // When appends arrive, alone and then many at once
        let first = writer
            .submit("s-1".into(), ExpectedVersion::NoStream, vec![event()])
            .await;
        let many = sixteen_at_once(&writer).await;
        // Then none is acknowledged: the first gets the flush error, the rest are refused
        // until the store is opened again, and nothing became durable
        assert!(
            matches!(
                &first,
                Err(StoreError::Io {
                    operation: "flush",
                    ..
                })
            ),
            "{first:?}"
        );
        for outcome in many {
            match outcome {
                Err(StoreError::Io { detail, .. }) => {
                    assert!(detail.contains("reopen the store"), "{detail}")
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        assert_eq!(durable.get(), 0);
    }

    /// Sixteen appends to distinct streams, sent at once.
    async fn sixteen_at_once(writer: &Arc<WriterHandle>) -> Vec<Result<AppendResult, StoreError>> {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..16 {
            let writer = Arc::clone(writer);
            set.spawn(async move {
                writer
                    .submit(format!("t-{i}"), ExpectedVersion::NoStream, vec![event()])
                    .await
            });
        }
        set.join_all().await
    }
}
