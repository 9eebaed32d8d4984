//! Runs a [`Plan`] through the domain: each step becomes a command, the aggregate's `decide`
//! turns it into events against the state rebuilt so far (a refusal is a planner bug and stops
//! the demo), `evolve` moves the state on, and the events are appended in large bulk appends
//! with `recorded_at` = `occurred_at`, so the same plan always gives the same log.
//!
//! Every event id and correlation id is a UUID v7 of the event's simulated time, with random
//! bits from the seeded generator; events of one case share its correlation id, and each event
//! names the one before it in its flow as its cause.
//!
//! Deciding and sealing run on the calling thread while a writer thread appends the previous
//! chunk (a bounded hand-over of two chunks), so the two halves of the work overlap.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, SyncSender};

use anyhow::{anyhow, Context, Result};
use sijil_domain::{
    agent, case, customer, follow_up, interaction, survey, AgentId, CaseLink, CustomerId,
    DomainError, DomainEvent, FeedbackSubject, FollowUpReason, FollowUpRelation, Handler,
    RecognitionBasis, Reward, Timestamp,
};
use sijil_store::projections::encode_event;
use sijil_store::vault::Vault;
use sijil_store::{BulkAppend, ExpectedVersion, NewEvent, RecordedAt, Store};
use uuid::Uuid;

use super::plan::{Basis, Plan, Planned, Step, Summary};
use super::rng::Rng;
use super::world::{self, LOCALES, TEAMS, TOPICS};

/// Events per bulk append (one transaction, one flush).
pub const CHUNK_EVENTS: usize = 20_000;

/// An aggregate's state and its stream's version.
#[derive(Default)]
struct Tracked<S> {
    state: S,
    version: u64,
}

impl<S: Default> Tracked<S> {
    /// Decides a command and, if it holds, evolves the state. Returns the expected version
    /// before the events and the events.
    fn run(
        &mut self,
        decide: impl FnOnce(&S) -> Result<Vec<DomainEvent>, DomainError>,
        evolve: fn(S, &DomainEvent) -> S,
    ) -> Result<(u64, Vec<DomainEvent>), DomainError> {
        let events = decide(&self.state)?;
        for event in &events {
            self.state = evolve(std::mem::take(&mut self.state), event);
        }
        let before = self.version;
        self.version += events.len() as u64;
        Ok((before, events))
    }
}

/// The correlation id of a flow (a case, a contact, a survey) and its latest event.
#[derive(Clone, Copy)]
struct Flow {
    correlation: Uuid,
    last: Uuid,
}

/// Chunks handed to the writer thread before the executor waits for it.
const CHUNKS_IN_FLIGHT: usize = 2;

/// Where events go: bulk appends of [`CHUNK_EVENTS`], handed to the writer thread.
struct Out<'a> {
    store: &'a Store,
    /// Seals personal fields before they are encoded, when the store has a vault.
    vault: Option<&'a Vault>,
    workspace: Uuid,
    rng: Rng,
    pending: Vec<BulkAppend>,
    pending_events: usize,
    writer: SyncSender<Vec<BulkAppend>>,
}

