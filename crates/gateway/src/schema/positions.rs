//! Owns the positions the API shows: every event position a client sees is local to its
//! workspace (1, 2, 3, ... with no gaps, from the store's `workspace_log` index), never the
//! global log position, whose gaps would reveal how much other workspaces write. This module
//! maps global positions to local ones and back, waiting briefly for the index when it has
//! not yet applied an event the caller already saw elsewhere (a stream read, a timeline).

use std::time::Duration;

use async_graphql::ErrorExtensions;
use sijil_domain as d;
use sijil_store::projections::cursor;
use sijil_store::projections::workspace_log::{self, LogEntry};
use sijil_store::RecordedEvent;

use crate::context::{projection_error, store_error, Shared};
use crate::error::ApiError;
use crate::schema::types::Event;

/// The store projection numbering each workspace's events.
pub const INDEX: &str = "workspace_log";

/// The workspace's event count (its last local position) as far as the index has applied.
pub fn count(shared: &Shared, ws: d::WorkspaceId) -> async_graphql::Result<u64> {
    shared
        .projections
        .read(INDEX, |tree| workspace_log::count(tree, ws))
        .map_err(projection_error)?
        .map_err(projection_error)
}

/// At most `limit` index entries of `ws` from local position `from` on.
pub fn entries(
    shared: &Shared,
    ws: d::WorkspaceId,
    from: u64,
    limit: usize,
) -> async_graphql::Result<Vec<LogEntry>> {
    shared
        .projections
        .read(INDEX, |tree| workspace_log::entries(tree, ws, from, limit))
        .map_err(projection_error)?
        .map_err(projection_error)
}

/// The global position of `ws`'s event at local position `local`, if indexed.
pub fn global(
    shared: &Shared,
    ws: d::WorkspaceId,
    local: u64,
) -> async_graphql::Result<Option<u64>> {
    shared
        .projections
        .read(INDEX, |tree| workspace_log::position_of(tree, ws, local))
        .map_err(projection_error)?
        .map_err(projection_error)
}

/// The last event of `ws` at or before global position `global`: `(local, global)`.
pub fn last_at_or_before(
    shared: &Shared,
    ws: d::WorkspaceId,
    global: u64,
) -> async_graphql::Result<Option<(u64, u64)>> {
    shared
        .projections
        .read(INDEX, |tree| {
            workspace_log::last_at_or_before(tree, ws, global)
        })
        .map_err(projection_error)?
        .map_err(projection_error)
}

fn lookup(shared: &Shared, ws: d::WorkspaceId, global: u64) -> async_graphql::Result<Option<u64>> {
    shared
        .projections
        .read(INDEX, |tree| workspace_log::sequence_of(tree, ws, global))
        .map_err(projection_error)?
        .map_err(projection_error)
}

/// Waits (at most `timeout`) until the index has applied global position `global`.
async fn wait_for_index(shared: &Shared, global: u64, timeout: Duration) -> bool {
    let Ok(handle) = shared.projections.handle(INDEX) else {
        return false;
    };
    let mut rx = handle.subscribe();
    let wait = async {
        loop {
            if *rx.borrow_and_update() >= global {
                return true;
            }
            if handle.failure().is_some() || rx.changed().await.is_err() {
                return false;
            }
        }
    };
    tokio::time::timeout(timeout, wait).await.unwrap_or(false)
}

/// Waits (at most `timeout`) until this node's read models hold `ws`'s events up to local
/// position `local`: first the workspace index, then every projection up to that event's
/// global position. `false` on time-out. This is how a read on one node sees a write made
/// through another (the client sends the position the write returned; see
/// [`crate::server`]'s `x-sijil-min-position`).
pub async fn caught_up_to(
    shared: &Shared,
    ws: d::WorkspaceId,
    local: u64,
    timeout: Duration,
) -> async_graphql::Result<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    let Ok(handle) = shared.projections.handle(INDEX) else {
        return Ok(false);
    };
    let mut rx = handle.subscribe();
    loop {
        rx.borrow_and_update();
        if count(shared, ws)? >= local {
            break;
        }
        if handle.failure().is_some() {
            return Ok(false);
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return Ok(false),
        }
    }
    if local == 0 {
        return Ok(true);
    }
    let Some(global) = global(shared, ws, local)? else {
        return Ok(false);
    };
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    Ok(shared.projections.wait_for(global, left).await.is_ok())
}

