//! The survey aggregate: one answer (CSAT, NPS or CES) per survey id.
//!
//! Rules: a survey is answered once (`ALREADY_EXISTS`), by an active customer, with a score on
//! its scale (`SCORE_OUT_OF_RANGE`: CSAT 1-5, NPS 0-10, CES 1-7); a blank comment is no comment.

use crate::commands::{Aggregate, CustomerStatus};
use crate::error::DomainError;
use crate::events::*;
use crate::ids::{CustomerId, SurveyId};
use crate::time::Timestamp;
use crate::validate;
use crate::values::{FeedbackSubject, Score};

/// The survey aggregate's state.
#[derive(Clone, PartialEq, Debug, Default)]
pub enum State {
    #[default]
    NotAnswered,
    Answered(SurveyAnswered),
}

impl State {
    /// The answer, once given.
    pub fn answer(&self) -> Option<&SurveyAnswered> {
        match self {
            State::NotAnswered => None,
            State::Answered(answer) => Some(answer),
        }
    }
}

/// What can be asked of a survey.
#[derive(Clone, PartialEq, Debug)]
pub enum Command {
    Answer {
        survey_id: SurveyId,
        customer_id: CustomerId,
        customer: CustomerStatus,
        subject: FeedbackSubject,
        score: Score,
        comment: Option<String>,
        at: Timestamp,
    },
}

/// The survey aggregate, for generic code.
#[derive(Clone, Copy, Debug)]
pub struct SurveyAggregate;

impl Aggregate for SurveyAggregate {
    type State = State;
    type Command = Command;

    fn decide(state: &State, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
        decide(state, command)
    }

    fn evolve(state: State, event: &DomainEvent) -> State {
        evolve(state, event)
    }
}

/// Rebuilds a survey from its events, oldest first.
pub fn fold<'a, I: IntoIterator<Item = &'a DomainEvent>>(events: I) -> State {
    SurveyAggregate::fold(events)
}

/// Decides a survey command.
pub fn decide(state: &State, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
    match command {
        Command::Answer {
            survey_id,
            customer_id,
            customer,
            subject,
            score,
            comment,
            at,
        } => {
            if let State::Answered(existing) = state {
                return Err(DomainError::AlreadyExists {
                    what: "survey answer",
                    id: existing.survey_id.to_string(),
                });
            }
            customer.require_active(customer_id)?;
            let score = validate::score(score)?;
            let comment = validate::optional_text(&validate::COMMENT, comment.as_deref())?;
            Ok(vec![SurveyAnswered {
                survey_id,
                customer_id,
                subject,
                score,
                comment,
                at,
            }
            .into()])
        }
    }
}

/// Applies one event to a survey; events of other aggregates or surveys are ignored.
pub fn evolve(state: State, event: &DomainEvent) -> State {
    match (state, event) {
        (State::NotAnswered, DomainEvent::SurveyAnswered(e)) => State::Answered(e.clone()),
        (state, _) => state,
    }
}
