//! The follow-up aggregate: proactive outreach scheduled for a customer, then completed or
//! cancelled.
//!
//! Rules: scheduled once (`ALREADY_EXISTS`) for an active customer; any due time is accepted
//! (scheduling something already overdue is how a missed call-back is logged); the reason
//! `Other` needs a note; only a pending follow-up is completed or cancelled
//! (`INVALID_TRANSITION` otherwise, `NOT_FOUND` before scheduling), with a non-empty outcome or
//! reason.

use crate::commands::{Aggregate, CustomerStatus};
use crate::error::DomainError;
use crate::events::*;
use crate::ids::{AgentId, CustomerId, FollowUpId, TeamId};
use crate::time::Timestamp;
use crate::validate;
use crate::values::{FollowUpReason, FollowUpRelation};

/// Where a follow-up is in its lifecycle.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FollowUpStatus {
    Pending,
    Completed,
    Cancelled,
}

impl FollowUpStatus {
    /// A stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FollowUpStatus::Pending => "pending",
            FollowUpStatus::Completed => "completed",
            FollowUpStatus::Cancelled => "cancelled",
        }
    }
}

/// A scheduled follow-up, as rebuilt from its events.
#[derive(Clone, PartialEq, Debug)]
pub struct FollowUp {
    pub follow_up_id: FollowUpId,
    pub customer_id: CustomerId,
    pub reason: FollowUpReason,
    pub related: Option<FollowUpRelation>,
    pub due_at: Timestamp,
    pub agent: Option<AgentId>,
    pub team: Option<TeamId>,
    pub note: Option<String>,
    pub scheduled_at: Timestamp,
    pub status: FollowUpStatus,
    /// When it was completed or cancelled.
    pub ended_at: Option<Timestamp>,
}

impl FollowUp {
    /// Still pending after its due time.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.status == FollowUpStatus::Pending && now > self.due_at
    }
}

/// The follow-up aggregate's state.
#[derive(Clone, PartialEq, Debug, Default)]
pub enum State {
    #[default]
    NotScheduled,
    Scheduled(FollowUp),
}

impl State {
    /// The follow-up, once scheduled.
    pub fn follow_up(&self) -> Option<&FollowUp> {
        match self {
            State::NotScheduled => None,
            State::Scheduled(follow_up) => Some(follow_up),
        }
    }
}

/// What can be asked of a follow-up.
#[derive(Clone, PartialEq, Debug)]
pub enum Command {
    Schedule {
        follow_up_id: FollowUpId,
        customer_id: CustomerId,
        customer: CustomerStatus,
        reason: FollowUpReason,
        related: Option<FollowUpRelation>,
        due_at: Timestamp,
        agent: Option<AgentId>,
        team: Option<TeamId>,
        /// Required when the reason is `Other`.
        note: Option<String>,
        at: Timestamp,
    },
    Complete {
        outcome: String,
        agent: Option<AgentId>,
        at: Timestamp,
    },
    Cancel {
        reason: String,
        at: Timestamp,
    },
}

/// The follow-up aggregate, for generic code.
#[derive(Clone, Copy, Debug)]
pub struct FollowUpAggregate;

impl Aggregate for FollowUpAggregate {
    type State = State;
    type Command = Command;

    fn decide(state: &State, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
        decide(state, command)
    }

    fn evolve(state: State, event: &DomainEvent) -> State {
        evolve(state, event)
    }
}

/// Rebuilds a follow-up from its events, oldest first.
pub fn fold<'a, I: IntoIterator<Item = &'a DomainEvent>>(events: I) -> State {
    FollowUpAggregate::fold(events)
}

/// The follow-up, refusing unless it is pending.
fn pending<'a>(state: &'a State, action: &'static str) -> Result<&'a FollowUp, DomainError> {
    let follow_up = state.follow_up().ok_or(DomainError::NotFound {
        what: "follow-up",
        id: None,
    })?;
    if follow_up.status == FollowUpStatus::Pending {
        Ok(follow_up)
    } else {
        Err(DomainError::InvalidTransition {
            what: "follow-up",
            from: follow_up.status.as_str(),
            action,
        })
    }
}

/// Decides a follow-up command.
pub fn decide(state: &State, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
    match command {
        Command::Schedule {
            follow_up_id,
            customer_id,
            customer,
            reason,
            related,
            due_at,
            agent,
            team,
            note,
            at,
        } => {
            if let State::Scheduled(existing) = state {
                return Err(DomainError::AlreadyExists {
                    what: "follow-up",
                    id: existing.follow_up_id.to_string(),
                });
            }
            customer.require_active(customer_id)?;
            let note = validate::optional_text(&validate::FOLLOW_UP_NOTE, note.as_deref())?;
            if reason == FollowUpReason::Other && note.is_none() {
                return Err(DomainError::InvalidText {
                    field: validate::FOLLOW_UP_NOTE.field,
                    reason: "is required when the reason is Other".to_owned(),
                });
            }
            Ok(vec![FollowUpScheduled {
                follow_up_id,
                customer_id,
                reason,
                related,
                due_at,
                agent,
                team,
                note,
                at,
            }
            .into()])
        }
        Command::Complete { outcome, agent, at } => {
            let follow_up = pending(state, "complete")?;
            let outcome = validate::text(&validate::OUTCOME, &outcome)?;
            Ok(vec![FollowUpCompleted {
                follow_up_id: follow_up.follow_up_id,
                outcome,
                agent,
                at,
            }
            .into()])
        }
        Command::Cancel { reason, at } => {
            let follow_up = pending(state, "cancel")?;
            let reason = validate::text(&validate::REASON, &reason)?;
            Ok(vec![FollowUpCancelled {
                follow_up_id: follow_up.follow_up_id,
                reason,
                at,
            }
            .into()])
        }
    }
}

/// Applies one event to a follow-up; events of other aggregates or follow-ups are ignored.
pub fn evolve(state: State, event: &DomainEvent) -> State {
    let mut follow_up = match (state, event) {
        (State::NotScheduled, DomainEvent::FollowUpScheduled(e)) => {
            return State::Scheduled(FollowUp {
                follow_up_id: e.follow_up_id,
                customer_id: e.customer_id,
                reason: e.reason,
                related: e.related,
                due_at: e.due_at,
                agent: e.agent,
                team: e.team,
                note: e.note.clone(),
                scheduled_at: e.at,
                status: FollowUpStatus::Pending,
                ended_at: None,
            });
        }
        (State::NotScheduled, _) => return State::NotScheduled,
        (State::Scheduled(follow_up), _) => follow_up,
    };
    match event {
        DomainEvent::FollowUpCompleted(e) if e.follow_up_id == follow_up.follow_up_id => {
            follow_up.status = FollowUpStatus::Completed;
            follow_up.ended_at = Some(e.at);
            if e.agent.is_some() {
                follow_up.agent = e.agent;
            }
        }
        DomainEvent::FollowUpCancelled(e) if e.follow_up_id == follow_up.follow_up_id => {
            follow_up.status = FollowUpStatus::Cancelled;
            follow_up.ended_at = Some(e.at);
        }
        _ => {}
    }
    State::Scheduled(follow_up)
}
