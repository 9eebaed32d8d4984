//! Owns applying one chunk of the log to projection trees: scan up to `limit` events after
//! the checkpoint, decode the ones a projection consumes, apply them through an [`Overlay`],
//! and commit rows and the new checkpoint of each tree all or nothing ([`Overlay::commit`]).
//! When an event fails, the events before it are committed and the failure is returned with
//! its position, so the projection stops exactly there: nothing is skipped and nothing is
//! applied twice.
//!
//! The scan reads envelopes in place ([`crate::codec::RawEvent`]): events no projection
//! consumes cost a type comparison, and nothing is allocated per event until a projection
//! wants it. Several projections ([`Lane`]s) can share one scan ([`apply_chunk_shared`]):
//! each event is read and decoded once and handed to every lane past whose checkpoint it
//! lies; every lane still commits its own tree with its own checkpoint. In a chunk of at
//! least `PARALLEL_MIN_EVENTS` events, two reader threads read and decode alternate spans of
//! the log into owned batches, the scanning thread takes the batches back in log order and
//! hands each to every lane, and each lane applies them on a thread of its own: reading,
//! decoding and applying overlap, so even one projection's rebuild uses both cores. Smaller
//! chunks (live appends) are applied inline.

use std::sync::{mpsc, Arc};

use sijil_domain::{DomainEvent, Timestamp, WorkspaceId};

use crate::codec::RawEvent;
use crate::read::visit_log;
use crate::store::Store;

use super::codec::decode_payload;
use super::error::ProjectionError;
use super::overlay::{checkpoint, recover, Overlay};
use super::{EventMeta, Projection};

/// Events per chunk while following the log.
pub const LIVE_CHUNK: usize = 5_000;
/// Events per chunk while rebuilding (bigger chunks coalesce more writes). On a log where
/// 36 000 customers interleave (the 1M-event demo), 200 000 took the timeline rebuild from 54k
/// to 88k events/s over 50 000, when every commit wrote each customer's last block; a fill
/// now keeps those blocks in memory over its commits (within its carry budget, see
/// [`Overlay::carry_budget`]), so the chunk mostly bounds the pending writes held.
pub const REBUILD_CHUNK: usize = 200_000;

/// A failed chunk: the position that failed and why.
#[derive(Debug)]
pub struct ChunkFailure {
    /// The position of the event (or of the read) that failed.
    pub position: u64,
    /// The error.
    pub error: ProjectionError,
}

/// One projection's share of a scan: its tree, where it stands, and what it has pending.
pub struct Lane<'t> {
    projection: &'t dyn Projection,
    tree: &'t sled::Tree,
    /// The tree's checkpoint when the scan started: events up to it are skipped.
    checkpoint: u64,
    overlay: Overlay<'t>,
    /// The first event that failed in this scan, and why.
    failure: Option<(u64, ProjectionError)>,
    /// `None` when commits are guarded by a redo record; for a fill's lane, which is not
    /// guarded, its carry budget.
    carry: Option<usize>,
}

