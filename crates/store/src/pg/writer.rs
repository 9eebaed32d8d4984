//! Owns the node's group-commit writer: one task that takes every append
//! queued while the previous transaction was committing and applies them in
//! one transaction ([`append_group`]), so one commit flush acknowledges many
//! appends. Appends are still serialised database-wide on the log head; the
//! grouping is what keeps throughput from being one append per flush.

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::StoreError;
use crate::event::AppendResult;

use super::append::{append_group, Append};
use super::now_millis;

/// Most appends applied in one transaction.
pub const MAX_GROUP: usize = 128;

/// Pending appends waiting for the writer.
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<AppendResult, StoreError>>;

/// The handle appends are submitted through.
#[derive(Debug)]
pub struct WriterHandle {
    queue: mpsc::Sender<(Append, Reply)>,
}

impl WriterHandle {
    /// Spawns the writer on `pool`; it bumps `wake` after every commit and
    /// stops when the handle is dropped.
    pub fn spawn(pool: Pool, wake: watch::Sender<u64>) -> WriterHandle {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, wake, receiver));
        WriterHandle { queue }
    }

    /// Queues `append` and waits for its outcome.
    pub async fn submit(&self, append: Append) -> Result<AppendResult, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send((append, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }
}

async fn run(pool: Pool, wake: watch::Sender<u64>, mut receiver: mpsc::Receiver<(Append, Reply)>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (appends, replies): (Vec<Append>, Vec<Reply>) = group.drain(..).unzip();
        match append_group(&pool, &appends, now_millis()).await {
            Ok(outcomes) => {
                let head = outcomes
                    .iter()
                    .filter_map(|o| o.as_ref().ok().map(|r| r.last_position))
                    .max();
                if let Some(head) = head {
                    wake.send_modify(|h| *h = (*h).max(head));
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
