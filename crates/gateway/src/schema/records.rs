//! The smaller aggregates as API objects, folded from their streams: interactions, survey
//! answers, follow-ups and agents. Mutations answer with these.

use async_graphql::{Context, ErrorExtensions, Object, SimpleObject, ID};
use sijil_domain as d;
use sijil_domain::agent::{Agent, AgentAggregate};
use sijil_domain::events::SurveyAnswered;
use sijil_domain::follow_up::{FollowUp, FollowUpAggregate};
use sijil_domain::interaction::{Interaction, InteractionAggregate};
use sijil_domain::survey::SurveyAggregate;

use crate::auth::Permission;
use crate::context::{shared, workspace, Need, Shared};
use crate::error::ApiError;
use crate::schema::case::{load_required as load_case, CaseNode};
use crate::schema::customer::{load_required as load_customer, CustomerNode};
use crate::schema::erasure::shown;
use crate::schema::types::{Channel, Direction, FollowUpReason, FollowUpStatus};
use crate::time::DateTime;
use sijil_domain::personal::PersonalField as F;

fn fold<A: d::Aggregate>(
    shared: &Shared,
    ws: d::WorkspaceId,
    stream: d::StreamRef,
) -> async_graphql::Result<(A::State, u64)> {
    shared
        .bus
        .load::<A>(ws.as_uuid(), &stream)
        .map(|(s, v)| (s, v.unwrap_or(0)))
        .map_err(|e| ApiError::from(e).extend())
}

fn not_found(what: &str, id: impl std::fmt::Display) -> async_graphql::Error {
    ApiError::NotFound(format!("{what} {id}")).extend()
}

/// One contact on one channel.
pub struct InteractionNode(pub Interaction, pub u64);

/// Loads an interaction or fails with NOT_FOUND.
pub fn load_interaction(
    shared: &Shared,
    ws: d::WorkspaceId,
    id: d::InteractionId,
) -> async_graphql::Result<InteractionNode> {
    let (state, version) = fold::<InteractionAggregate>(shared, ws, d::StreamRef::Interaction(id))?;
    state
        .interaction()
        .map(|i| InteractionNode(i.clone(), version))
        .ok_or_else(|| not_found("interaction", id))
}

#[Object(name = "Interaction")]
impl InteractionNode {
    async fn id(&self) -> ID {
        ID(self.0.recorded.interaction_id.to_string())
    }
    async fn customer_id(&self) -> ID {
        ID(self.0.recorded.customer_id.to_string())
    }
    #[graphql(guard = "Need(Permission::ReadCustomers)")]
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<CustomerNode> {
        load_customer(shared(ctx)?, workspace(ctx)?, self.0.recorded.customer_id)
    }
    async fn channel(&self) -> Channel {
        self.0.recorded.channel.into()
    }
    async fn direction(&self) -> Direction {
        self.0.recorded.direction.into()
    }
    /// The agent who handled it (none when a bot did).
    async fn agent_id(&self) -> Option<ID> {
        self.0
            .recorded
            .handled_by
            .agent()
            .map(|a| ID(a.to_string()))
    }
    /// The bot that handled it, by name.
    async fn bot(&self) -> Option<&str> {
        match &self.0.recorded.handled_by {
            d::Handler::Bot(name) => Some(name),
            d::Handler::Agent(_) => None,
        }
    }
    async fn language(&self) -> &str {
        &self.0.recorded.language
    }
    /// `[erased]` once the customer is forgotten.
    async fn summary(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let r = &self.0.recorded;
        shown(ctx, r.customer_id, F::InteractionSummary, &r.summary)
    }
    async fn duration_seconds(&self) -> u32 {
        self.0.recorded.duration_seconds
    }
    async fn case_id(&self) -> Option<ID> {
        self.0.recorded.case_id.map(|c| ID(c.to_string()))
    }
    async fn recording_ref(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let r = &self.0.recorded;
        r.recording_ref
            .as_deref()
            .map(|text| shown(ctx, r.customer_id, F::RecordingRef, text))
            .transpose()
    }
    async fn at(&self) -> DateTime {
        DateTime(self.0.recorded.at)
    }
    async fn note_count(&self) -> usize {
        self.0.notes.len()
    }
    async fn version(&self) -> u64 {
        self.1
    }
}

/// A survey answer.
pub struct SurveyNode(pub SurveyAnswered, pub u64);

/// Loads a survey answer or fails with NOT_FOUND.
pub fn load_survey(
    shared: &Shared,
    ws: d::WorkspaceId,
    id: d::SurveyId,
) -> async_graphql::Result<SurveyNode> {
    let (state, version) = fold::<SurveyAggregate>(shared, ws, d::StreamRef::Survey(id))?;
    state
        .answer()
        .map(|a| SurveyNode(a.clone(), version))
        .ok_or_else(|| not_found("survey", id))
}

/// A survey scale.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug, serde::Serialize)]
pub enum SurveyScale {
    /// Customer satisfaction, 1 to 5.
    Csat,
    /// Net promoter, 0 to 10.
    Nps,
    /// Customer effort, 1 to 7 (7 = very easy).
    Ces,
}

