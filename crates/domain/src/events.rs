//! Domain events: the facts sijil records. Each has a stable type name and schema version,
//! carries the time it occurred (given by the caller), and names the stream it belongs to.
//!
//! On the wire an event is its *payload* (the variant's struct, serialised on its own) plus its
//! type name and schema version, which the store keeps in the envelope.
//! [`DomainEvent::serialize_payload`] and [`DomainEvent::deserialize_payload`] convert between
//! the enum and that form with any serde format, so the domain never depends on a codec.

use serde::{Deserialize, Serialize};

use crate::ids::*;
use crate::time::Timestamp;
use crate::values::*;

// ---------------------------------------------------------------- customer stream

/// A customer became known to the business.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CustomerRegistered {
    pub customer_id: CustomerId,
    /// The unique reference number the business gives the customer.
    pub reference: String,
    pub display_name: String,
    /// BCP-47 tag, for example `ar`, `en-GB`, `ja`.
    pub language: String,
    /// IANA time zone, for example `Asia/Riyadh`.
    pub time_zone: String,
    pub contact_points: Vec<ContactPoint>,
    pub at: Timestamp,
}

/// Name or time zone changed.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CustomerProfileUpdated {
    pub customer_id: CustomerId,
    pub display_name: Option<String>,
    pub time_zone: Option<String>,
    pub at: Timestamp,
}

/// A new way to reach the customer.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct ContactPointAdded {
    pub customer_id: CustomerId,
    pub contact_point: ContactPoint,
    pub at: Timestamp,
}

/// A way to reach the customer no longer holds.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct ContactPointRemoved {
    pub customer_id: CustomerId,
    pub contact_point: ContactPoint,
    pub at: Timestamp,
}

/// Language, preferred channel or consent changed (only the fields given).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CustomerPreferencesChanged {
    pub customer_id: CustomerId,
    pub language: Option<String>,
    pub preferred_channel: Option<Channel>,
    pub consent_to_contact: Option<bool>,
    pub at: Timestamp,
}

/// This customer was a duplicate identity of `into`, which survives and whose timeline now
/// includes this customer's history. Recorded on the merged-away customer's stream.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CustomerMerged {
    pub customer_id: CustomerId,
    pub into: CustomerId,
    pub at: Timestamp,
}

/// The customer asked to be forgotten (GDPR erasure). Their personal data becomes unreadable;
/// the facts of service (times, cases, scores) remain.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CustomerForgotten {
    pub customer_id: CustomerId,
    /// The erasure request's own reference, for the audit trail (never personal data).
    pub request_reference: String,
    pub at: Timestamp,
}

// ---------------------------------------------------------------- interaction stream

/// One contact on one channel.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct InteractionRecorded {
    pub interaction_id: InteractionId,
    pub customer_id: CustomerId,
    pub channel: Channel,
    pub direction: Direction,
    pub handled_by: Handler,
    /// BCP-47 tag of the language used.
    pub language: String,
    pub summary: String,
    pub duration_seconds: u32,
    pub case_id: Option<CaseId>,
    pub recording_ref: Option<String>,
    pub at: Timestamp,
}

/// A note on an interaction or a case; recorded on that interaction's or case's stream.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct NoteAdded {
    pub note_id: NoteId,
    pub target: NoteTarget,
    pub customer_id: CustomerId,
    pub author: Option<AgentId>,
    pub text: String,
    pub at: Timestamp,
}

// ---------------------------------------------------------------- case stream

/// A case (ticket) was opened.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CaseOpened {
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    pub subject: String,
    pub category: String,
    pub priority: Priority,
    pub channel: Channel,
    pub sla: SlaPolicy,
    /// The workspace's top escalation level when the case opened (levels start at 1).
    pub top_level: u8,
    pub at: Timestamp,
}

/// The case was given to an agent and/or a team.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CaseAssigned {
    pub case_id: CaseId,
    pub agent: Option<AgentId>,
    pub team: Option<TeamId>,
    pub at: Timestamp,
}

/// The first agent response on the case (meets the first-response target).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct FirstResponseGiven {
    pub case_id: CaseId,
    pub agent: Option<AgentId>,
    pub channel: Channel,
    pub at: Timestamp,
}

/// The case moved up a level (tier), perhaps to a specialised team.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CaseEscalated {
    pub case_id: CaseId,
    pub from_level: u8,
    pub to_level: u8,
    pub reason: String,
    pub team: Option<TeamId>,
    pub at: Timestamp,
}

