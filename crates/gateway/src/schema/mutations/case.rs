//! Case work: open, assign, first response, escalate, de-escalate, resolve, reopen and close a
//! case; record an interaction; add a note to a case or an interaction. Each answers with the
//! object read back after the write.

use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, ID};
use serde::Serialize;
use sijil_domain as d;
use sijil_domain::case::{CaseAggregate, Command as CaseCommand};
use sijil_domain::interaction::{Command as InteractionCommand, InteractionAggregate};

use super::{payload, typed_id, Write};
use crate::auth::Permission;
use crate::error::ApiError;
use crate::schema::case::{load_required as load_case, CaseNode};
use crate::schema::records::{load_interaction, note_target, InteractionNode, NoteTargetResult};
use crate::schema::types::{parse_id, parse_opt_id, Channel, Direction, Priority};

/// The escalation levels (tiers) of a workspace: cases open at 1 and reach at most this.
pub const TOP_LEVEL: u8 = 3;

/// The SLA targets (first response, resolution; minutes) a case gets when none is given.
pub fn default_sla(priority: d::Priority) -> d::SlaPolicy {
    let (first_response_minutes, resolution_minutes) = match priority {
        d::Priority::Urgent => (15, 240),
        d::Priority::High => (60, 480),
        d::Priority::Normal => (240, 1_440),
        d::Priority::Low => (480, 4_320),
    };
    d::SlaPolicy {
        first_response_minutes,
        resolution_minutes,
    }
}

payload!(
    /// A case mutation's result.
    CasePayload { case: CaseNode } needs "crate::context::Need(Permission::ReadCases)"
);
payload!(
    /// `recordInteraction`'s result.
    InteractionPayload { interaction: InteractionNode } needs "crate::context::Need(Permission::ReadCustomers)"
);
payload!(
    /// `addNote`'s result: the case or interaction the note is on.
    NotePayload { target: NoteTargetResult } needs "crate::context::Need(Permission::ReadCustomers)"
);

/// SLA targets in minutes from opening.
#[derive(InputObject, Serialize, Clone, Copy)]
pub struct SlaInput {
    pub first_response_minutes: u32,
    pub resolution_minutes: u32,
}

#[derive(InputObject, Serialize)]
pub struct OpenCaseInput {
    pub client_mutation_id: Option<String>,
    pub customer_id: ID,
    pub subject: String,
    pub category: String,
    #[graphql(default_with = "Priority::Normal")]
    pub priority: Priority,
    pub channel: Channel,
    /// Defaults by priority (urgent 15 min / 4 h, high 1 h / 8 h, normal 4 h / 24 h,
    /// low 8 h / 72 h).
    pub sla: Option<SlaInput>,
}

#[derive(InputObject, Serialize)]
pub struct AssignCaseInput {
    pub client_mutation_id: Option<String>,
    pub case_id: ID,
    pub expected_version: Option<u64>,
    pub agent_id: Option<ID>,
    pub team_id: Option<ID>,
}

#[derive(InputObject, Serialize)]
pub struct RespondToCaseInput {
    pub client_mutation_id: Option<String>,
    pub case_id: ID,
    pub expected_version: Option<u64>,
    pub agent_id: Option<ID>,
    pub channel: Channel,
}

#[derive(InputObject, Serialize)]
pub struct ChangeLevelInput {
    pub client_mutation_id: Option<String>,
    pub case_id: ID,
    pub expected_version: Option<u64>,
    pub reason: String,
    /// The team that takes the case at its new level.
    pub team_id: Option<ID>,
}

#[derive(InputObject, Serialize)]
pub struct ResolveCaseInput {
    pub client_mutation_id: Option<String>,
    pub case_id: ID,
    pub expected_version: Option<u64>,
    pub resolution: String,
    pub root_cause: String,
    #[graphql(default = false)]
    pub first_contact_resolution: bool,
    pub agent_id: Option<ID>,
}

#[derive(InputObject, Serialize)]
pub struct ReopenCaseInput {
    pub client_mutation_id: Option<String>,
    pub case_id: ID,
    pub expected_version: Option<u64>,
    pub reason: String,
}