impl<'t> Lane<'t> {
    /// A lane applying to `tree` from its stored checkpoint (after finishing a split commit
    /// that was interrupted, see [`recover`]).
    pub fn open(
        projection: &'t dyn Projection,
        tree: &'t sled::Tree,
    ) -> Result<Lane<'t>, ChunkFailure> {
        Lane::open_with(projection, tree, None)
    }

    /// A lane filling a tree that is dropped whole if the fill does not end (see
    /// [`Overlay::unguarded`]): its commits write no redo record. Nothing else writes the
    /// tree while it fills, so its overlay carries state over commits
    /// ([`Overlay::carrying`], keeping up to `carry_bytes` in memory): keep the lane from the
    /// first chunk of the fill to the last, then [`Lane::settle`] it.
    pub fn open_fresh(
        projection: &'t dyn Projection,
        tree: &'t sled::Tree,
        carry_bytes: usize,
    ) -> Result<Lane<'t>, ChunkFailure> {
        Lane::open_with(projection, tree, Some(carry_bytes))
    }

    /// `carry`: `None` for a guarded lane, or the carry budget of a fill's lane.
    fn open_with(
        projection: &'t dyn Projection,
        tree: &'t sled::Tree,
        carry: Option<usize>,
    ) -> Result<Lane<'t>, ChunkFailure> {
        let checkpoint = recover(tree)
            .and_then(|_| checkpoint(tree))
            .map_err(|error| ChunkFailure { position: 0, error })?;
        let overlay = match carry {
            None => Overlay::new(tree),
            Some(budget) => Overlay::unguarded(tree)
                .carrying(budget)
                .map_err(|error| ChunkFailure { position: 0, error })?,
        };
        Ok(Lane {
            projection,
            tree,
            checkpoint,
            overlay,
            failure: None,
            carry,
        })
    }

    /// Ends a fill (see [`Overlay::settle`]): writes what the lane kept in memory over its
    /// commits, at its checkpoint. Call it once the fill has reached its end.
    pub fn settle(&mut self) -> Result<(), ProjectionError> {
        self.overlay.settle(self.checkpoint)
    }

    /// Whether this lane applies the event at `position` of type `event_type`.
    fn wants(&self, position: u64, event_type: &str) -> bool {
        self.failure.is_none()
            && position > self.checkpoint
            && self.projection.event_types().contains(&event_type)
    }

    /// Applies `event` if this lane wants it (see [`Lane::take`]).
    fn take_decoded(&mut self, event: &Decoded) {
        if !self.wants(event.position, &event.event_type) {
            return;
        }
        match &event.decoded {
            Ok((workspace_id, decoded)) => {
                let meta = event.meta(*workspace_id);
                self.take(event.position, Ok((&meta, decoded)));
            }
            Err(error) => self.take(event.position, Err(error)),
        }
    }

    /// Applies one event it wants (or records that it could not be decoded), remembering the
    /// first failure: the lane takes no further events of this scan after it.
    fn take(
        &mut self,
        position: u64,
        event: Result<(&EventMeta<'_>, &DomainEvent), &ProjectionError>,
    ) {
        let applied = match event {
            Ok((meta, event)) => self.projection.apply(&mut self.overlay, meta, event),
            Err(error) => Err(error.clone()),
        };
        if let Err(error) = applied {
            self.failure = Some((position, error));
        }
    }
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
    apply_one(store, Lane::open(projection, tree)?, limit, upto)
}

fn apply_one(
    store: &Store,
    lane: Lane<'_>,
    limit: usize,
    upto: Option<u64>,
) -> Result<Option<u64>, ChunkFailure> {
    let mut lanes = vec![lane];
    match apply_chunk_shared(store, &mut lanes, limit, upto).pop() {
        Some(outcome) => outcome,
        None => Ok(None),
    }
}

