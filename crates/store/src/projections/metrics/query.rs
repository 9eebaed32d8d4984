//! Reads metrics: [`metrics`] sums the day cells of one scope over a period of whole UTC days
//! and derives every figure (exact averages, shares, NPS, the median resolution time);
//! [`leaderboard`] ranks the workspace's agents over a period by the documented score.

use std::ops::Bound;

use sijil_domain::{AgentId, Timestamp, WorkspaceId};

use super::super::error::ProjectionError;
use super::super::keys::{prefix_end, typed, Key, Reader};
use super::cells::{day_of, Cells, Scope, DAY_MS};
use super::{AGENT, CELL, MIN_SAMPLE, RESOLUTION_TIME};

/// Every figure of one scope over a period. Averages and shares are `None` when nothing
/// they are computed from happened in the period.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsReport {
    /// The summed cells (counts and exact sums).
    pub totals: Cells,
    /// CSAT average (1–5).
    pub csat_average: Option<f64>,
    /// Share of CSAT answers that were 4 or 5, in percent.
    pub csat_satisfied_pct: Option<f64>,
    /// % promoters − % detractors (−100 to +100).
    pub nps: Option<f64>,
    pub nps_promoters: u64,
    pub nps_passives: u64,
    pub nps_detractors: u64,
    /// CES average (1–7).
    pub ces_average: Option<f64>,
    /// Share of resolutions that are standing first-contact resolutions, in percent.
    pub fcr_pct: Option<f64>,
    /// Mean time from opening to first response, in ms.
    pub first_response_avg_ms: Option<f64>,
    /// Mean time from opening to resolution, in ms.
    pub resolution_avg_ms: Option<f64>,
    /// Median time from opening to resolution, in ms (mean of the two middle values for an
    /// even count).
    pub resolution_median_ms: Option<f64>,
    pub cases_opened: u64,
    pub cases_resolved: u64,
    pub cases_reopened: u64,
    pub cases_escalated: u64,
    /// Cases escalated for the first time / cases opened, in percent.
    pub escalation_rate_pct: Option<f64>,
    pub recognitions: u64,
    pub recognition_points: u64,
}

impl MetricsReport {
    /// Derives every figure from summed cells and the period's resolution times.
    pub fn from_cells(totals: Cells, mut resolution_times: Vec<i64>) -> MetricsReport {
        let ratio = |num: u64, den: u64| (den > 0).then(|| num as f64 / den as f64);
        let pct = |num: u64, den: u64| (den > 0).then(|| num as f64 * 100.0 / den as f64);
        let nps_count = totals.nps_count();
        let nps = (nps_count > 0).then(|| {
            (totals.nps_promoters as f64 - totals.nps_detractors as f64) * 100.0 / nps_count as f64
        });
        let avg_ms = |sum: i64, n: u64| (n > 0).then(|| sum as f64 / n as f64);
        resolution_times.sort_unstable();
        let n = resolution_times.len();
        let median = match n {
            0 => None,
            _ if n % 2 == 1 => Some(resolution_times[n / 2] as f64),
            _ => Some((resolution_times[n / 2 - 1] as f64 + resolution_times[n / 2] as f64) / 2.0),
        };
        MetricsReport {
            csat_average: ratio(totals.csat_sum, totals.csat_count),
            csat_satisfied_pct: pct(totals.csat_satisfied, totals.csat_count),
            nps,
            nps_promoters: totals.nps_promoters,
            nps_passives: totals.nps_passives,
            nps_detractors: totals.nps_detractors,
            ces_average: ratio(totals.ces_sum, totals.ces_count),
            fcr_pct: pct(totals.resolved_fcr, totals.resolved),
            first_response_avg_ms: avg_ms(totals.first_response_ms, totals.first_responses),
            resolution_avg_ms: avg_ms(totals.resolution_ms, totals.resolved),
            resolution_median_ms: median,
            cases_opened: totals.opened,
            cases_resolved: totals.resolved,
            cases_reopened: totals.reopened,
            cases_escalated: totals.escalated,
            escalation_rate_pct: pct(totals.escalated, totals.opened),
            recognitions: totals.recognitions,
            recognition_points: totals.recognition_points,
            totals,
        }
    }
}

/// The days `[from, to)` covers; both must be UTC midnights.
fn days(from: Timestamp, to: Timestamp) -> Result<(i64, i64), ProjectionError> {
    if from.millis().rem_euclid(DAY_MS) != 0 || to.millis().rem_euclid(DAY_MS) != 0 {
        return Err(ProjectionError::InvalidQuery(
            "a metrics period starts and ends at UTC midnight (cells are whole days)".into(),
        ));
    }
    if to < from {
        return Err(ProjectionError::InvalidQuery(
            "a metrics period ends after it starts".into(),
        ));
    }
    Ok((day_of(from), day_of(to)))
}

/// Sums the cells of `scope` for days in `[first_day, end_day)`.
fn sum_cells(
    tree: &sled::Tree,
    ws: WorkspaceId,
    scope: Scope,
    first_day: i64,
    end_day: i64,
) -> Result<Cells, ProjectionError> {
    let mut totals = Cells::default();
    let lower = scope.cell_key(ws, first_day);
    let upper = scope.cell_key(ws, end_day);
    for item in tree.range(lower..upper) {
        let (_, value) = item.map_err(|e| ProjectionError::sled("scan metric cells", e))?;
        let cells: Cells = super::super::rows::decode(&value, "metric cell")?;
        totals.add(&cells);
    }
    Ok(totals)
}

