//! Shared helpers for the projection tests and benchmarks: a [`World`] that runs real domain
//! commands through the aggregates' `decide`/`evolve` (so every recorded history is one the
//! domain accepts), deterministic UUID v7 ids, appending the resulting events to a store in
//! per-stream batches, and dumping projection trees for comparison.
#![allow(dead_code)]

use std::collections::HashMap;
use std::hash::Hash;

use sijil_domain::aggregates::agent::{AgentAggregate, Command as AgentCmd};
use sijil_domain::aggregates::case::{CaseAggregate, Command as CaseCmd};
use sijil_domain::aggregates::customer::{Command as CustomerCmd, CustomerAggregate};
use sijil_domain::aggregates::follow_up::{Command as FollowUpCmd, FollowUpAggregate};
use sijil_domain::aggregates::interaction::{Command as InteractionCmd, InteractionAggregate};
use sijil_domain::aggregates::survey::{Command as SurveyCmd, SurveyAggregate};
use sijil_domain::{
    agent, case, customer, follow_up, interaction, survey, AgentId, Aggregate, CaseId, CaseLink,
    Channel, ContactKind, ContactPoint, CustomerId, CustomerStatus, Direction, DomainError,
    DomainEvent, FeedbackSubject, FollowUpId, FollowUpReason, Handler, InteractionId, NoteId,
    Priority, RecognitionBasis, RecognitionId, Reward, Score, SlaPolicy, SurveyId, Timestamp,
    WorkspaceId,
};
use sijil_store::projections::encode_event;
use sijil_store::{ExpectedVersion, NewEvent, Store};
use uuid::Uuid;

/// Start of every test clock (2024-01-01 00:00 UTC).
pub const EPOCH_MS: i64 = 1_704_067_200_000;

