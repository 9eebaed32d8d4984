//! Owns the shared tail of each workspace's log that `eventAppended` subscribers follow.
//!
//! While a workspace has subscribers, one task reads each new event of its log once (from the
//! workspace log index and the store) and hands the same `Arc` to every subscriber through a
//! broadcast channel, instead of every subscriber reading the index and the event itself. A
//! subscriber that starts behind the tail (`fromPosition` in the past), or falls so far behind
//! that the channel drops events it has not taken, reads from the index on its own until it
//! has caught up, then follows the tail again ([`Follower`]): each event still arrives once, in
//! order, with no gap. The task stops when the last subscriber of the workspace goes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use sijil_domain::WorkspaceId;
use sijil_store::RecordedEvent;
use tokio::sync::{broadcast, oneshot};

use crate::context::{projection_error, Shared};
use crate::schema::positions;
use crate::schema::types::Event;

/// Index entries read at a time, by the tail and by a subscriber catching up.
const BATCH: usize = 100;

/// One event of a workspace's log, as the tail read it.
#[derive(Debug)]
pub struct TailEvent {
    /// Position within the workspace (1-based, gap-free).
    pub sequence: u64,
    pub event: RecordedEvent,
}

/// The running tails, one per workspace with subscribers.
#[derive(Default)]
pub struct LogTails {
    tails: Mutex<HashMap<WorkspaceId, Weak<Tail>>>,
}

/// A workspace's running tail; the task stops when the last `Arc` of it is dropped.
pub struct Tail {
    /// A receiver kept only to make new ones ([`broadcast::Receiver::resubscribe`]); never read.
    template: broadcast::Receiver<Arc<TailEvent>>,
    /// Cleared when the task stopped on an error: the next subscriber starts a new tail.
    running: Arc<AtomicBool>,
    /// Dropped with the tail, which stops the task.
    _stop: oneshot::Sender<()>,
}

impl Tail {
    fn subscribe(&self) -> broadcast::Receiver<Arc<TailEvent>> {
        self.template.resubscribe()
    }
}

impl LogTails {
    /// Tails running now (one per workspace with `eventAppended` subscribers).
    pub fn running(&self) -> usize {
        let tails = self.tails.lock().unwrap_or_else(PoisonError::into_inner);
        tails
            .values()
            .filter_map(Weak::upgrade)
            .filter(|tail| tail.running.load(Ordering::Acquire))
            .count()
    }

    /// The tail of `ws`'s log, started if no subscriber follows it yet.
    pub fn follow(shared: &Arc<Shared>, ws: WorkspaceId) -> async_graphql::Result<Arc<Tail>> {
        let mut tails = shared
            .tails
            .tails
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(tail) = tails.get(&ws).and_then(Weak::upgrade) {
            if tail.running.load(Ordering::Acquire) {
                return Ok(tail);
            }
        }
        tails.retain(|_, tail| tail.strong_count() > 0);
        let applied = shared
            .projections
            .handle(positions::INDEX)
            .map_err(projection_error)?
            .subscribe();
        let next = positions::count(shared, ws)?.saturating_add(1);
        let (sender, template) = broadcast::channel(shared.config.tail_buffer.max(1));
        let (stop_tx, stop_rx) = oneshot::channel();
        let running = Arc::new(AtomicBool::new(true));
        let tail = Arc::new(Tail {
            template,
            running: Arc::clone(&running),
            _stop: stop_tx,
        });
        tails.insert(ws, Arc::downgrade(&tail));
        let run = Run {
            shared: Arc::clone(shared),
            ws,
            next,
            applied,
            sender,
        };
        tokio::spawn(async move {
            if let Err(e) = run.run(stop_rx).await {
                tracing::warn!(workspace = %ws, error = ?e.message, "workspace log tail stopped");
            }
            running.store(false, Ordering::Release);
        });
        Ok(tail)
    }
}

/// The task reading a workspace's new events once for all its subscribers.
struct Run {
    shared: Arc<Shared>,
    ws: WorkspaceId,
    /// The next workspace position to read.
    next: u64,
    applied: tokio::sync::watch::Receiver<u64>,
    sender: broadcast::Sender<Arc<TailEvent>>,
}

impl Run {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) -> async_graphql::Result<()> {
        loop {
            // Mark the applied position seen before reading, so an entry applied after the
            // read wakes the wait below.
            self.applied.borrow_and_update();
            let entries = positions::entries(&self.shared, self.ws, self.next, BATCH)?;
            if entries.is_empty() {
                tokio::select! {
                    _ = &mut stop => return Ok(()),
                    changed = self.applied.changed() => {
                        if changed.is_err() {
                            return Ok(());
                        }
                    }
                }
                continue;
            }
            for entry in entries {
                let event = positions::read_event(&self.shared, self.ws, entry.position)?;
                self.next = entry.sequence + 1;
                // No receiver now is fine: a subscriber arriving later reads the index.
                let _ = self.sender.send(Arc::new(TailEvent {
                    sequence: entry.sequence,
                    event,
                }));
            }
        }
    }
}

/// One subscriber's walk along its workspace's log from a given position: from the index
/// while behind the tail, from the tail once caught up.
pub struct Follower {
    shared: Arc<Shared>,
    ws: WorkspaceId,
    tail: Arc<Tail>,
    /// `Some` while following the tail; `None` while catching up from the index.
    live: Option<broadcast::Receiver<Arc<TailEvent>>>,
    /// The next workspace position to deliver.
    next: u64,
    ready: VecDeque<Event>,
}

impl Follower {
    /// Follows `ws`'s log from workspace position `next`.
    pub fn new(shared: Arc<Shared>, ws: WorkspaceId, tail: Arc<Tail>, next: u64) -> Follower {
        Follower {
            shared,
            ws,
            tail,
            live: None,
            next,
            ready: VecDeque::new(),
        }
    }

    /// The next event, waiting for it if need be; `None` when the log cannot be read any more
    /// (the subscription then ends).
    pub async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            match &mut self.live {
                Some(live) => match live.recv().await {
                    Ok(item) if item.sequence < self.next => {}
                    Ok(item) if item.sequence == self.next => {
                        self.next += 1;
                        return Some(Event {
                            event: item.event.clone(),
                            local_position: item.sequence,
                        });
                    }
                    // Ahead of what this subscriber has seen, or dropped for it: read the
                    // index from where it stands.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.live = None,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                None => {
                    // Subscribe before reading the index: an entry not in the index yet is
                    // sent by the tail only after this read, so the receiver gets it.
                    let live = self.tail.subscribe();
                    let entries =
                        positions::entries(&self.shared, self.ws, self.next, BATCH).ok()?;
                    if entries.is_empty() {
                        self.live = Some(live);
                        continue;
                    }
                    for entry in entries {
                        let event =
                            positions::read_event(&self.shared, self.ws, entry.position).ok()?;
                        self.next = entry.sequence + 1;
                        self.ready.push_back(Event {
                            event,
                            local_position: entry.sequence,
                        });
                    }
                }
            }
        }
    }
}