impl Out<'_> {
    /// Queues `events` (one stream's, from one decision) and returns the last event's id.
    fn push(
        &mut self,
        expected: u64,
        events: Vec<DomainEvent>,
        actor: &str,
        correlation: Option<Uuid>,
        causation: Option<Uuid>,
    ) -> Result<Option<Uuid>> {
        let Some(first) = events.first() else {
            return Ok(None);
        };
        let stream = first.stream().stream_id();
        let mut cause = causation;
        let mut batch = Vec::with_capacity(events.len());
        for event in &events {
            let mut sealed;
            let event = match self.vault {
                Some(vault) => {
                    sealed = event.clone();
                    self.seal(vault, &stream, &mut sealed)?;
                    &sealed
                }
                None => event,
            };
            let occurred_at = event.occurred_at().millis();
            let event_id = self.rng.uuid_v7(occurred_at);
            batch.push(NewEvent {
                event_id,
                workspace_id: self.workspace,
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                occurred_at,
                actor: actor.to_owned(),
                on_behalf_of: None,
                correlation_id: correlation,
                causation_id: cause,
                payload: encode_event(event),
            });
            cause = Some(event_id);
        }
        self.pending_events += batch.len();
        self.pending.push(BulkAppend {
            stream,
            expected: ExpectedVersion::Exact(expected),
            events: batch,
        });
        if self.pending_events >= CHUNK_EVENTS {
            self.flush()?;
        }
        Ok(cause)
    }

    /// Seals the personal fields of `event` (of `stream`) under its customer's key.
    fn seal(&self, vault: &Vault, stream: &str, event: &mut DomainEvent) -> Result<()> {
        let ws = sijil_domain::WorkspaceId::new(self.workspace)
            .map_err(|_| anyhow!("the demo workspace is not a UUID v7"))?;
        vault
            .record_link(ws, event)
            .context("recording a demo case link")?;
        let subject =
            sijil_gateway::shredding::subject_of(vault, self.store, ws, event, stream, None)
                .map_err(|e| anyhow!("finding whose data a demo event holds: {e}"))?;
        match subject {
            Some(customer) => vault
                .seal(event, ws, customer)
                .context("sealing a demo event"),
            None if sijil_domain::personal::has_personal(event) => Err(anyhow!(
                "a demo {} event holds personal data but names no customer",
                event.event_type()
            )),
            None => Ok(()),
        }
    }

    /// Hands what is queued to the writer thread (waiting while it is two chunks behind).
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK_EVENTS));
        self.pending_events = 0;
        self.writer
            .send(chunk)
            .map_err(|_| anyhow!("the demo writer stopped"))
    }
}

/// The executor's state: every aggregate still in play.
struct Exec<'a> {
    plan: &'a Plan,
    out: Out<'a>,
    customers: Vec<Tracked<customer::State>>,
    agents: Vec<Tracked<agent::State>>,
    cases: HashMap<Uuid, Tracked<case::State>>,
    interactions: HashMap<Uuid, Tracked<interaction::State>>,
    follow_ups: HashMap<Uuid, Tracked<follow_up::State>>,
    flows: HashMap<Uuid, Flow>,
}

/// Appends every chunk it receives, in order, until the executor hangs up or an append fails;
/// returns the number of events written. The data keys and links a chunk's events were sealed
/// with were made before it was handed over; they are made durable before it is appended.
fn write_chunks(
    store: &Store,
    vault: Option<&Vault>,
    chunks: std::sync::mpsc::Receiver<Vec<BulkAppend>>,
    on_written: &mut (dyn FnMut(u64) + Send),
) -> Result<u64> {
    let mut written = 0u64;
    for chunk in chunks {
        let events: u64 = chunk.iter().map(|a| a.events.len() as u64).sum();
        if let Some(vault) = vault {
            vault
                .make_durable()
                .context("making the demo's data keys durable")?;
        }
        store
            .append_bulk(&chunk, RecordedAt::OccurredAt)
            .context("appending demo events")?;
        written += events;
        on_written(events);
    }
    Ok(written)
}

/// Runs every step of `plan` into `store`; `on_written` hears how many events each bulk
/// append wrote (on the writer thread). Returns the number of events written.
pub fn execute(
    plan: &Plan,
    store: &Store,
    vault: Option<&Vault>,
    seed: u64,
    on_written: &mut (dyn FnMut(u64) + Send),
) -> Result<u64> {
    std::thread::scope(|scope| {
        let (sender, chunks) = sync_channel(CHUNKS_IN_FLIGHT);
        let writer = std::thread::Builder::new()
            .name("demo-writer".into())
            .spawn_scoped(scope, move || {
                write_chunks(store, vault, chunks, on_written)
            })
            .context("starting the demo writer thread")?;
        let decided = decide_all(plan, store, vault, seed, sender);
        let written = writer
            .join()
            .map_err(|_| anyhow!("the demo writer thread panicked"))?;
        // A failed append explains a failed hand-over, so the writer's error comes first.
        let written = written?;
        decided?;
        Ok(written)
    })
}

