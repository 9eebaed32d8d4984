//! Owns the metric cell ([`Cells`], additive sums and counts of one scope on one day), the
//! [`Scope`] a cell belongs to and its key encoding, UTC day arithmetic, and the attribution
//! memos the projection keeps for cases and interactions.

use serde::{Deserialize, Serialize};
use sijil_domain::{AgentId, Channel, TeamId, Timestamp, WorkspaceId};
use uuid::Uuid;

use super::super::keys::Key;
use super::{CELL, RESOLUTION_TIME};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC day (days since 1970-01-01) `at` falls in.
pub fn day_of(at: Timestamp) -> i64 {
    at.millis().div_euclid(DAY_MS)
}

/// The first instant of UTC day `day`.
pub fn day_start(day: i64) -> Timestamp {
    Timestamp(day.saturating_mul(DAY_MS))
}

/// What a metric figure is about.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Scope {
    /// The whole workspace.
    Workspace,
    Agent(AgentId),
    Team(TeamId),
    Channel(Channel),
}

impl Scope {
    /// The kind byte of keys.
    pub(crate) fn kind(self) -> u8 {
        match self {
            Scope::Workspace => 0,
            Scope::Agent(_) => 1,
            Scope::Team(_) => 2,
            Scope::Channel(_) => 3,
        }
    }

    /// The 16-byte id of keys.
    pub(crate) fn id(self) -> Uuid {
        match self {
            Scope::Workspace => Uuid::nil(),
            Scope::Agent(id) => id.as_uuid(),
            Scope::Team(id) => id.as_uuid(),
            Scope::Channel(channel) => Uuid::from_u128(u128::from(channel.code())),
        }
    }

    /// `prefix ‖ ws ‖ kind ‖ id`, the start of this scope's keys in keyspace `prefix`.
    pub(crate) fn key(self, prefix: u8, ws: WorkspaceId) -> Key {
        Key::new(prefix)
            .uuid(ws.as_uuid())
            .u8(self.kind())
            .uuid(self.id())
    }

    /// The key of this scope's cell on `day`.
    pub(crate) fn cell_key(self, ws: WorkspaceId, day: i64) -> Vec<u8> {
        self.key(CELL, ws).i64(day).build()
    }

    /// The key of this scope's resolution times on `day`.
    pub(crate) fn resolution_key(self, ws: WorkspaceId, day: i64) -> Vec<u8> {
        self.key(RESOLUTION_TIME, ws).i64(day).build()
    }
}

/// Additive figures of one scope on one day (or, summed, over a period). Every field is an
/// exact integer, so sums over any set of days are exact and averages are computed once.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Cells {
    /// CSAT answers, the sum of their scores, and how many were 4 or 5.
    pub csat_count: u64,
    pub csat_sum: u64,
    pub csat_satisfied: u64,
    /// NPS answers by group.
    pub nps_promoters: u64,
    pub nps_passives: u64,
    pub nps_detractors: u64,
    /// CES answers and the sum of their scores.
    pub ces_count: u64,
    pub ces_sum: u64,
    /// Cases opened (workspace, channel) or first assigned (agent, team).
    pub opened: u64,
    /// Cases escalated for the first time.
    pub escalated: u64,
    /// First responses and the sum of their times since opening, in ms.
    pub first_responses: u64,
    pub first_response_ms: i64,
    /// Resolutions and the sum of their times since opening, in ms.
    pub resolved: u64,
    pub resolution_ms: i64,
    /// Resolutions flagged first-contact resolution that still hold.
    pub resolved_fcr: u64,
    pub reopened: u64,
    /// Recognitions received and the points they carried.
    pub recognitions: u64,
    pub recognition_points: u64,
}

impl Cells {
    /// Adds `other` into `self` (saturating).
    pub fn add(&mut self, other: &Cells) {
        self.csat_count = self.csat_count.saturating_add(other.csat_count);
        self.csat_sum = self.csat_sum.saturating_add(other.csat_sum);
        self.csat_satisfied = self.csat_satisfied.saturating_add(other.csat_satisfied);
        self.nps_promoters = self.nps_promoters.saturating_add(other.nps_promoters);
        self.nps_passives = self.nps_passives.saturating_add(other.nps_passives);
        self.nps_detractors = self.nps_detractors.saturating_add(other.nps_detractors);
        self.ces_count = self.ces_count.saturating_add(other.ces_count);
        self.ces_sum = self.ces_sum.saturating_add(other.ces_sum);
        self.opened = self.opened.saturating_add(other.opened);
        self.escalated = self.escalated.saturating_add(other.escalated);
        self.first_responses = self.first_responses.saturating_add(other.first_responses);
        self.first_response_ms = self
            .first_response_ms
            .saturating_add(other.first_response_ms);
        self.resolved = self.resolved.saturating_add(other.resolved);
        self.resolution_ms = self.resolution_ms.saturating_add(other.resolution_ms);
        self.resolved_fcr = self.resolved_fcr.saturating_add(other.resolved_fcr);
        self.reopened = self.reopened.saturating_add(other.reopened);
        self.recognitions = self.recognitions.saturating_add(other.recognitions);
        self.recognition_points = self
            .recognition_points
            .saturating_add(other.recognition_points);
    }

    /// Whether every figure is zero.
    pub fn is_empty(&self) -> bool {
        *self == Cells::default()
    }

    /// All NPS answers.
    pub fn nps_count(&self) -> u64 {
        self.nps_promoters
            .saturating_add(self.nps_passives)
            .saturating_add(self.nps_detractors)
    }
}

/// Where a first-contact resolution was counted, so it can be taken back.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) struct FcrMark {
    pub resolved_at: Timestamp,
    pub day: i64,
    pub agent: Option<AgentId>,
    pub team: Option<TeamId>,
}

/// What the projection remembers about a case.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) struct CaseMemo {
    pub opened_at: Timestamp,
    pub channel: Channel,
    pub agent: Option<AgentId>,
    pub team: Option<TeamId>,
    pub escalated: bool,
    pub responded: bool,
    /// Agents and teams the case was ever assigned to (their `opened` was counted).
    pub received_agents: Vec<AgentId>,
    pub received_teams: Vec<TeamId>,
    /// The standing first-contact resolution, if any.
    pub fcr: Option<FcrMark>,
}

/// What the projection remembers about an interaction.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) struct InteractionMemo {
    pub agent: Option<AgentId>,
    pub channel: Channel,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_scopes_round_trip() {
        assert_eq!(day_of(Timestamp(0)), 0);
        assert_eq!(day_of(Timestamp(DAY_MS - 1)), 0);
        assert_eq!(day_of(Timestamp(DAY_MS)), 1);
        assert_eq!(day_of(Timestamp(-1)), -1);
        assert_eq!(day_start(3), Timestamp(3 * DAY_MS));
        let ids: std::collections::BTreeSet<Uuid> = Channel::ALL
            .iter()
            .map(|c| Scope::Channel(*c).id())
            .collect();
        assert_eq!(ids.len(), Channel::ALL.len());
        assert_eq!(Scope::Workspace.id(), Uuid::nil());
    }
}
