//! Why the domain refuses a command, with a stable machine-readable code per reason and a
//! coarse [`ErrorKind`] so that adapters (GraphQL, CLI) can map refusals without listing them.
//!
//! The kinds follow one criterion:
//! - [`ErrorKind::Validation`]: the command is wrong whatever the state (bad text, bad tag,
//!   score off its scale, merging a customer into itself, ...). Fix the input.
//! - [`ErrorKind::NotFound`]: the thing the command is about does not exist (yet).
//! - [`ErrorKind::Rule`]: the input is fine but the current state forbids it (case closed,
//!   already resolved, customer forgotten, id already used, ...). Conflict-like.

use crate::ids::CustomerId;
use crate::time::Timestamp;
use crate::values::SlaTarget;

/// The coarse group of a [`DomainError`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ErrorKind {
    /// Bad input, whatever the state.
    Validation,
    /// The aggregate (or the item inside it) does not exist.
    NotFound,
    /// A state rule refuses the command.
    Rule,
}

impl ErrorKind {
    /// A stable upper-case name: `VALIDATION`, `NOT_FOUND` or `RULE`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Validation => "VALIDATION",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::Rule => "RULE",
        }
    }
}

/// A refused command or invalid value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    // ------------------------------------------------------------ validation
    #[error("invalid {kind}: `{value}` is not a UUID v7")]
    InvalidId { kind: &'static str, value: String },

    /// A text field is empty, too long or holds forbidden characters.
    #[error("invalid {field}: {reason}")]
    InvalidText { field: &'static str, reason: String },

    /// A reference (customer reference number, erasure request, bot name) is not 1 to 64 of
    /// `[A-Za-z0-9-_]`.
    #[error("invalid {field}: `{value}` must be 1 to 64 letters, digits, `-` or `_`")]
    InvalidReference { field: &'static str, value: String },

    /// Not a well-formed BCP-47 language tag.
    #[error("invalid language tag `{value}`: {reason}")]
    InvalidLanguage { value: String, reason: String },

    /// Not an IANA time zone name.
    #[error("unknown time zone `{value}`")]
    InvalidTimeZone { value: String },

    /// An email, phone number, social handle or messaging id that does not parse.
    #[error("invalid {kind} contact point `{value}`: {reason}")]
    InvalidContactPoint {
        kind: &'static str,
        value: String,
        reason: String,
    },

    /// Not an ISO 4217 currency code (three letters).
    #[error("invalid currency `{value}`: expected three letters such as `SAR` or `EUR`")]
    InvalidCurrency { value: String },

    /// A survey score outside its scale.
    #[error("{scale} score {value} is outside {min}..={max}")]
    ScoreOutOfRange {
        scale: &'static str,
        value: u8,
        min: u8,
        max: u8,
    },

    /// A reward that gives nothing (zero points, zero voucher).
    #[error("invalid reward: {reason}")]
    InvalidReward { reason: String },

    /// A period whose end is not after its start.
    #[error("invalid period: {from} is not before {to}")]
    InvalidPeriod { from: Timestamp, to: Timestamp },

    /// SLA targets of zero minutes.
    #[error("invalid SLA policy: {reason}")]
    InvalidSla { reason: String },

    /// An escalation level scheme that makes no sense (top level 0).
    #[error("invalid level: {reason}")]
    InvalidLevel { reason: String },

    /// An assignment to nobody (neither agent nor team).
    #[error("an assignment needs an agent, a team or both")]
    InvalidAssignment,

    /// A customer cannot be merged into itself.
    #[error("customer {customer} cannot be merged into itself")]
    MergeIntoSelf { customer: CustomerId },

    /// An agent cannot recognise themselves.
    #[error("an agent cannot recognise themselves")]
    SelfRecognition,

    // ------------------------------------------------------------ not found
    /// The aggregate or item does not exist. `id` is absent when the command addressed the
    /// aggregate only through its stream (the caller knows which one).
    #[error("{what}{} not found", id_suffix(.id))]
    NotFound {
        what: &'static str,
        id: Option<String>,
    },

    // ------------------------------------------------------------ state rules
    /// The id is already used (registering twice, answering a survey twice, ...).
    #[error("{what} {id} already exists")]
    AlreadyExists { what: &'static str, id: String },

    /// The customer was forgotten (erased); nothing more is recorded for them.
    #[error("customer {customer} was forgotten")]
    CustomerForgotten { customer: CustomerId },

    /// The customer was merged into another; record things on the survivor instead.
    #[error("customer {customer} was merged into {into}")]
    CustomerMerged {
        customer: CustomerId,
        into: CustomerId,
    },

    /// The contact point is already on the customer.
    #[error("contact point `{value}` is already on the customer")]
    DuplicateContactPoint { value: String },

    /// The case is closed: only notes can still be added.
    #[error("the case is closed")]
    CaseClosed,

    /// The case is resolved: reopen it first.
    #[error("the case is already resolved")]
    AlreadyResolved,

    /// The case is not resolved (reopen and close need a resolved case).
    #[error("the case is not resolved")]
    NotResolved,

    /// The first response was already given.
    #[error("the case already had its first response")]
    AlreadyResponded,

    /// The case is at its top escalation level.
    #[error("the case is already at the top level {top_level}")]
    TopLevelReached { top_level: u8 },

    /// The case is at level 1.
    #[error("the case is already at the bottom level 1")]
    BottomLevelReached,

    /// The SLA target was already recorded as breached.
    #[error("the {target:?} target was already breached")]
    AlreadyBreached { target: SlaTarget },

    /// The SLA target is not due yet.
    #[error("the {target:?} target is not due before {due_at}")]
    NotDue {
        target: SlaTarget,
        due_at: Timestamp,
    },

    /// The SLA target was met in time, so it cannot be breached.
    #[error("the {target:?} target was met in time")]
    TargetMet { target: SlaTarget },

    /// The lifecycle does not allow this action from the current state.
    #[error("cannot {action} a {from} {what}")]
    InvalidTransition {
        what: &'static str,
        from: &'static str,
        action: &'static str,
    },
}

fn id_suffix(id: &Option<String>) -> String {
    id.as_deref().map(|id| format!(" {id}")).unwrap_or_default()
}

impl DomainError {
    /// A stable code for clients (GraphQL `extensions.reason`).
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::InvalidId { .. } => "INVALID_ID",
            DomainError::InvalidText { .. } => "INVALID_TEXT",
            DomainError::InvalidReference { .. } => "INVALID_REFERENCE",
            DomainError::InvalidLanguage { .. } => "INVALID_LANGUAGE",
            DomainError::InvalidTimeZone { .. } => "INVALID_TIME_ZONE",
            DomainError::InvalidContactPoint { .. } => "INVALID_CONTACT_POINT",
            DomainError::InvalidCurrency { .. } => "INVALID_CURRENCY",
            DomainError::ScoreOutOfRange { .. } => "SCORE_OUT_OF_RANGE",
            DomainError::InvalidReward { .. } => "INVALID_REWARD",
            DomainError::InvalidPeriod { .. } => "INVALID_PERIOD",
            DomainError::InvalidSla { .. } => "INVALID_SLA",
            DomainError::InvalidLevel { .. } => "INVALID_LEVEL",
            DomainError::InvalidAssignment => "INVALID_ASSIGNMENT",
            DomainError::MergeIntoSelf { .. } => "MERGE_INTO_SELF",
            DomainError::SelfRecognition => "SELF_RECOGNITION",
            DomainError::NotFound { .. } => "NOT_FOUND",
            DomainError::AlreadyExists { .. } => "ALREADY_EXISTS",
            DomainError::CustomerForgotten { .. } => "CUSTOMER_FORGOTTEN",
            DomainError::CustomerMerged { .. } => "CUSTOMER_MERGED",
            DomainError::DuplicateContactPoint { .. } => "DUPLICATE_CONTACT_POINT",
            DomainError::CaseClosed => "CASE_CLOSED",
            DomainError::AlreadyResolved => "ALREADY_RESOLVED",
            DomainError::NotResolved => "NOT_RESOLVED",
            DomainError::AlreadyResponded => "ALREADY_RESPONDED",
            DomainError::TopLevelReached { .. } => "TOP_LEVEL_REACHED",
            DomainError::BottomLevelReached => "BOTTOM_LEVEL_REACHED",
            DomainError::AlreadyBreached { .. } => "ALREADY_BREACHED",
            DomainError::NotDue { .. } => "NOT_DUE",
            DomainError::TargetMet { .. } => "TARGET_MET",
            DomainError::InvalidTransition { .. } => "INVALID_TRANSITION",
        }
    }

    /// The coarse group, for mapping to transport-level codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DomainError::InvalidId { .. }
            | DomainError::InvalidText { .. }
            | DomainError::InvalidReference { .. }
            | DomainError::InvalidLanguage { .. }
            | DomainError::InvalidTimeZone { .. }
            | DomainError::InvalidContactPoint { .. }
            | DomainError::InvalidCurrency { .. }
            | DomainError::ScoreOutOfRange { .. }
            | DomainError::InvalidReward { .. }
            | DomainError::InvalidPeriod { .. }
            | DomainError::InvalidSla { .. }
            | DomainError::InvalidLevel { .. }
            | DomainError::InvalidAssignment
            | DomainError::MergeIntoSelf { .. }
            | DomainError::SelfRecognition => ErrorKind::Validation,
            DomainError::NotFound { .. } => ErrorKind::NotFound,
            DomainError::AlreadyExists { .. }
            | DomainError::CustomerForgotten { .. }
            | DomainError::CustomerMerged { .. }
            | DomainError::DuplicateContactPoint { .. }
            | DomainError::CaseClosed
            | DomainError::AlreadyResolved
            | DomainError::NotResolved
            | DomainError::AlreadyResponded
            | DomainError::TopLevelReached { .. }
            | DomainError::BottomLevelReached
            | DomainError::AlreadyBreached { .. }
            | DomainError::NotDue { .. }
            | DomainError::TargetMet { .. }
            | DomainError::InvalidTransition { .. } => ErrorKind::Rule,
        }
    }

    /// Every code, once each, for documentation and exhaustiveness tests.
    pub const CODES: &'static [&'static str] = &[
        "INVALID_ID",
        "INVALID_TEXT",
        "INVALID_REFERENCE",
        "INVALID_LANGUAGE",
        "INVALID_TIME_ZONE",
        "INVALID_CONTACT_POINT",
        "INVALID_CURRENCY",
        "SCORE_OUT_OF_RANGE",
        "INVALID_REWARD",
        "INVALID_PERIOD",
        "INVALID_SLA",
        "INVALID_LEVEL",
        "INVALID_ASSIGNMENT",
        "MERGE_INTO_SELF",
        "SELF_RECOGNITION",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "CUSTOMER_FORGOTTEN",
        "CUSTOMER_MERGED",
        "DUPLICATE_CONTACT_POINT",
        "CASE_CLOSED",
        "ALREADY_RESOLVED",
        "NOT_RESOLVED",
        "ALREADY_RESPONDED",
        "TOP_LEVEL_REACHED",
        "BOTTOM_LEVEL_REACHED",
        "ALREADY_BREACHED",
        "NOT_DUE",
        "TARGET_MET",
        "INVALID_TRANSITION",
    ];
}
