//! Cases: the `Case` type (folded from its stream, with its SLA due times, breaches, escalation
//! state from the escalation projection and its full history), the `case` query and the
//! `escalationQueue` over the escalation projection.

use async_graphql::{Context, ErrorExtensions, Object, SimpleObject, ID};
use sijil_domain as d;
use sijil_domain::case::{Case, CaseAggregate};
use sijil_store::projections::escalation::{self, CaseRow, QueueQuery, Urgency};
use sijil_store::Direction;

use crate::auth::Permission;
use crate::context::{page_size, projection_error, shared, store_error, workspace, Need, Shared};
use crate::error::ApiError;
use crate::schema::customer::{load_required as load_customer, paged, CustomerNode};
use crate::schema::types::{
    parse_id, parse_opt_id, CaseStatus, Channel, Event, PageInfo, Priority, SlaTarget,
};
use crate::time::{now, DateTime};

/// Events of a case's history returned at most.
const MAX_HISTORY: usize = 1_000;

/// A case as its stream says.
#[derive(Clone)]
pub struct CaseNode {
    pub case: Case,
    pub version: u64,
}

/// Loads a case of workspace `ws`; `None` when absent (or another workspace's).
pub fn load(
    shared: &Shared,
    ws: d::WorkspaceId,
    id: d::CaseId,
) -> async_graphql::Result<Option<CaseNode>> {
    let (state, version) = shared
        .bus
        .load::<CaseAggregate>(ws.as_uuid(), &d::StreamRef::Case(id))
        .map_err(|e| ApiError::from(e).extend())?;
    Ok(state.case().map(|c| CaseNode {
        case: c.clone(),
        version: version.unwrap_or(0),
    }))
}

/// Loads a case or fails with NOT_FOUND.
pub fn load_required(
    shared: &Shared,
    ws: d::WorkspaceId,
    id: d::CaseId,
) -> async_graphql::Result<CaseNode> {
    load(shared, ws, id)?.ok_or_else(|| ApiError::NotFound(format!("case {id}")).extend())
}

/// An SLA target's due time and standing.
#[derive(SimpleObject)]
pub struct SlaDue {
    pub target: SlaTarget,
    pub due_at: DateTime,
    /// When the target was met, if it was.
    pub met_at: Option<DateTime>,
    /// Whether a breach was recorded.
    pub breached: bool,
}

/// Time spent at one level.
#[derive(SimpleObject)]
pub struct LevelTime {
    pub level: u8,
    pub millis: i64,
}

/// A case's escalation state as the escalation projection holds it.
pub struct EscalationState(CaseRow);

#[Object]
impl EscalationState {
    async fn level(&self) -> u8 {
        self.0.level
    }
    async fn top_level(&self) -> u8 {
        self.0.top_level
    }
    async fn escalation_count(&self) -> u32 {
        self.0.escalation_count
    }
    async fn reopen_count(&self) -> u32 {
        self.0.reopen_count
    }
    /// Completed time at each level (the running stint is counted up to now).
    async fn time_at_level(&self) -> Vec<LevelTime> {
        let mut times = self.0.time_at_level.clone();
        if let Some(since) = self.0.level_since {
            let running = now().millis_since(since).max(0);
            match times.iter_mut().find(|(l, _)| *l == self.0.level) {
                Some((_, t)) => *t = t.saturating_add(running),
                None => times.push((self.0.level, running)),
            }
            times.sort_by_key(|(l, _)| *l);
        }
        times
            .into_iter()
            .map(|(level, millis)| LevelTime { level, millis })
            .collect()
    }
    /// When the current level started (none while resolved or closed).
    async fn level_since(&self) -> Option<DateTime> {
        self.0.level_since.map(DateTime)
    }
    /// The next unmet SLA target of an open case.
    async fn next_target(&self) -> Option<SlaTarget> {
        self.0.next_due().map(|(t, _)| t.into())
    }
    async fn next_due_at(&self) -> Option<DateTime> {
        self.0.next_due().map(|(_, at)| DateTime(at))
    }
    /// Whether the next due time has passed.
    async fn overdue(&self) -> bool {
        self.0.next_due().is_some_and(|(_, at)| at < now())
    }
}

