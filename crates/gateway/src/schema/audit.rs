//! Auditor queries: raw event envelopes of one stream (`events`) or of the whole workspace
//! (`allEvents`), a customer and their timeline as they stood at a past position or time
//! (`customerAsOf`, rebuilt from the workspace's events into a temporary tree), and
//! hash-chain checks (`verifyStream`). Everything is scoped to the caller's workspace:
//! another workspace's stream reads as NOT_FOUND, and every position is local to the
//! workspace ([`positions`](super::positions)): `allEvents` and `customerAsOf` go through the
//! workspace log index, so their cost and their answers depend only on the caller's own
//! events, never on how much other workspaces write.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, Object, SimpleObject, ID};
use sijil_domain as d;
use sijil_domain::customer::CustomerAggregate;
use sijil_domain::Aggregate;
use sijil_store::projections::timeline::TimelineProjection;
use sijil_store::projections::{EventMeta, Overlay, Projection};
use sijil_store::vault::Vault;
use sijil_store::{Direction, Store};

use crate::auth::Permission;
use crate::context::{page_size, shared, store_error, workspace, Need, Shared};
use crate::error::ApiError;
use crate::schema::customer::{CustomerNode, TimelineSource};
use crate::schema::positions;
use crate::schema::types::{parse_id, Event};
use crate::shredding::open_event;
use crate::time::DateTime;

/// Index entries of the workspace one `allEvents` call looks at most while skipping events
/// of types it was not asked for.
const SCAN_BUDGET: usize = 10_000;
/// Index entries read (and events applied) per committed chunk of an as-of rebuild.
const AS_OF_CHUNK: usize = 2_000;

/// A page of events.
#[derive(SimpleObject)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Where to continue: a stream version for `events`, a position local to the workspace
    /// for `allEvents`.
    pub next: u64,
    /// Whether more may follow `next`.
    pub has_more: bool,
}

/// One problem a hash-chain check found.
#[derive(SimpleObject)]
pub struct VerifyProblem {
    /// The workspace-local position of the event with the problem (none when the workspace
    /// log index does not hold it, e.g. an event too damaged to index).
    pub position: Option<u64>,
    /// A stable name, e.g. `BrokenChain`, `HashMismatch`, `VersionGap`.
    pub kind: String,
    pub detail: String,
}

/// The outcome of checking one stream's hash chain.
#[derive(SimpleObject)]
pub struct StreamVerification {
    pub stream_id: String,
    /// Whether every hash links and matches.
    pub ok: bool,
    pub events_checked: u64,
    /// The check covered the stream's events up to the durable end of the log: this is the
    /// workspace-local position of the workspace's last event there (0 if none is indexed).
    pub durable_position: u64,
    pub problem: Option<VerifyProblem>,
}

/// A customer as they stood at a past position of the workspace's log.
#[derive(SimpleObject)]
pub struct CustomerAsOf {
    /// The workspace-local position the state was rebuilt up to (inclusive).
    pub position: u64,
    pub customer: CustomerNode,
}

/// A timeline rebuilt into a temporary database (dropped with the last reference).
pub struct AsOfTimeline {
    _db: sled::Db,
    pub tree: sled::Tree,
    /// The global log position it was rebuilt up to.
    pub position: u64,
    /// The customer has been forgotten since: entries show no personal text.
    pub erase: bool,
}

/// Checks a stream id's form and that it belongs to workspace `ws`.
fn owned_stream(store: &Store, ws: d::WorkspaceId, stream_id: &str) -> async_graphql::Result<()> {
    if d::StreamRef::parse(stream_id).is_none() {
        return Err(ApiError::Validation {
            message: format!(
                "`{}` is not a stream id such as customer-<uuid v7>",
                stream_id.chars().take(80).collect::<String>()
            ),
            reason: "INVALID_ID",
            field: Some("streamId".to_owned()),
        }
        .extend());
    }
    let first = store
        .read_stream(stream_id, 1, Direction::Forward, 1)
        .map_err(store_error)?;
    match first.first() {
        Some(e) if e.workspace_id == ws.as_uuid() => Ok(()),
        _ => Err(ApiError::NotFound(format!("stream {stream_id}")).extend()),
    }
}

/// The last log position recorded at or before `at` (0 if none); assumes recording times
/// grow with positions, which the single writer's clock gives.
fn position_at(store: &Store, at: d::Timestamp) -> async_graphql::Result<u64> {
    let (mut lo, mut hi) = (0u64, store.head_position());
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        let event = store.read_all(mid, 1, None).map_err(store_error)?;
        match event.first() {
            Some(e) if e.recorded_at <= at.millis() => lo = mid,
            _ => hi = mid - 1,
        }
    }
    Ok(lo)
}

