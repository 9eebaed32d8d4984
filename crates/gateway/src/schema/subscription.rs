//! Subscriptions (graphql-ws and graphql-transport-ws at `/graphql/ws`): a customer's timeline
//! as it grows (`timelineUpdated`), cases changing in an escalation queue
//! (`escalationChanged`), and the raw log for auditors (`eventAppended`). Each follows the
//! projections' applied positions or the store's log and only ever yields the caller's
//! workspace; positions shown are local to the workspace ([`positions`]).

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, Object, SimpleObject, Subscription, ID};
use futures_util::stream::{self, Stream};
use sijil_domain as d;
use sijil_store::projections::timeline::{self, TimelineQuery};
use tokio::sync::watch;

use crate::auth::Permission;
use crate::case_feed::{self, Change};
use crate::context::{projection_error, shared, workspace, Need, Shared};
use crate::error::ApiError;
use crate::log_tail::{self, Follower};
use crate::schema::case::CaseNode;
use crate::schema::customer::{load_required as load_customer, TimelineEntryNode};
use crate::schema::positions;
use crate::schema::types::{parse_id, parse_opt_id, Event};

/// Newest entries a timeline update looks at.
const UPDATE_WINDOW: usize = 50;

/// New entries of a customer's timeline.
#[derive(SimpleObject)]
pub struct TimelineUpdate {
    pub customer_id: ID,
    /// Entries in the whole timeline now.
    pub total_count: u64,
    /// Entries added since the last update (log position above the last one seen), oldest
    /// first. Entries copied in by a merge keep their original positions and show only in
    /// `totalCount`.
    pub entries: Vec<TimelineEntryNode>,
}

/// A case that changed.
pub struct CaseChange(Arc<Change>);

#[Object]
impl CaseChange {
    /// The position of the change, local to the workspace (as in `allEvents`).
    async fn position(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        positions::local(shared, ws, self.0.event.position).await
    }
    /// The event type that changed it, e.g. `CaseEscalated`.
    async fn event_type(&self) -> &str {
        &self.0.event.event_type
    }
    /// The case as it is after the change.
    async fn case(&self) -> &CaseNode {
        &self.0.case
    }
}

/// The newest entries of `customer` above `seen`, oldest first, and the entry count. When the
/// count is still `known`, nothing was added (a timeline only grows, and every entry counts),
/// so the entries are not read: a subscriber wakes for every event the timeline applies,
/// mostly other customers'.
fn fresh_entries(
    shared: &Shared,
    ws: d::WorkspaceId,
    customer: d::CustomerId,
    seen: u64,
    known: Option<u64>,
) -> Result<(u64, Vec<TimelineEntryNode>, u64), async_graphql::Error> {
    shared
        .projections
        .read("timeline", |tree| {
            let count = timeline::count(tree, ws, customer)?;
            if known == Some(count) {
                return Ok((count, Vec::new(), seen));
            }
            let query = TimelineQuery {
                first: Some(UPDATE_WINDOW),
                newest_first: true,
                ..TimelineQuery::default()
            };
            let page = timeline::page(tree, ws, customer, &query)?;
            let mut fresh: Vec<_> = page
                .entries
                .into_iter()
                .filter(|e| e.position > seen)
                .collect();
            fresh.sort_by_key(|e| (e.at, e.position));
            let max = fresh.iter().map(|e| e.position).max().unwrap_or(seen);
            let mut reveal = crate::schema::erasure::Reveal::new(shared, ws);
            Ok((
                count,
                fresh
                    .into_iter()
                    .map(|e| TimelineEntryNode(reveal.entry(customer, e), None))
                    .collect(),
                max,
            ))
        })
        .map_err(projection_error)?
        .map_err(projection_error)
}

/// Customer subscriptions.
#[derive(Default)]
pub struct CustomerSubscription;

#[Subscription]
impl CustomerSubscription {
    /// New entries of a customer's timeline, as the timeline projection applies them.
    #[graphql(guard = "Need(Permission::ReadCustomers)")]
    async fn timeline_updated(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = TimelineUpdate>> {
        let shared = Arc::clone(shared(ctx)?);
        let ws = workspace(ctx)?;
        let customer = parse_id(&customer_id, d::CustomerId::parse, "customerId")?;
        load_customer(&shared, ws, customer)?;
        let rx = shared
            .projections
            .handle("timeline")
            .map_err(projection_error)?
            .subscribe();
        let (count, _, _) = fresh_entries(&shared, ws, customer, u64::MAX, None)?;
        let seen = *rx.borrow();
        struct State {
            rx: watch::Receiver<u64>,
            shared: Arc<Shared>,
            count: u64,
            seen: u64,
        }
        let state = State {
            rx,
            shared,
            count,
            seen,
        };
        Ok(stream::unfold(state, move |mut st| async move {
            loop {
                st.rx.changed().await.ok()?;
                let Ok((count, entries, max)) =
                    fresh_entries(&st.shared, ws, customer, st.seen, Some(st.count))
                else {
                    return None;
                };
                if count == st.count && entries.is_empty() {
                    continue;
                }
                st.count = count;
                st.seen = max;
                let update = TimelineUpdate {
                    customer_id: ID(customer.to_string()),
                    total_count: count,
                    entries,
                };
                return Some((update, st));
            }
        }))
    }
}

/// Case subscriptions.
#[derive(Default)]
pub struct CaseSubscription;

#[Subscription]
impl CaseSubscription {
    /// Cases that change (opened, assigned, responded to, escalated, breached, resolved, ...)
    /// in the workspace, or only those now with `team`, once the escalation projection has
    /// applied the change.
    #[graphql(guard = "Need(Permission::ReadQueues)")]
    async fn escalation_changed(
        &self,
        ctx: &Context<'_>,
        team: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = CaseChange>> {
        let shared = Arc::clone(shared(ctx)?);
        let ws = workspace(ctx)?;
        let team = parse_opt_id(team.as_ref(), d::TeamId::parse, "team")?;
        let follower = case_feed::follow(&shared, ws, team);
        Ok(stream::unfold(follower, |mut follower| async move {
            let change = follower.next_change().await?;
            Some((CaseChange(change), follower))
        }))
    }
}

/// Auditor subscriptions.
#[derive(Default)]
pub struct AuditSubscription;

#[Subscription]
impl AuditSubscription {
    /// The workspace's events as they are appended, from `fromPosition` (local to the
    /// workspace, as in `allEvents`; default: the next one), for auditors tailing the log.
    /// Events arrive in order with no gaps, once the workspace log index has applied them.
    #[graphql(guard = "Need(Permission::ReadEvents)")]
    async fn event_appended(
        &self,
        ctx: &Context<'_>,
        from_position: Option<u64>,
    ) -> async_graphql::Result<impl Stream<Item = Event>> {
        let shared = Arc::clone(shared(ctx)?);
        let ws = workspace(ctx)?;
        if from_position == Some(0) {
            return Err(ApiError::validation("positions start at 1", "INVALID_POSITION").extend());
        }
        // The follower reads the index from `next` until it reaches the workspace's shared tail.
        let tail = log_tail::follow(&shared, ws)?;
        let next = match from_position {
            Some(from) => from,
            None => positions::count(&shared, ws)?.saturating_add(1),
        };
        let follower = Follower::new(shared, ws, tail, next);
        Ok(stream::unfold(follower, |mut follower| async move {
            let event = follower.next_event().await?;
            Some((event, follower))
        }))
    }
}
