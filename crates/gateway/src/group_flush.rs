//! Owns flushing the store's sled database for commands that wrote to it beside the log (a new
//! data key or subject link, a mutation record) and must see that durable before their events
//! are appended. Group commit: every waiting command takes a ticket after its writes; one
//! flush at a time runs on a blocking thread and answers every ticket taken before it started,
//! so a burst of commands shares one sync instead of each paying (and each holding a blocking
//! thread for) its own.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{watch, Mutex};

/// Group flushes of one sled database.
pub struct GroupFlush {
    /// Any tree of the database: flushing it flushes the whole database.
    tree: sled::Tree,
    /// Tickets handed out so far.
    asked: AtomicU64,
    /// The highest ticket a completed flush answered; also woken after a failed one.
    done: watch::Sender<u64>,
    /// Held by the one caller running a flush.
    running: Mutex<()>,
    /// Flushes run so far.
    flushes: AtomicU64,
}

impl GroupFlush {
    /// Group flushes of the database `tree` belongs to.
    pub fn new(tree: sled::Tree) -> GroupFlush {
        GroupFlush {
            tree,
            asked: AtomicU64::new(0),
            done: watch::Sender::new(0),
            running: Mutex::new(()),
            flushes: AtomicU64::new(0),
        }
    }

    /// Returns once everything written to the database before this call is durable.
    pub async fn flush(&self) -> Result<(), sled::Error> {
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut done = self.done.subscribe();
        loop {
            if *done.borrow_and_update() >= ticket {
                return Ok(());
            }
            let (flushed, target) = {
                let Ok(_running) = self.running.try_lock() else {
                    // Another caller's flush is running; it tells `done` only after letting
                    // go of `running`, so this wakes up after it and can run the next one.
                    if done.changed().await.is_err() {
                        return Err(sled::Error::ReportableBug("group flush gone".into()));
                    }
                    continue;
                };
                if *self.done.borrow() >= ticket {
                    return Ok(());
                }
                // Every ticket up to `target` was taken after its writes, so before this flush.
                let target = self.asked.load(Ordering::SeqCst);
                let tree = self.tree.clone();
                self.flushes.fetch_add(1, Ordering::SeqCst);
                let flushed = tokio::task::spawn_blocking(move || tree.flush())
                    .await
                    .unwrap_or_else(|e| Err(sled::Error::ReportableBug(e.to_string())));
                (flushed, target)
            };
            // Wakes the waiters either way: after a failure one of them tries again.
            self.done.send_modify(|done| {
                if flushed.is_ok() {
                    *done = (*done).max(target);
                }
            });
            flushed?;
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_waiting_together_share_one_flush() {
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let tree = db.open_tree("t").expect("tree");
        let group = Arc::new(GroupFlush::new(tree.clone()));
        // Given a flush running (the lock held here) while 64 callers write and ask
        let running = group.running.lock().await;
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let (group, tree) = (Arc::clone(&group), tree.clone());
            tasks.push(tokio::spawn(async move {
                tree.insert(i.to_be_bytes(), &b"v"[..]).expect("insert");
                group.flush().await.expect("flush");
            }));
        }
        while group.asked.load(Ordering::SeqCst) < 64 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // When that flush ends without answering them (as a failed one does)
        drop(running);
        group.done.send_modify(|_| {});
        // Then every caller returns, answered by one flush
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(*group.done.borrow(), 64);
        assert_eq!(group.flushes.load(Ordering::SeqCst), 1);
        // And a later caller gets a flush of its own
        group.flush().await.expect("flush");
        assert_eq!(group.flushes.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn callers_arriving_while_flushes_end_are_all_answered() {
        // A caller that finds a flush running waits for its end; it must be woken even when
        // that flush ends between its look and its wait. Many rounds of racing callers.
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let tree = db.open_tree("t").expect("tree");
        let group = Arc::new(GroupFlush::new(tree.clone()));
        for round in 0..50u32 {
            let mut tasks = Vec::new();
            for i in 0..16u32 {
                let (group, tree) = (Arc::clone(&group), tree.clone());
                tasks.push(tokio::spawn(async move {
                    tree.insert([round.to_be_bytes(), i.to_be_bytes()].concat(), &b"v"[..])
                        .expect("insert");
                    group.flush().await.expect("flush");
                }));
            }
            for task in tasks {
                tokio::time::timeout(std::time::Duration::from_secs(10), task)
                    .await
                    .expect("every caller is answered")
                    .expect("task");
            }
        }
        assert_eq!(*group.done.borrow(), 50 * 16);
    }
}
