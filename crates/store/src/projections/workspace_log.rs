//! The per-workspace log index: every event of a workspace numbered 1, 2, 3, ... in global
//! log order, with no gaps, so the gateway can show auditors a position local to their
//! workspace instead of the global log position (whose gaps would reveal how much other
//! workspaces write), and page through one workspace's events at the cost of the page rather
//! than of the whole log.
//!
//! Key layout of the `workspace_log` tree (`ws` = workspace UUID, 16 raw bytes; integers
//! big-endian):
//!
//! | key                       | value                                        |
//! |---------------------------|----------------------------------------------|
//! | `N ‖ ws`                  | u64: the workspace's last sequence (its event count) |
//! | `S ‖ ws ‖ sequence`       | u64 global position ‖ event type (UTF-8)     |
//! | `G ‖ ws ‖ position`       | u64: the sequence of the event at that global position |
//!
//! The projection reads every domain event type ([`sijil_domain::EVENT_TYPES`]); events of
//! types this build does not know are not numbered. Applying is a pure function of the log
//! order, so a rebuild numbers every event exactly as the incremental build did.

use sijil_domain::{DomainEvent, WorkspaceId};

use super::error::ProjectionError;
use super::keys::{prefix_end, Key, Reader};
use super::overlay::Overlay;
use super::{EventMeta, Projection};

/// Keyspace of the per-workspace counters.
const COUNT: u8 = b'N';
/// Keyspace of sequence → global position.
const SEQUENCE: u8 = b'S';
/// Keyspace of global position → sequence.
const GLOBAL: u8 = b'G';

/// One numbered event of a workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Position within the workspace (1-based, gap-free).
    pub sequence: u64,
    /// Global log position.
    pub position: u64,
    /// The event type.
    pub event_type: String,
}

/// Numbers each workspace's events.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkspaceLogProjection;

impl Projection for WorkspaceLogProjection {
    fn name(&self) -> &'static str {
        "workspace_log"
    }

    fn version(&self) -> u32 {
        1
    }

    fn event_types(&self) -> &'static [&'static str] {
        sijil_domain::EVENT_TYPES
    }

    fn apply(
        &self,
        ov: &mut Overlay<'_>,
        meta: &EventMeta<'_>,
        event: &DomainEvent,
    ) -> Result<(), ProjectionError> {
        let ws = meta.workspace_id;
        let count_key = Key::new(COUNT).uuid(ws.as_uuid()).build();
        let last = match ov.get(&count_key)? {
            Some(bytes) => be_u64(&bytes, "workspace log counter")?,
            None => 0,
        };
        let sequence = last.saturating_add(1);
        let mut value = meta.position.to_be_bytes().to_vec();
        value.extend_from_slice(event.event_type().as_bytes());
        ov.insert(sequence_key(ws, sequence), value);
        ov.insert(
            global_key(ws, meta.position),
            sequence.to_be_bytes().to_vec(),
        );
        ov.insert(count_key, sequence.to_be_bytes().to_vec());
        Ok(())
    }
}

fn sequence_key(ws: WorkspaceId, sequence: u64) -> Vec<u8> {
    Key::new(SEQUENCE).uuid(ws.as_uuid()).u64(sequence).build()
}

fn global_key(ws: WorkspaceId, position: u64) -> Vec<u8> {
    Key::new(GLOBAL).uuid(ws.as_uuid()).u64(position).build()
}

fn be_u64(bytes: &[u8], what: &'static str) -> Result<u64, ProjectionError> {
    let mut reader = Reader::new(bytes, what);
    let value = reader.u64()?;
    if !reader.rest().is_empty() {
        return Err(ProjectionError::corrupt(format!(
            "{what} is longer than 8 bytes"
        )));
    }
    Ok(value)
}

fn sled_error(e: sled::Error) -> ProjectionError {
    ProjectionError::sled("read workspace log", e)
}

/// How many events of `ws` the index holds (= its last sequence).
pub fn count(tree: &sled::Tree, ws: WorkspaceId) -> Result<u64, ProjectionError> {
    let key = Key::new(COUNT).uuid(ws.as_uuid()).build();
    match tree.get(key).map_err(sled_error)? {
        Some(bytes) => be_u64(&bytes, "workspace log counter"),
        None => Ok(0),
    }
}

