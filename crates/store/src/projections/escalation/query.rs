//! Reads escalation state: one case's row ([`get`]), the work queue of open cases ordered by
//! their next due time, workspace-wide or for one team, with level and urgency filters and
//! opaque forward cursors ([`queue`]), and, for the SLA checker, the targets whose due time
//! has passed ([`due_before`]).

use sijil_domain::{CaseId, SlaTarget, TeamId, Timestamp, WorkspaceId};

use super::super::cursor;
use super::super::error::ProjectionError;
use super::super::keys::{order_i64, typed, Key, Reader};
use super::super::paging::{scan, Window, MAX_PAGE, SKIP_BUDGET};
use super::super::rows;
use super::row::CaseRow;
use super::{CASE, DUE, QUEUE, WORKSPACE_QUEUE};

/// Items per page when `first` is not given.
pub const DEFAULT_PAGE: usize = 50;
/// Cursor length in bytes: due (8) ‖ case (16).
const CURSOR_LEN: usize = 24;

/// Which open cases a queue lists, by how urgent they are at `QueueQuery::now`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Urgency {
    /// Every open case.
    #[default]
    All,
    /// Cases with at least one SLA target recorded as breached.
    Breached,
    /// Cases whose next due time is at most this many minutes after `now` (overdue ones
    /// included).
    DueWithin(u32),
    /// Cases that are breached or due within this many minutes (the "at risk" view).
    BreachedOrDueWithin(u32),
}

/// A queue request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueQuery {
    /// Only cases assigned to this team (`None`: the whole workspace).
    pub team: Option<TeamId>,
    /// Only cases at this level or above (0 or 1: every level).
    pub min_level: u8,
    /// The urgency filter.
    pub urgency: Urgency,
    /// The instant `Urgency::DueWithin` counts from.
    pub now: Timestamp,
    /// Page size (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]).
    pub first: Option<usize>,
    /// Exclusive start cursor (an item's or a page's `end_cursor`).
    pub after: Option<String>,
}

/// One queued case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueItem {
    /// The case's escalation state.
    pub case: CaseRow,
    /// The target the queue position is for and its due time.
    pub next_target: SlaTarget,
    pub due_at: Timestamp,
    /// The paging cursor of this item.
    pub cursor: String,
}

/// One page of a queue, ordered by due time, then case id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueuePage {
    pub items: Vec<QueueItem>,
    /// More items may follow `end_cursor`.
    pub has_next: bool,
    /// Where the next page starts (the last item, or where a scan gave up early).
    pub end_cursor: Option<String>,
}

/// An SLA target whose due time has passed without a recorded breach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DueTarget {
    pub due_at: Timestamp,
    pub case_id: CaseId,
    pub target: SlaTarget,
    pub workspace: WorkspaceId,
}

/// The code of a target in `D` keys.
pub(crate) fn target_code(target: SlaTarget) -> u8 {
    match target {
        SlaTarget::FirstResponse => 0,
        SlaTarget::Resolution => 1,
    }
}

fn target_of(code: u8) -> Result<SlaTarget, ProjectionError> {
    match code {
        0 => Ok(SlaTarget::FirstResponse),
        1 => Ok(SlaTarget::Resolution),
        other => Err(ProjectionError::corrupt(format!(
            "unknown SLA target code {other} in the due index"
        ))),
    }
}

/// The escalation state of `case` in workspace `ws`.
pub fn get(
    tree: &sled::Tree,
    ws: WorkspaceId,
    case: CaseId,
) -> Result<Option<CaseRow>, ProjectionError> {
    let key = Key::new(CASE)
        .uuid(ws.as_uuid())
        .uuid(case.as_uuid())
        .build();
    tree.get(key)
        .map_err(|e| ProjectionError::sled("read case row", e))?
        .map(|bytes| rows::decode(&bytes, "case row"))
        .transpose()
}

fn queue_prefix(ws: WorkspaceId, team: Option<TeamId>) -> Vec<u8> {
    match team {
        Some(team) => Key::new(QUEUE)
            .uuid(ws.as_uuid())
            .uuid(team.as_uuid())
            .build(),
        None => Key::new(WORKSPACE_QUEUE).uuid(ws.as_uuid()).build(),
    }
}