#[derive(InputObject, Serialize)]
pub struct CloseCaseInput {
    pub client_mutation_id: Option<String>,
    pub case_id: ID,
    pub expected_version: Option<u64>,
}

#[derive(InputObject, Serialize)]
pub struct RecordInteractionInput {
    pub client_mutation_id: Option<String>,
    pub customer_id: ID,
    pub channel: Channel,
    pub direction: Direction,
    /// The agent who handled it; give this or `bot`.
    pub agent_id: Option<ID>,
    /// The bot that handled it, by name; give this or `agentId`.
    pub bot: Option<String>,
    /// BCP-47 tag of the language used.
    pub language: String,
    pub summary: String,
    #[graphql(default = 0)]
    pub duration_seconds: u32,
    pub case_id: Option<ID>,
    pub recording_ref: Option<String>,
}

/// What a note is attached to.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Serialize)]
pub enum NoteOn {
    Case,
    Interaction,
}

#[derive(InputObject, Serialize)]
pub struct AddNoteInput {
    pub client_mutation_id: Option<String>,
    pub on: NoteOn,
    /// The case or interaction id.
    pub target_id: ID,
    pub expected_version: Option<u64>,
    pub author_id: Option<ID>,
    pub text: String,
}

/// Case and interaction mutations.
#[derive(Default)]
pub struct CaseMutation;

impl CaseMutation {
    async fn case_command(
        write: &Write<'_>,
        case_id: &ID,
        expected: Option<u64>,
        command: impl FnOnce(d::Timestamp) -> async_graphql::Result<CaseCommand>,
    ) -> async_graphql::Result<CasePayload> {
        let id = parse_id(case_id, d::CaseId::parse, "caseId")?;
        let command = command(write.now)?;
        let outcome = write
            .run::<CaseAggregate>(d::StreamRef::Case(id), command, expected, None)
            .await?;
        Ok(CasePayload::new(
            write,
            &outcome,
            load_case(write.shared, write.ws, id)?,
        ))
    }
}

#[Object]
impl CaseMutation {
    /// Opens a case for a customer; the server mints the id.
    async fn open_case(
        &self,
        ctx: &Context<'_>,
        input: OpenCaseInput,
    ) -> async_graphql::Result<CasePayload> {
        let write = Write::start(
            ctx,
            Permission::WorkCases,
            "openCase",
            input.client_mutation_id.as_deref(),
            None,
            &input,
        )?;
        let customer_id = parse_id(&input.customer_id, d::CustomerId::parse, "customerId")?;
        let uuid = write.mint().await?;
        let case_id = typed_id(uuid, d::CaseId::new)?;
        let priority: d::Priority = input.priority.into();
        let command = CaseCommand::Open {
            case_id,
            customer_id,
            customer: write.customer_status(customer_id)?,
            subject: input.subject,
            category: input.category,
            priority,
            channel: input.channel.into(),
            sla: input.sla.map_or_else(
                || default_sla(priority),
                |s| d::SlaPolicy {
                    first_response_minutes: s.first_response_minutes,
                    resolution_minutes: s.resolution_minutes,
                },
            ),
            top_level: TOP_LEVEL,
            at: write.now,
        };
        let outcome = write
            .run::<CaseAggregate>(d::StreamRef::Case(case_id), command, None, Some(uuid))
            .await?;
        Ok(CasePayload::new(
            &write,
            &outcome,
            load_case(write.shared, write.ws, case_id)?,
        ))
    }

