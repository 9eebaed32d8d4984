//! Owns the shared tail of each workspace's log that `eventAppended` subscribers follow.
//!
//! While a workspace has subscribers, one task reads each new event of its log once (from the
//! workspace log index and the store) and hands the same `Arc` to every subscriber through a
//! broadcast channel, instead of every subscriber reading the index and the event itself. A
//! subscriber that starts behind the tail (`fromPosition` in the past), or falls so far behind
//! that the channel drops events it has not taken, reads from the index on its own until it
//! has caught up, then follows the tail again ([`Follower`]): each event still arrives once, in
//! order, with no gap. The task stops when the last subscriber of the workspace goes.

use std::collections::VecDeque;
use std::sync::Arc;

use sijil_domain::WorkspaceId;
use sijil_store::RecordedEvent;
use tokio::sync::broadcast;

use crate::context::{projection_error, Shared};
use crate::fanout::{Fanout, Feeder, Registry};
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

/// A workspace's running tail.
pub type Tail = Fanout<TailEvent>;

/// The running tails, one per workspace with subscribers.
pub type LogTails = Registry<TailEvent>;

/// The tail of `ws`'s log, started if no subscriber follows it yet.
pub fn follow(shared: &Arc<Shared>, ws: WorkspaceId) -> async_graphql::Result<Arc<Tail>> {
    let (tail, feeder) = shared.tails.get_or_start(ws, shared.config.tail_buffer);
    if let Some(feeder) = feeder {
        let applied = shared
            .projections
            .handle(positions::INDEX)
            .map_err(projection_error)?
            .subscribe();
        let next = positions::count(shared, ws)?.saturating_add(1);
        let run = Run {
            shared: Arc::clone(shared),
            ws,
            next,
            applied,
        };
        tokio::spawn(async move {
            if let Err(e) = run.run(feeder).await {
                tracing::warn!(workspace = %ws, error = ?e.message, "workspace log tail stopped");
            }
        });
    }
    Ok(tail)
}

/// The task reading a workspace's new events once for all its subscribers.
struct Run {
    shared: Arc<Shared>,
    ws: WorkspaceId,
    /// The next workspace position to read.
    next: u64,
    applied: tokio::sync::watch::Receiver<u64>,
}

impl Run {
    async fn run(mut self, mut feeder: Feeder<TailEvent>) -> async_graphql::Result<()> {
        loop {
            // Mark the applied position seen before reading, so an entry applied after the
            // read wakes the wait below.
            self.applied.borrow_and_update();
            let entries = positions::entries(&self.shared, self.ws, self.next, BATCH)?;
            if entries.is_empty() {
                tokio::select! {
                    _ = &mut feeder.stop => return Ok(()),
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
                let _ = feeder.sender.send(Arc::new(TailEvent {
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