/// One page of the open-case queue of workspace `ws`.
pub fn queue(
    tree: &sled::Tree,
    ws: WorkspaceId,
    query: &QueueQuery,
) -> Result<QueuePage, ProjectionError> {
    let size = query.first.unwrap_or(DEFAULT_PAGE);
    if size > MAX_PAGE {
        return Err(ProjectionError::InvalidQuery(format!(
            "a page holds at most {MAX_PAGE} items"
        )));
    }
    let prefix = queue_prefix(ws, query.team);
    let mut window = Window::prefix(&prefix);
    if let Some(after) = &query.after {
        let mut key = prefix.clone();
        key.extend_from_slice(&cursor::decode(after, CURSOR_LEN)?);
        window.above(&key);
    }
    // A pure due-time filter bounds the scan; the mixed one has to look at every case.
    if let Urgency::DueWithin(minutes) = query.urgency {
        // Keys with due <= now + minutes: everything below the first key one ms later.
        let limit = query.now.plus_minutes(minutes).millis().saturating_add(1);
        let mut end = prefix.clone();
        end.extend_from_slice(&order_i64(limit).to_be_bytes());
        window.below(end);
    }
    let min_level = query.min_level;
    let urgency = query.urgency;
    let now = query.now;
    let prefix_len = prefix.len();
    let mut budget = SKIP_BUDGET;
    let scanned = scan(tree, &window, false, size, &mut budget, |key, value| {
        let mut r = Reader::new(value, "queue entry");
        let level = r.u8()?;
        let flags = r.u8()?;
        if level < min_level {
            return Ok(None);
        }
        let mut k = Reader::new(key, "queue key");
        k.skip(prefix_len)?;
        let due = Timestamp(k.i64()?);
        let case: CaseId = typed(k.uuid()?, "case id")?;
        let breached = flags != 0;
        let due_soon = |minutes: u32| due <= now.plus_minutes(minutes);
        let keep = match urgency {
            Urgency::All => true,
            Urgency::Breached => breached,
            Urgency::DueWithin(minutes) => due_soon(minutes),
            Urgency::BreachedOrDueWithin(minutes) => breached || due_soon(minutes),
        };
        if !keep {
            return Ok(None);
        }
        let row = get(tree, ws, case)?.ok_or_else(|| {
            ProjectionError::corrupt(format!("queue entry for case {case} without a case row"))
        })?;
        let next_target = row.next_due().map_or(SlaTarget::Resolution, |(t, _)| t);
        Ok(Some(QueueItem {
            case: row,
            next_target,
            due_at: due,
            cursor: cursor::encode(key.get(prefix_len..).unwrap_or_default()),
        }))
    })?;
    let items: Vec<QueueItem> = scanned.items.into_iter().map(|(_, item)| item).collect();
    let end_cursor = match &scanned.stopped_at {
        Some(key) => Some(cursor::encode(key.get(prefix_len..).unwrap_or_default())),
        None => items.last().map(|item| item.cursor.clone()),
    };
    Ok(QueuePage {
        items,
        has_next: scanned.more,
        end_cursor,
    })
}

/// Up to `limit` SLA targets, across all workspaces, whose due time is before `now` and for
/// which no breach is recorded yet, oldest due first, starting after `after` (for the SLA
/// checker, a system task; every item names its workspace).
pub fn due_before(
    tree: &sled::Tree,
    now: Timestamp,
    after: Option<&DueTarget>,
    limit: usize,
) -> Result<Vec<DueTarget>, ProjectionError> {
    let mut window = Window::prefix(&[DUE]);
    window.below(Key::new(DUE).i64(now.millis()).build());
    if let Some(after) = after {
        window.above(
            &Key::new(DUE)
                .i64(after.due_at.millis())
                .uuid(after.case_id.as_uuid())
                .u8(target_code(after.target))
                .build(),
        );
    }
    let mut budget = 0;
    let scanned = scan(tree, &window, false, limit, &mut budget, |key, value| {
        let mut k = Reader::new(key, "due key");
        k.skip(1)?;
        let due_at = Timestamp(k.i64()?);
        let case_id = typed(k.uuid()?, "case id")?;
        let target = target_of(k.u8()?)?;
        let workspace = typed(Reader::new(value, "due entry").uuid()?, "workspace id")?;
        Ok(Some(DueTarget {
            due_at,
            case_id,
            target,
            workspace,
        }))
    })?;
    Ok(scanned.items.into_iter().map(|(_, t)| t).collect())
}
