//! Owns what the shared subscription feeds ([`crate::log_tail`], [`crate::case_feed`]) have in
//! common: per workspace, a broadcast channel that one task fills for every subscriber, which
//! stops when the last subscriber goes, and the registry of the running ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use sijil_domain::WorkspaceId;
use tokio::sync::{broadcast, oneshot};

/// A workspace's running feed of `E`. The task filling it stops when the last `Arc` of it is
/// dropped.
pub struct Fanout<E> {
    /// A receiver kept only to make new ones ([`broadcast::Receiver::resubscribe`]); never read.
    template: broadcast::Receiver<Arc<E>>,
    /// Cleared when the task has stopped (see [`Feeder`]).
    running: Arc<AtomicBool>,
    /// Dropped with the fanout, which tells the task to stop.
    _stop: oneshot::Sender<()>,
}

impl<E> Fanout<E> {
    /// A receiver of what is sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<E>> {
        self.template.resubscribe()
    }
}

/// What the task filling a new [`Fanout`] holds. Dropping it (the task ended, for any reason)
/// marks the fanout stopped, so the next subscriber starts a new one.
pub struct Feeder<E> {
    pub sender: broadcast::Sender<Arc<E>>,
    /// Resolves when the last subscriber has gone.
    pub stop: oneshot::Receiver<()>,
    running: Arc<AtomicBool>,
}

impl<E> Drop for Feeder<E> {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Release);
    }
}

/// The running fanouts, one per workspace with subscribers.
pub struct Registry<E> {
    fanouts: Mutex<HashMap<WorkspaceId, Weak<Fanout<E>>>>,
}

impl<E> Default for Registry<E> {
    fn default() -> Registry<E> {
        Registry {
            fanouts: Mutex::new(HashMap::new()),
        }
    }
}

impl<E> Registry<E> {
    /// The running fanout of `ws`; or a new one holding `capacity` items per subscriber, with
    /// the [`Feeder`] its task must be started with.
    pub fn get_or_start(
        &self,
        ws: WorkspaceId,
        capacity: usize,
    ) -> (Arc<Fanout<E>>, Option<Feeder<E>>) {
        let mut fanouts = self.fanouts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(fanout) = fanouts.get(&ws).and_then(Weak::upgrade) {
            if fanout.running.load(Ordering::Acquire) {
                return (fanout, None);
            }
        }
        fanouts.retain(|_, fanout| fanout.strong_count() > 0);
        let (sender, template) = broadcast::channel(capacity.max(1));
        let (stop_tx, stop) = oneshot::channel();
        let running = Arc::new(AtomicBool::new(true));
        let fanout = Arc::new(Fanout {
            template,
            running: Arc::clone(&running),
            _stop: stop_tx,
        });
        fanouts.insert(ws, Arc::downgrade(&fanout));
        let feeder = Feeder {
            sender,
            stop,
            running,
        };
        (fanout, Some(feeder))
    }

    /// Fanouts running now.
    pub fn running(&self) -> usize {
        let fanouts = self.fanouts.lock().unwrap_or_else(PoisonError::into_inner);
        fanouts
            .values()
            .filter_map(Weak::upgrade)
            .filter(|fanout| fanout.running.load(Ordering::Acquire))
            .count()
    }
}