/// The local position of `ws`'s event at global position `global`; `None` when the index
/// has not applied it within the read-your-writes timeout (or it is not `ws`'s event).
pub async fn local_opt(
    shared: &Shared,
    ws: d::WorkspaceId,
    global: u64,
) -> async_graphql::Result<Option<u64>> {
    if let Some(local) = lookup(shared, ws, global)? {
        return Ok(Some(local));
    }
    // Returns at once when the index is already past `global` (then it is not `ws`'s).
    if !wait_for_index(shared, global, shared.config.read_your_writes_timeout).await {
        return Ok(None);
    }
    lookup(shared, ws, global)
}

/// Like [`local_opt`], for an event known to be `ws`'s: a miss is INTERNAL (the index lags
/// beyond the read-your-writes timeout or is broken).
pub async fn local(shared: &Shared, ws: d::WorkspaceId, global: u64) -> async_graphql::Result<u64> {
    local_opt(shared, ws, global).await?.ok_or_else(|| {
        ApiError::internal(format!(
            "the workspace log index does not hold the event at global position {global}"
        ))
        .extend()
    })
}

/// The stored event at global position `global`, which must be `ws`'s.
pub fn read_event(
    shared: &Shared,
    ws: d::WorkspaceId,
    global: u64,
) -> async_graphql::Result<RecordedEvent> {
    let event = shared
        .store
        .read_all(global, 1, None)
        .map_err(store_error)?
        .into_iter()
        .next()
        .filter(|e| e.position == global && e.workspace_id == ws.as_uuid());
    event.ok_or_else(|| {
        ApiError::internal(format!(
            "the workspace log index points at global position {global}, which is not the workspace's event"
        ))
        .extend()
    })
}

/// `ws`'s stored events as API events, each with its workspace-local position.
pub async fn to_api(
    shared: &Shared,
    ws: d::WorkspaceId,
    events: Vec<RecordedEvent>,
) -> async_graphql::Result<Vec<Event>> {
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let local_position = local(shared, ws, event.position).await?;
        out.push(Event {
            event,
            local_position,
        });
    }
    Ok(out)
}

/// Length of a timeline cursor: the entry's time (8 bytes) ‖ its event's position (8).
const TIMELINE_CURSOR_LEN: usize = 16;

/// Splits a timeline cursor into its time bytes and position.
pub fn split_cursor(text: &str) -> async_graphql::Result<([u8; 8], u64)> {
    let bytes = cursor::decode(text, TIMELINE_CURSOR_LEN).map_err(projection_error)?;
    let mut at = [0u8; 8];
    let mut position = [0u8; 8];
    at.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
    position.copy_from_slice(bytes.get(8..16).unwrap_or(&[0; 8]));
    Ok((at, u64::from_be_bytes(position)))
}

/// A timeline cursor of time bytes `at` and `position` (see [`split_cursor`]).
pub fn join_cursor(at: [u8; 8], position: u64) -> String {
    let mut bytes = at.to_vec();
    bytes.extend_from_slice(&position.to_be_bytes());
    cursor::encode(&bytes)
}

/// [`local`] for many positions of `ws`'s events at once: one read of the index for all of
/// them (a timeline page asks for a page of positions), waiting only for the ones it does
/// not hold yet.
pub async fn locals(
    shared: &Shared,
    ws: d::WorkspaceId,
    globals: &[u64],
) -> async_graphql::Result<Vec<u64>> {
    let found = shared
        .projections
        .read(INDEX, |tree| workspace_log::sequences_of(tree, ws, globals))
        .map_err(projection_error)?
        .map_err(projection_error)?;
    let mut out = Vec::with_capacity(globals.len());
    for (&global, local_hit) in globals.iter().zip(found) {
        out.push(match local_hit {
            Some(l) => l,
            None => local(shared, ws, global).await?,
        });
    }
    Ok(out)
}

/// The timeline projection's cursor for a client's cursor; a position the workspace does
/// not have is an invalid cursor (VALIDATION).
pub fn cursor_to_global(
    shared: &Shared,
    ws: d::WorkspaceId,
    text: &str,
) -> async_graphql::Result<String> {
    let (at, local) = split_cursor(text)?;
    let global = global(shared, ws, local)?.ok_or_else(|| {
        ApiError::validation(
            "invalid cursor: it points at no entry of this workspace",
            "INVALID_CURSOR",
        )
        .extend()
    })?;
    Ok(join_cursor(at, global))
}