    /// Gives a case to an agent and/or a team (replacing the assignment).
    async fn assign_case(
        &self,
        ctx: &Context<'_>,
        input: AssignCaseInput,
    ) -> async_graphql::Result<CasePayload> {
        let write = Write::start(
            ctx,
            Permission::WorkCases,
            "assignCase",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let agent = parse_opt_id(input.agent_id.as_ref(), d::AgentId::parse, "agentId")?;
        let team = parse_opt_id(input.team_id.as_ref(), d::TeamId::parse, "teamId")?;
        Self::case_command(&write, &input.case_id, input.expected_version, |at| {
            Ok(CaseCommand::Assign { agent, team, at })
        })
        .await
    }

    /// Records the first agent response on a case.
    async fn respond_to_case(
        &self,
        ctx: &Context<'_>,
        input: RespondToCaseInput,
    ) -> async_graphql::Result<CasePayload> {
        let write = Write::start(
            ctx,
            Permission::WorkCases,
            "respondToCase",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let agent = parse_opt_id(input.agent_id.as_ref(), d::AgentId::parse, "agentId")?;
        let channel = input.channel.into();
        Self::case_command(&write, &input.case_id, input.expected_version, |at| {
            Ok(CaseCommand::GiveFirstResponse { agent, channel, at })
        })
        .await
    }

    /// Moves a case up one level.
    async fn escalate_case(
        &self,
        ctx: &Context<'_>,
        input: ChangeLevelInput,
    ) -> async_graphql::Result<CasePayload> {
        let write = Write::start(
            ctx,
            Permission::WorkCases,
            "escalateCase",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let team = parse_opt_id(input.team_id.as_ref(), d::TeamId::parse, "teamId")?;
        let reason = input.reason.clone();
        Self::case_command(&write, &input.case_id, input.expected_version, |at| {
            Ok(CaseCommand::Escalate { reason, team, at })
        })
        .await
    }

    /// Moves a case down one level.
    async fn deescalate_case(
        &self,
        ctx: &Context<'_>,
        input: ChangeLevelInput,
    ) -> async_graphql::Result<CasePayload> {
        let write = Write::start(
            ctx,
            Permission::WorkCases,
            "deescalateCase",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let team = parse_opt_id(input.team_id.as_ref(), d::TeamId::parse, "teamId")?;
        let reason = input.reason.clone();
        Self::case_command(&write, &input.case_id, input.expected_version, |at| {
            Ok(CaseCommand::Deescalate { reason, team, at })
        })
        .await
    }

    /// Resolves a case.
    async fn resolve_case(
        &self,
        ctx: &Context<'_>,
        input: ResolveCaseInput,
    ) -> async_graphql::Result<CasePayload> {
        let write = Write::start(
            ctx,
            Permission::WorkCases,
            "resolveCase",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let agent = parse_opt_id(input.agent_id.as_ref(), d::AgentId::parse, "agentId")?;
        let (resolution, root_cause) = (input.resolution.clone(), input.root_cause.clone());
        let first_contact_resolution = input.first_contact_resolution;
        Self::case_command(&write, &input.case_id, input.expected_version, |at| {
            Ok(CaseCommand::Resolve {
                resolution,
                root_cause,
                first_contact_resolution,
                agent,
                at,
            })
        })
        .await
    }

    /// Reopens a resolved case.
    async fn reopen_case(
        &self,
        ctx: &Context<'_>,
        input: ReopenCaseInput,
    ) -> async_graphql::Result<CasePayload> {
        let write = Write::start(
            ctx,
            Permission::WorkCases,
            "reopenCase",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let reason = input.reason.clone();
        Self::case_command(&write, &input.case_id, input.expected_version, |at| {
            Ok(CaseCommand::Reopen { reason, at })
        })
        .await
    }

    /// Closes a resolved case for good.
    async fn close_case(
        &self,
        ctx: &Context<'_>,
        input: CloseCaseInput,
    ) -> async_graphql::Result<CasePayload> {
        let write = Write::start(
            ctx,
            Permission::WorkCases,
            "closeCase",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        Self::case_command(&write, &input.case_id, input.expected_version, |at| {
            Ok(CaseCommand::Close { at })
        })
        .await
    }

    /// Records one contact on one channel; the server mints the id.
    async fn record_interaction(
        &self,
        ctx: &Context<'_>,
        input: RecordInteractionInput,
    ) -> async_graphql::Result<InteractionPayload> {
        let write = Write::start(
            ctx,
            Permission::RecordInteractions,
            "recordInteraction",
            input.client_mutation_id.as_deref(),
            None,
            &input,
        )?;
        let customer_id = parse_id(&input.customer_id, d::CustomerId::parse, "customerId")?;
        let handled_by = match (&input.agent_id, &input.bot) {
            (Some(agent), None) => {
                d::Handler::Agent(parse_id(agent, d::AgentId::parse, "agentId")?)
            }
            (None, Some(bot)) => d::Handler::Bot(bot.clone()),
            _ => {
                return Err(ApiError::Validation {
                    message: "give exactly one of `agentId` and `bot`".to_owned(),
                    reason: "INVALID_HANDLER",
                    field: Some("agentId".to_owned()),
                }
                .extend())
            }
        };
        let case = match parse_opt_id(input.case_id.as_ref(), d::CaseId::parse, "caseId")? {
            Some(case_id) => Some(d::CaseLink {
                case_id,
                status: write
                    .load::<CaseAggregate>(&d::StreamRef::Case(case_id))?
                    .status(),
            }),
            None => None,
        };
        let uuid = write.mint().await?;
        let id = typed_id(uuid, d::InteractionId::new)?;
        let command = InteractionCommand::Record {
            interaction_id: id,
            customer_id,
            customer: write.customer_status(customer_id)?,
            channel: input.channel.into(),
            direction: input.direction.into(),
            handled_by,
            language: input.language,
            summary: input.summary,
            duration_seconds: input.duration_seconds,
            case,
            recording_ref: input.recording_ref,
            at: write.now,
        };
        let outcome = write
            .run::<InteractionAggregate>(d::StreamRef::Interaction(id), command, None, Some(uuid))
            .await?;
        Ok(InteractionPayload::new(
            &write,
            &outcome,
            load_interaction(write.shared, write.ws, id)?,
        ))
    }

    /// Adds an internal note to a case or an interaction.
    async fn add_note(
        &self,
        ctx: &Context<'_>,
        input: AddNoteInput,
    ) -> async_graphql::Result<NotePayload> {
        let permission = match input.on {
            NoteOn::Case => Permission::WorkCases,
            NoteOn::Interaction => Permission::RecordInteractions,
        };
        let write = Write::start(
            ctx,
            permission,
            "addNote",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let author = parse_opt_id(input.author_id.as_ref(), d::AgentId::parse, "authorId")?;
        let uuid = write.mint().await?;
        let note_id = typed_id(uuid, d::NoteId::new)?;
        let (target, outcome) = match input.on {
            NoteOn::Case => {
                let id = parse_id(&input.target_id, d::CaseId::parse, "targetId")?;
                let stream = d::StreamRef::Case(id);
                let state = write.load::<CaseAggregate>(&stream)?;
                let customer = match state.case() {
                    Some(case) => write.customer_status(case.customer_id)?,
                    None => return Err(ApiError::NotFound(format!("case {id}")).extend()),
                };
                let command = CaseCommand::AddNote {
                    note_id,
                    customer,
                    author,
                    text: input.text,
                    at: write.now,
                };
                let outcome = write
                    .run::<CaseAggregate>(stream, command, input.expected_version, Some(uuid))
                    .await?;
                (d::NoteTarget::Case(id), outcome)
            }
            NoteOn::Interaction => {
                let id = parse_id(&input.target_id, d::InteractionId::parse, "targetId")?;
                let stream = d::StreamRef::Interaction(id);
                let state = write.load::<InteractionAggregate>(&stream)?;
                let customer = match state.interaction() {
                    Some(i) => write.customer_status(i.recorded.customer_id)?,
                    None => return Err(ApiError::NotFound(format!("interaction {id}")).extend()),
                };
                let command = InteractionCommand::AddNote {
                    note_id,
                    customer,
                    author,
                    text: input.text,
                    at: write.now,
                };
                let outcome = write
                    .run::<InteractionAggregate>(
                        stream,
                        command,
                        input.expected_version,
                        Some(uuid),
                    )
                    .await?;
                (d::NoteTarget::Interaction(id), outcome)
            }
        };
        Ok(NotePayload::new(
            &write,
            &outcome,
            note_target(write.shared, write.ws, target)?,
        ))
    }
}
