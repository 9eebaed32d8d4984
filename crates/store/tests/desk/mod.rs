//! Test support for the escalation, metrics and SLA tests: a temporary store and a help desk
//! that builds histories the way the application does (load the stream, fold it through the
//! aggregate, decide the command, append the events at the loaded version).
#![allow(dead_code)]

use sijil_domain::case::{CaseAggregate, CaseStatus};
use sijil_domain::{
    agent::AgentAggregate, interaction::InteractionAggregate, survey::SurveyAggregate,
    AgentCommand, AgentId, Aggregate, CaseCommand, CaseId, CaseLink, Channel, CustomerId,
    CustomerStatus, Direction as Dir, DomainEvent, FeedbackSubject, Handler, InteractionCommand,
    InteractionId, Priority, RecognitionBasis, RecognitionId, Reward, Score, SlaPolicy,
    SurveyCommand, SurveyId, TeamId, Timestamp, WorkspaceId,
};
use sijil_store::projections::decode_event;
use sijil_store::projections::encode_event;
use sijil_store::{Direction, ExpectedVersion, NewEvent, Store};
use tempfile::TempDir;
use uuid::Uuid;

/// A UTC midnight (2024-01-01) all test times count from.
pub const T0: i64 = 1_704_067_200_000;
/// Milliseconds per minute and per day.
pub const MIN: i64 = 60_000;
pub const DAY: i64 = 86_400_000;

/// `minutes` after [`T0`].
pub fn t(minutes: i64) -> Timestamp {
    Timestamp(T0 + minutes * MIN)
}

/// The start of day `n` after [`T0`].
pub fn day(n: i64) -> Timestamp {
    Timestamp(T0 + n * DAY)
}

/// A fresh v7 id of any kind.
pub fn id<T: TryFrom<Uuid>>() -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(Uuid::now_v7()).expect("a v7 uuid")
}

/// The SLA policy most tests use: respond in 15 minutes, resolve in 4 hours.
pub const SLA: SlaPolicy = SlaPolicy {
    first_response_minutes: 15,
    resolution_minutes: 240,
};

/// One workspace's help desk over a store.
#[derive(Clone)]
pub struct Desk {
    pub store: Store,
    pub ws: WorkspaceId,
    pub customer: CustomerId,
}

/// A temporary store (kept alive by the `TempDir`).
pub fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let store = Store::open(dir.path()).expect("open store");
    (dir, store)
}

impl Desk {
    /// A desk for a new workspace on `store`.
    pub fn new(store: &Store) -> Desk {
        Desk {
            store: store.clone(),
            ws: id(),
            customer: id(),
        }
    }

    /// Loads `stream`, decides `command` with aggregate `A`, appends; returns the last
    /// position written.
    pub async fn exec<A: Aggregate>(&self, stream: &str, command: A::Command) -> u64 {
        let recorded = self
            .store
            .read_stream(stream, 1, Direction::Forward, 100_000)
            .expect("read stream");
        let events: Vec<DomainEvent> = recorded
            .iter()
            .map(|r| decode_event(r).expect("decode"))
            .collect();
        let state = A::fold(&events);
        let new = A::decide(&state, command.clone())
            .unwrap_or_else(|e| panic!("{command:?} refused: {e}"));
        let version = recorded.last().map_or(0, |r| r.version);
        let batch = new
            .iter()
            .map(|e| NewEvent {
                event_id: Uuid::now_v7(),
                workspace_id: self.ws.as_uuid(),
                event_type: e.event_type().to_owned(),
                schema_version: e.schema_version(),
                occurred_at: e.occurred_at().millis(),
                actor: "system:test".to_owned(),
                on_behalf_of: None,
                correlation_id: None,
                causation_id: None,
                payload: encode_event(e),
            })
            .collect();
        self.store
            .append(stream, ExpectedVersion::Exact(version), batch)
            .await
            .expect("append")
            .last_position
    }

    pub async fn case(&self, case: CaseId, command: CaseCommand) -> u64 {
        self.exec::<CaseAggregate>(&format!("case-{case}"), command)
            .await
    }

    /// Opens a case with `priority`, `channel` and `sla` at `at`.
    pub async fn open_with(
        &self,
        case: CaseId,
        channel: Channel,
        priority: Priority,
        sla: SlaPolicy,
        at: Timestamp,
    ) -> u64 {
        self.case(
            case,
            CaseCommand::Open {
                case_id: case,
                customer_id: self.customer,
                customer: CustomerStatus::Active,
                subject: "Card declined".into(),
                category: "payments".into(),
                priority,
                channel,
                sla,
                top_level: 3,
                at,
            },
        )
        .await
    }

