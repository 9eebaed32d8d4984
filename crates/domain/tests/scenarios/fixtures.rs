//! Shared fixtures: deterministic v7 ids, times, and the `given(events).when(cmd).then(...)`
//! helper.

#![allow(dead_code)]

use sijil_domain::agent::AgentAggregate;
use sijil_domain::case::CaseAggregate;
use sijil_domain::customer::CustomerAggregate;
use sijil_domain::follow_up::FollowUpAggregate;
use sijil_domain::interaction::InteractionAggregate;
use sijil_domain::survey::SurveyAggregate;
use sijil_domain::*;
use uuid::Uuid;

/// A deterministic UUID v7 numbered `n`.
pub fn uuid7(n: u64) -> Uuid {
    let mut random = [0u8; 10];
    random[2..].copy_from_slice(&n.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(1_700_000_000_000, &random).into_uuid()
}

pub fn customer_id(n: u64) -> CustomerId {
    CustomerId::new(uuid7(n)).expect("v7")
}
pub fn case_id(n: u64) -> CaseId {
    CaseId::new(uuid7(n)).expect("v7")
}
pub fn interaction_id(n: u64) -> InteractionId {
    InteractionId::new(uuid7(n)).expect("v7")
}
pub fn agent_id(n: u64) -> AgentId {
    AgentId::new(uuid7(n)).expect("v7")
}
pub fn team_id(n: u64) -> TeamId {
    TeamId::new(uuid7(n)).expect("v7")
}
pub fn survey_id(n: u64) -> SurveyId {
    SurveyId::new(uuid7(n)).expect("v7")
}
pub fn follow_up_id(n: u64) -> FollowUpId {
    FollowUpId::new(uuid7(n)).expect("v7")
}
pub fn note_id(n: u64) -> NoteId {
    NoteId::new(uuid7(n)).expect("v7")
}
pub fn recognition_id(n: u64) -> RecognitionId {
    RecognitionId::new(uuid7(n)).expect("v7")
}

/// The instant `minutes` after a fixed origin.
pub fn t(minutes: i64) -> Timestamp {
    Timestamp(1_700_000_000_000 + minutes * 60_000)
}

pub fn email(value: &str) -> ContactPoint {
    ContactPoint {
        kind: ContactKind::Email,
        value: value.to_owned(),
    }
}

pub fn phone(value: &str) -> ContactPoint {
    ContactPoint {
        kind: ContactKind::Phone,
        value: value.to_owned(),
    }
}

/// Ties a command type to its aggregate, so `when` needs no turbofish.
pub trait CommandOf {
    type Aggregate: Aggregate<Command = Self>;
}
impl CommandOf for CustomerCommand {
    type Aggregate = CustomerAggregate;
}
impl CommandOf for CaseCommand {
    type Aggregate = CaseAggregate;
}
impl CommandOf for InteractionCommand {
    type Aggregate = InteractionAggregate;
}
impl CommandOf for SurveyCommand {
    type Aggregate = SurveyAggregate;
}
impl CommandOf for FollowUpCommand {
    type Aggregate = FollowUpAggregate;
}
impl CommandOf for AgentCommand {
    type Aggregate = AgentAggregate;
}

/// The past of an aggregate.
pub struct Given {
    events: Vec<DomainEvent>,
}

/// Starts a scenario from past events (oldest first).
pub fn given<I>(events: I) -> Given
where
    I: IntoIterator,
    I::Item: Into<DomainEvent>,
{
    Given {
        events: events.into_iter().map(Into::into).collect(),
    }
}

/// Starts a scenario from no events.
pub fn nothing() -> Given {
    Given { events: vec![] }
}

impl Given {
    /// Decides `command` against the state folded from the past events.
    pub fn when<C: CommandOf + std::fmt::Debug + Clone>(self, command: C) -> Outcome<C::Aggregate> {
        let state = <C::Aggregate as Aggregate>::fold(&self.events);
        let result = <C::Aggregate as Aggregate>::decide(&state, command.clone());
        Outcome {
            state,
            command: format!("{command:?}"),
            result,
        }
    }
}

/// What `decide` answered.
pub struct Outcome<A: Aggregate> {
    state: A::State,
    command: String,
    result: Result<Vec<DomainEvent>, DomainError>,
}

impl<A: Aggregate> Outcome<A> {
    /// The command is accepted with exactly these events.
    pub fn then<I>(self, expected: I) -> A::State
    where
        I: IntoIterator,
        I::Item: Into<DomainEvent>,
    {
        let expected: Vec<DomainEvent> = expected.into_iter().map(Into::into).collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "events of {}", self.command);
                events.iter().fold(self.state, |s, e| A::evolve(s, e))
            }
            Err(error) => panic!("{} was refused: {error} ({})", self.command, error.code()),
        }
    }

    /// The command is accepted and records nothing (an idempotent repeat).
    pub fn then_nothing(self) {
        let no_events: Vec<DomainEvent> = vec![];
        self.then(no_events);
    }

    /// The command is accepted; returns the events for closer inspection.
    pub fn accepted(self) -> Vec<DomainEvent> {
        match self.result {
            Ok(events) => events,
            Err(error) => panic!("{} was refused: {error} ({})", self.command, error.code()),
        }
    }

    /// The command is refused with this code.
    pub fn then_err(self, code: &str) -> DomainError {
        match self.result {
            Ok(events) => panic!(
                "{} was accepted with {events:?}, expected {code}",
                self.command
            ),
            Err(error) => {
                assert_eq!(error.code(), code, "refusal of {}: {error}", self.command);
                error
            }
        }
    }
}