#[Object(name = "SurveyAnswer")]
impl SurveyNode {
    async fn id(&self) -> ID {
        ID(self.0.survey_id.to_string())
    }
    async fn customer_id(&self) -> ID {
        ID(self.0.customer_id.to_string())
    }
    async fn scale(&self) -> SurveyScale {
        match self.0.score {
            d::Score::Csat(_) => SurveyScale::Csat,
            d::Score::Nps(_) => SurveyScale::Nps,
            d::Score::Ces(_) => SurveyScale::Ces,
        }
    }
    async fn score(&self) -> u8 {
        match self.0.score {
            d::Score::Csat(v) | d::Score::Nps(v) | d::Score::Ces(v) => v,
        }
    }
    /// `[erased]` once the customer is forgotten.
    async fn comment(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        self.0
            .comment
            .as_deref()
            .map(|text| shown(ctx, self.0.customer_id, F::SurveyComment, text))
            .transpose()
    }
    /// The case rated, if the answer is about a case.
    async fn case_id(&self) -> Option<ID> {
        match self.0.subject {
            d::FeedbackSubject::Case(c) => Some(ID(c.to_string())),
            d::FeedbackSubject::Interaction(_) => None,
        }
    }
    /// The interaction rated, if the answer is about one.
    async fn interaction_id(&self) -> Option<ID> {
        match self.0.subject {
            d::FeedbackSubject::Interaction(i) => Some(ID(i.to_string())),
            d::FeedbackSubject::Case(_) => None,
        }
    }
    async fn at(&self) -> DateTime {
        DateTime(self.0.at)
    }
    async fn version(&self) -> u64 {
        self.1
    }
}

/// A scheduled follow-up.
pub struct FollowUpNode(pub FollowUp, pub u64);

/// Loads a follow-up or fails with NOT_FOUND.
pub fn load_follow_up(
    shared: &Shared,
    ws: d::WorkspaceId,
    id: d::FollowUpId,
) -> async_graphql::Result<FollowUpNode> {
    let (state, version) = fold::<FollowUpAggregate>(shared, ws, d::StreamRef::FollowUp(id))?;
    state
        .follow_up()
        .map(|f| FollowUpNode(f.clone(), version))
        .ok_or_else(|| not_found("follow-up", id))
}

#[Object(name = "FollowUp")]
impl FollowUpNode {
    async fn id(&self) -> ID {
        ID(self.0.follow_up_id.to_string())
    }
    async fn customer_id(&self) -> ID {
        ID(self.0.customer_id.to_string())
    }
    async fn reason(&self) -> FollowUpReason {
        self.0.reason.into()
    }
    async fn status(&self) -> FollowUpStatus {
        self.0.status.into()
    }
    async fn due_at(&self) -> DateTime {
        DateTime(self.0.due_at)
    }
    async fn agent_id(&self) -> Option<ID> {
        self.0.agent.map(|a| ID(a.to_string()))
    }
    async fn team_id(&self) -> Option<ID> {
        self.0.team.map(|t| ID(t.to_string()))
    }
    /// `[erased]` once the customer is forgotten.
    async fn note(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        self.0
            .note
            .as_deref()
            .map(|text| shown(ctx, self.0.customer_id, F::FollowUpNote, text))
            .transpose()
    }
    async fn scheduled_at(&self) -> DateTime {
        DateTime(self.0.scheduled_at)
    }
    /// When it was completed or cancelled.
    async fn ended_at(&self) -> Option<DateTime> {
        self.0.ended_at.map(DateTime)
    }
    async fn version(&self) -> u64 {
        self.1
    }
}

/// An agent.
pub struct AgentNode(pub Agent, pub u64);

/// Loads an agent or fails with NOT_FOUND.
pub fn load_agent(
    shared: &Shared,
    ws: d::WorkspaceId,
    id: d::AgentId,
) -> async_graphql::Result<AgentNode> {
    let (state, version) = fold::<AgentAggregate>(shared, ws, d::StreamRef::Agent(id))?;
    state
        .agent()
        .map(|a| AgentNode(a.clone(), version))
        .ok_or_else(|| not_found("agent", id))
}

#[Object(name = "Agent")]
impl AgentNode {
    async fn id(&self) -> ID {
        ID(self.0.agent_id.to_string())
    }
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    async fn team_ids(&self) -> Vec<ID> {
        self.0.teams.iter().map(|t| ID(t.to_string())).collect()
    }
    async fn registered_at(&self) -> DateTime {
        DateTime(self.0.registered_at)
    }
    async fn recognitions(&self) -> usize {
        self.0.recognitions.len()
    }
    /// Points received through recognitions.
    async fn points(&self) -> u64 {
        self.0.points
    }
    async fn version(&self) -> u64 {
        self.1
    }
}

/// What a note was added to.
#[derive(SimpleObject)]
pub struct NoteTargetResult {
    #[graphql(guard = "Need(Permission::ReadCases)")]
    pub case: Option<CaseNode>,
    pub interaction: Option<InteractionNode>,
}

/// Loads the object a note is attached to.
pub fn note_target(
    shared: &Shared,
    ws: d::WorkspaceId,
    target: d::NoteTarget,
) -> async_graphql::Result<NoteTargetResult> {
    Ok(match target {
        d::NoteTarget::Case(id) => NoteTargetResult {
            case: Some(load_case(shared, ws, id)?),
            interaction: None,
        },
        d::NoteTarget::Interaction(id) => NoteTargetResult {
            case: None,
            interaction: Some(load_interaction(shared, ws, id)?),
        },
    })
}