    /// Opens a normal-priority case with [`SLA`].
    pub async fn open(&self, case: CaseId, channel: Channel, at: Timestamp) -> u64 {
        self.open_with(case, channel, Priority::Normal, SLA, at)
            .await
    }

    pub async fn assign(
        &self,
        case: CaseId,
        agent: Option<AgentId>,
        team: Option<TeamId>,
        at: Timestamp,
    ) -> u64 {
        self.case(case, CaseCommand::Assign { agent, team, at })
            .await
    }

    pub async fn respond(&self, case: CaseId, agent: Option<AgentId>, at: Timestamp) -> u64 {
        self.case(
            case,
            CaseCommand::GiveFirstResponse {
                agent,
                channel: Channel::Email,
                at,
            },
        )
        .await
    }

    pub async fn escalate(&self, case: CaseId, team: Option<TeamId>, at: Timestamp) -> u64 {
        self.case(
            case,
            CaseCommand::Escalate {
                reason: "needs a specialist".into(),
                team,
                at,
            },
        )
        .await
    }

    pub async fn deescalate(&self, case: CaseId, team: Option<TeamId>, at: Timestamp) -> u64 {
        self.case(
            case,
            CaseCommand::Deescalate {
                reason: "back to front line".into(),
                team,
                at,
            },
        )
        .await
    }

    pub async fn resolve(
        &self,
        case: CaseId,
        fcr: bool,
        agent: Option<AgentId>,
        at: Timestamp,
    ) -> u64 {
        self.case(
            case,
            CaseCommand::Resolve {
                resolution: "Card re-enabled".into(),
                root_cause: "fraud-rule".into(),
                first_contact_resolution: fcr,
                agent,
                at,
            },
        )
        .await
    }

    pub async fn reopen(&self, case: CaseId, at: Timestamp) -> u64 {
        self.case(
            case,
            CaseCommand::Reopen {
                reason: "declined again".into(),
                at,
            },
        )
        .await
    }

    pub async fn close(&self, case: CaseId, at: Timestamp) -> u64 {
        self.case(case, CaseCommand::Close { at }).await
    }

    /// Records an interaction handled by `agent` on `channel`, about `case` (open) if given.
    pub async fn interaction(
        &self,
        interaction: InteractionId,
        agent: AgentId,
        channel: Channel,
        case: Option<(CaseId, CaseStatus)>,
        at: Timestamp,
    ) -> u64 {
        self.exec::<InteractionAggregate>(
            &format!("interaction-{interaction}"),
            InteractionCommand::Record {
                interaction_id: interaction,
                customer_id: self.customer,
                customer: CustomerStatus::Active,
                channel,
                direction: Dir::Inbound,
                handled_by: Handler::Agent(agent),
                language: "en".into(),
                summary: "Customer called".into(),
                duration_seconds: 120,
                case: case.map(|(case_id, status)| CaseLink {
                    case_id,
                    status: Some(status),
                }),
                recording_ref: None,
                at,
            },
        )
        .await
    }

    /// Records a survey answer.
    pub async fn answer(&self, subject: FeedbackSubject, score: Score, at: Timestamp) -> u64 {
        let survey: SurveyId = id();
        self.exec::<SurveyAggregate>(
            &format!("survey-{survey}"),
            SurveyCommand::Answer {
                survey_id: survey,
                customer_id: self.customer,
                customer: CustomerStatus::Active,
                subject,
                score,
                comment: None,
                at,
            },
        )
        .await
    }

    pub async fn register_agent(&self, agent: AgentId, name: &str, at: Timestamp) -> u64 {
        self.exec::<AgentAggregate>(
            &format!("agent-{agent}"),
            AgentCommand::Register {
                agent_id: agent,
                display_name: name.into(),
                teams: Vec::new(),
                at,
            },
        )
        .await
    }

    pub async fn recognise(
        &self,
        agent: AgentId,
        by: AgentId,
        reward: Reward,
        at: Timestamp,
    ) -> u64 {
        let recognition: RecognitionId = id();
        self.exec::<AgentAggregate>(
            &format!("agent-{agent}"),
            AgentCommand::Recognise {
                recognition_id: recognition,
                by,
                reason: "great save".into(),
                reward,
                basis: RecognitionBasis::Case(id()),
                at,
            },
        )
        .await
    }
}