/// Folds `customer`'s stream up to `position`; `None` if they did not exist then.
fn customer_at(
    store: &Store,
    vault: Option<&Vault>,
    ws: d::WorkspaceId,
    customer: d::CustomerId,
    position: u64,
) -> async_graphql::Result<Option<(d::customer::Customer, u64)>> {
    let stream = d::StreamRef::Customer(customer).stream_id();
    let mut state = d::customer::State::default();
    let mut version = 0;
    let mut from = 1;
    'read: loop {
        let batch = store
            .read_stream(&stream, from, Direction::Forward, 500)
            .map_err(store_error)?;
        let Some(last) = batch.last() else { break };
        from = last.version + 1;
        for recorded in &batch {
            if recorded.workspace_id != ws.as_uuid() {
                return Ok(None);
            }
            if recorded.position > position {
                break 'read;
            }
            let event =
                open_event(vault, store, recorded).map_err(|e| ApiError::internal(e).extend())?;
            state = CustomerAggregate::evolve(state, &event);
            version = recorded.version;
        }
        if batch.len() < 500 {
            break;
        }
    }
    Ok(state.customer().map(|c| (c.clone(), version)))
}

/// Applies the timeline projection to workspace `ws`'s events up to local position `local`
/// (global position `global`) in a temporary tree, reading only the workspace's events
/// through the workspace log index. Blocking.
fn rebuild_timeline(
    shared: &Shared,
    ws: d::WorkspaceId,
    local: u64,
    global: u64,
) -> Result<AsOfTimeline, async_graphql::Error> {
    let budget = shared.config.as_of_max_events;
    if local > budget {
        return Err(ApiError::validation(
            format!(
                "an as-of rebuild reads at most {budget} events of the workspace; pick an earlier position"
            ),
            "AS_OF_TOO_FAR",
        )
        .extend());
    }
    let db = sled::Config::new()
        .temporary(true)
        .open()
        .map_err(|e| ApiError::internal(e).extend())?;
    let tree = db
        .open_tree("timeline")
        .map_err(|e| ApiError::internal(e).extend())?;
    let projection = TimelineProjection;
    let wanted = projection.event_types();
    let mut next = 1u64;
    while next <= local {
        let room = usize::try_from(local - next + 1).unwrap_or(AS_OF_CHUNK);
        let batch = positions::entries(shared, ws, next, AS_OF_CHUNK.min(room))?;
        let Some(last) = batch.last().map(|e| e.sequence) else {
            break;
        };
        // A temporary database: nothing survives a crash, so no redo record is needed.
        let mut ov = Overlay::unguarded(&tree);
        let mut committed = 0;
        for entry in batch.iter().filter(|e| e.sequence <= local) {
            committed = entry.position;
            if !wanted.contains(&entry.event_type.as_str()) {
                continue;
            }
            let recorded = positions::read_event(shared, ws, entry.position)?;
            let event = open_event(shared.vault.as_ref(), &shared.store, &recorded)
                .map_err(|e| ApiError::internal(e).extend())?;
            let meta =
                EventMeta::from_recorded(&recorded).map_err(|e| ApiError::internal(e).extend())?;
            projection
                .apply(&mut ov, &meta, &event)
                .map_err(|e| ApiError::internal(e).extend())?;
        }
        ov.commit(committed)
            .map_err(|e| ApiError::internal(e).extend())?;
        if last >= local {
            break;
        }
        next = last + 1;
    }
    Ok(AsOfTimeline {
        _db: db,
        tree,
        position: global,
        erase: false,
    })
}

