//! Erasure on the raw-event surface: the log keeps every event as written, but once a customer
//! is forgotten their personal text must not be readable anywhere; ids, times, scores,
//! channels and levels (the facts of service) stay.
//!
//! With a vault (the production setup) payloads are opened through it: personal fields are
//! decrypted with their customer's key, and read `[erased]` once that key is destroyed. A
//! payload that cannot be opened is shown erased, never as ciphertext or a guess. Without a
//! vault (plaintext stores) payloads of events about a forgotten customer (found directly,
//! or through the case or follow-up stream the event belongs to) are masked by field name.

use serde_json::Value;
use sijil_domain as d;
use sijil_store::projections::{decode_event, directory, timeline};
use sijil_store::vault::SEALED_PREFIX;
use sijil_store::{Direction, RecordedEvent};

use crate::context::Shared;

/// What replaces personal text.
pub const ERASED: &str = sijil_domain::personal::ERASED;

/// Payload fields that hold personal data.
const PERSONAL: &[&str] = &[
    "display_name",
    "reference",
    "contact_points",
    "contact_point",
    "summary",
    "text",
    "comment",
    "note",
    "reason",
    "resolution",
    "root_cause",
    "outcome",
    "recording_ref",
    "subject",
];

/// The customer an event is about, if any.
fn customer_of(
    shared: &Shared,
    event: &RecordedEvent,
    domain: &d::DomainEvent,
) -> Option<d::CustomerId> {
    use d::DomainEvent as E;
    match domain {
        E::CustomerRegistered(e) => Some(e.customer_id),
        E::CustomerProfileUpdated(e) => Some(e.customer_id),
        E::ContactPointAdded(e) => Some(e.customer_id),
        E::ContactPointRemoved(e) => Some(e.customer_id),
        E::CustomerPreferencesChanged(e) => Some(e.customer_id),
        E::CustomerMerged(e) => Some(e.customer_id),
        E::CustomerForgotten(e) => Some(e.customer_id),
        E::InteractionRecorded(e) => Some(e.customer_id),
        E::NoteAdded(e) => Some(e.customer_id),
        E::CaseOpened(e) => Some(e.customer_id),
        E::SurveyAnswered(e) => Some(e.customer_id),
        E::FollowUpScheduled(e) => Some(e.customer_id),
        E::AgentRegistered(_) | E::AgentRecognised(_) => None,
        // Later events of a case or follow-up: the stream's first event names the customer.
        _ => {
            let first = shared
                .store
                .read_stream(&event.stream_id, 1, Direction::Forward, 1)
                .ok()?;
            let opened = decode_event(first.first()?).ok()?;
            match opened {
                E::CaseOpened(e) => Some(e.customer_id),
                E::FollowUpScheduled(e) => Some(e.customer_id),
                _ => None,
            }
        }
    }
}

/// Whether `customer` was forgotten (directly, or as one merged into a forgotten survivor).
pub fn forgotten(shared: &Shared, ws: d::WorkspaceId, customer: d::CustomerId) -> bool {
    forgotten_in_read_models(shared, ws, customer)
        || shared
            .bus
            .customer_status(ws.as_uuid(), customer)
            .is_ok_and(|status| status == d::CustomerStatus::Forgotten)
}

/// The vault's and the directory's part of [`forgotten`] (the rest is the customer's own
/// stream, which a caller that just loaded the customer already knows).
fn forgotten_in_read_models(shared: &Shared, ws: d::WorkspaceId, customer: d::CustomerId) -> bool {
    if let Some(vault) = &shared.vault {
        // Fail closed: a vault that cannot say reads as forgotten.
        if vault.is_forgotten(ws, customer).unwrap_or(true) {
            return true;
        }
    }
    shared
        .projections
        .read("directory", |tree| {
            directory::is_forgotten(tree, ws, customer)
        })
        .ok()
        .and_then(Result::ok)
        .flatten()
        .unwrap_or(false)
}

