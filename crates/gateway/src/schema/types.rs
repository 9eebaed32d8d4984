//! GraphQL mirrors of the domain's value types (enums, contact points, SLA policy), shared
//! output types (page info, the raw event envelope) and id parsing that turns a malformed id
//! into a VALIDATION error.

use async_graphql::{Enum, ErrorExtensions, InputObject, Json, Object, SimpleObject, ID};
use sijil_domain as d;
use sijil_store::projections::decode_event;
use sijil_store::RecordedEvent;

use crate::error::ApiError;
use crate::time::DateTime;

macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident as $gql:literal = $remote:literal { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, serde::Serialize)]
        #[graphql(name = $gql, remote = $remote)]
        pub enum $name {
            $($variant),+
        }
    };
}

mirror_enum!(
    /// A channel a customer reaches the business on.
    Channel as "Channel" = "sijil_domain::Channel" {
        Phone, Email, LiveChat, Social, Messaging, InPerson, Ivr, MobileApp, SelfService, Chatbot
    }
);
mirror_enum!(
    /// Who started a contact.
    Direction as "Direction" = "sijil_domain::Direction" { Inbound, Outbound }
);
mirror_enum!(
    /// The kind of a contact point.
    ContactKind as "ContactKind" = "sijil_domain::ContactKind" { Email, Phone, Social, Messaging }
);
mirror_enum!(
    /// Case priority.
    Priority as "Priority" = "sijil_domain::Priority" { Low, Normal, High, Urgent }
);
mirror_enum!(
    /// An SLA target.
    SlaTarget as "SlaTarget" = "sijil_domain::SlaTarget" { FirstResponse, Resolution }
);
mirror_enum!(
    /// Why a follow-up is scheduled.
    FollowUpReason as "FollowUpReason" = "sijil_domain::FollowUpReason" {
        DetractorFollowUp, CheckAfterFix, ProactiveOutreach, Other
    }
);
mirror_enum!(
    /// A metric a recognition can be tied to.
    MetricKind as "MetricKind" = "sijil_domain::MetricKind" {
        Csat, Nps, Ces, FirstContactResolution, FirstResponseTime, ResolutionTime
    }
);
mirror_enum!(
    /// Where a case is in its lifecycle.
    CaseStatus as "CaseStatus" = "sijil_domain::case::CaseStatus" { Open, Resolved, Closed }
);
mirror_enum!(
    /// Where a follow-up is in its lifecycle.
    FollowUpStatus as "FollowUpStatus" = "sijil_domain::follow_up::FollowUpStatus" {
        Pending, Completed, Cancelled
    }
);
mirror_enum!(
    /// What a timeline entry records.
    EntryKind as "TimelineEntryKind" = "sijil_store::projections::timeline::EntryKind" {
        Registered, Merged, Forgotten, Interaction, Note, CaseOpened, CaseAssigned, FirstResponse,
        CaseEscalated, CaseDeescalated, SlaBreached, CaseResolved, CaseReopened, CaseClosed,
        SurveyAnswered, FollowUpScheduled, FollowUpCompleted, FollowUpCancelled, Recognition
    }
);

/// One way to reach a customer.
#[derive(SimpleObject, Clone, Debug)]
pub struct ContactPoint {
    pub kind: ContactKind,
    /// Normalised (emails lower-cased, phone numbers `+` and digits).
    pub value: String,
}

impl From<&d::ContactPoint> for ContactPoint {
    fn from(p: &d::ContactPoint) -> ContactPoint {
        ContactPoint {
            kind: p.kind.into(),
            value: p.value.clone(),
        }
    }
}

/// A contact point as given by a client.
#[derive(InputObject, Clone, Debug, serde::Serialize)]
pub struct ContactPointInput {
    pub kind: ContactKind,
    pub value: String,
}

impl From<&ContactPointInput> for d::ContactPoint {
    fn from(p: &ContactPointInput) -> d::ContactPoint {
        d::ContactPoint {
            kind: p.kind.into(),
            value: p.value.clone(),
        }
    }
}