/// A UUID v7 made from a counter and a salt (deterministic, distinct per salt and counter).
pub fn v7(salt: u64, n: u64) -> Uuid {
    let mut random = [0u8; 10];
    random[..2].copy_from_slice(&(salt as u16).to_be_bytes());
    random[2..].copy_from_slice(&n.to_be_bytes());
    let millis = 1_700_000_000_000u64 + (salt >> 16) % 1_000_000 * 1_000_000 + n / 1000;
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

/// A workspace id for tests, numbered.
pub fn workspace(n: u64) -> WorkspaceId {
    WorkspaceId::new(v7(0xffff_0000 + n, n)).expect("v7")
}

/// One workspace's domain state and the events recorded so far, in order.
pub struct World {
    pub ws: WorkspaceId,
    salt: u64,
    next: u64,
    /// The clock, in ms; every command uses it and then it moves on a little.
    pub now: i64,
    customers: HashMap<CustomerId, customer::State>,
    cases: HashMap<CaseId, case::State>,
    interactions: HashMap<InteractionId, interaction::State>,
    surveys: HashMap<SurveyId, survey::State>,
    follow_ups: HashMap<FollowUpId, follow_up::State>,
    agents: HashMap<AgentId, agent::State>,
    /// Every accepted event, oldest first.
    pub log: Vec<DomainEvent>,
}

fn run<A: Aggregate, K: Eq + Hash>(
    states: &mut HashMap<K, A::State>,
    key: K,
    command: A::Command,
    log: &mut Vec<DomainEvent>,
) -> Result<(), DomainError> {
    let state = states.remove(&key).unwrap_or_default();
    match A::decide(&state, command) {
        Ok(events) => {
            let state = events.iter().fold(state, |s, e| A::evolve(s, e));
            states.insert(key, state);
            log.extend(events);
            Ok(())
        }
        Err(e) => {
            states.insert(key, state);
            Err(e)
        }
    }
}

impl World {
    /// An empty world for workspace number `n`.
    pub fn new(n: u64) -> World {
        World {
            ws: workspace(n),
            salt: n.wrapping_mul(0x9e37_79b9) ^ 0x5a5a,
            next: 0,
            now: EPOCH_MS,
            customers: HashMap::new(),
            cases: HashMap::new(),
            interactions: HashMap::new(),
            surveys: HashMap::new(),
            follow_ups: HashMap::new(),
            agents: HashMap::new(),
            log: Vec::new(),
        }
    }

    /// A fresh typed id.
    pub fn id<T: TryFrom<Uuid>>(&mut self) -> T {
        self.next += 1;
        match T::try_from(v7(self.salt, self.next)) {
            Ok(id) => id,
            Err(_) => panic!("v7 ids are accepted"),
        }
    }

    /// The current time, then moves the clock on by a minute.
    pub fn at(&mut self) -> Timestamp {
        let t = Timestamp(self.now);
        self.now += 60_000;
        t
    }

    pub fn status(&self, id: CustomerId) -> CustomerStatus {
        self.customers
            .get(&id)
            .map_or(CustomerStatus::Unknown, customer::State::status)
    }

    pub fn customer_ids(&self) -> Vec<CustomerId> {
        let mut ids: Vec<CustomerId> = self.customers.keys().copied().collect();
        ids.sort();
        ids
    }

    pub fn case_ids(&self) -> Vec<CaseId> {
        let mut ids: Vec<CaseId> = self.cases.keys().copied().collect();
        ids.sort();
        ids
    }

    pub fn follow_up_ids(&self) -> Vec<FollowUpId> {
        let mut ids: Vec<FollowUpId> = self.follow_ups.keys().copied().collect();
        ids.sort();
        ids
    }

    pub fn agent_ids(&self) -> Vec<AgentId> {
        let mut ids: Vec<AgentId> = self.agents.keys().copied().collect();
        ids.sort();
        ids
    }

    /// The customer a case was opened for.
    pub fn case_customer(&self, case: CaseId) -> Option<CustomerId> {
        self.cases
            .get(&case)
            .and_then(case::State::case)
            .map(|c| c.customer_id)
    }

    // ------------------------------------------------------------ customers

    pub fn register(
        &mut self,
        name: &str,
        reference: &str,
        contacts: &[(ContactKind, &str)],
    ) -> Result<CustomerId, DomainError> {
        let id: CustomerId = self.id();
        let at = self.at();
        let command = CustomerCmd::Register {
            customer_id: id,
            reference: reference.to_owned(),
            display_name: name.to_owned(),
            language: "ar".to_owned(),
            time_zone: "Asia/Riyadh".to_owned(),
            contact_points: contacts
                .iter()
                .map(|(kind, value)| ContactPoint {
                    kind: *kind,
                    value: (*value).to_owned(),
                })
                .collect(),
            at,
        };
        run::<CustomerAggregate, _>(&mut self.customers, id, command, &mut self.log)?;
        Ok(id)
    }

    pub fn customer(&mut self, id: CustomerId, command: CustomerCmd) -> Result<(), DomainError> {
        run::<CustomerAggregate, _>(&mut self.customers, id, command, &mut self.log)
    }

    pub fn rename(&mut self, id: CustomerId, name: &str) -> Result<(), DomainError> {
        let at = self.at();
        self.customer(
            id,
            CustomerCmd::UpdateProfile {
                display_name: Some(name.to_owned()),
                time_zone: None,
                at,
            },
        )
    }

    pub fn add_contact(
        &mut self,
        id: CustomerId,
        kind: ContactKind,
        value: &str,
    ) -> Result<(), DomainError> {
        let at = self.at();
        let contact_point = ContactPoint {
            kind,
            value: value.to_owned(),
        };
        self.customer(id, CustomerCmd::AddContactPoint { contact_point, at })
    }

    pub fn remove_contact(
        &mut self,
        id: CustomerId,
        kind: ContactKind,
        value: &str,
    ) -> Result<(), DomainError> {
        let at = self.at();
        let contact_point = ContactPoint {
            kind,
            value: value.to_owned(),
        };
        self.customer(id, CustomerCmd::RemoveContactPoint { contact_point, at })
    }

    /// Merges `merged` into `into`.
    pub fn merge(&mut self, merged: CustomerId, into: CustomerId) -> Result<(), DomainError> {
        let at = self.at();
        let target = self.status(into);
        self.customer(merged, CustomerCmd::Merge { into, target, at })
    }

    pub fn forget(&mut self, id: CustomerId) -> Result<(), DomainError> {
        let at = self.at();
        self.customer(
            id,
            CustomerCmd::Forget {
                request_reference: "GDPR-REQ-1".to_owned(),
                at,
            },
        )
    }

    // ------------------------------------------------------------ interactions

    pub fn interaction(
        &mut self,
        customer: CustomerId,
        channel: Channel,
        summary: &str,
        case: Option<CaseId>,
        agent: Option<AgentId>,
    ) -> Result<InteractionId, DomainError> {
        let id: InteractionId = self.id();
        let at = self.at();
        let case = case.map(|case_id| CaseLink {
            case_id,
            status: self.cases.get(&case_id).and_then(case::State::status),
        });
        let command = InteractionCmd::Record {
            interaction_id: id,
            customer_id: customer,
            customer: self.status(customer),
            channel,
            direction: Direction::Inbound,
            handled_by: match agent {
                Some(agent) => Handler::Agent(agent),
                None => Handler::Bot("faq-bot".to_owned()),
            },
            language: "ar".to_owned(),
            summary: summary.to_owned(),
            duration_seconds: 120,
            case,
            recording_ref: None,
            at,
        };
        run::<InteractionAggregate, _>(&mut self.interactions, id, command, &mut self.log)?;
        Ok(id)
    }

    // ------------------------------------------------------------ cases

    pub fn open_case(
        &mut self,
        customer: CustomerId,
        subject: &str,
        channel: Channel,
    ) -> Result<CaseId, DomainError> {
        let id: CaseId = self.id();
        let at = self.at();
        let command = CaseCmd::Open {
            case_id: id,
            customer_id: customer,
            customer: self.status(customer),
            subject: subject.to_owned(),
            category: "billing".to_owned(),
            priority: Priority::High,
            channel,
            sla: SlaPolicy {
                first_response_minutes: 60,
                resolution_minutes: 240,
            },
            top_level: 3,
            at,
        };
        run::<CaseAggregate, _>(&mut self.cases, id, command, &mut self.log)?;
        Ok(id)
    }

    pub fn case(&mut self, id: CaseId, command: CaseCmd) -> Result<(), DomainError> {
        run::<CaseAggregate, _>(&mut self.cases, id, command, &mut self.log)
    }

    pub fn case_note(&mut self, id: CaseId, text: &str) -> Result<(), DomainError> {
        let customer = self.case_customer(id).ok_or(DomainError::NotFound {
            what: "case",
            id: None,
        })?;
        let note_id: NoteId = self.id();
        let at = self.at();
        let command = CaseCmd::AddNote {
            note_id,
            customer: self.status(customer),
            author: None,
            text: text.to_owned(),
            at,
        };
        self.case(id, command)
    }

    // ------------------------------------------------------------ surveys

    pub fn survey(
        &mut self,
        customer: CustomerId,
        case: CaseId,
        score: Score,
        comment: Option<&str>,
    ) -> Result<SurveyId, DomainError> {
        let id: SurveyId = self.id();
        let at = self.at();
        let command = SurveyCmd::Answer {
            survey_id: id,
            customer_id: customer,
            customer: self.status(customer),
            subject: FeedbackSubject::Case(case),
            score,
            comment: comment.map(str::to_owned),
            at,
        };
        run::<SurveyAggregate, _>(&mut self.surveys, id, command, &mut self.log)?;
        Ok(id)
    }

    // ------------------------------------------------------------ follow-ups

    pub fn schedule_follow_up(
        &mut self,
        customer: CustomerId,
        note: &str,
    ) -> Result<FollowUpId, DomainError> {
        let id: FollowUpId = self.id();
        let at = self.at();
        let command = FollowUpCmd::Schedule {
            follow_up_id: id,
            customer_id: customer,
            customer: self.status(customer),
            reason: FollowUpReason::CheckAfterFix,
            related: None,
            due_at: Timestamp(at.millis() + 86_400_000),
            agent: None,
            team: None,
            note: Some(note.to_owned()),
            at,
        };
        run::<FollowUpAggregate, _>(&mut self.follow_ups, id, command, &mut self.log)?;
        Ok(id)
    }

    pub fn follow_up(&mut self, id: FollowUpId, command: FollowUpCmd) -> Result<(), DomainError> {
        run::<FollowUpAggregate, _>(&mut self.follow_ups, id, command, &mut self.log)
    }

    // ------------------------------------------------------------ agents

    pub fn register_agent(&mut self, name: &str) -> Result<AgentId, DomainError> {
        let id: AgentId = self.id();
        let at = self.at();
        let command = AgentCmd::Register {
            agent_id: id,
            display_name: name.to_owned(),
            teams: vec![],
            at,
        };
        run::<AgentAggregate, _>(&mut self.agents, id, command, &mut self.log)?;
        Ok(id)
    }

    pub fn recognise(
        &mut self,
        agent: AgentId,
        by: AgentId,
        case: CaseId,
        reason: &str,
    ) -> Result<(), DomainError> {
        let recognition_id: RecognitionId = self.id();
        let at = self.at();
        let command = AgentCmd::Recognise {
            recognition_id,
            by,
            reason: reason.to_owned(),
            reward: Reward::Kudos,
            basis: RecognitionBasis::Case(case),
            at,
        };
        run::<AgentAggregate, _>(&mut self.agents, agent, command, &mut self.log)
    }
}

/// The store envelope of `event` in workspace `ws`.
pub fn envelope(ws: WorkspaceId, event: &DomainEvent) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        workspace_id: ws.as_uuid(),
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        occurred_at: event.occurred_at().millis(),
        actor: "agent:test".to_owned(),
        on_behalf_of: None,
        correlation_id: None,
        causation_id: None,
        payload: encode_event(event),
    }
}

