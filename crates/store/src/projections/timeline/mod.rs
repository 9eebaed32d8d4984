//! The customer timeline: per customer, every interaction, note, case event, survey answer,
//! follow-up and case recognition, plus registration, merge and erasure markers, in
//! occurrence order (occurred_at, then log position).
//!
//! Key layout of the `timeline` tree (`ws` = workspace UUID, ids are raw 16-byte UUIDs, `at`
//! is the occurrence time in ms offset by 2^63, all integers big-endian):
//!
//! | key                                   | value                                          |
//! |---------------------------------------|------------------------------------------------|
//! | `E ‖ ws ‖ customer ‖ at ‖ position`   | a block of entries from this one on (see [`block`]); each entry: kind (u8) ‖ channel code or 0xff ‖ MessagePack entry |
//! | `N ‖ ws ‖ customer`                   | entry count (u64)                              |
//! | `K ‖ ws ‖ case`                       | the case's customer (16)                       |
//! | `F ‖ ws ‖ follow-up`                  | the follow-up's customer (16)                  |
//! | `R ‖ ws ‖ customer`                   | customer it was merged into (16)               |
//! | `M ‖ ws ‖ survivor ‖ merged`          | empty (reverse of `R`)                         |
//! | `X ‖ ws ‖ customer`                   | empty: the customer was forgotten              |
//! | `A ‖ ws ‖ agent`                      | agent display name (UTF-8), for summaries      |
//!
//! Merges: when B merges into A, B's entries are copied into the key range of A's survivor
//! (same ordering keys, `origin_customer` = B unless already set) and `R` records B → A;
//! later events concerning B land in the survivor's range (chains are followed). B's own range
//! keeps B's history up to the merge. Erasure (`CustomerForgotten`): every entry of the
//! customer and of customers merged into them has its personal text replaced by `[erased]`
//! (the fixed part of the summary, kind, time, channel and references stay), as do entries
//! that came from them in survivors' ranges; later entries about them arrive erased.

mod apply;
mod block;
mod query;

use serde::{Deserialize, Serialize};
use sijil_domain::{
    AgentId, CaseId, Channel, CustomerId, DomainEvent, FollowUpId, InteractionId, SurveyId,
    Timestamp,
};

use super::error::ProjectionError;
use super::overlay::Overlay;
use super::{EventMeta, Projection};

pub use query::{count, cursor_at, page, survivor, TimelinePage, TimelineQuery};

/// Keyspace of entries.
pub(crate) const ENTRY: u8 = b'E';
/// Keyspace of per-customer entry counts.
pub(crate) const COUNT: u8 = b'N';
/// Keyspace of case → customer.
pub(crate) const CASE: u8 = b'K';
/// Keyspace of follow-up → customer.
pub(crate) const FOLLOW_UP: u8 = b'F';
/// Keyspace of merge redirects.
pub(crate) const REDIRECT: u8 = b'R';
/// Keyspace of merged customers by survivor.
pub(crate) const MERGED: u8 = b'M';
/// Keyspace of forgotten customers.
pub(crate) const FORGOTTEN: u8 = b'X';
/// Keyspace of agent names.
pub(crate) const AGENT: u8 = b'A';

/// What replaces personal text after erasure.
pub const ERASED: &str = "[erased]";

/// The kind of a timeline entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum EntryKind {
    Registered,
    Merged,
    Forgotten,
    Interaction,
    Note,
    CaseOpened,
    CaseAssigned,
    FirstResponse,
    CaseEscalated,
    CaseDeescalated,
    SlaBreached,
    CaseResolved,
    CaseReopened,
    CaseClosed,
    SurveyAnswered,
    FollowUpScheduled,
    FollowUpCompleted,
    FollowUpCancelled,
    Recognition,
}

impl EntryKind {
    /// Every kind, in code order.
    pub const ALL: [EntryKind; 19] = [
        EntryKind::Registered,
        EntryKind::Merged,
        EntryKind::Forgotten,
        EntryKind::Interaction,
        EntryKind::Note,
        EntryKind::CaseOpened,
        EntryKind::CaseAssigned,
        EntryKind::FirstResponse,
        EntryKind::CaseEscalated,
        EntryKind::CaseDeescalated,
        EntryKind::SlaBreached,
        EntryKind::CaseResolved,
        EntryKind::CaseReopened,
        EntryKind::CaseClosed,
        EntryKind::SurveyAnswered,
        EntryKind::FollowUpScheduled,
        EntryKind::FollowUpCompleted,
        EntryKind::FollowUpCancelled,
        EntryKind::Recognition,
    ];

    /// A stable one-byte code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind for a code made by [`EntryKind::code`].
    pub fn from_code(code: u8) -> Option<EntryKind> {
        EntryKind::ALL.get(usize::from(code)).copied()
    }
}

