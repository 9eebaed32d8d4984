//! Applies case events to case rows and keeps the queue and due indexes in step: the index
//! keys of the row before and after are computed, stale ones removed and new ones written,
//! so the indexes always match the rows. Rows touched by a chunk are held decoded until its
//! commit ([`Held`]), so each is decoded, encoded and re-indexed once per chunk.

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;
use sijil_domain::{CaseId, DomainEvent, NoteTarget, SlaTarget, TeamId, Timestamp};
use uuid::Uuid;

use super::super::error::ProjectionError;
use super::super::keys::Key;
use super::super::overlay::{Deferred, Overlay};
use super::super::rows;
use super::super::EventMeta;
use super::query::target_code;
use super::row::{CaseRow, CaseStatus};
use super::{CASE, DUE, QUEUE, WORKSPACE_QUEUE};

/// The index entries a row implies.
fn index_entries(row: &CaseRow) -> Vec<(Vec<u8>, Vec<u8>)> {
    let ws = row.workspace.as_uuid();
    let case = row.case_id.as_uuid();
    let mut out = Vec::with_capacity(4);
    if let Some((_, due)) = row.next_due() {
        let flags = vec![row.level, row.breach_flags()];
        let team = row.team.map_or(Uuid::nil(), |t| t.as_uuid());
        out.push((
            Key::new(QUEUE)
                .uuid(ws)
                .uuid(team)
                .i64(due.millis())
                .uuid(case)
                .build(),
            flags.clone(),
        ));
        out.push((
            Key::new(WORKSPACE_QUEUE)
                .uuid(ws)
                .i64(due.millis())
                .uuid(case)
                .build(),
            flags,
        ));
    }
    for (target, due) in row.watched_targets() {
        out.push((
            Key::new(DUE)
                .i64(due.millis())
                .uuid(case)
                .u8(target_code(target))
                .build(),
            ws.as_bytes().to_vec(),
        ));
    }
    out
}

fn row_key(ws: Uuid, case: CaseId) -> Vec<u8> {
    Key::new(CASE).uuid(ws).uuid(case.as_uuid()).build()
}

/// Case rows held back while a chunk is applied (see [`Deferred`]): each case touched, as
/// it now is, with the index entries of the row the overlay holds. At commit each row is
/// encoded once and its indexes moved once, however many of its events the chunk held; the
/// rows and indexes written are those the events applied one at a time would leave.
#[derive(Debug, Default)]
struct Held {
    /// By workspace ‖ case.
    cases: FxHashMap<[u8; 32], HeldCase>,
}

#[derive(Debug)]
struct HeldCase {
    /// Index entries of the row in the overlay (none when it has no row).
    stored: Vec<(Vec<u8>, Vec<u8>)>,
    row: CaseRow,
}

impl Deferred for Held {
    fn flush(self: Box<Self>, ov: &mut Overlay<'_>) -> Result<(), ProjectionError> {
        for (_, case) in self.cases {
            save(ov, &case.stored, &case.row)?;
        }
        Ok(())
    }
}

fn held_key(ws: Uuid, case: CaseId) -> [u8; 32] {
    let mut key = [0; 32];
    key[..16].copy_from_slice(ws.as_bytes());
    key[16..].copy_from_slice(case.as_uuid().as_bytes());
    key
}

/// Writes `row` and moves its index entries from `before` (those of the row it replaces).
fn save(
    ov: &mut Overlay<'_>,
    before: &[(Vec<u8>, Vec<u8>)],
    row: &CaseRow,
) -> Result<(), ProjectionError> {
    let after = index_entries(row);
    for (key, _) in before {
        if !after.iter().any(|(k, _)| k == key) {
            ov.remove(key.clone());
        }
    }
    for (key, value) in after {
        if !before.iter().any(|(k, v)| *k == key && *v == value) {
            ov.insert(key, value);
        }
    }
    ov.insert(
        row_key(row.workspace.as_uuid(), row.case_id),
        rows::encode(row)?,
    );
    Ok(())
}

fn load(ov: &Overlay<'_>, ws: Uuid, case: CaseId) -> Result<Option<CaseRow>, ProjectionError> {
    ov.get(&row_key(ws, case))?
        .map(|bytes| rows::decode(&bytes, "case row"))
        .transpose()
}

/// Applies one event.
pub(super) fn apply(
    ov: &mut Overlay<'_>,
    meta: &EventMeta<'_>,
    event: &DomainEvent,
) -> Result<(), ProjectionError> {
    let mut held = ov.take_deferred::<Held>();
    let result = apply_held(ov, &mut held, meta, event);
    ov.put_deferred(held);
    result
}

