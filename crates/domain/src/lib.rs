//! The pure customer-service domain of sijil: ids, value types, events, commands and the
//! decide/evolve functions of each aggregate, with the rules a real help desk enforces.
//! No I/O: no clock, no randomness, no storage, no network.

pub mod aggregates;
pub mod commands;
pub mod error;
pub mod events;
pub mod ids;
pub mod personal;
pub mod time;
pub mod tz_names;
pub mod validate;
pub mod values;

pub use aggregates::{agent, case, customer, follow_up, interaction, survey};
pub use commands::{
    AgentCommand, Aggregate, CaseCommand, CaseLink, CustomerCommand, CustomerStatus,
    FollowUpCommand, InteractionCommand, SurveyCommand,
};
pub use error::{DomainError, ErrorKind};
pub use events::{DomainEvent, StreamRef, EVENT_TYPES};
pub use ids::*;
pub use time::Timestamp;
pub use values::*;