/// Auditor queries.
#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Events of one stream from `fromVersion` (default 1), oldest first. Their positions are
    /// local to the workspace.
    #[graphql(
        guard = "Need(Permission::ReadEvents)",
        complexity = "crate::schema::customer::paged(first, None, child_complexity)"
    )]
    async fn events(
        &self,
        ctx: &Context<'_>,
        stream_id: String,
        from_version: Option<u64>,
        first: Option<i32>,
    ) -> async_graphql::Result<EventPage> {
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        let size = page_size(&shared.config, first, 50)?;
        owned_stream(&shared.store, ws, &stream_id)?;
        let from = from_version.unwrap_or(1).max(1);
        let mut events = shared
            .store
            .read_stream(&stream_id, from, Direction::Forward, size.saturating_add(1))
            .map_err(store_error)?;
        let has_more = events.len() > size;
        events.truncate(size);
        let next = events.last().map_or(from, |e| e.version + 1);
        Ok(EventPage {
            events: positions::to_api(shared, ws, events).await?,
            next,
            has_more,
        })
    }

    /// The workspace's events in log order from `fromPosition` (default 1), optionally only
    /// of the given types. Positions are local to the workspace: its events are numbered 1,
    /// 2, 3, ... with no gaps, so other workspaces' writes neither show nor can be inferred.
    /// Continue with `fromPosition: next` while `hasMore`. When `types` is given, one call
    /// looks at most at 10000 of the workspace's events and may return a short (even empty)
    /// page with `hasMore` set.
    #[graphql(
        guard = "Need(Permission::ReadEvents)",
        complexity = "crate::schema::customer::paged(first, None, child_complexity)"
    )]
    async fn all_events(
        &self,
        ctx: &Context<'_>,
        from_position: Option<u64>,
        first: Option<i32>,
        types: Option<Vec<String>>,
    ) -> async_graphql::Result<EventPage> {
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        let size = page_size(&shared.config, first, 50)?;
        if let Some(types) = &types {
            if let Some(bad) = types.iter().find(|t| !d::EVENT_TYPES.contains(&t.as_str())) {
                return Err(ApiError::Validation {
                    message: format!(
                        "unknown event type `{}`",
                        bad.chars().take(100).collect::<String>()
                    ),
                    reason: "UNKNOWN_EVENT_TYPE",
                    field: Some("types".to_owned()),
                }
                .extend());
            }
        }
        let count = positions::count(shared, ws)?;
        let mut next = from_position.unwrap_or(1).max(1);
        let mut out = Vec::new();
        let mut scanned = 0usize;
        while out.len() < size && next <= count && scanned < SCAN_BUDGET {
            let want = match &types {
                None => size - out.len(),
                Some(_) => (SCAN_BUDGET - scanned).min(1_000),
            };
            let batch = positions::entries(shared, ws, next, want)?;
            if batch.is_empty() {
                break;
            }
            scanned += batch.len();
            for entry in batch {
                if out.len() == size {
                    break;
                }
                next = entry.sequence + 1;
                let wanted = types
                    .as_ref()
                    .is_none_or(|types| types.contains(&entry.event_type));
                if wanted {
                    out.push(Event {
                        event: positions::read_event(shared, ws, entry.position)?,
                        local_position: entry.sequence,
                    });
                }
            }
        }
        Ok(EventPage {
            events: out,
            next,
            has_more: next <= count,
        })
    }

    /// A customer and their timeline as they stood at `position` (local to the workspace,
    /// as in `allEvents`), or at time `at` (the workspace's last event recorded by then).
    /// Rebuilt from the workspace's own events; a position above the server's as-of limit
    /// (250000 by default) is refused with VALIDATION, reason AS_OF_TOO_FAR.
    #[graphql(guard = "Need(Permission::ReadEvents)")]
    async fn customer_as_of(
        &self,
        ctx: &Context<'_>,
        id: ID,
        position: Option<u64>,
        at: Option<DateTime>,
    ) -> async_graphql::Result<CustomerAsOf> {
        let shared: Arc<Shared> = Arc::clone(shared(ctx)?);
        let ws = workspace(ctx)?;
        let id = parse_id(&id, d::CustomerId::parse, "id")?;
        let (local, global) = match (position, at) {
            (Some(p), None) => {
                let local = p.min(positions::count(&shared, ws)?);
                if local == 0 {
                    (0, 0)
                } else {
                    let global = positions::global(&shared, ws, local)?.ok_or_else(|| {
                        ApiError::internal(format!(
                            "the workspace log index has no entry {local} below its count"
                        ))
                        .extend()
                    })?;
                    (local, global)
                }
            }
            (None, Some(at)) => {
                let bound = position_at(&shared.store, at.0)?;
                positions::last_at_or_before(&shared, ws, bound)?.unwrap_or((0, 0))
            }
            _ => {
                return Err(ApiError::validation(
                    "give exactly one of `position` and `at`",
                    "AS_OF_ARGS",
                )
                .extend())
            }
        };
        let found = if local == 0 {
            None
        } else {
            customer_at(&shared.store, shared.vault.as_ref(), ws, id, global)?
        };
        let Some((mut customer, version)) = found else {
            return Err(ApiError::NotFound(format!("customer {id} at position {local}")).extend());
        };
        let erase = crate::schema::erasure::forgotten(&shared, ws, id);
        if erase {
            customer.display_name.clear();
            customer.contact_points.clear();
        }
        let rebuild_shared = Arc::clone(&shared);
        let mut timeline = tokio::task::spawn_blocking(move || {
            rebuild_timeline(&rebuild_shared, ws, local, global)
        })
        .await
        .map_err(|e| ApiError::internal(e).extend())??;
        timeline.erase = erase;
        Ok(CustomerAsOf {
            position: local,
            customer: CustomerNode {
                customer,
                version,
                source: TimelineSource::AsOf(Arc::new(timeline)),
                folded: false,
            },
        })
    }

    /// Whether a stream's hash chain holds.
    #[graphql(guard = "Need(Permission::ReadEvents)")]
    async fn verify_stream(
        &self,
        ctx: &Context<'_>,
        stream_id: String,
    ) -> async_graphql::Result<StreamVerification> {
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        owned_stream(&shared.store, ws, &stream_id)?;
        let report = shared
            .store
            .verify_stream(&stream_id)
            .map_err(store_error)?;
        let durable_position = positions::last_at_or_before(shared, ws, report.durable_position)?
            .map_or(0, |(local, _)| local);
        let ok = report.is_ok();
        let problem = match report.problem {
            None => None,
            Some(p) => Some(VerifyProblem {
                position: positions::local_opt(shared, ws, p.position).await?,
                kind: format!("{:?}", p.kind),
                detail: p.detail,
            }),
        };
        Ok(StreamVerification {
            ok,
            events_checked: report.events_checked,
            durable_position,
            problem,
            stream_id,
        })
    }
}
