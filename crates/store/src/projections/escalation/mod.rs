//! Escalation state: one row per case (status, level, assignee, SLA due times and breaches,
//! time spent per level), a per-team work queue ordered by the next unmet due time, and a
//! global index of unmet, unbreached SLA targets for the breach checker.
//!
//! Key layout of the `escalation` tree (`ws` = workspace UUID, ids raw 16-byte UUIDs, `due`
//! in ms offset by 2^63, integers big-endian; `team` is the nil UUID when the case has none):
//!
//! | key                                  | value                                   |
//! |--------------------------------------|-----------------------------------------|
//! | `C ‖ ws ‖ case`                      | MessagePack [`CaseRow`]                 |
//! | `Q ‖ ws ‖ team ‖ due ‖ case`         | level (u8) ‖ breach flags (u8)          |
//! | `W ‖ ws ‖ due ‖ case`                | level (u8) ‖ breach flags (u8)          |
//! | `D ‖ due ‖ case ‖ target (u8)`       | ws (16)                                 |
//!
//! `Q` and `W` hold open cases only, at their next unmet due time (the first-response due
//! time until the target is met, then the resolution due time; both are kept after a breach).
//! `D` holds, across workspaces, each target the domain would still let a breach be recorded
//! for once its due time passes ([`CaseRow::watched_targets`]), so the SLA checker finds what
//! to breach with one range scan. Breach flags: bit 0 first response, bit 1 resolution.
//!
//! Due times follow the case aggregate exactly (the checker's decisions come from it): both
//! count from the opening (a reopened case keeps its resolution due time, so one reopened
//! after that time is breachable at once unless already breached); the first-response target
//! is met by the first response or the first resolution, whichever came first; a late first
//! response keeps that target watched until the breach is recorded. Assignments replace the
//! agent and team; an escalation to a team keeps the agent, as in the aggregate.

mod apply;
mod query;
mod row;

use sijil_domain::DomainEvent;

use super::error::ProjectionError;
use super::overlay::Overlay;
use super::{EventMeta, Projection};

pub use query::{due_before, get, queue, DueTarget, QueueItem, QueuePage, QueueQuery, Urgency};
pub use row::{CaseRow, CaseStatus};

/// Keyspace of case rows.
pub(crate) const CASE: u8 = b'C';
/// Keyspace of per-team queues.
pub(crate) const QUEUE: u8 = b'Q';
/// Keyspace of the workspace-wide queue.
pub(crate) const WORKSPACE_QUEUE: u8 = b'W';
/// Keyspace of unmet, unbreached SLA targets (all workspaces).
pub(crate) const DUE: u8 = b'D';

/// The escalation-state projection.
#[derive(Clone, Copy, Debug, Default)]
pub struct EscalationProjection;

/// The events the escalation state follows: those that change a case, then `NoteAdded`.
const TYPES: &[&str] = &[
    "CaseOpened",
    "CaseAssigned",
    "FirstResponseGiven",
    "CaseEscalated",
    "CaseDeescalated",
    "SlaBreached",
    "CaseResolved",
    "CaseReopened",
    "CaseClosed",
    "NoteAdded",
];

/// The event types that change a case (opened, assigned, first response, escalated,
/// de-escalated, SLA breached, resolved, reopened, closed): [`TYPES`] without its last.
pub const CASE_EVENTS: &[&str] = TYPES.split_at(TYPES.len() - 1).0;

impl Projection for EscalationProjection {
    fn name(&self) -> &'static str {
        "escalation"
    }

    fn version(&self) -> u32 {
        1
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
    #[test]
    fn consumes_only_known_event_types() {
        assert!(super::TYPES
            .iter()
            .all(|t| sijil_domain::events::EVENT_TYPES.contains(t)));
    }

    #[test]
    fn case_events_are_the_case_types_without_notes() {
        assert_eq!(super::CASE_EVENTS.len(), 9);
        assert!(super::CASE_EVENTS
            .iter()
            .all(|t| t.starts_with("Case") || *t == "FirstResponseGiven" || *t == "SlaBreached"));
    }
}
