//! Owns applying one chunk of the log to one projection tree: read up to `limit` events after
//! the checkpoint, decode the ones the projection consumes, apply them through an
//! [`Overlay`], and commit rows and the new checkpoint in one batch. When an event fails, the
//! events before it are committed and the failure is returned with its position, so the
//! projection stops exactly there: nothing is skipped and nothing is applied twice.

use sijil_domain::DomainEvent;

use crate::event::RecordedEvent;
use crate::store::Store;

use super::codec::decode_event;
use super::error::ProjectionError;
use super::overlay::{checkpoint, Overlay};
use super::{EventMeta, Projection};

/// Events per chunk while following the log.
pub const LIVE_CHUNK: usize = 5_000;
/// Events per chunk while rebuilding (bigger chunks coalesce more writes).
pub const REBUILD_CHUNK: usize = 20_000;

/// A failed chunk: the position that failed and why.
#[derive(Debug)]
pub struct ChunkFailure {
    /// The position of the event (or of the read) that failed.
    pub position: u64,
    /// The error.
    pub error: ProjectionError,
}

/// Applies the events after `tree`'s checkpoint: at most `limit` of them, none past `upto`.
/// Returns the new checkpoint, or `None` when there was nothing to apply.
pub fn apply_chunk(
    store: &Store,
    projection: &dyn Projection,
    tree: &sled::Tree,
    limit: usize,
    upto: Option<u64>,
) -> Result<Option<u64>, ChunkFailure> {
    let from = checkpoint(tree)
        .map_err(|error| ChunkFailure { position: 0, error })?
        .saturating_add(1);
    let mut limit = limit.max(1);
    if let Some(upto) = upto {
        if upto < from {
            return Ok(None);
        }
        let room = usize::try_from(upto - from + 1).unwrap_or(usize::MAX);
        limit = limit.min(room);
    }
    let events = store
        .read_all(from, limit, None)
        .map_err(|e| ChunkFailure {
            position: from,
            error: e.into(),
        })?;
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(None);
    };
    let mut ov = Overlay::new(tree);
    match apply_events(projection, &mut ov, &events) {
        Ok(()) => {
            ov.commit(last).map_err(|error| ChunkFailure {
                position: from,
                error,
            })?;
            Ok(Some(last))
        }
        Err((index, error)) => {
            let position = events[index].position;
            ov.discard();
            if index > 0 {
                // Re-apply the good prefix from a clean overlay (the failed event may have
                // left partial writes) and commit it.
                let good = &events[..index];
                apply_events(projection, &mut ov, good)
                    .map_err(|(_, error)| ChunkFailure { position, error })?;
                ov.commit(good[good.len() - 1].position)
                    .map_err(|error| ChunkFailure { position, error })?;
            }
            Err(ChunkFailure { position, error })
        }
    }
}

/// Applies `events` in order; on failure returns the index of the failed event.
fn apply_events(
    projection: &dyn Projection,
    ov: &mut Overlay<'_>,
    events: &[RecordedEvent],
) -> Result<(), (usize, ProjectionError)> {
    let types = projection.event_types();
    for (index, recorded) in events.iter().enumerate() {
        if !types.contains(&recorded.event_type.as_str()) {
            continue;
        }
        let event: DomainEvent = decode_event(recorded).map_err(|e| (index, e))?;
        let meta = EventMeta::from_recorded(recorded).map_err(|e| (index, e))?;
        projection
            .apply(ov, &meta, &event)
            .map_err(|e| (index, e))?;
    }
    Ok(())
}