/// Decides every step of `plan` and hands the events to `writer`.
fn decide_all(
    plan: &Plan,
    store: &Store,
    vault: Option<&Vault>,
    seed: u64,
    writer: SyncSender<Vec<BulkAppend>>,
) -> Result<()> {
    let mut exec = Exec {
        plan,
        out: Out {
            store,
            vault,
            workspace: plan.workspace,
            rng: Rng::new(seed).fork(4, 0),
            pending: Vec::new(),
            pending_events: 0,
            writer,
        },
        customers: (0..plan.customers.len())
            .map(|_| Tracked::default())
            .collect(),
        agents: (0..plan.agents.len()).map(|_| Tracked::default()).collect(),
        cases: HashMap::new(),
        interactions: HashMap::new(),
        follow_ups: HashMap::new(),
        flows: HashMap::new(),
    };
    for planned in &plan.steps {
        exec.step(planned).map_err(|e| {
            anyhow!(
                "the demo planner made a step the domain refuses ({e}) at {}: {:?}",
                planned.at,
                planned.step
            )
        })?;
    }
    exec.out.flush()
}

fn ts(at: i64) -> Timestamp {
    Timestamp(at)
}

/// A failure of one step: the domain's refusal or the store's.
#[derive(Debug)]
enum StepError {
    Domain(DomainError),
    Other(anyhow::Error),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Domain(e) => write!(f, "{} {e}", e.code()),
            StepError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<DomainError> for StepError {
    fn from(e: DomainError) -> StepError {
        StepError::Domain(e)
    }
}

impl From<anyhow::Error> for StepError {
    fn from(e: anyhow::Error) -> StepError {
        StepError::Other(e)
    }
}

fn missing(what: &str, id: impl std::fmt::Display) -> StepError {
    StepError::Other(anyhow!("the plan uses {what} {id} before creating it"))
}

impl Exec<'_> {
    fn agent_id(&self, index: u32) -> Result<AgentId, StepError> {
        self.plan
            .agents
            .get(index as usize)
            .map(|a| a.id)
            .ok_or_else(|| missing("agent", index))
    }

    fn customer_id(&self, index: u32) -> Result<CustomerId, StepError> {
        self.plan
            .customers
            .get(index as usize)
            .map(|c| c.id)
            .ok_or_else(|| missing("customer", index))
    }

    fn customer_status(&self, index: u32) -> sijil_domain::CustomerStatus {
        self.customers
            .get(index as usize)
            .map_or(sijil_domain::CustomerStatus::Unknown, |c| c.state.status())
    }

