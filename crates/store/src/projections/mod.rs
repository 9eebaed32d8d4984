//! Projections (read models) of sijil: query-shaped views derived from the event log.
//!
//! A [`Projection`] has a name and a version, consumes domain events in global log order and
//! writes only its own sled tree. Each *generation* of a projection is one tree named
//! `proj/<name>/v<version>/g<generation>`; the `projection_meta` tree points each name at its
//! active generation ([`meta`]). Inside a tree, keyspaces are separated by a leading prefix
//! byte (each projection module documents its layout); integers are big-endian and signed
//! times are offset by 2^63 so scans come back in order; the key `0x00 "checkpoint"` holds the
//! last applied log position. Rows and the checkpoint of a chunk of events are committed all
//! or nothing, behind a redo record ([`overlay`], [`catchup`]), so a crash never applies an
//! event twice or skips one.
//!
//! A [`ProjectionHandle`] owns one projection's active tree and catch-up (usable offline, e.g.
//! by the CLI); [`Projections`] runs a tokio task per projection that follows the store's
//! durable head, and offers read-your-writes ([`Projections::wait_for`]), rebuilds that swap
//! generations while the old one keeps serving queries, and consistency checks. A projection
//! whose version in code differs from its stored model rebuilds itself on start.
//!
//! The four standard projections and their queries: [`timeline`] (customer timeline),
//! [`escalation`] (case state, queues, SLA due times), [`metrics`] (service metrics and the
//! leaderboard), [`directory`] (customer directory and search), plus [`workspace_log`] (each
//! workspace's events numbered gap-free, for auditors). Query functions are pure
//! synchronous reads of a tree; every one takes the workspace id and never returns another
//! workspace's rows.

pub mod catchup;
pub mod check;
pub mod codec;
pub mod cursor;
pub mod directory;
pub mod error;
pub mod escalation;
pub mod handle;
pub mod keys;
pub mod meta;
pub mod metrics;
pub mod overlay;
pub mod paging;
pub mod rebuild;
pub mod rows;
pub mod runner;
pub mod sla;
pub mod status;
pub mod text;
pub mod timeline;
pub mod workspace_log;

use std::sync::Arc;

use sijil_domain::{DomainEvent, Timestamp, WorkspaceId};

use crate::event::RecordedEvent;

pub use codec::{decode_event, encode_event};
pub use error::ProjectionError;
pub use handle::{CatchUpOptions, ProjectionHandle, RebuildOptions};
pub use overlay::Overlay;
pub use runner::Projections;
pub use status::{CheckReport, KeyDifference, ProjectionState, ProjectionStatus, RebuildStats};

/// The envelope facts of the event being applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventMeta<'a> {
    /// Global log position.
    pub position: u64,
    /// The workspace (tenant) the event belongs to.
    pub workspace_id: WorkspaceId,
    /// When it happened (caller's clock).
    pub occurred_at: Timestamp,
    /// When the store recorded it.
    pub recorded_at: Timestamp,
    /// Who caused it.
    pub actor: &'a str,
    /// The principal the actor acted for.
    pub on_behalf_of: Option<&'a str>,
    /// The stream, e.g. `case-<uuid>`.
    pub stream_id: &'a str,
    /// The event's version within its stream.
    pub stream_version: u64,
}

impl<'a> EventMeta<'a> {
    /// The envelope facts of `event`; a workspace id that is not a UUID v7 is an error.
    pub fn from_recorded(event: &'a RecordedEvent) -> Result<EventMeta<'a>, ProjectionError> {
        let workspace_id =
            WorkspaceId::new(event.workspace_id).map_err(|e| ProjectionError::Decode {
                position: event.position,
                event_type: event.event_type.chars().take(100).collect(),
                detail: e.to_string(),
            })?;
        Ok(EventMeta {
            position: event.position,
            workspace_id,
            occurred_at: Timestamp(event.occurred_at),
            recorded_at: Timestamp(event.recorded_at),
            actor: &event.actor,
            on_behalf_of: event.on_behalf_of.as_deref(),
            stream_id: &event.stream_id,
            stream_version: event.version,
        })
    }
}

/// A read model built from the event log.
///
/// `apply` must be a deterministic function of the events (and of what it wrote before): the
/// runner relies on it to make incremental builds equal to rebuilds, whatever the chunking.
pub trait Projection: Send + Sync + 'static {
    /// A stable name (used in tree names; `[a-z_]` only).
    fn name(&self) -> &'static str;
    /// Bump when the layout or the meaning of the rows changes: the model is then rebuilt.
    fn version(&self) -> u32;
    /// The event types this projection reads; other events are not decoded.
    fn event_types(&self) -> &'static [&'static str];
    /// Applies one event. Errors stop the projection at this event.
    fn apply(
        &self,
        ov: &mut Overlay<'_>,
        meta: &EventMeta<'_>,
        event: &DomainEvent,
    ) -> Result<(), ProjectionError>;
}

/// The standard projections (the four read models and the [`workspace_log`] index), in a
/// stable order.
pub fn default_projections() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(timeline::TimelineProjection),
        Arc::new(escalation::EscalationProjection),
        Arc::new(metrics::MetricsProjection),
        Arc::new(directory::DirectoryProjection),
        Arc::new(workspace_log::WorkspaceLogProjection),
    ]
}

/// The standard projections for a store whose personal fields are sealed by `vault`
/// (the directory indexes keyed hashes, see [`directory`]); `None` gives
/// [`default_projections`].
pub fn default_projections_with_vault(
    vault: Option<crate::vault::Vault>,
) -> Vec<Arc<dyn Projection>> {
    match vault {
        None => default_projections(),
        Some(vault) => vec![
            Arc::new(timeline::TimelineProjection),
            Arc::new(escalation::EscalationProjection),
            Arc::new(metrics::MetricsProjection),
            Arc::new(directory::SealedDirectoryProjection::new(vault)),
            Arc::new(workspace_log::WorkspaceLogProjection),
        ],
    }
}

/// Opens `projection` in `store`'s database and applies the log up to the durable head,
/// without tokio tasks (for the CLI and tools). Returns the handle for queries.
pub fn catch_up_blocking(
    store: &crate::store::Store,
    projection: Arc<dyn Projection>,
) -> Result<ProjectionHandle, ProjectionError> {
    let handle = ProjectionHandle::open(store.db(), projection)?;
    handle.catch_up(store)?;
    Ok(handle)
}