/// Applies one chunk to every lane with a single scan of the log: at most `limit` events
/// after the smallest checkpoint, none past `upto`. Returns each lane's outcome, in order:
/// its new checkpoint, `None` when it had nothing to apply, or its failure (with the events
/// before the failing one committed).
pub fn apply_chunk_shared(
    store: &Store,
    lanes: &mut [Lane<'_>],
    limit: usize,
    upto: Option<u64>,
) -> Vec<Result<Option<u64>, ChunkFailure>> {
    let Some(lowest) = lanes.iter().map(|l| l.checkpoint).min() else {
        return Vec::new();
    };
    let from = lowest.saturating_add(1);
    let scanned = match scan(store, lanes, from, limit, upto) {
        Ok(scanned) => scanned,
        Err(error) => {
            return lanes
                .iter_mut()
                .map(|lane| {
                    lane.overlay.discard();
                    Err(ChunkFailure {
                        position: lane.checkpoint.saturating_add(1),
                        error: error.clone(),
                    })
                })
                .collect();
        }
    };
    lanes
        .iter_mut()
        .map(|lane| finish(store, lane, scanned))
        .collect()
}

/// Commits what one lane applied in a scan that ended at `scanned` (`None`: nothing read).
fn finish(
    store: &Store,
    lane: &mut Lane<'_>,
    scanned: Option<u64>,
) -> Result<Option<u64>, ChunkFailure> {
    let Some(last) = scanned.filter(|last| *last > lane.checkpoint) else {
        // Nothing was applied to this lane, so nothing is pending; what a fill's lane keeps
        // from its earlier chunks stays for `Lane::settle`.
        return Ok(None);
    };
    match lane.failure.take() {
        None => {
            lane.overlay.commit(last).map_err(|error| ChunkFailure {
                position: lane.checkpoint.saturating_add(1),
                error,
            })?;
            lane.checkpoint = last;
            Ok(Some(last))
        }
        Some((position, error)) => {
            lane.overlay.discard();
            if position > lane.checkpoint.saturating_add(1) {
                // Re-apply the good prefix from a clean overlay (the failed event may have
                // left partial writes) and commit it.
                let good = position - 1;
                let mut retry = Lane::open_with(lane.projection, lane.tree, lane.carry)?;
                let start = retry.checkpoint.saturating_add(1);
                let room = usize::try_from(good - retry.checkpoint).unwrap_or(usize::MAX);
                let outcome = scan(
                    store,
                    std::slice::from_mut(&mut retry),
                    start,
                    room,
                    Some(good),
                );
                match (outcome, retry.failure.take()) {
                    (Ok(Some(done)), None) => retry
                        .overlay
                        .commit(done)
                        .map_err(|error| ChunkFailure { position, error })?,
                    (Ok(_), None) => {}
                    (Ok(_), Some((_, error))) | (Err(error), _) => {
                        return Err(ChunkFailure { position, error })
                    }
                }
            }
            Err(ChunkFailure { position, error })
        }
    }
}

/// Scans from `from`, at most `limit` events and none past `upto` (or the durable head),
/// applying each event to the lanes that want it. Returns the last position read.
fn scan(
    store: &Store,
    lanes: &mut [Lane<'_>],
    from: u64,
    limit: usize,
    upto: Option<u64>,
) -> Result<Option<u64>, ProjectionError> {
    let head = store.head_position();
    let upto = upto.map_or(head, |u| u.min(head));
    if upto < from {
        return Ok(None);
    }
    let room = usize::try_from(upto - from + 1).unwrap_or(usize::MAX);
    let limit = limit.max(1).min(room);
    let mut last = None;
    if limit < PARALLEL_MIN_EVENTS {
        visit_log(store.trees(), from, upto, limit, |raw| {
            last = Some(raw.position);
            if lanes.iter().any(|l| l.wants(raw.position, raw.event_type)) {
                dispatch(store, lanes, &raw);
            }
            Ok::<(), ProjectionError>(())
        })?;
        return Ok(last);
    }
    // A big chunk: `READERS` threads read and decode the wanted events of alternate spans of
    // `FEED_BATCH` positions (the log is dense: span k is `from + k * FEED_BATCH` on); this
    // thread takes the spans back in order and hands each to every lane, which applies it on
    // a thread of its own (each writes only its own overlay). Reading, decoding and applying
    // overlap, so even one projection's rebuild uses both cores.
    let interests: Vec<(u64, &'static [&'static str])> = lanes
        .iter()
        .map(|l| (l.checkpoint, l.projection.event_types()))
        .collect();
    let wanted = |position: u64, event_type: &str| {
        interests
            .iter()
            .any(|(checkpoint, types)| position > *checkpoint && types.contains(&event_type))
    };
    let end = from.saturating_add(limit as u64 - 1).min(upto);
    let spans = (end - from) / FEED_BATCH as u64 + 1;
    let span = |k: u64| {
        let first = from + k * FEED_BATCH as u64;
        (first, first.saturating_add(FEED_BATCH as u64 - 1).min(end))
    };
    std::thread::scope(|scope| {
        let mut feeds = Vec::with_capacity(lanes.len());
        for lane in lanes.iter_mut() {
            let (feed, batches) = mpsc::sync_channel::<Arc<Vec<Decoded>>>(FEED_DEPTH);
            feeds.push(feed);
            scope.spawn(move || {
                for batch in batches {
                    for event in batch.iter() {
                        lane.take_decoded(event);
                    }
                }
            });
        }
        let mut readers = Vec::with_capacity(READERS);
        for reader in 0..READERS as u64 {
            let (out, spans_read) =
                mpsc::sync_channel::<Result<Vec<Decoded>, ProjectionError>>(FEED_DEPTH);
            readers.push(spans_read);
            let wanted = &wanted;
            scope.spawn(move || {
                for k in (reader..spans).step_by(READERS) {
                    let (first, last) = span(k);
                    // At most one event per position of the span: the batch never grows.
                    let mut batch = Vec::with_capacity(FEED_BATCH);
                    let read = visit_log(store.trees(), first, last, usize::MAX, |raw| {
                        if wanted(raw.position, raw.event_type) {
                            batch.push(Decoded::of(store, &raw));
                        }
                        Ok::<(), ProjectionError>(())
                    });
                    let failed = read.is_err();
                    // A closed channel means the scan stopped taking spans: stop reading.
                    if out.send(read.map(|_| batch)).is_err() || failed {
                        return;
                    }
                }
            });
        }
        let mut outcome = Ok(());
        for k in 0..spans {
            match readers[(k % READERS as u64) as usize].recv() {
                Ok(Ok(batch)) => {
                    last = Some(span(k).1);
                    if !batch.is_empty() {
                        send(&feeds, batch);
                    }
                }
                Ok(Err(error)) => {
                    outcome = Err(error);
                    break;
                }
                Err(_) => {
                    outcome = Err(ProjectionError::Task("a log reader stopped".into()));
                    break;
                }
            }
        }
        drop(readers);
        drop(feeds);
        outcome
    })?;
    Ok(last)
}

/// Hands `batch` to every lane's thread (a lane whose thread has ended is skipped).
fn send(feeds: &[mpsc::SyncSender<Arc<Vec<Decoded>>>], batch: Vec<Decoded>) {
    let batch = Arc::new(batch);
    for feed in feeds {
        // A closed feed means the lane's thread is gone; the scope reports its panic.
        let _ = feed.send(Arc::clone(&batch));
    }
}

/// Log positions per span a reader reads, and so at most events per batch handed to lanes.
const FEED_BATCH: usize = 1024;
/// Threads reading a big chunk of the log: on a 2-core machine two readers keep up with
/// a lane that does little per event (reading and decoding cost more than applying).
const READERS: usize = 2;
/// Batches in flight per lane: enough to keep both sides busy, few enough to bound memory.
const FEED_DEPTH: usize = 4;

/// Chunks at least this big are applied by all lanes in parallel (smaller ones, such as
/// live appends, are not worth the threads).
const PARALLEL_MIN_EVENTS: usize = 256;

/// One event of a chunk, decoded once for every lane (owned, so lanes on other threads can
/// read it after the log visit).
struct Decoded {
    position: u64,
    event_type: String,
    occurred_at: i64,
    recorded_at: i64,
    actor: String,
    on_behalf_of: Option<String>,
    stream_id: String,
    stream_version: u64,
    decoded: Result<(WorkspaceId, DomainEvent), ProjectionError>,
}

impl Decoded {
    fn of(store: &Store, raw: &RawEvent<'_>) -> Decoded {
        let decoded = meta(raw).and_then(|meta| Ok((meta.workspace_id, decode(store, raw)?)));
        Decoded {
            position: raw.position,
            event_type: raw.event_type.to_owned(),
            occurred_at: raw.occurred_at,
            recorded_at: raw.recorded_at,
            actor: raw.actor.to_owned(),
            on_behalf_of: raw.on_behalf_of.map(str::to_owned),
            stream_id: raw.stream_id.to_owned(),
            stream_version: raw.version,
            decoded,
        }
    }

    /// The envelope facts, with the workspace id decoding found.
    fn meta(&self, workspace_id: WorkspaceId) -> EventMeta<'_> {
        EventMeta {
            position: self.position,
            workspace_id,
            occurred_at: Timestamp(self.occurred_at),
            recorded_at: Timestamp(self.recorded_at),
            actor: &self.actor,
            on_behalf_of: self.on_behalf_of.as_deref(),
            stream_id: &self.stream_id,
            stream_version: self.stream_version,
        }
    }
}

