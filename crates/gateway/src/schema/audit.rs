//! Auditor queries: raw event envelopes of one stream (`events`) or of the whole workspace
//! (`allEvents`), a customer and their timeline as they stood at a past position or time
//! (`customerAsOf`, rebuilt from the log into a temporary tree), and hash-chain checks
//! (`verifyStream`). Everything is scoped to the caller's workspace: another workspace's
//! stream reads as NOT_FOUND and its events are skipped.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, Object, SimpleObject, ID};
use sijil_domain as d;
use sijil_domain::customer::CustomerAggregate;
use sijil_domain::Aggregate;
use sijil_store::projections::timeline::TimelineProjection;
use sijil_store::projections::{EventMeta, Overlay, Projection};
use sijil_store::vault::Vault;
use sijil_store::{Direction, RecordedEvent, Store};

use crate::auth::Permission;
use crate::context::{page_size, shared, store_error, workspace, Need, Shared};
use crate::error::ApiError;
use crate::schema::customer::{CustomerNode, TimelineSource};
use crate::schema::types::{parse_id, Event};
use crate::shredding::open_event;
use crate::time::DateTime;

/// Log entries one `allEvents` call reads at most while skipping other workspaces' events.
const SCAN_BUDGET: usize = 10_000;
/// Log entries a `customerAsOf` rebuild reads at most.
pub const AS_OF_BUDGET: u64 = 250_000;
/// Events applied per committed chunk of an as-of rebuild.
const AS_OF_CHUNK: usize = 2_000;

/// A page of events.
#[derive(SimpleObject)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Where to continue: a stream version for `events`, a log position for `allEvents`.
    pub next: u64,
    /// Whether more may follow `next`.
    pub has_more: bool,
}

/// One problem a hash-chain check found.
#[derive(SimpleObject)]
pub struct VerifyProblem {
    pub position: u64,
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
    /// The durable log position the check was bounded by.
    pub durable_position: u64,
    pub problem: Option<VerifyProblem>,
}

/// A customer as they stood at a past log position.
#[derive(SimpleObject)]
pub struct CustomerAsOf {
    /// The log position the state was rebuilt up to (inclusive).
    pub position: u64,
    pub customer: CustomerNode,
}

/// A timeline rebuilt into a temporary database (dropped with the last reference).
pub struct AsOfTimeline {
    _db: sled::Db,
    pub tree: sled::Tree,
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

/// Applies the timeline projection to workspace `ws`'s events up to `position` in a
/// temporary tree. Blocking.
fn rebuild_timeline(
    store: &Store,
    vault: Option<&Vault>,
    ws: d::WorkspaceId,
    position: u64,
) -> Result<AsOfTimeline, ApiError> {
    if position > AS_OF_BUDGET {
        return Err(ApiError::validation(
            format!("an as-of rebuild reads at most {AS_OF_BUDGET} log entries; pick an earlier position"),
            "AS_OF_TOO_FAR",
        ));
    }
    let db = sled::Config::new()
        .temporary(true)
        .open()
        .map_err(ApiError::internal)?;
    let tree = db.open_tree("timeline").map_err(ApiError::internal)?;
    let projection = TimelineProjection;
    let types: Vec<String> = projection
        .event_types()
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    let mut next = 1u64;
    while next <= position {
        let room = usize::try_from(position - next + 1).unwrap_or(AS_OF_CHUNK);
        let batch: Vec<RecordedEvent> = store
            .read_all(next, AS_OF_CHUNK.min(room), Some(&types))
            .map_err(ApiError::internal)?;
        let Some(last) = batch.last().map(|e| e.position) else {
            break;
        };
        let mut ov = Overlay::new(&tree);
        let mut committed = next.saturating_sub(1);
        for recorded in batch.iter().filter(|e| e.position <= position) {
            committed = recorded.position;
            if recorded.workspace_id != ws.as_uuid() {
                continue;
            }
            let event = open_event(vault, store, recorded).map_err(ApiError::internal)?;
            let meta = EventMeta::from_recorded(recorded).map_err(ApiError::internal)?;
            projection
                .apply(&mut ov, &meta, &event)
                .map_err(ApiError::internal)?;
        }
        ov.commit(committed).map_err(ApiError::internal)?;
        if last >= position {
            break;
        }
        next = last + 1;
    }
    Ok(AsOfTimeline {
        _db: db,
        tree,
        position,
        erase: false,
    })
}

/// Auditor queries.
#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Events of one stream from `fromVersion` (default 1), oldest first.
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
            events: events.into_iter().map(Event).collect(),
            next,
            has_more,
        })
    }

    /// The workspace's events in log order from `fromPosition` (default 1), optionally only
    /// of the given types.
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
        let head = shared.store.head_position();
        let mut next = from_position.unwrap_or(1).max(1);
        let mut out = Vec::new();
        let mut scanned = 0usize;
        while out.len() < size && next <= head && scanned < SCAN_BUDGET {
            let want = (SCAN_BUDGET - scanned).min(1_000);
            let batch = shared
                .store
                .read_all(next, want, types.as_deref())
                .map_err(store_error)?;
            let Some(last) = batch.last().map(|e| e.position) else {
                next = head + 1;
                break;
            };
            // Filtered reads skip positions; count what the read covered.
            scanned += usize::try_from(last - next + 1).unwrap_or(usize::MAX);
            for event in batch {
                if out.len() == size {
                    next = event.position;
                    break;
                }
                next = event.position + 1;
                if event.workspace_id == ws.as_uuid() {
                    out.push(Event(event));
                }
            }
        }
        Ok(EventPage {
            events: out,
            next,
            has_more: next <= head,
        })
    }

    /// A customer and their timeline as they stood at log `position`, or at time `at` (the
    /// last event recorded by then). Rebuilt from the log.
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
        let head = shared.store.head_position();
        let position = match (position, at) {
            (Some(p), None) => p.min(head),
            (None, Some(at)) => position_at(&shared.store, at.0)?,
            _ => {
                return Err(ApiError::validation(
                    "give exactly one of `position` and `at`",
                    "AS_OF_ARGS",
                )
                .extend())
            }
        };
        let Some((mut customer, version)) =
            customer_at(&shared.store, shared.vault.as_ref(), ws, id, position)?
        else {
            return Err(
                ApiError::NotFound(format!("customer {id} at position {position}")).extend(),
            );
        };
        let erase = crate::schema::erasure::forgotten(&shared, ws, id);
        if erase {
            customer.display_name.clear();
            customer.contact_points.clear();
        }
        let store = shared.store.clone();
        let vault = shared.vault.clone();
        let mut timeline = tokio::task::spawn_blocking(move || {
            rebuild_timeline(&store, vault.as_ref(), ws, position)
        })
        .await
        .map_err(|e| ApiError::internal(e).extend())?
        .map_err(|e| e.extend())?;
        timeline.erase = erase;
        Ok(CustomerAsOf {
            position,
            customer: CustomerNode {
                customer,
                version,
                source: TimelineSource::AsOf(Arc::new(timeline)),
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
        Ok(StreamVerification {
            ok: report.is_ok(),
            events_checked: report.events_checked,
            durable_position: report.durable_position,
            problem: report.problem.map(|p| VerifyProblem {
                position: p.position,
                kind: format!("{:?}", p.kind),
                detail: p.detail,
            }),
            stream_id,
        })
    }
}
