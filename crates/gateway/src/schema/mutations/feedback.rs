//! Feedback and people: answer a survey, schedule / complete / cancel a follow-up, register an
//! agent and recognise one. Each answers with the object read back after the write.

use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, ID};
use serde::Serialize;
use sijil_domain as d;
use sijil_domain::agent::{AgentAggregate, Command as AgentCommand};
use sijil_domain::follow_up::{Command as FollowUpCommand, FollowUpAggregate};
use sijil_domain::survey::{Command as SurveyCommand, SurveyAggregate};

use super::{payload, typed_id, Write};
use crate::auth::Permission;
use crate::error::ApiError;
use crate::schema::records::{
    load_agent, load_follow_up, load_survey, AgentNode, FollowUpNode, SurveyNode, SurveyScale,
};
use crate::schema::types::{parse_id, parse_opt_id, FollowUpReason, MetricKind};
use crate::time::DateTime;

payload!(
    /// `answerSurvey`'s result.
    SurveyPayload { survey: SurveyNode } needs "crate::context::Need(Permission::ReadCustomers)"
);
payload!(
    /// A follow-up mutation's result.
    FollowUpPayload { follow_up: FollowUpNode } needs "crate::context::Need(Permission::ReadCustomers)"
);
payload!(
    /// An agent mutation's result.
    AgentPayload { agent: AgentNode } needs "crate::context::Need(Permission::ReadCases)"
);

fn one_of<T>(
    options: [(Option<T>, &str); 3],
    what: &str,
) -> async_graphql::Result<Option<(T, String)>> {
    let mut given = options
        .into_iter()
        .filter_map(|(v, name)| v.map(|v| (v, name.to_owned())));
    let first = given.next();
    if given.next().is_some() {
        return Err(ApiError::validation(format!("give at most one {what}"), "AMBIGUOUS").extend());
    }
    Ok(first)
}

#[derive(InputObject, Serialize)]
pub struct AnswerSurveyInput {
    pub client_mutation_id: Option<String>,
    pub customer_id: ID,
    /// The case rated; give this or `interactionId`.
    pub case_id: Option<ID>,
    /// The interaction rated; give this or `caseId`.
    pub interaction_id: Option<ID>,
    pub scale: SurveyScale,
    /// CSAT 1–5, NPS 0–10, CES 1–7.
    pub score: i32,
    pub comment: Option<String>,
}

#[derive(InputObject, Serialize)]
pub struct ScheduleFollowUpInput {
    pub client_mutation_id: Option<String>,
    pub customer_id: ID,
    pub reason: FollowUpReason,
    /// At most one of the related case, survey answer or interaction.
    pub related_case_id: Option<ID>,
    pub related_survey_id: Option<ID>,
    pub related_interaction_id: Option<ID>,
    pub due_at: DateTime,
    pub agent_id: Option<ID>,
    pub team_id: Option<ID>,
    /// Required when the reason is OTHER.
    pub note: Option<String>,
}

#[derive(InputObject, Serialize)]
pub struct CompleteFollowUpInput {
    pub client_mutation_id: Option<String>,
    pub follow_up_id: ID,
    pub expected_version: Option<u64>,
    pub outcome: String,
    pub agent_id: Option<ID>,
}

#[derive(InputObject, Serialize)]
pub struct CancelFollowUpInput {
    pub client_mutation_id: Option<String>,
    pub follow_up_id: ID,
    pub expected_version: Option<u64>,
    pub reason: String,
}

#[derive(InputObject, Serialize)]
pub struct RegisterAgentInput {
    pub client_mutation_id: Option<String>,
    pub display_name: String,
    #[graphql(default)]
    pub team_ids: Vec<ID>,
}

/// The kind of reward that goes with a recognition.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Serialize)]
pub enum RewardKind {
    Kudos,
    Points,
    Voucher,
}

#[derive(InputObject, Serialize)]
pub struct RewardInput {
    pub kind: RewardKind,
    /// For POINTS.
    pub points: Option<u32>,
    /// For VOUCHER: the amount in minor units (cents, fils, ...).
    pub amount_minor: Option<u64>,
    /// For VOUCHER: ISO 4217 code.
    pub currency: Option<String>,
}

#[derive(InputObject, Serialize)]
pub struct MetricBasisInput {
    pub metric: MetricKind,
    pub from: DateTime,
    pub to: DateTime,
}

#[derive(InputObject, Serialize)]
pub struct RecogniseAgentInput {
    pub client_mutation_id: Option<String>,
    pub agent_id: ID,
    pub expected_version: Option<u64>,
    /// The supervisor giving the recognition.
    pub by_agent_id: ID,
    pub reason: String,
    pub reward: RewardInput,
    /// Exceptional service on this case; give this or `metric`.
    pub case_id: Option<ID>,
    /// A metric over a period; give this or `caseId`.
    pub metric: Option<MetricBasisInput>,
}