/// Appends `events` of workspace `ws` in order, batching runs of one stream (at most 1000
/// per append). Returns the last position.
pub async fn append(store: &Store, ws: WorkspaceId, events: &[DomainEvent]) -> u64 {
    let mut last = store.head_position();
    let mut i = 0;
    while i < events.len() {
        let stream = events[i].stream().stream_id();
        let mut batch = Vec::new();
        while i < events.len() && batch.len() < 1000 && events[i].stream().stream_id() == stream {
            batch.push(envelope(ws, &events[i]));
            i += 1;
        }
        let result = store
            .append(&stream, ExpectedVersion::Any, batch)
            .await
            .expect("append test events");
        last = result.last_position;
    }
    last
}

/// Appends with a throwaway current-thread runtime.
pub fn append_blocking(store: &Store, ws: WorkspaceId, events: &[DomainEvent]) -> u64 {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(append(store, ws, events))
}

/// Every (key, value) of a tree, in key order.
pub fn dump(tree: &sled::Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
    tree.iter()
        .map(|item| {
            let (k, v) = item.expect("scan tree");
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// The contact kinds, for generators.
pub const KINDS: [ContactKind; 4] = [
    ContactKind::Email,
    ContactKind::Phone,
    ContactKind::Social,
    ContactKind::Messaging,
];

/// A valid contact value of `kind`, numbered.
pub fn contact_value(kind: ContactKind, n: u64) -> String {
    match kind {
        ContactKind::Email => format!("user{n}@example.com"),
        ContactKind::Phone => format!("+9665{:08}", n % 100_000_000),
        ContactKind::Social => format!("x:@user{n}"),
        ContactKind::Messaging => format!("whatsapp:+9665{:08}", n % 100_000_000),
    }
}