    fn language(&self, index: u32) -> &'static str {
        self.plan
            .customers
            .get(index as usize)
            .map_or("en", |c| LOCALES[c.locale].language)
    }

    fn correlation(&mut self, at: i64) -> Uuid {
        self.out.rng.uuid_v7(at)
    }

    /// Records events in the flow `key` (starting it if new) and moves the flow on.
    fn in_flow(
        &mut self,
        key: Uuid,
        at: i64,
        expected: u64,
        events: Vec<DomainEvent>,
        actor: &str,
    ) -> Result<(), StepError> {
        let flow = match self.flows.get(&key) {
            Some(flow) => *flow,
            None => {
                let correlation = self.correlation(at);
                Flow {
                    correlation,
                    last: Uuid::nil(),
                }
            }
        };
        let cause = (!flow.last.is_nil()).then_some(flow.last);
        if let Some(last) = self
            .out
            .push(expected, events, actor, Some(flow.correlation), cause)?
        {
            self.flows.insert(
                key,
                Flow {
                    correlation: flow.correlation,
                    last,
                },
            );
        }
        Ok(())
    }

    fn case_mut(
        &mut self,
        id: sijil_domain::CaseId,
    ) -> Result<&mut Tracked<case::State>, StepError> {
        self.cases
            .get_mut(&id.as_uuid())
            .ok_or_else(|| missing("case", id))
    }

    fn case_step(
        &mut self,
        id: sijil_domain::CaseId,
        at: i64,
        actor: &str,
        command: case::Command,
    ) -> Result<(), StepError> {
        let tracked = self.case_mut(id)?;
        let (expected, events) = tracked.run(|s| case::decide(s, command), case::evolve)?;
        self.in_flow(id.as_uuid(), at, expected, events, actor)
    }

    fn step(&mut self, planned: &Planned) -> Result<(), StepError> {
        let at = planned.at;
        match &planned.step {
            Step::RegisterAgent { agent } => {
                let profile = self
                    .plan
                    .agents
                    .get(*agent as usize)
                    .ok_or_else(|| missing("agent", agent))?;
                let teams = profile
                    .teams
                    .iter()
                    .filter_map(|t| self.plan.teams.get(*t).copied())
                    .collect();
                let command = agent::Command::Register {
                    agent_id: profile.id,
                    display_name: profile.name.clone(),
                    teams,
                    at: ts(at),
                };
                let tracked = &mut self.agents[*agent as usize];
                let (expected, events) =
                    tracked.run(|s| agent::decide(s, command), agent::evolve)?;
                let correlation = self.correlation(at);
                self.out.push(
                    expected,
                    events,
                    "system:onboarding",
                    Some(correlation),
                    None,
                )?;
            }
            Step::RegisterCustomer { customer } => {
                let profile = self
                    .plan
                    .customers
                    .get(*customer as usize)
                    .ok_or_else(|| missing("customer", customer))?;
                let locale = &LOCALES[profile.locale];
                let command = customer::Command::Register {
                    customer_id: profile.id,
                    reference: profile.reference.clone(),
                    display_name: world::display_name(locale, profile.given, profile.family),
                    language: locale.language.to_owned(),
                    time_zone: profile.zone.to_owned(),
                    contact_points: profile.contacts.clone(),
                    at: ts(at),
                };
                let tracked = &mut self.customers[*customer as usize];
                let (expected, events) =
                    tracked.run(|s| customer::decide(s, command), customer::evolve)?;
                let correlation = self.correlation(at);
                self.out.push(
                    expected,
                    events,
                    "system:onboarding",
                    Some(correlation),
                    None,
                )?;
            }
            Step::ChangePreferences {
                customer,
                channel,
                consent,
            } => {
                let id = self.customer_id(*customer)?;
                self.customer_step(
                    *customer,
                    at,
                    &format!("customer:{id}"),
                    customer::Command::ChangePreferences {
                        language: None,
                        preferred_channel: Some(*channel),
                        consent_to_contact: Some(*consent),
                        at: ts(at),
                    },
                )?;
            }
            Step::AddContact { customer, point } => {
                let id = self.customer_id(*customer)?;
                self.customer_step(
                    *customer,
                    at,
                    &format!("customer:{id}"),
                    customer::Command::AddContactPoint {
                        contact_point: point.clone(),
                        at: ts(at),
                    },
                )?;
            }
            Step::MoveTimeZone { customer, zone } => {
                let id = self.customer_id(*customer)?;
                self.customer_step(
                    *customer,
                    at,
                    &format!("customer:{id}"),
                    customer::Command::UpdateProfile {
                        display_name: None,
                        time_zone: Some((*zone).to_owned()),
                        at: ts(at),
                    },
                )?;
            }
            Step::Interaction {
                id,
                customer,
                channel,
                direction,
                agent,
                case,
                summary,
                duration,
                noted,
            } => {
                let (handled_by, actor) = match agent {
                    Some(a) => {
                        let agent_id = self.agent_id(*a)?;
                        (Handler::Agent(agent_id), format!("agent:{agent_id}"))
                    }
                    None => {
                        let bot = world::bot_for(*channel).unwrap_or("assistant-bot");
                        (Handler::Bot(bot.to_owned()), format!("bot:{bot}"))
                    }
                };
                let link = case.map(|case_id| CaseLink {
                    case_id,
                    status: self
                        .cases
                        .get(&case_id.as_uuid())
                        .and_then(|t| t.state.status()),
                });
                let language = match handled_by {
                    Handler::Bot(_) if !self.language(*customer).starts_with("ar") => "en",
                    _ => self.language(*customer),
                };
                let command = interaction::Command::Record {
                    interaction_id: *id,
                    customer_id: self.customer_id(*customer)?,
                    customer: self.customer_status(*customer),
                    channel: *channel,
                    direction: *direction,
                    handled_by,
                    language: language.to_owned(),
                    summary: self.summary(*customer, *summary),
                    duration_seconds: *duration,
                    case: link,
                    recording_ref: matches!(channel, sijil_domain::Channel::Phone)
                        .then(|| format!("recordings/2025/{id}.opus")),
                    at: ts(at),
                };
                let mut tracked = Tracked::default();
                let (expected, events) =
                    tracked.run(|s| interaction::decide(s, command), interaction::evolve)?;
                match case {
                    Some(case_id) => {
                        self.in_flow(case_id.as_uuid(), at, expected, events, &actor)?
                    }
                    None => self.in_flow(id.as_uuid(), at, expected, events, &actor)?,
                }
                if *noted {
                    self.interactions.insert(id.as_uuid(), tracked);
                }
            }
            Step::InteractionNote {
                interaction: id,
                customer,
                note,
                author,
                text,
            } => {
                let author_id = self.agent_id(*author)?;
                let command = interaction::Command::AddNote {
                    note_id: *note,
                    customer: self.customer_status(*customer),
                    author: Some(author_id),
                    text: world::NOTES[usize::from(*text) % world::NOTES.len()].to_owned(),
                    at: ts(at),
                };
                let mut tracked = self
                    .interactions
                    .remove(&id.as_uuid())
                    .ok_or_else(|| missing("interaction", id))?;
                let (expected, events) =
                    tracked.run(|s| interaction::decide(s, command), interaction::evolve)?;
                self.in_flow(
                    id.as_uuid(),
                    at,
                    expected,
                    events,
                    &format!("agent:{author_id}"),
                )?;
            }
            Step::OpenCase {
                case,
                customer,
                topic,
                subject,
                priority,
                channel,
                agent,
            } => {
                let topic_spec = &TOPICS[usize::from(*topic) % TOPICS.len()];
                let command = case::Command::Open {
                    case_id: *case,
                    customer_id: self.customer_id(*customer)?,
                    customer: self.customer_status(*customer),
                    subject: topic_spec.subjects[usize::from(*subject) % topic_spec.subjects.len()]
                        .to_owned(),
                    category: topic_spec.category.to_owned(),
                    priority: *priority,
                    channel: *channel,
                    sla: world::sla_for(*priority),
                    top_level: world::TOP_LEVEL,
                    at: ts(at),
                };
                let mut tracked = Tracked::default();
                let (expected, events) = tracked.run(|s| case::decide(s, command), case::evolve)?;
                self.cases.insert(case.as_uuid(), tracked);
                let actor = format!("agent:{}", self.agent_id(*agent)?);
                self.in_flow(case.as_uuid(), at, expected, events, &actor)?;
            }
            Step::Assign { case, agent, team } => {
                let agent_id = self.agent_id(*agent)?;
                let team_id = self.plan.teams.get(usize::from(*team)).copied();
                self.case_step(
                    *case,
                    at,
                    &format!("agent:{agent_id}"),
                    case::Command::Assign {
                        agent: Some(agent_id),
                        team: team_id,
                        at: ts(at),
                    },
                )?;
            }
            Step::FirstResponse {
                case,
                agent,
                channel,
            } => {
                let agent_id = self.agent_id(*agent)?;
                self.case_step(
                    *case,
                    at,
                    &format!("agent:{agent_id}"),
                    case::Command::GiveFirstResponse {
                        agent: Some(agent_id),
                        channel: *channel,
                        at: ts(at),
                    },
                )?;
            }
            Step::Breach { case, target } => {
                self.case_step(
                    *case,
                    at,
                    sijil_store::projections::sla::ACTOR,
                    case::Command::BreachSla {
                        target: *target,
                        now: ts(at),
                    },
                )?;
            }
            Step::Escalate {
                case,
                reason,
                team,
                agent,
            } => {
                let actor = format!("agent:{}", self.agent_id(*agent)?);
                let team_id = self.plan.teams.get(usize::from(*team)).copied();
                let reason = world::ESCALATION_REASONS
                    [usize::from(*reason) % world::ESCALATION_REASONS.len()];
                self.case_step(
                    *case,
                    at,
                    &actor,
                    case::Command::Escalate {
                        reason: format!(
                            "{reason} (to {})",
                            TEAMS[usize::from(*team) % TEAMS.len()].name
                        ),
                        team: team_id,
                        at: ts(at),
                    },
                )?;
            }
            Step::Deescalate {
                case,
                reason,
                team,
                agent,
            } => {
                let actor = format!("agent:{}", self.agent_id(*agent)?);
                let team_id = self.plan.teams.get(usize::from(*team)).copied();
                self.case_step(
                    *case,
                    at,
                    &actor,
                    case::Command::Deescalate {
                        reason: world::DEESCALATION_REASONS
                            [usize::from(*reason) % world::DEESCALATION_REASONS.len()]
                        .to_owned(),
                        team: team_id,
                        at: ts(at),
                    },
                )?;
            }
            Step::CaseNote {
                case,
                customer,
                note,
                author,
                text,
            } => {
                let author_id = self.agent_id(*author)?;
                let status = self.customer_status(*customer);
                self.case_step(
                    *case,
                    at,
                    &format!("agent:{author_id}"),
                    case::Command::AddNote {
                        note_id: *note,
                        customer: status,
                        author: Some(author_id),
                        text: world::NOTES[usize::from(*text) % world::NOTES.len()].to_owned(),
                        at: ts(at),
                    },
                )?;
            }
            Step::Resolve {
                case,
                topic,
                resolution,
                root_cause,
                fcr,
                agent,
            } => {
                let agent_id = self.agent_id(*agent)?;
                let topic = &TOPICS[usize::from(*topic) % TOPICS.len()];
                self.case_step(
                    *case,
                    at,
                    &format!("agent:{agent_id}"),
                    case::Command::Resolve {
                        resolution: topic.resolutions
                            [usize::from(*resolution) % topic.resolutions.len()]
                        .to_owned(),
                        root_cause: topic.root_causes
                            [usize::from(*root_cause) % topic.root_causes.len()]
                        .to_owned(),
                        first_contact_resolution: *fcr,
                        agent: Some(agent_id),
                        at: ts(at),
                    },
                )?;
            }
            Step::Reopen { case, reason } => {
                let customer = self
                    .case_mut(*case)?
                    .state
                    .case()
                    .map(|c| c.customer_id)
                    .ok_or_else(|| missing("case", case))?;
                self.case_step(
                    *case,
                    at,
                    &format!("customer:{customer}"),
                    case::Command::Reopen {
                        reason: world::REOPEN_REASONS
                            [usize::from(*reason) % world::REOPEN_REASONS.len()]
                        .to_owned(),
                        at: ts(at),
                    },
                )?;
            }
            Step::Close { case, agent } => {
                let agent_id = self.agent_id(*agent)?;
                self.case_step(
                    *case,
                    at,
                    &format!("agent:{agent_id}"),
                    case::Command::Close { at: ts(at) },
                )?;
                // A closed case takes only notes, and the plan adds none after closing.
                self.cases.remove(&case.as_uuid());
            }
            Step::Survey {
                id,
                customer,
                subject,
                score,
                comment,
            } => {
                let customer_id = self.customer_id(*customer)?;
                let command = survey::Command::Answer {
                    survey_id: *id,
                    customer_id,
                    customer: self.customer_status(*customer),
                    subject: *subject,
                    score: *score,
                    comment: comment.map(|(mood, pick)| {
                        let list = world::COMMENTS[usize::from(mood) % 3];
                        list[usize::from(pick) % list.len()].to_owned()
                    }),
                    at: ts(at),
                };
                let mut tracked = Tracked::default();
                let (expected, events) =
                    tracked.run(|s| survey::decide(s, command), survey::evolve)?;
                let rated = match subject {
                    FeedbackSubject::Case(c) => c.as_uuid(),
                    FeedbackSubject::Interaction(i) => i.as_uuid(),
                };
                let flow = self.flows.get(&rated).copied();
                let correlation = match flow {
                    Some(f) => f.correlation,
                    None => self.correlation(at),
                };
                if let Some(last) = self.out.push(
                    expected,
                    events,
                    &format!("customer:{customer_id}"),
                    Some(correlation),
                    flow.map(|f| f.last),
                )? {
                    self.flows.insert(id.as_uuid(), Flow { correlation, last });
                }
            }
            Step::ScheduleFollowUp {
                id,
                customer,
                survey,
                due,
                agent,
            } => {
                let agent_id = self.agent_id(*agent)?;
                let command = follow_up::Command::Schedule {
                    follow_up_id: *id,
                    customer_id: self.customer_id(*customer)?,
                    customer: self.customer_status(*customer),
                    reason: FollowUpReason::DetractorFollowUp,
                    related: Some(FollowUpRelation::Survey(*survey)),
                    due_at: ts(*due),
                    agent: Some(agent_id),
                    team: self.plan.teams.get(4).copied(),
                    note: Some("Detractor: call back within two days.".to_owned()),
                    at: ts(at),
                };
                let mut tracked = Tracked::default();
                let (expected, events) =
                    tracked.run(|s| follow_up::decide(s, command), follow_up::evolve)?;
                self.follow_ups.insert(id.as_uuid(), tracked);
                let flow = self.flows.get(&survey.as_uuid()).copied();
                if let Some(flow) = flow {
                    self.flows.insert(id.as_uuid(), flow);
                }
                self.in_flow(
                    id.as_uuid(),
                    at,
                    expected,
                    events,
                    &format!("agent:{agent_id}"),
                )?;
            }
            Step::CompleteFollowUp { id, agent, outcome } => {
                let agent_id = self.agent_id(*agent)?;
                let command = follow_up::Command::Complete {
                    outcome: world::FOLLOW_UP_OUTCOMES
                        [usize::from(*outcome) % world::FOLLOW_UP_OUTCOMES.len()]
                    .to_owned(),
                    agent: Some(agent_id),
                    at: ts(at),
                };
                self.follow_up_step(*id, at, &format!("agent:{agent_id}"), command)?;
            }
            Step::CancelFollowUp { id, reason } => {
                let command = follow_up::Command::Cancel {
                    reason: world::FOLLOW_UP_CANCELLATIONS
                        [usize::from(*reason) % world::FOLLOW_UP_CANCELLATIONS.len()]
                    .to_owned(),
                    at: ts(at),
                };
                self.follow_up_step(*id, at, "system:follow-up-policy", command)?;
            }
            Step::Recognise {
                id,
                agent,
                by,
                reason,
                reward,
                basis,
            } => {
                let by_id = self.agent_id(*by)?;
                let reward = match reward {
                    0 => Reward::Kudos,
                    1 => Reward::Points(100),
                    _ => Reward::Voucher {
                        amount_minor: 10_000,
                        currency: "SAR".to_owned(),
                    },
                };
                let (basis, flow) = match basis {
                    Basis::Case(c) => (
                        RecognitionBasis::Case(*c),
                        self.flows.get(&c.as_uuid()).copied(),
                    ),
                    Basis::Metric { metric, from, to } => (
                        RecognitionBasis::Metric {
                            metric: *metric,
                            from: ts(*from),
                            to: ts(*to),
                        },
                        None,
                    ),
                };
                let command = agent::Command::Recognise {
                    recognition_id: *id,
                    by: by_id,
                    reason: world::RECOGNITION_REASONS
                        [usize::from(*reason) % world::RECOGNITION_REASONS.len()]
                    .to_owned(),
                    reward,
                    basis,
                    at: ts(at),
                };
                let tracked = self
                    .agents
                    .get_mut(*agent as usize)
                    .ok_or_else(|| missing("agent", agent))?;
                let (expected, events) =
                    tracked.run(|s| agent::decide(s, command), agent::evolve)?;
                let correlation = match flow {
                    Some(f) => f.correlation,
                    None => self.correlation(at),
                };
                self.out.push(
                    expected,
                    events,
                    &format!("agent:{by_id}"),
                    Some(correlation),
                    flow.map(|f| f.last),
                )?;
            }
            Step::Merge { customer, into } => {
                let into_id = self.customer_id(*into)?;
                let target = self.customer_status(*into);
                let supervisor = self.agent_id(0)?;
                self.customer_step(
                    *customer,
                    at,
                    &format!("agent:{supervisor}"),
                    customer::Command::Merge {
                        into: into_id,
                        target,
                        at: ts(at),
                    },
                )?;
            }
            Step::Forget { customer } => {
                let supervisor = self.agent_id(0)?;
                self.customer_step(
                    *customer,
                    at,
                    &format!("agent:{supervisor}"),
                    customer::Command::Forget {
                        request_reference: format!("GDPR-2025-{customer:04}"),
                        at: ts(at),
                    },
                )?;
            }
        }
        Ok(())
    }

    fn customer_step(
        &mut self,
        index: u32,
        at: i64,
        actor: &str,
        command: customer::Command,
    ) -> Result<(), StepError> {
        let tracked = self
            .customers
            .get_mut(index as usize)
            .ok_or_else(|| missing("customer", index))?;
        let (expected, events) = tracked.run(|s| customer::decide(s, command), customer::evolve)?;
        let correlation = self.correlation(at);
        self.out
            .push(expected, events, actor, Some(correlation), None)?;
        Ok(())
    }

    fn follow_up_step(
        &mut self,
        id: sijil_domain::FollowUpId,
        at: i64,
        actor: &str,
        command: follow_up::Command,
    ) -> Result<(), StepError> {
        let mut tracked = self
            .follow_ups
            .remove(&id.as_uuid())
            .ok_or_else(|| missing("follow-up", id))?;
        let (expected, events) =
            tracked.run(|s| follow_up::decide(s, command), follow_up::evolve)?;
        self.in_flow(id.as_uuid(), at, expected, events, actor)
    }

    fn summary(&self, customer: u32, summary: Summary) -> String {
        match summary {
            Summary::Quick(i) => {
                world::QUICK_SUMMARIES[usize::from(i) % world::QUICK_SUMMARIES.len()].to_owned()
            }
            Summary::CaseContact(i) => world::CASE_CONTACT_SUMMARIES
                [usize::from(i) % world::CASE_CONTACT_SUMMARIES.len()]
            .to_owned(),
            Summary::Empty => String::new(),
            Summary::Opening { topic, subject } => {
                let topic = &TOPICS[usize::from(topic) % TOPICS.len()];
                let subject = topic.subjects[usize::from(subject) % topic.subjects.len()];
                let locale = self
                    .plan
                    .customers
                    .get(customer as usize)
                    .map(|c| &LOCALES[c.locale]);
                match locale.and_then(|l| l.greeting) {
                    Some(greeting) => format!("{greeting} {subject}"),
                    None => format!("Customer reports: {subject}"),
                }
            }
        }
    }
}