/// The resolution times of `scope` on days in `[first_day, end_day)`.
fn resolution_times(
    tree: &sled::Tree,
    ws: WorkspaceId,
    scope: Scope,
    first_day: i64,
    end_day: i64,
) -> Result<Vec<i64>, ProjectionError> {
    let lower = scope.key(RESOLUTION_TIME, ws).i64(first_day).build();
    let upper = scope.key(RESOLUTION_TIME, ws).i64(end_day).build();
    let mut out = Vec::new();
    for item in tree.range(lower..upper) {
        let (_, value) = item.map_err(|e| ProjectionError::sled("scan resolution times", e))?;
        let mut reader = Reader::new(&value, "resolution times");
        if reader.is_empty() {
            return Err(ProjectionError::corrupt(
                "a day's resolution times are empty",
            ));
        }
        while !reader.is_empty() {
            out.push(reader.i64()?);
        }
    }
    Ok(out)
}

/// Every figure of `scope` in workspace `ws` over `[from, to)`, which must start and end at
/// UTC midnights.
pub fn metrics(
    tree: &sled::Tree,
    ws: WorkspaceId,
    scope: Scope,
    from: Timestamp,
    to: Timestamp,
) -> Result<MetricsReport, ProjectionError> {
    let (first_day, end_day) = days(from, to)?;
    let totals = sum_cells(tree, ws, scope, first_day, end_day)?;
    let times = resolution_times(tree, ws, scope, first_day, end_day)?;
    Ok(MetricsReport::from_cells(totals, times))
}

/// One agent on the leaderboard.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaderboardRow {
    /// 1 for the best; agents with equal scores share a rank and the next rank skips.
    pub rank: u32,
    pub agent: AgentId,
    /// The agent's display name, when registered.
    pub name: Option<String>,
    /// The score (0–100), see the module documentation of `metrics`.
    pub score: f64,
    /// The agent's figures over the period (sample sizes included, so low samples show).
    pub report: MetricsReport,
}

/// The leaderboard score of an agent's figures.
pub fn score(report: &MetricsReport) -> f64 {
    let t = &report.totals;
    let mut score = 0.0;
    if t.csat_count >= MIN_SAMPLE {
        score += 40.0 * t.csat_satisfied as f64 / t.csat_count as f64;
    }
    if t.nps_count() >= MIN_SAMPLE {
        score += 20.0 * (report.nps.unwrap_or(0.0) + 100.0) / 200.0;
    }
    if t.ces_count >= MIN_SAMPLE {
        score += 10.0 * (t.ces_sum as f64 / t.ces_count as f64 - 1.0) / 6.0;
    }
    if t.resolved >= MIN_SAMPLE {
        score += 20.0 * t.resolved_fcr as f64 / t.resolved as f64;
    }
    let bonus = 2.0 * t.recognitions as f64 + t.recognition_points as f64 / 10.0;
    score + bonus.min(10.0)
}

fn agent_name(
    tree: &sled::Tree,
    ws: WorkspaceId,
    agent: AgentId,
) -> Result<Option<String>, ProjectionError> {
    let key = Key::new(AGENT)
        .uuid(ws.as_uuid())
        .uuid(agent.as_uuid())
        .build();
    Ok(tree
        .get(key)
        .map_err(|e| ProjectionError::sled("read agent name", e))?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// The first `first` agents of workspace `ws` ranked over `[from, to)` (UTC midnights).
/// Agents without any figure in the period are not listed.
pub fn leaderboard(
    tree: &sled::Tree,
    ws: WorkspaceId,
    from: Timestamp,
    to: Timestamp,
    first: usize,
) -> Result<Vec<LeaderboardRow>, ProjectionError> {
    let (first_day, end_day) = days(from, to)?;
    let agents_prefix = Key::new(CELL).uuid(ws.as_uuid()).u8(1).build();
    let Some(agents_end) = prefix_end(&agents_prefix) else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    let mut next = agents_prefix.clone();
    // Visit each agent once: find its first cell, read its period, jump past its cells.
    loop {
        let found = tree
            .range::<Vec<u8>, _>((
                Bound::Included(next.clone()),
                Bound::Excluded(agents_end.clone()),
            ))
            .next()
            .transpose()
            .map_err(|e| ProjectionError::sled("scan agent cells", e))?;
        let Some((key, _)) = found else { break };
        let mut reader = Reader::new(&key, "metric cell key");
        reader.skip(agents_prefix.len())?;
        let agent: AgentId = typed(reader.uuid()?, "agent id")?;
        let scope = Scope::Agent(agent);
        let totals = sum_cells(tree, ws, scope, first_day, end_day)?;
        if !totals.is_empty() {
            let times = resolution_times(tree, ws, scope, first_day, end_day)?;
            let report = MetricsReport::from_cells(totals, times);
            rows.push(LeaderboardRow {
                rank: 0,
                agent,
                name: agent_name(tree, ws, agent)?,
                score: score(&report),
                report,
            });
        }
        match prefix_end(scope.key(CELL, ws).as_slice()) {
            Some(end) => next = end,
            None => break,
        }
    }
    rows.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.agent.cmp(&b.agent)));
    let mut previous: Option<(f64, u32)> = None;
    for (index, row) in rows.iter_mut().enumerate() {
        let position = u32::try_from(index + 1).unwrap_or(u32::MAX);
        row.rank = match previous {
            Some((score, rank)) if score == row.score => rank,
            _ => position,
        };
        previous = Some((row.score, row.rank));
    }
    rows.truncate(first);
    Ok(rows)
}
