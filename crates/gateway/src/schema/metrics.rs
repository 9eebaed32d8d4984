//! Service metrics over the metrics projection: `metrics(scope, id, from, to)` for the
//! workspace, an agent, a team or a channel, and the agent `leaderboard`. Periods are whole
//! UTC days: `from` and `to` must be UTC midnights.

use async_graphql::{Context, Enum, ErrorExtensions, Object, SimpleObject, ID};
use sijil_domain as d;
use sijil_store::projections::metrics::{self, MetricsReport, Scope};

use crate::auth::Permission;
use crate::context::{page_size, projection_error, shared, workspace, Need};
use crate::error::ApiError;
use crate::schema::types::parse_id;
use crate::time::DateTime;

/// What a metrics report is about.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MetricsScope {
    Workspace,
    /// `id` is the agent's id.
    Agent,
    /// `id` is the team's id.
    Team,
    /// `id` is a channel name such as `PHONE` or `live_chat`.
    Channel,
}

/// Service figures over a period.
#[derive(SimpleObject)]
pub struct Metrics {
    /// Average CSAT score (1–5).
    pub csat_average: Option<f64>,
    /// Share of CSAT answers that were 4 or 5, in percent.
    pub csat_satisfied_pct: Option<f64>,
    pub csat_count: u64,
    /// Net promoter score (−100 to 100).
    pub nps: Option<f64>,
    pub nps_promoters: u64,
    pub nps_passives: u64,
    pub nps_detractors: u64,
    pub nps_count: u64,
    /// Average customer effort score (1–7, 7 = very easy).
    pub ces_average: Option<f64>,
    pub ces_count: u64,
    /// First-contact resolution rate, in percent of resolutions.
    pub fcr_pct: Option<f64>,
    /// Average time from opening to first response, in milliseconds.
    pub first_response_avg_ms: Option<f64>,
    pub first_responses: u64,
    /// Average time from opening to resolution, in milliseconds.
    pub resolution_avg_ms: Option<f64>,
    pub resolution_median_ms: Option<f64>,
    pub cases_opened: u64,
    pub cases_resolved: u64,
    pub cases_reopened: u64,
    pub cases_escalated: u64,
    pub escalation_rate_pct: Option<f64>,
    pub recognitions: u64,
    pub recognition_points: u64,
}

impl From<MetricsReport> for Metrics {
    fn from(r: MetricsReport) -> Metrics {
        let t = &r.totals;
        Metrics {
            csat_average: r.csat_average,
            csat_satisfied_pct: r.csat_satisfied_pct,
            csat_count: t.csat_count,
            nps: r.nps,
            nps_promoters: r.nps_promoters,
            nps_passives: r.nps_passives,
            nps_detractors: r.nps_detractors,
            nps_count: r.nps_promoters + r.nps_passives + r.nps_detractors,
            ces_average: r.ces_average,
            ces_count: t.ces_count,
            fcr_pct: r.fcr_pct,
            first_response_avg_ms: r.first_response_avg_ms,
            first_responses: t.first_responses,
            resolution_avg_ms: r.resolution_avg_ms,
            resolution_median_ms: r.resolution_median_ms,
            cases_opened: r.cases_opened,
            cases_resolved: r.cases_resolved,
            cases_reopened: r.cases_reopened,
            cases_escalated: r.cases_escalated,
            escalation_rate_pct: r.escalation_rate_pct,
            recognitions: r.recognitions,
            recognition_points: r.recognition_points,
        }
    }
}

/// One agent on the leaderboard.
#[derive(SimpleObject)]
pub struct LeaderboardEntry {
    /// 1 for the best; equal scores share a rank.
    pub rank: u32,
    pub agent_id: ID,
    pub name: Option<String>,
    /// 0–100.
    pub score: f64,
    pub metrics: Metrics,
}

fn channel_named(text: &str) -> Option<d::Channel> {
    let wanted: String = text.chars().filter(|c| *c != '_').collect();
    d::Channel::ALL
        .into_iter()
        .find(|c| c.as_str().replace('_', "").eq_ignore_ascii_case(&wanted))
}

fn scope_of(scope: MetricsScope, id: Option<&ID>) -> async_graphql::Result<Scope> {
    let need_id = || {
        ApiError::Validation {
            message: "this scope needs an `id`".to_owned(),
            reason: "MISSING_ID",
            field: Some("id".to_owned()),
        }
        .extend()
    };
    Ok(match scope {
        MetricsScope::Workspace => Scope::Workspace,
        MetricsScope::Agent => {
            Scope::Agent(parse_id(id.ok_or_else(need_id)?, d::AgentId::parse, "id")?)
        }
        MetricsScope::Team => {
            Scope::Team(parse_id(id.ok_or_else(need_id)?, d::TeamId::parse, "id")?)
        }
        MetricsScope::Channel => {
            let id = id.ok_or_else(need_id)?;
            Scope::Channel(channel_named(id.as_str()).ok_or_else(|| {
                ApiError::Validation {
                    message: format!(
                        "`{}` is not a channel",
                        id.as_str().chars().take(40).collect::<String>()
                    ),
                    reason: "INVALID_CHANNEL",
                    field: Some("id".to_owned()),
                }
                .extend()
            })?)
        }
    })
}

fn period(from: DateTime, to: DateTime) -> async_graphql::Result<()> {
    if from.0 >= to.0 {
        return Err(ApiError::validation("`from` must be before `to`", "INVALID_PERIOD").extend());
    }
    Ok(())
}

/// Metrics queries.
#[derive(Default)]
pub struct MetricsQuery;

#[Object]
impl MetricsQuery {
    /// Figures of one scope over `[from, to)` (UTC midnights).
    #[graphql(guard = "Need(Permission::ReadMetrics)")]
    async fn metrics(
        &self,
        ctx: &Context<'_>,
        scope: MetricsScope,
        id: Option<ID>,
        from: DateTime,
        to: DateTime,
    ) -> async_graphql::Result<Metrics> {
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        let scope = scope_of(scope, id.as_ref())?;
        period(from, to)?;
        let report = shared
            .projections
            .read("metrics", |tree| {
                metrics::metrics(tree, ws, scope, from.0, to.0)
            })
            .map_err(projection_error)?
            .map_err(projection_error)?;
        Ok(report.into())
    }

    /// Agents ranked by their service over `[from, to)` (UTC midnights).
    #[graphql(
        guard = "Need(Permission::ReadMetrics)",
        complexity = "crate::schema::customer::paged(first, None, child_complexity)"
    )]
    async fn leaderboard(
        &self,
        ctx: &Context<'_>,
        from: DateTime,
        to: DateTime,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<LeaderboardEntry>> {
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        let size = page_size(&shared.config, first, 20)?;
        period(from, to)?;
        let rows = shared
            .projections
            .read("metrics", |tree| {
                metrics::leaderboard(tree, ws, from.0, to.0, size)
            })
            .map_err(projection_error)?
            .map_err(projection_error)?;
        Ok(rows
            .into_iter()
            .map(|r| LeaderboardEntry {
                rank: r.rank,
                agent_id: ID(r.agent.to_string()),
                name: r.name,
                score: r.score,
                metrics: r.report.into(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_parse_in_either_spelling() {
        assert_eq!(channel_named("LIVE_CHAT"), Some(d::Channel::LiveChat));
        assert_eq!(channel_named("live_chat"), Some(d::Channel::LiveChat));
        assert_eq!(channel_named("phone"), Some(d::Channel::Phone));
        assert_eq!(channel_named("fax"), None);
    }
}
