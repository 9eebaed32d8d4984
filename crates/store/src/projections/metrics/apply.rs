//! Applies domain events to the metric cells: finds who a figure is attributed to (through the
//! case and interaction memos this projection keeps) and adds to the day cells of each scope
//! (cells and case memos are held decoded until the chunk commits, [`Held`]).

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;
use sijil_domain::{
    AgentId, Channel, DomainEvent, FeedbackSubject, Reward, Score, TeamId, Timestamp, WorkspaceId,
};

use super::super::error::ProjectionError;
use super::super::keys::{order_i64, Key};
use super::super::overlay::{Deferred, Overlay};
use super::super::rows;
use super::super::EventMeta;
use super::cells::{day_of, CaseMemo, Cells, FcrMark, InteractionMemo, Scope};
use super::{AGENT, CASE, INTERACTION};

fn memo_key(prefix: u8, ws: WorkspaceId, id: uuid::Uuid) -> Vec<u8> {
    Key::new(prefix).uuid(ws.as_uuid()).uuid(id).build()
}

fn load<T: serde::de::DeserializeOwned>(
    ov: &Overlay<'_>,
    key: &[u8],
    what: &'static str,
) -> Result<Option<T>, ProjectionError> {
    ov.get(key)?
        .map(|bytes| rows::decode(&bytes, what))
        .transpose()
}

/// Metric cells, resolution times and case memos held back while a chunk is applied (see
/// [`Deferred`]): a cell that many events of the chunk add to (the workspace's day, a busy
/// channel's) or a case with several events in the chunk is decoded once and encoded once, at
/// commit. In a fill ([`Overlay::carrying`]) they stay held, unwritten, over commits (within
/// the overlay's [`Overlay::carry_budget`]), so each is written once for the whole fill.
#[derive(Debug, Default)]
struct Held {
    /// By cell key.
    cells: FxHashMap<Vec<u8>, Cells>,
    /// By resolution-times key: the day's times, as the row stores them.
    times: FxHashMap<Vec<u8>, Vec<u8>>,
    /// By case memo key: the memo as last saved.
    cases: FxHashMap<Vec<u8>, CaseMemo>,
}

impl Held {
    /// Writes every held row into the overlay.
    fn write(&mut self, ov: &mut Overlay<'_>) -> Result<(), ProjectionError> {
        for (key, cells) in self.cells.drain() {
            ov.insert(key, rows::encode(&cells)?);
        }
        for (key, times) in self.times.drain() {
            ov.insert(key, times);
        }
        for (key, memo) in self.cases.drain() {
            ov.insert(key, rows::encode(&memo)?);
        }
        Ok(())
    }

    /// Roughly the memory held.
    fn held_bytes(&self) -> usize {
        self.cells.len() * (std::mem::size_of::<Cells>() + 96)
            + self
                .times
                .values()
                .map(|t| t.capacity() + 96)
                .sum::<usize>()
            + self.cases.len() * (std::mem::size_of::<CaseMemo>() + 96)
    }
}

impl Deferred for Held {
    fn flush(mut self: Box<Self>, ov: &mut Overlay<'_>) -> Result<(), ProjectionError> {
        self.write(ov)
    }

    fn flush_and_carry(
        mut self: Box<Self>,
        ov: &mut Overlay<'_>,
    ) -> Result<Option<Box<dyn Deferred>>, ProjectionError> {
        // Over the budget, everything held is written and dropped (read back when needed).
        if self.held_bytes() > ov.carry_budget() {
            self.write(ov)?;
        }
        Ok(Some(self))
    }
}

/// Changes the held row under each of `keys` (kept in the map `rows` picks), reading it
/// through the overlay the first time (`read`; absent: the default).
fn change_held<V: Default>(
    ov: &mut Overlay<'_>,
    keys: impl Iterator<Item = Vec<u8>>,
    rows: fn(&mut Held) -> &mut FxHashMap<Vec<u8>, V>,
    read: impl Fn(&Overlay<'_>, &[u8]) -> Result<Option<V>, ProjectionError>,
    change: impl Fn(&mut V),
) -> Result<(), ProjectionError> {
    let mut held = ov.take_deferred::<Held>();
    let mut result = Ok(());
    for key in keys {
        let row = match rows(&mut held).entry(key) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => match read(ov, slot.key()) {
                Ok(stored) => slot.insert(stored.unwrap_or_default()),
                Err(error) => {
                    result = Err(error);
                    break;
                }
            },
        };
        change(row);
    }
    ov.put_deferred(held);
    result
}

