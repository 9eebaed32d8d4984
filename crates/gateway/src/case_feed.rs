//! Owns the shared feed of case changes that `escalationChanged` subscribers (supervisors'
//! queue screens) follow.
//!
//! While a workspace has such subscribers, one task reads its case events from the log, waits
//! until the projections have applied each, and loads the changed case and its team once,
//! handing the same `Arc` to every subscriber through a broadcast channel; a subscriber only
//! picks the changes of its team. Before, every subscriber scanned the log and loaded the case
//! from its stream (opening its sealed fields) for every change. A subscriber that falls more
//! than `tail_buffer` changes behind reads the log and loads the cases itself until it has
//! caught up, then follows the feed again ([`CaseFollower`]): no change is skipped.

use std::collections::VecDeque;
use std::sync::Arc;

use sijil_domain as d;
use sijil_store::projections::escalation::{self, CASE_EVENTS};
use sijil_store::RecordedEvent;
use tokio::sync::broadcast;

use crate::context::Shared;
use crate::fanout::{Fanout, Registry};
use crate::schema::case::{load as load_case, CaseNode};

/// Log events a lagging subscriber reads at a time.
const BATCH: usize = 256;

/// A case that changed, as the subscribers see it.
pub struct Change {
    /// The event that changed it.
    pub event: RecordedEvent,
    /// The case as it is after the change.
    pub case: CaseNode,
    /// The team the case is with now (from the escalation projection).
    pub team: Option<d::TeamId>,
}

/// A workspace's running feed of case changes.
pub type Feed = Fanout<Change>;

/// The running feeds, one per workspace with `escalationChanged` subscribers.
pub type CaseFeeds = Registry<Change>;

fn case_events() -> Vec<String> {
    CASE_EVENTS.iter().map(|t| (*t).to_owned()).collect()
}

/// What `event` (a case event of `ws`) did to its case: the case after the change and its
/// team, once the projections have applied it; `None` for an event not about a case or a case
/// that cannot be loaded.
async fn change_of(shared: &Shared, ws: d::WorkspaceId, event: RecordedEvent) -> Option<Change> {
    let Some(d::StreamRef::Case(case_id)) = d::StreamRef::parse(&event.stream_id) else {
        return None;
    };
    let timeout = shared.config.read_your_writes_timeout;
    if shared
        .projections
        .wait_for(event.position, timeout)
        .await
        .is_err()
    {
        tracing::warn!(position = event.position, "escalation lags a change");
    }
    let team = shared
        .projections
        .read("escalation", |tree| escalation::get(tree, ws, case_id))
        .ok()
        .and_then(Result::ok)
        .flatten()
        .and_then(|row| row.team);
    let case = load_case(shared, ws, case_id).ok().flatten()?;
    Some(Change { event, case, team })
}

/// Follows `ws`'s case changes (only those now with `team`, if given) from the next one
/// appended, starting the workspace's feed if no subscriber follows it yet.
pub fn follow(shared: &Arc<Shared>, ws: d::WorkspaceId, team: Option<d::TeamId>) -> CaseFollower {
    let (feed, feeder) = shared
        .case_feeds
        .get_or_start(ws, shared.config.tail_buffer);
    // Receive before reading the head: a change after it is sent after this.
    let live = feed.subscribe();
    let from = shared.store.head_position().saturating_add(1);
    let follower = CaseFollower::new(Arc::clone(shared), ws, Arc::clone(&feed), live, team, from);
    if let Some(mut feeder) = feeder {
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            let mut log = shared.store.subscribe_all(from).with_types(case_events());
            loop {
                let event = tokio::select! {
                    _ = &mut feeder.stop => break,
                    next = log.next() => match next {
                        Some(Ok(event)) => event,
                        Some(Err(e)) => {
                            tracing::warn!(workspace = %ws, error = %e, "case feed stopped");
                            break;
                        }
                        None => break,
                    },
                };
                if event.workspace_id != ws.as_uuid() {
                    continue;
                }
                if let Some(change) = change_of(&shared, ws, event).await {
                    // No receiver now is fine: nobody was subscribed for this change.
                    let _ = feeder.sender.send(Arc::new(change));
                }
            }
        });
    }
    follower
}

/// One `escalationChanged` subscriber's walk along its workspace's case changes from a log
/// position: from the feed, or from the log itself while it catches up after falling behind.
pub struct CaseFollower {
    shared: Arc<Shared>,
    ws: d::WorkspaceId,
    feed: Arc<Feed>,
    team: Option<d::TeamId>,
    /// `Some` while following the feed; `None` while catching up from the log.
    live: Option<broadcast::Receiver<Arc<Change>>>,
    /// The next log position to deliver a change from.
    next: u64,
    ready: VecDeque<Arc<Change>>,
}

impl CaseFollower {
    /// Follows the changes of `ws`'s cases (only those now with `team`, if given) from log
    /// position `from`, receiving the feed through `live`.
    fn new(
        shared: Arc<Shared>,
        ws: d::WorkspaceId,
        feed: Arc<Feed>,
        live: broadcast::Receiver<Arc<Change>>,
        team: Option<d::TeamId>,
        from: u64,
    ) -> CaseFollower {
        CaseFollower {
            shared,
            ws,
            feed,
            team,
            live: Some(live),
            next: from,
            ready: VecDeque::new(),
        }
    }

    /// The next change for this subscriber, waiting for it if need be; `None` when the feed
    /// or the log cannot be read any more (the subscription then ends).
    pub async fn next_change(&mut self) -> Option<Arc<Change>> {
        loop {
            if let Some(change) = self.ready.pop_front() {
                if self.team.is_none() || change.team == self.team {
                    return Some(change);
                }
                continue;
            }
            match &mut self.live {
                Some(live) => match live.recv().await {
                    Ok(change) if change.event.position < self.next => {}
                    Ok(change) => {
                        self.next = change.event.position + 1;
                        self.ready.push_back(change);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => self.live = None,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                None => {
                    // Subscribe before reading: a change not durable yet at this read is sent
                    // by the feed only after it, so the receiver gets it.
                    let live = self.feed.subscribe();
                    let types = case_events();
                    let events = self
                        .shared
                        .store
                        .read_all(self.next, BATCH, Some(&types))
                        .ok()?;
                    if events.len() < BATCH {
                        // This read reached the durable head.
                        self.live = Some(live);
                    }
                    for event in events {
                        self.next = event.position + 1;
                        if event.workspace_id != self.ws.as_uuid() {
                            continue;
                        }
                        if let Some(change) = change_of(&self.shared, self.ws, event).await {
                            self.ready.push_back(Arc::new(change));
                        }
                    }
                }
            }
        }
    }
}