/// Decodes `raw` once and applies it to every lane that wants it, recording failures.
fn dispatch(store: &Store, lanes: &mut [Lane<'_>], raw: &RawEvent<'_>) {
    let decoded = decode(store, raw).and_then(|event| Ok((event, meta(raw)?)));
    for lane in lanes.iter_mut() {
        if !lane.wants(raw.position, raw.event_type) {
            continue;
        }
        lane.take(
            raw.position,
            decoded.as_ref().map(|(event, meta)| (meta, event)),
        );
    }
}

/// The domain event in `raw`, upcast first when the store has steps for its version.
fn decode(store: &Store, raw: &RawEvent<'_>) -> Result<DomainEvent, ProjectionError> {
    let upcasters = store.upcasters();
    if upcasters.is_empty()
        || upcasters.current_version(raw.event_type, raw.schema_version) == raw.schema_version
    {
        return decode_payload(
            raw.position,
            raw.event_type,
            raw.schema_version,
            raw.payload,
        );
    }
    let event = upcasters.apply(raw.to_recorded()?)?;
    decode_payload(
        event.position,
        &event.event_type,
        event.schema_version,
        &event.payload,
    )
}

/// The envelope facts of `raw`; a workspace id that is not a UUID v7 is an error.
fn meta<'a>(raw: &RawEvent<'a>) -> Result<EventMeta<'a>, ProjectionError> {
    let workspace_id = WorkspaceId::new(raw.workspace_id).map_err(|e| ProjectionError::Decode {
        position: raw.position,
        event_type: raw.event_type.chars().take(100).collect(),
        detail: e.to_string(),
    })?;
    Ok(EventMeta {
        position: raw.position,
        workspace_id,
        occurred_at: Timestamp(raw.occurred_at),
        recorded_at: Timestamp(raw.recorded_at),
        actor: raw.actor,
        on_behalf_of: raw.on_behalf_of,
        stream_id: raw.stream_id,
        stream_version: raw.version,
    })
}