#[Object(name = "Case")]
impl CaseNode {
    async fn id(&self) -> ID {
        ID(self.case.case_id.to_string())
    }
    async fn customer_id(&self) -> ID {
        ID(self.case.customer_id.to_string())
    }
    /// The customer the case is for.
    #[graphql(guard = "Need(Permission::ReadCustomers)")]
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<CustomerNode> {
        load_customer(shared(ctx)?, workspace(ctx)?, self.case.customer_id)
    }
    /// `[erased]` once the customer is forgotten.
    async fn subject(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        crate::schema::erasure::shown(
            ctx,
            self.case.customer_id,
            d::personal::PersonalField::CaseSubject,
            &self.case.subject,
        )
    }
    async fn category(&self) -> &str {
        &self.case.category
    }
    async fn priority(&self) -> Priority {
        self.case.priority.into()
    }
    async fn channel(&self) -> Channel {
        self.case.channel.into()
    }
    async fn status(&self) -> CaseStatus {
        self.case.status.into()
    }
    /// The current escalation level, from 1.
    async fn level(&self) -> u8 {
        self.case.level
    }
    async fn top_level(&self) -> u8 {
        self.case.top_level
    }
    async fn assigned_agent_id(&self) -> Option<ID> {
        self.case.assignee.agent.map(|a| ID(a.to_string()))
    }
    async fn assigned_team_id(&self) -> Option<ID> {
        self.case.assignee.team.map(|t| ID(t.to_string()))
    }
    async fn opened_at(&self) -> DateTime {
        DateTime(self.case.opened_at)
    }
    async fn first_response_at(&self) -> Option<DateTime> {
        self.case.first_response_at.map(DateTime)
    }
    async fn resolved_at(&self) -> Option<DateTime> {
        self.case.resolved_at.map(DateTime)
    }
    async fn closed_at(&self) -> Option<DateTime> {
        self.case.closed_at.map(DateTime)
    }
    async fn escalations(&self) -> u32 {
        self.case.escalations
    }
    async fn reopens(&self) -> u32 {
        self.case.reopens
    }
    /// The SLA policy's targets, in minutes from opening.
    async fn first_response_minutes(&self) -> u32 {
        self.case.sla.first_response_minutes
    }
    async fn resolution_minutes(&self) -> u32 {
        self.case.sla.resolution_minutes
    }
    /// Each SLA target with its due time, when it was met and whether it was breached.
    async fn sla(&self) -> Vec<SlaDue> {
        let c = &self.case;
        vec![
            SlaDue {
                target: SlaTarget::FirstResponse,
                due_at: DateTime(c.first_response_due()),
                met_at: c.first_response_met_at().map(DateTime),
                breached: c.is_breached(d::SlaTarget::FirstResponse),
            },
            SlaDue {
                target: SlaTarget::Resolution,
                due_at: DateTime(c.resolution_due()),
                met_at: c.resolved_at.map(DateTime),
                breached: c.is_breached(d::SlaTarget::Resolution),
            },
        ]
    }
    /// The escalation projection's view (time per level, next due time); none until the
    /// projection has seen the case.
    async fn escalation(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<EscalationState>> {
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        let id = self.case.case_id;
        let row = shared
            .projections
            .read("escalation", |tree| escalation::get(tree, ws, id))
            .map_err(projection_error)?
            .map_err(projection_error)?;
        Ok(row.map(EscalationState))
    }
    /// The case stream's version (pass it as `expectedVersion`).
    async fn version(&self) -> u64 {
        self.version
    }
    /// Every event of the case, oldest first (positions local to the workspace).
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Event>> {
        let shared = shared(ctx)?;
        let stream = d::StreamRef::Case(self.case.case_id).stream_id();
        let events = shared
            .store
            .read_stream(&stream, 1, Direction::Forward, MAX_HISTORY)
            .map_err(store_error)?;
        crate::schema::positions::to_api(shared, workspace(ctx)?, events).await
    }
}

/// One case in an escalation queue.
pub struct QueueEntry {
    row: CaseRow,
    next_target: d::SlaTarget,
    due_at: d::Timestamp,
    cursor: String,
}

#[Object]
impl QueueEntry {
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    async fn case_id(&self) -> ID {
        ID(self.row.case_id.to_string())
    }
    async fn customer_id(&self) -> ID {
        ID(self.row.customer_id.to_string())
    }
    /// `[erased]` once the customer is forgotten.
    async fn subject(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        crate::schema::erasure::shown(
            ctx,
            self.row.customer_id,
            d::personal::PersonalField::CaseSubject,
            &self.row.subject,
        )
    }
    async fn priority(&self) -> Priority {
        self.row.priority.into()
    }
    async fn level(&self) -> u8 {
        self.row.level
    }
    async fn team_id(&self) -> Option<ID> {
        self.row.team.map(|t| ID(t.to_string()))
    }
    async fn agent_id(&self) -> Option<ID> {
        self.row.agent.map(|a| ID(a.to_string()))
    }
    /// The target the queue position is for.
    async fn next_target(&self) -> SlaTarget {
        self.next_target.into()
    }
    async fn due_at(&self) -> DateTime {
        DateTime(self.due_at)
    }
    async fn first_response_breached(&self) -> bool {
        self.row.breached_first_response
    }
    async fn resolution_breached(&self) -> bool {
        self.row.breached_resolution
    }
    /// The whole case.
    async fn case(&self, ctx: &Context<'_>) -> async_graphql::Result<CaseNode> {
        load_required(shared(ctx)?, workspace(ctx)?, self.row.case_id)
    }
}

/// A page of an escalation queue, most urgent first.
#[derive(SimpleObject)]
pub struct EscalationQueue {
    pub entries: Vec<QueueEntry>,
    pub page_info: PageInfo,
}

/// Case queries.
#[derive(Default)]
pub struct CaseQuery;

#[Object]
impl CaseQuery {
    /// A case by id; NOT_FOUND when there is none in the caller's workspace.
    #[graphql(guard = "Need(Permission::ReadCases)")]
    async fn case(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<CaseNode> {
        let id = parse_id(&id, d::CaseId::parse, "id")?;
        load_required(shared(ctx)?, workspace(ctx)?, id)
    }

    /// Open cases ordered by their next SLA due time, for the workspace or one team, from
    /// `minLevel` up, optionally only breached ones and/or those due within some minutes.
    #[graphql(
        guard = "Need(Permission::ReadQueues)",
        complexity = "paged(first, None, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn escalation_queue(
        &self,
        ctx: &Context<'_>,
        team: Option<ID>,
        min_level: Option<u8>,
        #[graphql(default = false)] breached_only: bool,
        due_within_minutes: Option<u32>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<EscalationQueue> {
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        let team = parse_opt_id(team.as_ref(), d::TeamId::parse, "team")?;
        let size = page_size(&shared.config, first, 50)?;
        let urgency = match due_within_minutes {
            Some(m) => Urgency::DueWithin(m),
            None if breached_only => Urgency::Breached,
            None => Urgency::All,
        };
        let query = QueueQuery {
            team,
            min_level: min_level.unwrap_or(0),
            urgency,
            now: now(),
            first: Some(size),
            after,
        };
        let page = shared
            .projections
            .read("escalation", |tree| escalation::queue(tree, ws, &query))
            .map_err(projection_error)?
            .map_err(projection_error)?;
        let entries = page
            .items
            .into_iter()
            .filter(|i| {
                !breached_only || i.case.breached_first_response || i.case.breached_resolution
            })
            .map(|i| QueueEntry {
                row: i.case,
                next_target: i.next_target,
                due_at: i.due_at,
                cursor: i.cursor,
            })
            .collect::<Vec<_>>();
        Ok(EscalationQueue {
            page_info: PageInfo {
                has_next_page: page.has_next,
                has_previous_page: false,
                start_cursor: entries.first().map(|e| e.cursor.clone()),
                end_cursor: page.end_cursor,
            },
            entries,
        })
    }
}
