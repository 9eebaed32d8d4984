//! The pure customer-service domain of sijil: ids, value types, events, commands and the
//! decide/evolve functions of each aggregate, with the rules a real help desk enforces.
//! No I/O: no clock, no randomness, no storage, no network.

pub mod error;
pub mod events;
pub mod ids;
pub mod time;
pub mod values;

pub use error::DomainError;
pub use events::{DomainEvent, StreamRef};
pub use ids::*;
pub use time::Timestamp;
pub use values::*;
