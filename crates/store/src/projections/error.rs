//! Owns [`ProjectionError`], the one error type of the projections (read models), and the
//! stable machine-readable codes its variants map to.

use crate::error::StoreError;

/// Everything that can go wrong while building or querying a projection.
///
/// Every variant has a stable [`code`](ProjectionError::code); the `Display` text is for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    /// Reading the event log failed.
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    /// The storage engine failed while reading or writing a projection tree.
    #[error("storage error during {operation}: {detail}")]
    Storage {
        /// What the projection was doing.
        operation: &'static str,
        /// The underlying error.
        detail: String,
    },
    /// A stored event could not be turned into a domain event.
    #[error("event at position {position} (`{event_type}`) does not decode: {detail}")]
    Decode {
        /// The log position of the event.
        position: u64,
        /// Its type name.
        event_type: String,
        /// Why it did not decode.
        detail: String,
    },
    /// Bytes in a projection tree could not be decoded.
    #[error("corrupt projection data: {0}")]
    Corrupt(String),
    /// A paging cursor is not one this projection handed out.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// A query's arguments contradict each other or are out of range.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A projection did not reach the position in time.
    #[error("timed out after {waited_ms} ms waiting for projections to reach position {position}")]
    Timeout {
        /// The position waited for.
        position: u64,
        /// How long the caller waited.
        waited_ms: u64,
    },
    /// No projection of that name is running.
    #[error("unknown projection `{0}`")]
    UnknownProjection(String),
    /// The projection stopped on an error and no longer follows the log.
    #[error("projection `{name}` stopped at position {position}: {reason}")]
    Stopped {
        /// The projection.
        name: String,
        /// The position of the event it could not apply.
        position: u64,
        /// The error that stopped it.
        reason: String,
    },
    /// Background projection tasks need a tokio runtime and none is running.
    #[error("projections need a running tokio runtime")]
    NoRuntime,
    /// A background task ended unexpectedly.
    #[error("projection task failed: {0}")]
    Task(String),
}

impl ProjectionError {
    /// A stable, upper-case code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            ProjectionError::Store(e) => e.code(),
            ProjectionError::Storage { .. } => "IO",
            ProjectionError::Decode { .. } => "UNDECODABLE_EVENT",
            ProjectionError::Corrupt(_) => "CORRUPT",
            ProjectionError::InvalidCursor(_) => "INVALID_CURSOR",
            ProjectionError::InvalidQuery(_) => "VALIDATION",
            ProjectionError::Timeout { .. } => "TIMEOUT",
            ProjectionError::UnknownProjection(_) => "UNKNOWN_PROJECTION",
            ProjectionError::Stopped { .. } => "PROJECTION_STOPPED",
            ProjectionError::NoRuntime => "NO_RUNTIME",
            ProjectionError::Task(_) => "INTERNAL",
        }
    }

    /// Wraps a sled error that happened during `operation`.
    pub(crate) fn sled(operation: &'static str, err: sled::Error) -> ProjectionError {
        ProjectionError::Storage {
            operation,
            detail: err.to_string(),
        }
    }

    /// A corrupt-data error.
    pub(crate) fn corrupt(detail: impl Into<String>) -> ProjectionError {
        ProjectionError::Corrupt(detail.into())
    }
}
