//! The interaction aggregate: one contact on one channel, and the notes on it.
//!
//! Rules:
//! - an interaction is recorded once (`ALREADY_EXISTS`), only for an active customer;
//! - an interaction tied to a case needs that case to exist (`NOT_FOUND`); an outbound one
//!   (a reply) is refused on a closed case (`CASE_CLOSED`), while an inbound one is still
//!   recorded (the customer did write);
//! - notes need the interaction (`NOT_FOUND`), a fresh note id (`ALREADY_EXISTS`) and an
//!   active customer.

use std::collections::BTreeSet;

use crate::aggregates::case::CaseStatus;
use crate::commands::{Aggregate, CaseLink, CustomerStatus};
use crate::error::DomainError;
use crate::events::*;
use crate::ids::{AgentId, CustomerId, InteractionId, NoteId};
use crate::time::Timestamp;
use crate::validate;
use crate::values::{Channel, Direction, Handler, NoteTarget};

/// A recorded interaction and the notes added to it.
#[derive(Clone, PartialEq, Debug)]
pub struct Interaction {
    pub recorded: InteractionRecorded,
    pub notes: BTreeSet<NoteId>,
}

/// The interaction aggregate's state.
#[derive(Clone, PartialEq, Debug, Default)]
pub enum State {
    #[default]
    NotRecorded,
    Recorded(Interaction),
}

impl State {
    /// The interaction, once recorded.
    pub fn interaction(&self) -> Option<&Interaction> {
        match self {
            State::NotRecorded => None,
            State::Recorded(interaction) => Some(interaction),
        }
    }
}

/// What can be asked of an interaction.
#[derive(Clone, PartialEq, Debug)]
pub enum Command {
    Record {
        interaction_id: InteractionId,
        customer_id: CustomerId,
        customer: CustomerStatus,
        channel: Channel,
        direction: Direction,
        /// An agent, or a bot by name (1 to 64 of `[A-Za-z0-9-_]`).
        handled_by: Handler,
        /// BCP-47 tag of the language used.
        language: String,
        summary: String,
        duration_seconds: u32,
        /// The case it is about, with that case's status as the application read it.
        case: Option<CaseLink>,
        recording_ref: Option<String>,
        at: Timestamp,
    },
    AddNote {
        note_id: NoteId,
        customer: CustomerStatus,
        author: Option<AgentId>,
        text: String,
        at: Timestamp,
    },
}

/// The interaction aggregate, for generic code.
#[derive(Clone, Copy, Debug)]
pub struct InteractionAggregate;

impl Aggregate for InteractionAggregate {
    type State = State;
    type Command = Command;

    fn decide(state: &State, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
        decide(state, command)
    }

    fn evolve(state: State, event: &DomainEvent) -> State {
        evolve(state, event)
    }
}

/// Rebuilds an interaction from its events, oldest first.
pub fn fold<'a, I: IntoIterator<Item = &'a DomainEvent>>(events: I) -> State {
    InteractionAggregate::fold(events)
}

/// Decides an interaction command.
pub fn decide(state: &State, command: Command) -> Result<Vec<DomainEvent>, DomainError> {
    match command {
        Command::Record {
            interaction_id,
            customer_id,
            customer,
            channel,
            direction,
            handled_by,
            language,
            summary,
            duration_seconds,
            case,
            recording_ref,
            at,
        } => {
            if let State::Recorded(existing) = state {
                return Err(DomainError::AlreadyExists {
                    what: "interaction",
                    id: existing.recorded.interaction_id.to_string(),
                });
            }
            customer.require_active(customer_id)?;
            if let Some(link) = case {
                match link.status {
                    None => {
                        return Err(DomainError::NotFound {
                            what: "case",
                            id: Some(link.case_id.to_string()),
                        })
                    }
                    Some(CaseStatus::Closed) if direction == Direction::Outbound => {
                        return Err(DomainError::CaseClosed)
                    }
                    Some(_) => {}
                }
            }
            let handled_by = match handled_by {
                Handler::Agent(agent) => Handler::Agent(agent),
                Handler::Bot(name) => Handler::Bot(validate::reference("bot name", &name)?),
            };
            let language = validate::language_tag(&language)?;
            let summary = validate::text(&validate::SUMMARY, &summary)?;
            let recording_ref =
                validate::optional_text(&validate::RECORDING_REF, recording_ref.as_deref())?;
            Ok(vec![InteractionRecorded {
                interaction_id,
                customer_id,
                channel,
                direction,
                handled_by,
                language,
                summary,
                duration_seconds,
                case_id: case.map(|link| link.case_id),
                recording_ref,
                at,
            }
            .into()])
        }
        Command::AddNote {
            note_id,
            customer,
            author,
            text,
            at,
        } => {
            let interaction = state.interaction().ok_or(DomainError::NotFound {
                what: "interaction",
                id: None,
            })?;
            if interaction.notes.contains(&note_id) {
                return Err(DomainError::AlreadyExists {
                    what: "note",
                    id: note_id.to_string(),
                });
            }
            let customer_id = interaction.recorded.customer_id;
            customer.require_active(customer_id)?;
            let text = validate::text(&validate::NOTE, &text)?;
            Ok(vec![NoteAdded {
                note_id,
                target: NoteTarget::Interaction(interaction.recorded.interaction_id),
                customer_id,
                author,
                text,
                at,
            }
            .into()])
        }
    }
}

/// Applies one event to an interaction; events of other aggregates or interactions are
/// ignored.
pub fn evolve(state: State, event: &DomainEvent) -> State {
    match (state, event) {
        (State::NotRecorded, DomainEvent::InteractionRecorded(e)) => State::Recorded(Interaction {
            recorded: e.clone(),
            notes: BTreeSet::new(),
        }),
        (State::Recorded(mut interaction), DomainEvent::NoteAdded(e))
            if e.target == NoteTarget::Interaction(interaction.recorded.interaction_id) =>
        {
            interaction.notes.insert(e.note_id);
            State::Recorded(interaction)
        }
        (state, _) => state,
    }
}