/// The case moved back down a level.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CaseDeescalated {
    pub case_id: CaseId,
    pub from_level: u8,
    pub to_level: u8,
    pub reason: String,
    pub team: Option<TeamId>,
    pub at: Timestamp,
}

/// A target time passed without the event that meets it. Recorded once per target per case.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct SlaBreached {
    pub case_id: CaseId,
    pub target: SlaTarget,
    pub due_at: Timestamp,
    /// How late, in milliseconds, when the breach was recorded (`at - due_at`).
    pub overdue_ms: i64,
    pub at: Timestamp,
}

/// The case was resolved.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CaseResolved {
    pub case_id: CaseId,
    pub resolution: String,
    pub root_cause: String,
    /// Resolved within the first interaction, with no further contact.
    pub first_contact_resolution: bool,
    pub agent: Option<AgentId>,
    pub at: Timestamp,
}

/// A resolved case came back.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CaseReopened {
    pub case_id: CaseId,
    pub reason: String,
    pub at: Timestamp,
}

/// The case is closed for good.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CaseClosed {
    pub case_id: CaseId,
    pub at: Timestamp,
}

// ---------------------------------------------------------------- survey stream

/// A customer answered a survey.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct SurveyAnswered {
    pub survey_id: SurveyId,
    pub customer_id: CustomerId,
    pub subject: FeedbackSubject,
    pub score: Score,
    pub comment: Option<String>,
    pub at: Timestamp,
}

// ---------------------------------------------------------------- follow-up stream

/// Outreach to a customer is planned.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct FollowUpScheduled {
    pub follow_up_id: FollowUpId,
    pub customer_id: CustomerId,
    pub reason: FollowUpReason,
    pub related: Option<FollowUpRelation>,
    pub due_at: Timestamp,
    pub agent: Option<AgentId>,
    pub team: Option<TeamId>,
    pub note: Option<String>,
    pub at: Timestamp,
}

/// The outreach happened.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct FollowUpCompleted {
    pub follow_up_id: FollowUpId,
    pub outcome: String,
    pub agent: Option<AgentId>,
    pub at: Timestamp,
}

/// The outreach will not happen.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct FollowUpCancelled {
    pub follow_up_id: FollowUpId,
    pub reason: String,
    pub at: Timestamp,
}

// ---------------------------------------------------------------- agent stream

/// An agent became known (name and teams), so rankings can name them.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct AgentRegistered {
    pub agent_id: AgentId,
    pub display_name: String,
    pub teams: Vec<TeamId>,
    pub at: Timestamp,
}

/// A supervisor recognised an agent for exceptional service.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct AgentRecognised {
    pub recognition_id: RecognitionId,
    pub agent_id: AgentId,
    pub by: AgentId,
    pub reason: String,
    pub reward: Reward,
    pub basis: RecognitionBasis,
    pub at: Timestamp,
}

// ---------------------------------------------------------------- the enum

/// The stream an event belongs to, by aggregate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum StreamRef {
    Customer(CustomerId),
    Interaction(InteractionId),
    Case(CaseId),
    Survey(SurveyId),
    FollowUp(FollowUpId),
    Agent(AgentId),
}

impl StreamRef {
    /// The store's stream id, for example `customer-0190…`.
    pub fn stream_id(&self) -> String {
        match self {
            StreamRef::Customer(id) => format!("customer-{id}"),
            StreamRef::Interaction(id) => format!("interaction-{id}"),
            StreamRef::Case(id) => format!("case-{id}"),
            StreamRef::Survey(id) => format!("survey-{id}"),
            StreamRef::FollowUp(id) => format!("followup-{id}"),
            StreamRef::Agent(id) => format!("agent-{id}"),
        }
    }

    /// Parses a stream id made by [`StreamRef::stream_id`].
    pub fn parse(stream_id: &str) -> Option<StreamRef> {
        let (kind, id) = stream_id.split_once('-')?;
        Some(match kind {
            "customer" => StreamRef::Customer(CustomerId::parse(id).ok()?),
            "interaction" => StreamRef::Interaction(InteractionId::parse(id).ok()?),
            "case" => StreamRef::Case(CaseId::parse(id).ok()?),
            "survey" => StreamRef::Survey(SurveyId::parse(id).ok()?),
            "followup" => StreamRef::FollowUp(FollowUpId::parse(id).ok()?),
            "agent" => StreamRef::Agent(AgentId::parse(id).ok()?),
            _ => return None,
        })
    }
}

