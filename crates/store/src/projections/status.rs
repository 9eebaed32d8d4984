//! Owns the visible state of a projection ([`ProjectionState`], [`ProjectionStatus`]) and the
//! reports of its maintenance operations ([`RebuildStats`], [`CheckReport`]).

use std::time::Duration;

use super::error::ProjectionError;

/// What a projection is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProjectionState {
    /// Opened, not yet caught up with the log.
    CatchingUp,
    /// Caught up, following new events.
    Live,
    /// Building a new generation from position 0 (the old one still serves queries).
    Rebuilding,
    /// Stopped on an error; applied events stay queryable, nothing newer is applied until
    /// [`resume`](super::Projections::resume) or a rebuild.
    Failed {
        /// The position of the event (or read) that failed.
        position: u64,
        /// The error.
        error: ProjectionError,
    },
}

/// A snapshot of one projection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// The projection's name.
    pub name: &'static str,
    /// The version in code.
    pub version: u32,
    /// The version the active model was built with (differs from `version` until a rebuild
    /// after an upgrade finishes).
    pub model_version: u32,
    /// The active generation.
    pub generation: u64,
    /// The last log position applied to the active model.
    pub applied_position: u64,
    /// What it is doing.
    pub state: ProjectionState,
}

/// The outcome of a rebuild.
#[derive(Clone, Debug, PartialEq)]
pub struct RebuildStats {
    /// Log positions read (every event up to the head, whether the projection uses it or not).
    pub events: u64,
    /// Wall time of the rebuild, including the swap.
    pub elapsed: Duration,
    /// `events / elapsed`.
    pub events_per_sec: f64,
    /// The position the new generation reached before the swap.
    pub position: u64,
    /// The generation now serving queries.
    pub generation: u64,
}

/// One key on which the live model and a from-scratch rebuild disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDifference {
    /// The key, in hex.
    pub key: String,
    /// The live value's length, `None` when the live model lacks the key.
    pub live_len: Option<usize>,
    /// The rebuilt value's length, `None` when the rebuild lacks the key.
    pub rebuilt_len: Option<usize>,
}

/// The outcome of comparing the live model with a from-scratch rebuild at the same position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// The projection checked.
    pub name: &'static str,
    /// The position both models were at.
    pub position: u64,
    /// Keys in the live model.
    pub live_keys: u64,
    /// Keys in the rebuild.
    pub rebuilt_keys: u64,
    /// Keys only the live model has.
    pub only_live: u64,
    /// Keys only the rebuild has.
    pub only_rebuilt: u64,
    /// Keys both have with different values.
    pub different: u64,
    /// The first few differences.
    pub examples: Vec<KeyDifference>,
}

impl CheckReport {
    /// Whether the two models are identical.
    pub fn is_consistent(&self) -> bool {
        self.only_live == 0 && self.only_rebuilt == 0 && self.different == 0
    }
}