/// One entry of a customer's timeline.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TimelineEntry {
    /// Log position of the event.
    pub position: u64,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub kind: EntryKind,
    /// The channel it happened on, for interactions, case openings and first responses.
    pub channel: Option<Channel>,
    /// Who recorded it (the envelope's actor).
    pub actor: String,
    /// A short human summary, e.g. `Escalated to level 2: billing dispute`.
    pub summary: String,
    pub case_id: Option<CaseId>,
    pub interaction_id: Option<InteractionId>,
    pub survey_id: Option<SurveyId>,
    pub follow_up_id: Option<FollowUpId>,
    /// The agent concerned (handler, assignee, responder, resolver, recognised agent, ...).
    pub agent_id: Option<AgentId>,
    /// Set when the entry came from a customer merged into this one.
    pub origin_customer: Option<CustomerId>,
}

impl TimelineEntry {
    /// The paging cursor of this entry ([`query::cursor_at`] its time and position).
    pub fn cursor(&self) -> String {
        query::cursor_at(self.at, self.position)
    }
}

/// The stored form of an entry (time and position are in the key, kind and channel in the
/// value's first two bytes).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) struct StoredEntry {
    pub actor: String,
    /// The non-personal part of the summary.
    pub fixed: String,
    /// Personal free text (interaction summary, note, comment, reason, ...), erasable.
    pub text: Option<String>,
    pub case_id: Option<CaseId>,
    pub interaction_id: Option<InteractionId>,
    pub survey_id: Option<SurveyId>,
    pub follow_up_id: Option<FollowUpId>,
    pub agent_id: Option<AgentId>,
    pub origin_customer: Option<CustomerId>,
}

impl StoredEntry {
    /// The summary shown to readers, made in `fixed`'s buffer (every entry of every page
    /// makes one).
    pub fn take_summary(&mut self) -> String {
        let mut summary = std::mem::take(&mut self.fixed);
        if let Some(text) = self.text.take().filter(|t| !t.is_empty()) {
            summary.reserve(2 + text.len());
            summary.push_str(": ");
            summary.push_str(&text);
        }
        summary
    }
}

/// Channel byte meaning "no channel".
pub(crate) const NO_CHANNEL: u8 = 0xff;

/// Encodes an entry value.
pub(crate) fn encode_entry(
    kind: EntryKind,
    channel: Option<Channel>,
    entry: &StoredEntry,
) -> Result<Vec<u8>, ProjectionError> {
    let mut out = vec![kind.code(), channel.map_or(NO_CHANNEL, Channel::code)];
    out.extend_from_slice(&super::rows::encode(entry)?);
    Ok(out)
}

/// Decodes an entry value.
pub(crate) fn decode_entry(
    bytes: &[u8],
) -> Result<(EntryKind, Option<Channel>, StoredEntry), ProjectionError> {
    let (kind, channel) = header(bytes)?;
    let entry = super::rows::decode(&bytes[2..], "timeline entry")?;
    Ok((kind, channel, entry))
}

/// Decodes just the kind and channel of an entry value.
pub(crate) fn header(bytes: &[u8]) -> Result<(EntryKind, Option<Channel>), ProjectionError> {
    if bytes.len() < 2 {
        return Err(ProjectionError::corrupt(
            "timeline entry is shorter than its header",
        ));
    }
    let kind = EntryKind::from_code(bytes[0]).ok_or_else(|| {
        ProjectionError::corrupt(format!("unknown timeline entry kind {}", bytes[0]))
    })?;
    let channel = match bytes[1] {
        NO_CHANNEL => None,
        code => Some(
            Channel::from_code(code)
                .ok_or_else(|| ProjectionError::corrupt(format!("unknown channel code {code}")))?,
        ),
    };
    Ok((kind, channel))
}

/// The customer timeline projection.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimelineProjection;

const TYPES: &[&str] = &[
    "CustomerRegistered",
    "CustomerMerged",
    "CustomerForgotten",
    "InteractionRecorded",
    "NoteAdded",
    "CaseOpened",
    "CaseAssigned",
    "FirstResponseGiven",
    "CaseEscalated",
    "CaseDeescalated",
    "SlaBreached",
    "CaseResolved",
    "CaseReopened",
    "CaseClosed",
    "SurveyAnswered",
    "FollowUpScheduled",
    "FollowUpCompleted",
    "FollowUpCancelled",
    "AgentRegistered",
    "AgentRecognised",
];

impl Projection for TimelineProjection {
    fn name(&self) -> &'static str {
        "timeline"
    }

    /// 2: entries stored in blocks instead of a row each.
    fn version(&self) -> u32 {
        2
    }

    fn event_types(&self) -> &'static [&'static str] {
        TYPES
    }

    fn apply(
        &self,
        ov: &mut Overlay<'_>,
        meta: &EventMeta<'_>,
        event: &DomainEvent,
    ) -> Result<(), ProjectionError> {
        apply::apply(ov, meta, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumes_only_known_event_types() {
        assert!(TYPES
            .iter()
            .all(|t| sijil_domain::events::EVENT_TYPES.contains(t)));
        for kind in EntryKind::ALL {
            assert_eq!(EntryKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(EntryKind::from_code(200), None);
    }
}