fn entry(key: &[u8], value: &[u8]) -> Result<LogEntry, ProjectionError> {
    let mut k = Reader::new(key, "workspace log key");
    k.skip(1 + 16)?;
    let sequence = k.u64()?;
    let mut v = Reader::new(value, "workspace log entry");
    let position = v.u64()?;
    let event_type = std::str::from_utf8(v.rest())
        .map_err(|_| ProjectionError::corrupt("workspace log event type is not UTF-8"))?
        .to_owned();
    Ok(LogEntry {
        sequence,
        position,
        event_type,
    })
}

/// At most `limit` entries of `ws` from sequence `from` on, in order.
pub fn entries(
    tree: &sled::Tree,
    ws: WorkspaceId,
    from: u64,
    limit: usize,
) -> Result<Vec<LogEntry>, ProjectionError> {
    let start = sequence_key(ws, from);
    let end = prefix_end(&Key::new(SEQUENCE).uuid(ws.as_uuid()).build());
    let mut out = Vec::new();
    let range = match &end {
        Some(end) => tree.range(start.as_slice()..end.as_slice()),
        None => tree.range(start.as_slice()..),
    };
    for item in range.take(limit) {
        let (key, value) = item.map_err(sled_error)?;
        out.push(entry(&key, &value)?);
    }
    Ok(out)
}

/// The global position of `ws`'s event number `sequence`, if the index holds it.
pub fn position_of(
    tree: &sled::Tree,
    ws: WorkspaceId,
    sequence: u64,
) -> Result<Option<u64>, ProjectionError> {
    match tree.get(sequence_key(ws, sequence)).map_err(sled_error)? {
        Some(value) => Ok(Some(Reader::new(&value, "workspace log entry").u64()?)),
        None => Ok(None),
    }
}

/// The sequence of `ws`'s event at global `position`; `None` when the index does not hold
/// it (not applied yet, or not an event of `ws`).
pub fn sequence_of(
    tree: &sled::Tree,
    ws: WorkspaceId,
    position: u64,
) -> Result<Option<u64>, ProjectionError> {
    match tree.get(global_key(ws, position)).map_err(sled_error)? {
        Some(value) => Ok(Some(be_u64(&value, "workspace log sequence")?)),
        None => Ok(None),
    }
}

/// The last event of `ws` at or before global `position`: `(sequence, global position)`.
pub fn last_at_or_before(
    tree: &sled::Tree,
    ws: WorkspaceId,
    position: u64,
) -> Result<Option<(u64, u64)>, ProjectionError> {
    let start = Key::new(GLOBAL).uuid(ws.as_uuid()).build();
    let end = global_key(ws, position.saturating_add(1));
    let mut range = if position == u64::MAX {
        match prefix_end(&start) {
            Some(end) => tree.range(start.as_slice()..end.as_slice()),
            None => tree.range(start.as_slice()..),
        }
    } else {
        tree.range(start.as_slice()..end.as_slice())
    };
    match range.next_back() {
        None => Ok(None),
        Some(item) => {
            let (key, value) = item.map_err(sled_error)?;
            let mut k = Reader::new(&key, "workspace log key");
            k.skip(1 + 16)?;
            let global = k.u64()?;
            Ok(Some((be_u64(&value, "workspace log sequence")?, global)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_domain_event_type() {
        assert_eq!(
            WorkspaceLogProjection.event_types(),
            sijil_domain::events::EVENT_TYPES
        );
    }

    #[test]
    fn malformed_rows_are_corruption_not_panics() -> Result<(), Box<dyn std::error::Error>> {
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("t")?;
        let ws = WorkspaceId::new(uuid::Uuid::now_v7())?;
        tree.insert(Key::new(COUNT).uuid(ws.as_uuid()).build(), &[1u8, 2][..])?;
        assert!(count(&tree, ws).is_err());
        tree.insert(sequence_key(ws, 1), &[0u8; 3][..])?;
        assert!(entries(&tree, ws, 1, 10).is_err());
        assert!(position_of(&tree, ws, 1).is_err());
        tree.insert(global_key(ws, 9), &[0u8; 9][..])?;
        assert!(sequence_of(&tree, ws, 9).is_err());
        Ok(())
    }
}