fn score(scale: SurveyScale, value: i32) -> async_graphql::Result<d::Score> {
    let (name, min, max) = match scale {
        SurveyScale::Csat => ("CSAT", 1, 5),
        SurveyScale::Nps => ("NPS", 0, 10),
        SurveyScale::Ces => ("CES", 1, 7),
    };
    let Ok(v) = u8::try_from(value) else {
        return Err(ApiError::Validation {
            message: format!("{name} score {value} is outside {min}..={max}"),
            reason: "SCORE_OUT_OF_RANGE",
            field: Some("score".to_owned()),
        }
        .extend());
    };
    Ok(match scale {
        SurveyScale::Csat => d::Score::Csat(v),
        SurveyScale::Nps => d::Score::Nps(v),
        SurveyScale::Ces => d::Score::Ces(v),
    })
}

fn reward(input: &RewardInput) -> async_graphql::Result<d::Reward> {
    let missing = |field: &str| {
        ApiError::Validation {
            message: format!("this reward needs `{field}`"),
            reason: "INVALID_REWARD",
            field: Some(field.to_owned()),
        }
        .extend()
    };
    Ok(match input.kind {
        RewardKind::Kudos => d::Reward::Kudos,
        RewardKind::Points => d::Reward::Points(input.points.ok_or_else(|| missing("points"))?),
        RewardKind::Voucher => d::Reward::Voucher {
            amount_minor: input.amount_minor.ok_or_else(|| missing("amountMinor"))?,
            currency: input.currency.clone().ok_or_else(|| missing("currency"))?,
        },
    })
}

/// Survey, follow-up and agent mutations.
#[derive(Default)]
pub struct FeedbackMutation;

#[Object]
impl FeedbackMutation {
    /// Records a customer's survey answer about a case or an interaction.
    async fn answer_survey(
        &self,
        ctx: &Context<'_>,
        input: AnswerSurveyInput,
    ) -> async_graphql::Result<SurveyPayload> {
        let write = Write::start(
            ctx,
            Permission::RecordFeedback,
            "answerSurvey",
            input.client_mutation_id.as_deref(),
            None,
            &input,
        )?;
        let customer_id = parse_id(&input.customer_id, d::CustomerId::parse, "customerId")?;
        let subject = match (&input.case_id, &input.interaction_id) {
            (Some(c), None) => d::FeedbackSubject::Case(parse_id(c, d::CaseId::parse, "caseId")?),
            (None, Some(i)) => d::FeedbackSubject::Interaction(parse_id(
                i,
                d::InteractionId::parse,
                "interactionId",
            )?),
            _ => {
                return Err(ApiError::validation(
                    "give exactly one of `caseId` and `interactionId`",
                    "INVALID_SUBJECT",
                )
                .extend())
            }
        };
        let score = score(input.scale, input.score)?;
        let uuid = write.mint().await?;
        let id = typed_id(uuid, d::SurveyId::new)?;
        let command = SurveyCommand::Answer {
            survey_id: id,
            customer_id,
            customer: write.customer_status(customer_id)?,
            subject,
            score,
            comment: input.comment,
            at: write.now,
        };
        let outcome = write
            .run::<SurveyAggregate>(d::StreamRef::Survey(id), command, None, Some(uuid))
            .await?;
        Ok(SurveyPayload::new(
            &write,
            &outcome,
            load_survey(write.shared, write.ws, id)?,
        ))
    }

    /// Plans outreach to a customer.
    async fn schedule_follow_up(
        &self,
        ctx: &Context<'_>,
        input: ScheduleFollowUpInput,
    ) -> async_graphql::Result<FollowUpPayload> {
        let write = Write::start(
            ctx,
            Permission::ManageFollowUps,
            "scheduleFollowUp",
            input.client_mutation_id.as_deref(),
            None,
            &input,
        )?;
        let customer_id = parse_id(&input.customer_id, d::CustomerId::parse, "customerId")?;
        let related = one_of(
            [
                (input.related_case_id.as_ref(), "relatedCaseId"),
                (input.related_survey_id.as_ref(), "relatedSurveyId"),
                (
                    input.related_interaction_id.as_ref(),
                    "relatedInteractionId",
                ),
            ],
            "related object",
        )?;
        let related = match related {
            None => None,
            Some((id, field)) => Some(match field.as_str() {
                "relatedCaseId" => {
                    d::FollowUpRelation::Case(parse_id(id, d::CaseId::parse, &field)?)
                }
                "relatedSurveyId" => {
                    d::FollowUpRelation::Survey(parse_id(id, d::SurveyId::parse, &field)?)
                }
                _ => {
                    d::FollowUpRelation::Interaction(parse_id(id, d::InteractionId::parse, &field)?)
                }
            }),
        };
        let agent = parse_opt_id(input.agent_id.as_ref(), d::AgentId::parse, "agentId")?;
        let team = parse_opt_id(input.team_id.as_ref(), d::TeamId::parse, "teamId")?;
        let uuid = write.mint().await?;
        let id = typed_id(uuid, d::FollowUpId::new)?;
        let command = FollowUpCommand::Schedule {
            follow_up_id: id,
            customer_id,
            customer: write.customer_status(customer_id)?,
            reason: input.reason.into(),
            related,
            due_at: input.due_at.0,
            agent,
            team,
            note: input.note,
            at: write.now,
        };
        let outcome = write
            .run::<FollowUpAggregate>(d::StreamRef::FollowUp(id), command, None, Some(uuid))
            .await?;
        Ok(FollowUpPayload::new(
            &write,
            &outcome,
            load_follow_up(write.shared, write.ws, id)?,
        ))
    }