/// Adds to the cell of each scope on `day`.
fn bump(
    ov: &mut Overlay<'_>,
    ws: WorkspaceId,
    scopes: &[Scope],
    day: i64,
    change: impl Fn(&mut Cells),
) -> Result<(), ProjectionError> {
    change_held(
        ov,
        scopes.iter().map(|scope| scope.cell_key(ws, day)),
        |held| &mut held.cells,
        |ov, key| load(ov, key, "metric cell"),
        change,
    )
}

/// The workspace, the channel and, when known, the agent and team.
fn scopes(channel: Option<Channel>, agent: Option<AgentId>, team: Option<TeamId>) -> Vec<Scope> {
    let mut out = Vec::with_capacity(4);
    out.push(Scope::Workspace);
    out.extend(channel.map(Scope::Channel));
    out.extend(agent.map(Scope::Agent));
    out.extend(team.map(Scope::Team));
    out
}

struct Ctx<'a, 'm> {
    ov: &'a mut Overlay<'m>,
    ws: WorkspaceId,
}

impl Ctx<'_, '_> {
    fn case(&mut self, case: sijil_domain::CaseId) -> Result<Option<CaseMemo>, ProjectionError> {
        let key = memo_key(CASE, self.ws, case.as_uuid());
        let held = self.ov.take_deferred::<Held>();
        let memo = match held.cases.get(&key) {
            Some(memo) => Ok(Some(memo.clone())),
            None => load(self.ov, &key, "case memo"),
        };
        self.ov.put_deferred(held);
        memo
    }

    fn save_case(
        &mut self,
        case: sijil_domain::CaseId,
        memo: &CaseMemo,
    ) -> Result<(), ProjectionError> {
        let key = memo_key(CASE, self.ws, case.as_uuid());
        let mut held = self.ov.take_deferred::<Held>();
        held.cases.insert(key, memo.clone());
        self.ov.put_deferred(held);
        Ok(())
    }

    fn bump(
        &mut self,
        scopes: &[Scope],
        day: i64,
        change: impl Fn(&mut Cells),
    ) -> Result<(), ProjectionError> {
        bump(self.ov, self.ws, scopes, day, change)
    }

    /// Appends the resolution time `ms` to each scope's times of `day`.
    fn add_resolution_time(
        &mut self,
        scopes: &[Scope],
        day: i64,
        ms: i64,
    ) -> Result<(), ProjectionError> {
        let ws = self.ws;
        change_held(
            self.ov,
            scopes.iter().map(|scope| scope.resolution_key(ws, day)),
            |held| &mut held.times,
            |ov, key| Ok(ov.get(key)?.map(|stored| stored.to_vec())),
            |times| times.extend_from_slice(&order_i64(ms).to_be_bytes()),
        )
    }

    /// Moves the case to `agent`/`team`, counting a first assignment as `opened` for them.
    fn receive(
        &mut self,
        memo: &mut CaseMemo,
        agent: Option<AgentId>,
        team: Option<TeamId>,
        at: Timestamp,
    ) -> Result<(), ProjectionError> {
        let day = day_of(at);
        if let Some(agent) = agent {
            if !memo.received_agents.contains(&agent) {
                memo.received_agents.push(agent);
                self.bump(&[Scope::Agent(agent)], day, |c| {
                    c.opened = c.opened.saturating_add(1)
                })?;
            }
        }
        if let Some(team) = team {
            if !memo.received_teams.contains(&team) {
                memo.received_teams.push(team);
                self.bump(&[Scope::Team(team)], day, |c| {
                    c.opened = c.opened.saturating_add(1)
                })?;
            }
        }
        Ok(())
    }

