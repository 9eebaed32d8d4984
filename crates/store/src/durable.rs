//! Owns the durable position: the highest log position known to be flushed
//! to disk. Readers never look past it; subscribers wait on its watch.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

/// The durable high-water mark, readable without locks and watchable.
#[derive(Debug)]
pub struct Durable {
    position: AtomicU64,
    sender: watch::Sender<u64>,
}

impl Durable {
    /// Starts at `position` (what was on disk at open).
    pub fn new(position: u64) -> Durable {
        let (sender, _) = watch::channel(position);
        Durable {
            position: AtomicU64::new(position),
            sender,
        }
    }

    /// The current durable position.
    pub fn get(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    /// Raises the durable position to `position` (after a flush) and wakes
    /// watchers. Never lowers it.
    pub fn advance(&self, position: u64) {
        let previous = self.position.fetch_max(position, Ordering::AcqRel);
        if position > previous {
            self.sender.send_if_modified(|current| {
                if position > *current {
                    *current = position;
                    true
                } else {
                    false
                }
            });
        }
    }

    /// A receiver that sees every later advance.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.sender.subscribe()
    }
}