    /// Records that a follow-up happened.
    async fn complete_follow_up(
        &self,
        ctx: &Context<'_>,
        input: CompleteFollowUpInput,
    ) -> async_graphql::Result<FollowUpPayload> {
        let write = Write::start(
            ctx,
            Permission::ManageFollowUps,
            "completeFollowUp",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let id = parse_id(&input.follow_up_id, d::FollowUpId::parse, "followUpId")?;
        let agent = parse_opt_id(input.agent_id.as_ref(), d::AgentId::parse, "agentId")?;
        let command = FollowUpCommand::Complete {
            outcome: input.outcome,
            agent,
            at: write.now,
        };
        let outcome = write
            .run::<FollowUpAggregate>(
                d::StreamRef::FollowUp(id),
                command,
                input.expected_version,
                None,
            )
            .await?;
        Ok(FollowUpPayload::new(
            &write,
            &outcome,
            load_follow_up(write.shared, write.ws, id)?,
        ))
    }

    /// Records that a follow-up will not happen.
    async fn cancel_follow_up(
        &self,
        ctx: &Context<'_>,
        input: CancelFollowUpInput,
    ) -> async_graphql::Result<FollowUpPayload> {
        let write = Write::start(
            ctx,
            Permission::ManageFollowUps,
            "cancelFollowUp",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let id = parse_id(&input.follow_up_id, d::FollowUpId::parse, "followUpId")?;
        let command = FollowUpCommand::Cancel {
            reason: input.reason,
            at: write.now,
        };
        let outcome = write
            .run::<FollowUpAggregate>(
                d::StreamRef::FollowUp(id),
                command,
                input.expected_version,
                None,
            )
            .await?;
        Ok(FollowUpPayload::new(
            &write,
            &outcome,
            load_follow_up(write.shared, write.ws, id)?,
        ))
    }

    /// Makes an agent known (name and teams); the server mints the id.
    async fn register_agent(
        &self,
        ctx: &Context<'_>,
        input: RegisterAgentInput,
    ) -> async_graphql::Result<AgentPayload> {
        let write = Write::start(
            ctx,
            Permission::ManageAgents,
            "registerAgent",
            input.client_mutation_id.as_deref(),
            None,
            &input,
        )?;
        let teams = input
            .team_ids
            .iter()
            .map(|t| parse_id(t, d::TeamId::parse, "teamIds"))
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let uuid = write.mint().await?;
        let id = typed_id(uuid, d::AgentId::new)?;
        let command = AgentCommand::Register {
            agent_id: id,
            display_name: input.display_name,
            teams,
            at: write.now,
        };
        let outcome = write
            .run::<AgentAggregate>(d::StreamRef::Agent(id), command, None, Some(uuid))
            .await?;
        Ok(AgentPayload::new(
            &write,
            &outcome,
            load_agent(write.shared, write.ws, id)?,
        ))
    }

    /// Recognises an agent for exceptional service on a case or a metric over a period.
    async fn recognise_agent(
        &self,
        ctx: &Context<'_>,
        input: RecogniseAgentInput,
    ) -> async_graphql::Result<AgentPayload> {
        let write = Write::start(
            ctx,
            Permission::Recognise,
            "recogniseAgent",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let id = parse_id(&input.agent_id, d::AgentId::parse, "agentId")?;
        let by = parse_id(&input.by_agent_id, d::AgentId::parse, "byAgentId")?;
        let basis = match (&input.case_id, &input.metric) {
            (Some(case), None) => {
                d::RecognitionBasis::Case(parse_id(case, d::CaseId::parse, "caseId")?)
            }
            (None, Some(m)) => d::RecognitionBasis::Metric {
                metric: m.metric.into(),
                from: m.from.0,
                to: m.to.0,
            },
            _ => {
                return Err(ApiError::validation(
                    "give exactly one of `caseId` and `metric`",
                    "INVALID_BASIS",
                )
                .extend())
            }
        };
        let reward = reward(&input.reward)?;
        let uuid = write.mint().await?;
        let recognition_id = typed_id(uuid, d::RecognitionId::new)?;
        let command = AgentCommand::Recognise {
            recognition_id,
            by,
            reason: input.reason,
            reward,
            basis,
            at: write.now,
        };
        let outcome = write
            .run::<AgentAggregate>(
                d::StreamRef::Agent(id),
                command,
                input.expected_version,
                Some(uuid),
            )
            .await?;
        Ok(AgentPayload::new(
            &write,
            &outcome,
            load_agent(write.shared, write.ws, id)?,
        ))
    }
}