/// The schema version every event type is written at today.
pub const CURRENT_SCHEMA_VERSION: u16 = 1;

/// Failure to turn a payload back into an event.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError<E: std::error::Error> {
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    #[error("event type `{event_type}` has schema version {found}, this build reads {supported}")]
    UnsupportedVersion {
        event_type: String,
        found: u16,
        supported: u16,
    },
    #[error("payload of `{event_type}` does not decode: {source}")]
    Decode {
        event_type: String,
        #[source]
        source: E,
    },
}

macro_rules! domain_events {
    ($($variant:ident => $stream:ident($field:ident)),+ $(,)?) => {
        /// Every fact sijil records.
        #[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
        pub enum DomainEvent {
            $($variant($variant),)+
        }

        /// The stable type names, one per variant.
        pub const EVENT_TYPES: &[&str] = &[$(stringify!($variant)),+];

        impl DomainEvent {
            /// The stable type name stored in the envelope.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(DomainEvent::$variant(_) => stringify!($variant),)+
                }
            }

            /// The schema version this build writes.
            pub fn schema_version(&self) -> u16 {
                CURRENT_SCHEMA_VERSION
            }

            /// When it happened.
            pub fn occurred_at(&self) -> Timestamp {
                match self {
                    $(DomainEvent::$variant(e) => e.at,)+
                }
            }

            /// The stream it belongs to.
            pub fn stream(&self) -> StreamRef {
                match self {
                    $(DomainEvent::$variant(e) => domain_events!(@stream $variant, e, $stream, $field),)+
                }
            }

            /// Serialises just the payload (the variant's struct) with any serde format.
            pub fn serialize_payload<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(DomainEvent::$variant(e) => e.serialize(serializer),)+
                }
            }

            /// Rebuilds an event from its type name, schema version and payload.
            pub fn deserialize_payload<'de, D: serde::Deserializer<'de>>(
                event_type: &str,
                schema_version: u16,
                deserializer: D,
            ) -> Result<DomainEvent, PayloadError<D::Error>>
            where
                D::Error: std::error::Error,
            {
                if schema_version != CURRENT_SCHEMA_VERSION {
                    return Err(PayloadError::UnsupportedVersion {
                        event_type: event_type.to_owned(),
                        found: schema_version,
                        supported: CURRENT_SCHEMA_VERSION,
                    });
                }
                match event_type {
                    $(stringify!($variant) => $variant::deserialize(deserializer)
                        .map(DomainEvent::$variant)
                        .map_err(|source| PayloadError::Decode { event_type: event_type.to_owned(), source }),)+
                    other => Err(PayloadError::UnknownType(other.to_owned())),
                }
            }
        }

        $(impl From<$variant> for DomainEvent {
            fn from(e: $variant) -> DomainEvent {
                DomainEvent::$variant(e)
            }
        })+
    };
    (@stream NoteAdded, $e:ident, $stream:ident, $field:ident) => {
        match $e.target {
            NoteTarget::Case(id) => StreamRef::Case(id),
            NoteTarget::Interaction(id) => StreamRef::Interaction(id),
        }
    };
    (@stream $variant:ident, $e:ident, $stream:ident, $field:ident) => {
        StreamRef::$stream($e.$field)
    };
}

domain_events! {
    CustomerRegistered => Customer(customer_id),
    CustomerProfileUpdated => Customer(customer_id),
    ContactPointAdded => Customer(customer_id),
    ContactPointRemoved => Customer(customer_id),
    CustomerPreferencesChanged => Customer(customer_id),
    CustomerMerged => Customer(customer_id),
    CustomerForgotten => Customer(customer_id),
    InteractionRecorded => Interaction(interaction_id),
    NoteAdded => Case(customer_id),
    CaseOpened => Case(case_id),
    CaseAssigned => Case(case_id),
    FirstResponseGiven => Case(case_id),
    CaseEscalated => Case(case_id),
    CaseDeescalated => Case(case_id),
    SlaBreached => Case(case_id),
    CaseResolved => Case(case_id),
    CaseReopened => Case(case_id),
    CaseClosed => Case(case_id),
    SurveyAnswered => Survey(survey_id),
    FollowUpScheduled => FollowUp(follow_up_id),
    FollowUpCompleted => FollowUp(follow_up_id),
    FollowUpCancelled => FollowUp(follow_up_id),
    AgentRegistered => Agent(agent_id),
    AgentRecognised => Agent(agent_id),
}