/// Replaces the personal fields of a payload.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if PERSONAL.contains(&key.as_str()) {
                    *field = match field {
                        Value::Null => Value::Null,
                        Value::Array(_) => Value::Array(Vec::new()),
                        _ => Value::String(ERASED.to_owned()),
                    };
                } else {
                    redact(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The payload of `event` as an auditor may read it.
pub fn visible_payload(shared: &Shared, event: &RecordedEvent) -> Value {
    if let Some(vault) = &shared.vault {
        let Ok(mut domain) = decode_event(event) else {
            // Not a payload this build knows: its personal fields (if any) stay sealed.
            return crate::schema::types::payload_json(event);
        };
        if let Err(e) =
            crate::shredding::open_in_place(vault, &shared.store, event, &mut domain, None)
        {
            tracing::warn!(
                position = event.position,
                code = e.code(),
                "personal data of a stored event does not open; shown erased"
            );
            d::personal::erase(&mut domain);
        }
        return domain
            .serialize_payload(serde_json::value::Serializer)
            .unwrap_or(Value::Null);
    }
    let mut value = crate::schema::types::payload_json(event);
    let Ok(domain) = decode_event(event) else {
        return value;
    };
    let Ok(ws) = d::WorkspaceId::new(event.workspace_id) else {
        return value;
    };
    if customer_of(shared, event, &domain).is_some_and(|c| forgotten(shared, ws, c)) {
        redact(&mut value);
    }
    value
}

/// `text`, personal data of kind `field` about `customer`, as a reader may see it:
/// `[erased]` when `customer` was forgotten, opened through the vault when it is sealed (as
/// read models may keep it), and `[erased]` when a sealed text does not open.
pub fn shown(
    ctx: &async_graphql::Context<'_>,
    customer: d::CustomerId,
    field: d::personal::PersonalField,
    text: &str,
) -> async_graphql::Result<String> {
    let shared = crate::context::shared(ctx)?;
    let ws = crate::context::workspace(ctx)?;
    Ok(shown_text(shared, ws, customer, field, text))
}

/// [`shown`] without a request context.
pub fn shown_text(
    shared: &Shared,
    ws: d::WorkspaceId,
    customer: d::CustomerId,
    field: d::personal::PersonalField,
    text: &str,
) -> String {
    Reveal::new(shared, ws).text(customer, field, text)
}

/// Opens the personal text of one answer: whether a customer is forgotten (a vault, a
/// directory and an aggregate lookup) is asked once per customer, however many of their
/// texts the answer shows (a timeline page holds up to a page of them).
pub struct Reveal<'a> {
    shared: &'a Shared,
    ws: d::WorkspaceId,
    known: Vec<(d::CustomerId, bool)>,
}

impl<'a> Reveal<'a> {
    /// Nothing asked yet.
    pub fn new(shared: &'a Shared, ws: d::WorkspaceId) -> Self {
        Reveal {
            shared,
            ws,
            known: Vec::new(),
        }
    }

    /// Takes the forgotten flag of `customer`'s own stream from a caller that just loaded
    /// it (the vault and the directory are still asked), instead of loading it again.
    pub fn knowing(mut self, customer: d::CustomerId, stream_says_forgotten: bool) -> Self {
        let gone =
            stream_says_forgotten || forgotten_in_read_models(self.shared, self.ws, customer);
        self.known.push((customer, gone));
        self
    }

    /// [`forgotten`], asked once per customer.
    fn forgotten(&mut self, customer: d::CustomerId) -> bool {
        if let Some((_, gone)) = self.known.iter().find(|(c, _)| *c == customer) {
            return *gone;
        }
        let gone = forgotten(self.shared, self.ws, customer);
        self.known.push((customer, gone));
        gone
    }

    /// `text`, personal data of kind `field` about `customer`, as a reader may see it:
    /// `[erased]` when `customer` was forgotten, opened through the vault when it is sealed
    /// (as read models may keep it), and `[erased]` when a sealed text does not open.
    pub fn text(
        &mut self,
        customer: d::CustomerId,
        field: d::personal::PersonalField,
        text: &str,
    ) -> String {
        if self.forgotten(customer) {
            return ERASED.to_owned();
        }
        match &self.shared.vault {
            Some(vault) => vault
                .open_text(self.ws, customer, field, text)
                .unwrap_or_else(|e| {
                    tracing::warn!(code = e.code(), "a sealed text does not open; shown erased");
                    ERASED.to_owned()
                }),
            None => text.to_owned(),
        }
    }

    /// A timeline entry of `customer`'s timeline as a reader may see it: a sealed personal
    /// text (the projection keeps it whole) is opened with the key of the customer it came
    /// from and shortened, or shown `[erased]` when that customer is forgotten or it does
    /// not open.
    pub fn entry(
        &mut self,
        customer: d::CustomerId,
        mut entry: timeline::TimelineEntry,
    ) -> timeline::TimelineEntry {
        let Some(at) = entry.summary.find(SEALED_PREFIX) else {
            return entry;
        };
        let owner = entry.origin_customer.unwrap_or(customer);
        let text = match entry_field(entry.kind) {
            Some(field) => self.text(owner, field, &entry.summary[at..]),
            None => ERASED.to_owned(),
        };
        let text = sijil_store::projections::text::shorten(text, SUMMARY_TEXT_CHARS);
        entry.summary.truncate(at);
        entry.summary.push_str(&text);
        entry
    }
}

/// The personal field a timeline entry of `kind` carries as its text, if any.
fn entry_field(kind: timeline::EntryKind) -> Option<d::personal::PersonalField> {
    use d::personal::PersonalField as F;
    use timeline::EntryKind as K;
    Some(match kind {
        K::Registered => F::DisplayName,
        K::Interaction => F::InteractionSummary,
        K::Note => F::NoteText,
        K::CaseOpened => F::CaseSubject,
        K::CaseEscalated => F::EscalationReason,
        K::CaseDeescalated => F::DeescalationReason,
        K::CaseResolved => F::Resolution,
        K::CaseReopened => F::ReopenReason,
        K::SurveyAnswered => F::SurveyComment,
        K::FollowUpScheduled => F::FollowUpNote,
        K::FollowUpCompleted => F::FollowUpOutcome,
        K::FollowUpCancelled => F::FollowUpCancelReason,
        K::Merged
        | K::Forgotten
        | K::CaseAssigned
        | K::FirstResponse
        | K::SlaBreached
        | K::CaseClosed
        | K::Recognition => return None,
    })
}

/// Longest personal text shown in a timeline summary, in characters (as the projection
/// shortens plaintext).
const SUMMARY_TEXT_CHARS: usize = 160;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_facts_and_erases_text() {
        let mut v = serde_json::json!({
            "customer_id": "0190",
            "display_name": "Amina",
            "contact_points": [{ "kind": "Email", "value": "a@b.c" }],
            "summary": "called",
            "score": { "Csat": 5 },
            "recording_ref": null,
            "at": 5
        });
        redact(&mut v);
        assert_eq!(v["customer_id"], "0190");
        assert_eq!(v["display_name"], ERASED);
        assert_eq!(v["contact_points"], serde_json::json!([]));
        assert_eq!(v["summary"], ERASED);
        assert_eq!(v["score"]["Csat"], 5);
        assert_eq!(v["recording_ref"], Value::Null);
        assert_eq!(v["at"], 5);
    }
}
