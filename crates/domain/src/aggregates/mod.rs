//! The aggregates, one module each. Every module offers the same shape: a `State` whose
//! `Default` is "does not exist yet", a `Command` enum, `decide`, `evolve` and `fold`, and a
//! marker type implementing [`crate::commands::Aggregate`].

pub mod agent;
pub mod case;
pub mod customer;
pub mod follow_up;
pub mod interaction;
pub mod survey;