    /// Takes back a standing first-contact resolution of `memo`.
    fn revoke_fcr(&mut self, memo: &mut CaseMemo) -> Result<(), ProjectionError> {
        if let Some(mark) = memo.fcr.take() {
            let scopes = scopes(Some(memo.channel), mark.agent, mark.team);
            self.bump(&scopes, mark.day, |c| {
                c.resolved_fcr = c.resolved_fcr.saturating_sub(1)
            })?;
        }
        Ok(())
    }
}

/// Applies one event.
pub(super) fn apply(
    ov: &mut Overlay<'_>,
    meta: &EventMeta<'_>,
    event: &DomainEvent,
) -> Result<(), ProjectionError> {
    let mut ctx = Ctx {
        ov,
        ws: meta.workspace_id,
    };
    match event {
        DomainEvent::CaseOpened(e) => {
            if ctx.case(e.case_id)?.is_some() {
                return Ok(());
            }
            let memo = CaseMemo {
                opened_at: e.at,
                channel: e.channel,
                agent: None,
                team: None,
                escalated: false,
                responded: false,
                received_agents: Vec::new(),
                received_teams: Vec::new(),
                fcr: None,
            };
            ctx.bump(&scopes(Some(e.channel), None, None), day_of(e.at), |c| {
                c.opened = c.opened.saturating_add(1)
            })?;
            ctx.save_case(e.case_id, &memo)
        }
        DomainEvent::CaseAssigned(e) => {
            let Some(mut memo) = ctx.case(e.case_id)? else {
                return Ok(());
            };
            memo.agent = e.agent;
            memo.team = e.team;
            ctx.receive(&mut memo, e.agent, e.team, e.at)?;
            ctx.save_case(e.case_id, &memo)
        }
        DomainEvent::CaseEscalated(e) => {
            let Some(mut memo) = ctx.case(e.case_id)? else {
                return Ok(());
            };
            if !memo.escalated {
                memo.escalated = true;
                let scopes = scopes(Some(memo.channel), memo.agent, memo.team);
                ctx.bump(&scopes, day_of(e.at), |c| {
                    c.escalated = c.escalated.saturating_add(1)
                })?;
            }
            if let Some(team) = e.team {
                memo.team = Some(team);
                ctx.receive(&mut memo, None, Some(team), e.at)?;
            }
            ctx.save_case(e.case_id, &memo)
        }
        DomainEvent::CaseDeescalated(e) => {
            let Some(mut memo) = ctx.case(e.case_id)? else {
                return Ok(());
            };
            if let Some(team) = e.team {
                memo.team = Some(team);
                ctx.receive(&mut memo, None, Some(team), e.at)?;
            }
            ctx.save_case(e.case_id, &memo)
        }
        DomainEvent::FirstResponseGiven(e) => {
            let Some(mut memo) = ctx.case(e.case_id)? else {
                return Ok(());
            };
            if memo.responded {
                return Ok(());
            }
            memo.responded = true;
            let ms = e.at.millis_since(memo.opened_at);
            let scopes = scopes(Some(memo.channel), e.agent.or(memo.agent), memo.team);
            ctx.bump(&scopes, day_of(e.at), |c| {
                c.first_responses = c.first_responses.saturating_add(1);
                c.first_response_ms = c.first_response_ms.saturating_add(ms);
            })?;
            ctx.save_case(e.case_id, &memo)
        }
        DomainEvent::CaseResolved(e) => {
            let Some(mut memo) = ctx.case(e.case_id)? else {
                return Ok(());
            };
            // A resolution without a reopen in between (bad data) replaces the standing one.
            ctx.revoke_fcr(&mut memo)?;
            let ms = e.at.millis_since(memo.opened_at);
            let agent = e.agent.or(memo.agent);
            let scopes = scopes(Some(memo.channel), agent, memo.team);
            let day = day_of(e.at);
            let fcr = e.first_contact_resolution;
            ctx.bump(&scopes, day, |c| {
                c.resolved = c.resolved.saturating_add(1);
                c.resolution_ms = c.resolution_ms.saturating_add(ms);
                if fcr {
                    c.resolved_fcr = c.resolved_fcr.saturating_add(1);
                }
            })?;
            ctx.add_resolution_time(&scopes, day, ms)?;
            if fcr {
                memo.fcr = Some(FcrMark {
                    resolved_at: e.at,
                    day,
                    agent,
                    team: memo.team,
                });
            }
            ctx.save_case(e.case_id, &memo)
        }
        DomainEvent::CaseReopened(e) => {
            let Some(mut memo) = ctx.case(e.case_id)? else {
                return Ok(());
            };
            ctx.revoke_fcr(&mut memo)?;
            let scopes = scopes(Some(memo.channel), memo.agent, memo.team);
            ctx.bump(&scopes, day_of(e.at), |c| {
                c.reopened = c.reopened.saturating_add(1)
            })?;
            ctx.save_case(e.case_id, &memo)
        }
        DomainEvent::InteractionRecorded(e) => {
            let memo = InteractionMemo {
                agent: e.handled_by.agent(),
                channel: e.channel,
            };
            let key = memo_key(INTERACTION, ctx.ws, e.interaction_id.as_uuid());
            ctx.ov.insert(key, rows::encode(&memo)?);
            if let Some(case) = e.case_id {
                if let Some(mut memo) = ctx.case(case)? {
                    let after_fcr = memo.fcr.as_ref().is_some_and(|m| e.at > m.resolved_at);
                    if after_fcr {
                        ctx.revoke_fcr(&mut memo)?;
                        ctx.save_case(case, &memo)?;
                    }
                }
            }
            Ok(())
        }
        DomainEvent::SurveyAnswered(e) => {
            let scopes = match e.subject {
                FeedbackSubject::Case(case) => match ctx.case(case)? {
                    Some(memo) => scopes(Some(memo.channel), memo.agent, memo.team),
                    None => scopes(None, None, None),
                },
                FeedbackSubject::Interaction(id) => {
                    let key = memo_key(INTERACTION, ctx.ws, id.as_uuid());
                    match load::<InteractionMemo>(ctx.ov, &key, "interaction memo")? {
                        Some(memo) => scopes(Some(memo.channel), memo.agent, None),
                        None => scopes(None, None, None),
                    }
                }
            };
            let score = e.score;
            let valid = match score {
                Score::Csat(v) => (1..=5).contains(&v),
                Score::Nps(v) => v <= 10,
                Score::Ces(v) => (1..=7).contains(&v),
            };
            if !valid {
                return Ok(());
            }
            ctx.bump(&scopes, day_of(e.at), |c| match score {
                Score::Csat(v) => {
                    c.csat_count = c.csat_count.saturating_add(1);
                    c.csat_sum = c.csat_sum.saturating_add(u64::from(v));
                    if v >= 4 {
                        c.csat_satisfied = c.csat_satisfied.saturating_add(1);
                    }
                }
                Score::Nps(v) => match v {
                    9..=10 => c.nps_promoters = c.nps_promoters.saturating_add(1),
                    7..=8 => c.nps_passives = c.nps_passives.saturating_add(1),
                    _ => c.nps_detractors = c.nps_detractors.saturating_add(1),
                },
                Score::Ces(v) => {
                    c.ces_count = c.ces_count.saturating_add(1);
                    c.ces_sum = c.ces_sum.saturating_add(u64::from(v));
                }
            })
        }
        DomainEvent::AgentRegistered(e) => {
            let key = memo_key(AGENT, ctx.ws, e.agent_id.as_uuid());
            ctx.ov.insert(key, e.display_name.as_bytes().to_vec());
            Ok(())
        }
        DomainEvent::AgentRecognised(e) => {
            let points = match e.reward {
                Reward::Points(p) => u64::from(p),
                Reward::Kudos | Reward::Voucher { .. } => 0,
            };
            ctx.bump(&[Scope::Agent(e.agent_id)], day_of(e.at), |c| {
                c.recognitions = c.recognitions.saturating_add(1);
                c.recognition_points = c.recognition_points.saturating_add(points);
            })
        }
        _ => Ok(()),
    }
}
