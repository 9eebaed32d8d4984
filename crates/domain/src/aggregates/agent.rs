//! The agent aggregate: an agent becomes known (name, teams) and is recognised by supervisors.
//!
//! Rules: an agent registers once (`ALREADY_EXISTS`); recognition needs a registered agent
//! (`NOT_FOUND`), a fresh recognition id (`ALREADY_EXISTS`), someone other than the agent
//! (`SELF_RECOGNITION`), a non-empty reason, a reward that gives something (points above zero,
//! a voucher above zero in a valid currency: `INVALID_REWARD`, `INVALID_CURRENCY`) and, for a
//! metric, a period whose end is after its start (`INVALID_PERIOD`).

use std::collections::BTreeSet;

use crate::commands::Aggregate;
use crate::error::DomainError;
use crate::events::*;
use crate::ids::{AgentId, RecognitionId, TeamId};
use crate::time::Timestamp;
use crate::validate;
use crate::values::{RecognitionBasis, Reward};

/// A registered agent, as rebuilt from their events.
#[derive(Clone, PartialEq, Debug)]
pub struct Agent {
    pub agent_id: AgentId,
    pub display_name: String,
    /// Without duplicates, in the order given.
    pub teams: Vec<TeamId>,
    pub registered_at: Timestamp,
    pub recognitions: BTreeSet<RecognitionId>,
    /// Points received through recognitions.
    pub points: u64,
}

/// The agent aggregate's state.
#[derive(Clone, PartialEq, Debug, Default)]
pub enum State {
    #[default]
    NotRegistered,
    Registered(Agent),
}

impl State {
    /// The agent, once registered.
    pub fn agent(&self) -> Option<&Agent> {
        match self {
            State::NotRegistered => None,
            State::Registered(agent) => Some(agent),
        }
    }
}

/// What can be asked of an agent.
#[derive(Clone, PartialEq, Debug)]
pub enum Command {
    Register {
        agent_id: AgentId,
        display_name: String,
        teams: Vec<TeamId>,
        at: Timestamp,
    },
    /// `by` (a supervisor) recognises this agent.
    Recognise {
        recognition_id: RecognitionId,
        by: AgentId,
        reason: String,
        reward: Reward,
        basis: RecognitionBasis,
        at: Timestamp,
    },
}

/// The agent aggregate, for generic code.
#[derive(Clone, Copy, Debug)]
pub struct AgentAggregate;

impl Aggregate for AgentAggregate {
    type State = State;
    type Command = Command;

    fn decide(state: &State, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
        decide(state, command)
    }

    fn evolve(state: State, event: &DomainEvent) -> State {
        evolve(state, event)
    }
}

/// Rebuilds an agent from their events, oldest first.
pub fn fold<'a, I: IntoIterator<Item = &'a DomainEvent>>(events: I) -> State {
    AgentAggregate::fold(events)
}

/// Decides an agent command.
pub fn decide(state: &State, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
    match command {
        Command::Register {
            agent_id,
            display_name,
            teams,
            at,
        } => {
            if let State::Registered(existing) = state {
                return Err(DomainError::AlreadyExists {
                    what: "agent",
                    id: existing.agent_id.to_string(),
                });
            }
            let display_name = validate::text(&validate::DISPLAY_NAME, &display_name)?;
            let mut unique: Vec<TeamId> = Vec::with_capacity(teams.len());
            for team in teams {
                if !unique.contains(&team) {
                    unique.push(team);
                }
            }
            Ok(vec![AgentRegistered {
                agent_id,
                display_name,
                teams: unique,
                at,
            }
            .into()])
        }
        Command::Recognise {
            recognition_id,
            by,
            reason,
            reward,
            basis,
            at,
        } => {
            let agent = state.agent().ok_or(DomainError::NotFound {
                what: "agent",
                id: None,
            })?;
            if agent.recognitions.contains(&recognition_id) {
                return Err(DomainError::AlreadyExists {
                    what: "recognition",
                    id: recognition_id.to_string(),
                });
            }
            if by == agent.agent_id {
                return Err(DomainError::SelfRecognition);
            }
            let reason = validate::text(&validate::REASON, &reason)?;
            let reward = validate::reward(&reward)?;
            if let RecognitionBasis::Metric { from, to, .. } = basis {
                if from >= to {
                    return Err(DomainError::InvalidPeriod { from, to });
                }
            }
            Ok(vec![AgentRecognised {
                recognition_id,
                agent_id: agent.agent_id,
                by,
                reason,
                reward,
                basis,
                at,
            }
            .into()])
        }
    }
}

/// Applies one event to an agent; events of other aggregates or agents are ignored.
pub fn evolve(state: State, event: &DomainEvent) -> State {
    match (state, event) {
        (State::NotRegistered, DomainEvent::AgentRegistered(e)) => State::Registered(Agent {
            agent_id: e.agent_id,
            display_name: e.display_name.clone(),
            teams: e.teams.clone(),
            registered_at: e.at,
            recognitions: BTreeSet::new(),
            points: 0,
        }),
        (State::Registered(mut agent), DomainEvent::AgentRecognised(e))
            if e.agent_id == agent.agent_id =>
        {
            if agent.recognitions.insert(e.recognition_id) {
                if let Reward::Points(points) = e.reward {
                    agent.points = agent.points.saturating_add(u64::from(points));
                }
            }
            State::Registered(agent)
        }
        (state, _) => state,
    }
}
