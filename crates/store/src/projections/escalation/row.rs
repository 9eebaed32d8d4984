//! Owns [`CaseRow`], the escalation state of one case, with the derived due times the indexes
//! are built from.

use serde::{Deserialize, Serialize};
use sijil_domain::{
    AgentId, CaseId, Channel, CustomerId, Priority, SlaPolicy, SlaTarget, TeamId, Timestamp,
    WorkspaceId,
};

/// Where a case is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum CaseStatus {
    Open,
    Resolved,
    Closed,
}

/// The escalation state of one case.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CaseRow {
    pub workspace: WorkspaceId,
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    pub subject: String,
    pub category: String,
    pub status: CaseStatus,
    pub priority: Priority,
    pub channel: Channel,
    /// Current level (tier), from 1.
    pub level: u8,
    /// The workspace's top level when the case opened.
    pub top_level: u8,
    pub agent: Option<AgentId>,
    pub team: Option<TeamId>,
    pub sla: SlaPolicy,
    pub opened_at: Timestamp,
    pub first_response_due: Timestamp,
    /// Resolution due time: opening + the policy's resolution minutes (kept across reopens,
    /// as the domain's breach rule counts from the opening).
    pub resolution_due: Timestamp,
    pub first_response_at: Option<Timestamp>,
    /// The first resolution (kept across reopens; it also meets the first-response target).
    pub first_resolved_at: Option<Timestamp>,
    /// The last resolution, `None` while open.
    pub resolved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub breached_first_response: bool,
    pub breached_resolution: bool,
    /// Completed time at each level, in ms, sorted by level. The running stint is
    /// `now - level_since`.
    pub time_at_level: Vec<(u8, i64)>,
    /// When the current level started; `None` while resolved or closed.
    pub level_since: Option<Timestamp>,
    pub escalation_count: u32,
    pub reopen_count: u32,
    pub last_event_at: Timestamp,
    /// The case stream's version after the last event applied (for optimistic concurrency).
    pub version: u64,
}

impl CaseRow {
    /// When the first-response target was met: the first response, or the first resolution
    /// if that came earlier (the domain's rule).
    pub fn first_response_met_at(&self) -> Option<Timestamp> {
        match (self.first_response_at, self.first_resolved_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the first-response target is met (in time or late).
    pub fn first_response_met(&self) -> bool {
        self.first_response_met_at().is_some()
    }

    /// The due time of a target.
    pub fn due(&self, target: SlaTarget) -> Timestamp {
        match target {
            SlaTarget::FirstResponse => self.first_response_due,
            SlaTarget::Resolution => self.resolution_due,
        }
    }

    /// Whether a target was recorded as breached.
    pub fn is_breached(&self, target: SlaTarget) -> bool {
        match target {
            SlaTarget::FirstResponse => self.breached_first_response,
            SlaTarget::Resolution => self.breached_resolution,
        }
    }

    /// The next unmet target of an open case and its due time (the queue position): the
    /// first-response due time until the target is met, then the resolution due time.
    pub fn next_due(&self) -> Option<(SlaTarget, Timestamp)> {
        if self.status != CaseStatus::Open {
            return None;
        }
        if self.first_response_met() {
            Some((SlaTarget::Resolution, self.resolution_due))
        } else {
            Some((SlaTarget::FirstResponse, self.first_response_due))
        }
    }

    /// Targets a breach may still be recorded for once their due time passes (what the breach
    /// checker watches), mirroring the domain's rule: never on a closed case nor twice per
    /// target; first response unless met by its due time (a late response still leaves it
    /// breachable); resolution only while the case is open.
    pub fn watched_targets(&self) -> Vec<(SlaTarget, Timestamp)> {
        let mut out = Vec::with_capacity(2);
        if self.status == CaseStatus::Closed {
            return out;
        }
        let fr_due = self.first_response_due;
        let fr_in_time = self
            .first_response_met_at()
            .is_some_and(|met| met <= fr_due);
        if !self.breached_first_response && !fr_in_time {
            out.push((SlaTarget::FirstResponse, fr_due));
        }
        if self.status == CaseStatus::Open && !self.breached_resolution {
            out.push((SlaTarget::Resolution, self.resolution_due));
        }
        out
    }

    /// Bit 0: first response breached; bit 1: resolution breached.
    pub(crate) fn breach_flags(&self) -> u8 {
        u8::from(self.breached_first_response) | (u8::from(self.breached_resolution) << 1)
    }

    /// Adds the running stint at the current level up to `at`, and stops the clock.
    pub(crate) fn close_stint(&mut self, at: Timestamp) {
        if let Some(since) = self.level_since.take() {
            let spent = at.millis_since(since).max(0);
            match self
                .time_at_level
                .iter_mut()
                .find(|(level, _)| *level == self.level)
            {
                Some((_, total)) => *total = total.saturating_add(spent),
                None => {
                    self.time_at_level.push((self.level, spent));
                    self.time_at_level.sort_by_key(|(level, _)| *level);
                }
            }
        }
    }
}
