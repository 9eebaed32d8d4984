//! Owns [`StoreError`], the one error type of the event store, and the
//! stable machine-readable codes its variants map to.

use uuid::Uuid;

use crate::event::ExpectedVersion;

/// Everything that can go wrong when talking to the event store.
///
/// Every variant has a stable [`code`](StoreError::code) that callers (the
/// gateway, logs, metrics) may match on; the `Display` text is for humans and
/// may change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The stream was not at the version the caller expected. Nothing was
    /// written.
    #[error("stream `{stream}` is at {found}, but the append expected {expected}", found = DisplayVersion(*.actual))]
    Conflict {
        /// The stream the append targeted.
        stream: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's current version (`None` if it has no events).
        actual: Option<u64>,
    },
    /// The input was rejected before anything was written.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// An event id that is already stored was re-submitted with different
    /// content, to another stream, or mixed with new events in one batch.
    #[error("event {event_id} is already stored with different content, in another stream, or in another batch")]
    IdempotencyMismatch {
        /// The first offending event id.
        event_id: Uuid,
    },
    /// Bytes read from disk could not be decoded or contradict each other.
    /// `position` is the global log position concerned, or 0 when the damage
    /// is in an index or metadata entry that is not tied to one position.
    #[error("corrupt store data at position {position}: {detail}")]
    Corrupt {
        /// The log position concerned (0 if not tied to one).
        position: u64,
        /// What was wrong.
        detail: String,
    },
    /// The disk or the storage engine failed. For an append, the outcome is
    /// unknown: the events may or may not be stored. Retrying with the same
    /// event ids is safe (idempotency) once the store is reopened.
    #[error("storage error during {operation}: {detail}")]
    Io {
        /// What the store was doing.
        operation: &'static str,
        /// The underlying error.
        detail: String,
    },
    /// The store on disk was written by a newer version of sijil.
    #[error("store format version {found} is newer than the supported version {supported}; upgrade sijil to open this store")]
    IncompatibleFormat {
        /// The format version found on disk.
        found: u32,
        /// The newest format version this build understands.
        supported: u32,
    },
    /// A registered upcaster rejected a stored payload.
    #[error("upcasting `{event_type}` from schema version {from_version} at position {position} failed: {detail}")]
    Upcast {
        /// The log position of the event.
        position: u64,
        /// The event's type name.
        event_type: String,
        /// The schema version the failing upcaster started from.
        from_version: u16,
        /// The upcaster's message.
        detail: String,
    },
    /// The store's writer has stopped; no more appends are accepted.
    #[error("the event store is closed")]
    Closed,
}

/// What sled 0.34 says when another handle holds the database's file lock (it has no typed
/// error for it).
const SLED_LOCK_HELD: &str = "could not acquire lock";

/// Whether `error` is sled refusing to open a database whose file lock is held.
pub(crate) fn sled_lock_held(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(e) if e.to_string().contains(SLED_LOCK_HELD))
}

impl StoreError {
    /// A stable, upper-case code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Conflict { .. } => "CONFLICT",
            StoreError::Invalid(_) => "VALIDATION",
            StoreError::IdempotencyMismatch { .. } => "IDEMPOTENCY_MISMATCH",
            StoreError::Corrupt { .. } => "CORRUPT",
            StoreError::Io { .. } => "IO",
            StoreError::IncompatibleFormat { .. } => "INCOMPATIBLE_FORMAT",
            StoreError::Upcast { .. } => "UPCAST",
            StoreError::Closed => "CLOSED",
        }
    }

    /// Whether opening the store failed because another handle (another process) holds its
    /// file lock.
    pub fn is_store_in_use(&self) -> bool {
        matches!(self, StoreError::Io { detail, .. } if detail.contains(SLED_LOCK_HELD))
    }

    /// Wraps an I/O error that happened during `operation` (for `map_err`).
    pub(crate) fn io(operation: &'static str) -> impl Fn(std::io::Error) -> StoreError {
        move |e| StoreError::Io {
            operation,
            detail: e.to_string(),
        }
    }

    /// Wraps a sled error that happened during `operation`.
    pub(crate) fn sled(operation: &'static str, err: sled::Error) -> StoreError {
        match err {
            sled::Error::Corruption { at, .. } => StoreError::Corrupt {
                position: 0,
                detail: format!("storage engine reports corruption during {operation} at {at:?}"),
            },
            other => StoreError::Io {
                operation,
                detail: other.to_string(),
            },
        }
    }

    /// A corrupt-data error at `position`.
    pub(crate) fn corrupt(position: u64, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            position,
            detail: detail.into(),
        }
    }
}

/// Renders an optional stream version for error messages.
struct DisplayVersion(Option<u64>);

impl std::fmt::Display for DisplayVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "version {v}"),
            None => f.write_str("no stream (no events yet)"),
        }
    }
}