/// Relay page information.
#[derive(SimpleObject, Clone, Debug, Default)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// Parses a client-given id of kind `T`, refusing malformed ones with VALIDATION/INVALID_ID.
pub fn parse_id<T>(
    id: &ID,
    parse: impl Fn(&str) -> Result<T, d::DomainError>,
    field: &str,
) -> async_graphql::Result<T> {
    parse(id.as_str()).map_err(|e| {
        ApiError::Validation {
            message: e.to_string(),
            reason: "INVALID_ID",
            field: Some(field.to_owned()),
        }
        .extend()
    })
}

/// Parses an optional id.
pub fn parse_opt_id<T>(
    id: Option<&ID>,
    parse: impl Fn(&str) -> Result<T, d::DomainError>,
    field: &str,
) -> async_graphql::Result<Option<T>> {
    id.map(|id| parse_id(id, parse, field)).transpose()
}

/// A stored event with its whole envelope, for auditors, and its position local to the
/// caller's workspace (the global log position is never shown).
pub struct Event {
    pub event: RecordedEvent,
    /// Position within the workspace (1-based, gap-free).
    pub local_position: u64,
}

/// The payload of a stored event as JSON: decoded into the domain event when this build knows
/// it (ids as text), otherwise the raw MessagePack value.
pub fn payload_json(event: &RecordedEvent) -> serde_json::Value {
    if let Ok(domain) = decode_event(event) {
        if let Ok(value) = domain.serialize_payload(serde_json::value::Serializer) {
            return value;
        }
    }
    rmp_serde::from_slice::<serde_json::Value>(&event.payload).unwrap_or(serde_json::Value::Null)
}

/// A stored event: envelope, hashes and payload.
#[Object]
impl Event {
    /// Position within the caller's workspace: its events are numbered 1, 2, 3, ... in log
    /// order with no gaps (what `allEvents(fromPosition)`, `eventAppended(fromPosition)` and
    /// `customerAsOf(position)` take).
    async fn position(&self) -> u64 {
        self.local_position
    }
    async fn stream_id(&self) -> &str {
        &self.event.stream_id
    }
    /// Version within the stream, from 1.
    async fn version(&self) -> u64 {
        self.event.version
    }
    async fn event_id(&self) -> ID {
        ID(self.event.event_id.to_string())
    }
    async fn event_type(&self) -> &str {
        &self.event.event_type
    }
    async fn schema_version(&self) -> u16 {
        self.event.schema_version
    }
    /// When it happened (the writer's clock).
    async fn occurred_at(&self) -> DateTime {
        DateTime(d::Timestamp(self.event.occurred_at))
    }
    /// When the store recorded it.
    async fn recorded_at(&self) -> DateTime {
        DateTime(d::Timestamp(self.event.recorded_at))
    }
    /// Who caused it, e.g. `token:<id>`.
    async fn actor(&self) -> &str {
        &self.event.actor
    }
    async fn on_behalf_of(&self) -> Option<&str> {
        self.event.on_behalf_of.as_deref()
    }
    async fn correlation_id(&self) -> Option<ID> {
        self.event.correlation_id.map(|u| ID(u.to_string()))
    }
    async fn causation_id(&self) -> Option<ID> {
        self.event.causation_id.map(|u| ID(u.to_string()))
    }
    /// Hex SHA-256 of the previous event of the stream (zeros for version 1).
    async fn prev_hash(&self) -> String {
        hex::encode(self.event.prev_hash)
    }
    /// Hex SHA-256 chaining this event to the previous one.
    async fn hash(&self) -> String {
        hex::encode(self.event.hash)
    }
    /// The payload as JSON; personal fields read `[erased]` once the customer it concerns
    /// is forgotten.
    async fn payload(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<Json<serde_json::Value>> {
        let shared = crate::context::shared(ctx)?;
        Ok(Json(crate::schema::erasure::visible_payload(
            shared,
            &self.event,
        )))
    }
}