fn apply_held(
    ov: &Overlay<'_>,
    held: &mut Held,
    meta: &EventMeta<'_>,
    event: &DomainEvent,
) -> Result<(), ProjectionError> {
    let ws = meta.workspace_id.as_uuid();
    if let DomainEvent::CaseOpened(e) = event {
        let row = CaseRow {
            workspace: meta.workspace_id,
            case_id: e.case_id,
            customer_id: e.customer_id,
            subject: e.subject.clone(),
            category: e.category.clone(),
            status: CaseStatus::Open,
            priority: e.priority,
            channel: e.channel,
            level: 1,
            top_level: e.top_level,
            agent: None,
            team: None,
            sla: e.sla,
            opened_at: e.at,
            first_response_due: e.at.plus_minutes(e.sla.first_response_minutes),
            resolution_due: e.at.plus_minutes(e.sla.resolution_minutes),
            first_response_at: None,
            first_resolved_at: None,
            resolved_at: None,
            closed_at: None,
            breached_first_response: false,
            breached_resolution: false,
            time_at_level: Vec::new(),
            level_since: Some(e.at),
            escalation_count: 0,
            reopen_count: 0,
            last_event_at: e.at,
            version: meta.stream_version,
        };
        match held.cases.entry(held_key(ws, e.case_id)) {
            Entry::Occupied(mut known) => known.get_mut().row = row,
            Entry::Vacant(slot) => {
                let stored = load(ov, ws, e.case_id)?
                    .map(|old| index_entries(&old))
                    .unwrap_or_default();
                slot.insert(HeldCase { stored, row });
            }
        }
        return Ok(());
    }
    let case = match event {
        DomainEvent::CaseAssigned(e) => e.case_id,
        DomainEvent::FirstResponseGiven(e) => e.case_id,
        DomainEvent::CaseEscalated(e) => e.case_id,
        DomainEvent::CaseDeescalated(e) => e.case_id,
        DomainEvent::SlaBreached(e) => e.case_id,
        DomainEvent::CaseResolved(e) => e.case_id,
        DomainEvent::CaseReopened(e) => e.case_id,
        DomainEvent::CaseClosed(e) => e.case_id,
        DomainEvent::NoteAdded(e) => match e.target {
            NoteTarget::Case(id) => id,
            NoteTarget::Interaction(_) => return Ok(()),
        },
        _ => return Ok(()),
    };
    let row = match held.cases.entry(held_key(ws, case)) {
        Entry::Occupied(known) => &mut known.into_mut().row,
        Entry::Vacant(slot) => {
            // A case event without a row (another workspace's case, or no opening) changes
            // nothing.
            let Some(row) = load(ov, ws, case)? else {
                return Ok(());
            };
            let stored = index_entries(&row);
            &mut slot.insert(HeldCase { stored, row }).row
        }
    };
    update(row, event);
    row.last_event_at = event.occurred_at().max(row.last_event_at);
    row.version = meta.stream_version;
    Ok(())
}

/// Moves the case to `to_level` (and to `team`, keeping the agent, as the aggregate does),
/// closing the stint at the old level.
fn change_level(row: &mut CaseRow, to_level: u8, team: Option<TeamId>, at: Timestamp) {
    let open = row.level_since.is_some();
    row.close_stint(at);
    row.level = to_level;
    if open {
        row.level_since = Some(at);
    }
    if let Some(team) = team {
        row.team = Some(team);
    }
}

fn update(row: &mut CaseRow, event: &DomainEvent) {
    match event {
        DomainEvent::CaseAssigned(e) => {
            // An assignment replaces both parts, as in the case aggregate.
            row.agent = e.agent;
            row.team = e.team;
        }
        DomainEvent::FirstResponseGiven(e) => {
            row.first_response_at.get_or_insert(e.at);
        }
        DomainEvent::CaseEscalated(e) => {
            change_level(row, e.to_level, e.team, e.at);
            row.escalation_count = row.escalation_count.saturating_add(1);
        }
        DomainEvent::CaseDeescalated(e) => change_level(row, e.to_level, e.team, e.at),
        DomainEvent::SlaBreached(e) => match e.target {
            SlaTarget::FirstResponse => row.breached_first_response = true,
            SlaTarget::Resolution => row.breached_resolution = true,
        },
        DomainEvent::CaseResolved(e) => {
            row.close_stint(e.at);
            row.status = CaseStatus::Resolved;
            row.resolved_at = Some(e.at);
            row.first_resolved_at.get_or_insert(e.at);
        }
        DomainEvent::CaseReopened(e) => {
            row.status = CaseStatus::Open;
            row.resolved_at = None;
            row.reopen_count = row.reopen_count.saturating_add(1);
            row.level_since = Some(e.at);
        }
        DomainEvent::CaseClosed(e) => {
            row.close_stint(e.at);
            row.status = CaseStatus::Closed;
            row.closed_at = Some(e.at);
        }
        _ => {}
    }
}
