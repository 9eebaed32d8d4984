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
//! | `Q ‖ ws ‖ run`            | sequences `run * 64 + 1 ..= run * 64 + 64`, in order: per event u64 global position ‖ u16 type length ‖ event type (UTF-8) |
//! | `W ‖ ws ‖ window`         | the workspace's events among global positions `window * 4096 ..` `(window + 1) * 4096`: see [`Window`] |
//!
//! Local → global goes through runs of 64 sequences per row (version 3; version 2 wrote a
//! `S ‖ ws ‖ sequence` row per event, which reads still fall back to): a rebuild writes one
//! row per 64 events instead of one per event (sled's insert path is the cost of a rebuild,
//! and its in-memory page table grows with the number of rows), and a page of `allEvents`
//! reads one or two rows.
//!
//! Global → local goes through the windows rather than a row per event: a window row says
//! how many events the workspace had before it and which of its 4 096 positions are the
//! workspace's (a sorted list of offsets while there are at most 256 of them, then a
//! bitmap), so the local number of a position is the count before plus its rank in the row.
//! A workspace owning the whole log needs one 520-byte row per 4 096 events (about 1.3 MB
//! for 10 M events), small enough to stay in cache; a timeline page translating 50 random
//! positions reads a handful of hot rows instead of 50 cold ones.
//!
//! The projection reads every domain event type ([`sijil_domain::EVENT_TYPES`]); events of
//! types this build does not know are not numbered. Applying is a pure function of the log
//! order, so a rebuild numbers every event exactly as the incremental build did.

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;
use sijil_domain::{DomainEvent, WorkspaceId};

use super::error::ProjectionError;
use super::keys::{prefix_end, Key, Reader};
use super::overlay::{Deferred, Overlay};
use super::{EventMeta, Projection};

/// Keyspace of the per-workspace counters.
const COUNT: u8 = b'N';
/// Keyspace of version 2's sequence → global position rows (one per event). Version 3 no
/// longer writes them; reads fall back to them while a version 2 model serves.
const SEQUENCE: u8 = b'S';
/// Keyspace of runs of sequence → global position.
const RUNS: u8 = b'Q';
/// Sequences per run row.
const RUN: u64 = 64;
/// Keyspace of version 1's global position → sequence rows (one per event). Version 2 no
/// longer writes them, but reads fall back to them, so a model built by version 1 keeps
/// answering while the upgraded projection rebuilds (see `ProjectionHandle`: the old model
/// serves until the new one is caught up).
const LEGACY_GLOBAL: u8 = b'G';
/// Keyspace of global position windows.
const WINDOW: u8 = b'W';
/// Global positions per window.
const WINDOW_SPAN: u64 = 4096;
/// Offsets a window lists before it switches to a bitmap (both then take 512 bytes).
const MAX_LISTED: usize = 256;
/// Bytes of a window's bitmap.
const BITMAP_BYTES: usize = (WINDOW_SPAN / 8) as usize;

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
        // 2: global → local through window rows instead of a row per event.
        // 3: local → global through runs of 64 sequences instead of a row per event.
        3
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
        number(ov, meta.workspace_id, meta.position, event.event_type())
    }
}

/// What a chunk has numbered so far, per workspace, held back until commit (see
/// [`Deferred`]): the counter, the run being filled and the window being filled, so an event
/// appends to them in memory instead of rewriting three rows through the overlay. A run or
/// window the numbering moves past is written out then; the rows are those numbering the
/// events one at a time would leave.
#[derive(Debug, Default)]
struct Held {
    workspaces: FxHashMap<WorkspaceId, Numbering>,
}

#[derive(Debug)]
struct Numbering {
    /// The last sequence given.
    count: u64,
    /// The open run: its number and value.
    run: Option<(u64, Vec<u8>)>,
    /// The open window: its number and rows.
    window: Option<(u64, Window)>,
}

impl Numbering {
    /// Writes the open run, if any, into the overlay.
    fn close_run(&mut self, ov: &mut Overlay<'_>, ws: WorkspaceId) {
        if let Some((run, value)) = self.run.take() {
            ov.insert(run_key(ws, run), value);
        }
    }

    /// Writes the open window, if any, into the overlay.
    fn close_window(&mut self, ov: &mut Overlay<'_>, ws: WorkspaceId) {
        if let Some((window, rows)) = self.window.take() {
            ov.insert(window_key(ws, window), rows.encode());
        }
    }
}

impl Deferred for Held {
    fn flush(self: Box<Self>, ov: &mut Overlay<'_>) -> Result<(), ProjectionError> {
        for (ws, mut numbering) in self.workspaces {
            numbering.close_run(ov, ws);
            numbering.close_window(ov, ws);
            ov.insert(
                Key::new(COUNT).uuid(ws.as_uuid()).build(),
                numbering.count.to_be_bytes().to_vec(),
            );
        }
        Ok(())
    }
}

/// Numbers `ws`'s event at global `position` (positions arrive in increasing order).
fn number(
    ov: &mut Overlay<'_>,
    ws: WorkspaceId,
    position: u64,
    event_type: &str,
) -> Result<(), ProjectionError> {
    let mut held = ov.take_deferred::<Held>();
    let result = number_held(ov, &mut held, ws, position, event_type);
    ov.put_deferred(held);
    result
}

fn number_held(
    ov: &mut Overlay<'_>,
    held: &mut Held,
    ws: WorkspaceId,
    position: u64,
    event_type: &str,
) -> Result<(), ProjectionError> {
    let numbering = match held.workspaces.entry(ws) {
        Entry::Occupied(known) => known.into_mut(),
        Entry::Vacant(slot) => {
            let count_key = Key::new(COUNT).uuid(ws.as_uuid()).build();
            let count = match ov.get(&count_key)? {
                Some(bytes) => be_u64(&bytes, "workspace log counter")?,
                None => 0,
            };
            slot.insert(Numbering {
                count,
                run: None,
                window: None,
            })
        }
    };
    let last = numbering.count;
    let sequence = last.saturating_add(1);
    let type_len = u16::try_from(event_type.len()).map_err(|_| {
        ProjectionError::corrupt("event type longer than 65 535 bytes in the workspace log")
    })?;
    let (run, index) = run_of(sequence);
    if numbering.run.as_ref().is_some_and(|(open, _)| *open != run) {
        numbering.close_run(ov, ws);
    }
    let (_, value) = match &mut numbering.run {
        Some(open) => open,
        None => {
            let value = match ov.get(&run_key(ws, run))? {
                Some(bytes) => bytes.to_vec(),
                None => Vec::new(),
            };
            numbering.run.insert((run, value))
        }
    };
    // The counter says where the run stands: a new run starts empty, a started one holds
    // something (its full shape is checked when it is read).
    if (index == 0) != value.is_empty() {
        return Err(ProjectionError::corrupt(format!(
            "workspace log run {run} disagrees with the counter at sequence {sequence}"
        )));
    }
    value.extend_from_slice(&position.to_be_bytes());
    value.extend_from_slice(&type_len.to_be_bytes());
    value.extend_from_slice(event_type.as_bytes());
    let window_number = position / WINDOW_SPAN;
    if numbering
        .window
        .as_ref()
        .is_some_and(|(open, _)| *open != window_number)
    {
        numbering.close_window(ov, ws);
    }
    let (_, window) = match &mut numbering.window {
        Some(open) => open,
        None => {
            let window = match ov.get(&window_key(ws, window_number))? {
                Some(bytes) => Window::decode(&bytes)?,
                None => Window::empty(last),
            };
            numbering.window.insert((window_number, window))
        }
    };
    window.add(offset(position))?;
    numbering.count = sequence;
    Ok(())
}

/// The offset of `position` in its window.
fn offset(position: u64) -> u16 {
    // < WINDOW_SPAN = 4096, so it fits.
    (position % WINDOW_SPAN) as u16
}

/// One window row: how many events the workspace had before the window, and which offsets
/// in it are the workspace's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    before: u64,
    members: Members,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Members {
    /// Sorted offsets (at most [`MAX_LISTED`]).
    Listed(Vec<u16>),
    /// Bit `o` set (byte `o / 8`, bit `o % 8`) when offset `o` is the workspace's.
    Bitmap(Box<[u8; BITMAP_BYTES]>),
}

/// Row tags.
const LISTED: u8 = 0;
const BITMAP: u8 = 1;

impl Window {
    /// A window with no event yet, after `before` events of the workspace.
    pub fn empty(before: u64) -> Window {
        Window {
            before,
            members: Members::Listed(Vec::new()),
        }
    }

    /// Adds `offset`, which must be past every offset already in (log order).
    pub fn add(&mut self, offset: u16) -> Result<(), ProjectionError> {
        match &mut self.members {
            Members::Listed(list) => {
                if list.last().is_some_and(|&last| last >= offset) {
                    return Err(ProjectionError::corrupt(
                        "workspace log window is not in log order",
                    ));
                }
                if list.len() < MAX_LISTED {
                    list.push(offset);
                    return Ok(());
                }
                let mut bits = Box::new([0u8; BITMAP_BYTES]);
                for &o in list.iter().chain(std::iter::once(&offset)) {
                    bits[usize::from(o / 8)] |= 1 << (o % 8);
                }
                self.members = Members::Bitmap(bits);
            }
            Members::Bitmap(bits) => {
                bits[usize::from(offset / 8)] |= 1 << (offset % 8);
            }
        }
        Ok(())
    }

    /// The workspace's sequence of the event at `offset`, if it is the workspace's.
    pub fn sequence(&self, offset: u16) -> Option<u64> {
        let rank = match &self.members {
            Members::Listed(list) => list.binary_search(&offset).ok()?,
            Members::Bitmap(bits) => {
                let (byte, bit) = (usize::from(offset / 8), offset % 8);
                if bits[byte] & (1 << bit) == 0 {
                    return None;
                }
                // Eight bytes at a time: this runs for every entry of every timeline page.
                let whole: u32 = bits[..byte]
                    .chunks(8)
                    .map(|chunk| {
                        let mut word = [0u8; 8];
                        word[..chunk.len()].copy_from_slice(chunk);
                        u64::from_le_bytes(word).count_ones()
                    })
                    .sum();
                let part = (bits[byte] & ((1u8 << bit) - 1)).count_ones();
                (whole + part) as usize
            }
        };
        Some(self.before + rank as u64 + 1)
    }

    /// The workspace's last event at or before `offset`: `(sequence, offset)`.
    pub fn last_at_or_before(&self, offset: u16) -> Option<(u64, u16)> {
        let found = match &self.members {
            Members::Listed(list) => {
                let n = list.partition_point(|&o| o <= offset);
                (n > 0).then(|| list[n - 1])
            }
            Members::Bitmap(bits) => (0..=offset)
                .rev()
                .find(|&o| bits[usize::from(o / 8)] & (1 << (o % 8)) != 0),
        }?;
        Some((self.sequence(found)?, found))
    }

    /// The stored form: `before` (u64) ‖ tag ‖ offsets (u16 each) or the bitmap.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.before.to_be_bytes().to_vec();
        match &self.members {
            Members::Listed(list) => {
                out.push(LISTED);
                for o in list {
                    out.extend_from_slice(&o.to_be_bytes());
                }
            }
            Members::Bitmap(bits) => {
                out.push(BITMAP);
                out.extend_from_slice(&bits[..]);
            }
        }
        out
    }

    /// Reads a stored window; malformed rows are corruption.
    pub fn decode(bytes: &[u8]) -> Result<Window, ProjectionError> {
        let mut reader = Reader::new(bytes, "workspace log window");
        let before = reader.u64()?;
        let rest = reader.rest();
        let corrupt = |what: &str| ProjectionError::corrupt(format!("workspace log window {what}"));
        let members = match rest.split_first() {
            Some((&LISTED, body)) if body.len() % 2 == 0 && body.len() / 2 <= MAX_LISTED => {
                let list: Vec<u16> = body
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                if list.windows(2).any(|w| w[0] >= w[1])
                    || list.last().is_some_and(|&o| u64::from(o) >= WINDOW_SPAN)
                {
                    return Err(corrupt("lists offsets out of order or range"));
                }
                Members::Listed(list)
            }
            Some((&BITMAP, body)) => match <[u8; BITMAP_BYTES]>::try_from(body) {
                Ok(bits) => Members::Bitmap(Box::new(bits)),
                Err(_) => return Err(corrupt("has a bitmap of the wrong size")),
            },
            _ => return Err(corrupt("is malformed")),
        };
        Ok(Window { before, members })
    }
}

fn sequence_key(ws: WorkspaceId, sequence: u64) -> Vec<u8> {
    Key::new(SEQUENCE).uuid(ws.as_uuid()).u64(sequence).build()
}

fn run_key(ws: WorkspaceId, run: u64) -> Vec<u8> {
    Key::new(RUNS).uuid(ws.as_uuid()).u64(run).build()
}

/// The run holding `sequence` (1-based) and the sequence's index in it.
fn run_of(sequence: u64) -> (u64, usize) {
    let zero_based = sequence.saturating_sub(1);
    // < RUN = 64, so it fits.
    (zero_based / RUN, (zero_based % RUN) as usize)
}

/// The events of a run row, in sequence order: (global position, event type).
fn decode_run(bytes: &[u8]) -> Result<Vec<(u64, &str)>, ProjectionError> {
    let mut reader = Reader::new(bytes, "workspace log run");
    let mut out = Vec::new();
    while !reader.is_empty() {
        let position = reader.u64()?;
        let mut len = [0u8; 2];
        len.copy_from_slice(reader.take(2)?);
        let event_type = std::str::from_utf8(reader.take(usize::from(u16::from_be_bytes(len)))?)
            .map_err(|_| ProjectionError::corrupt("workspace log event type is not UTF-8"))?;
        out.push((position, event_type));
        if out.len() as u64 > RUN {
            return Err(ProjectionError::corrupt(
                "workspace log run holds more than 64 events",
            ));
        }
    }
    Ok(out)
}

fn window_key(ws: WorkspaceId, window: u64) -> Vec<u8> {
    Key::new(WINDOW).uuid(ws.as_uuid()).u64(window).build()
}

fn legacy_sequence(
    tree: &sled::Tree,
    ws: WorkspaceId,
    position: u64,
) -> Result<Option<u64>, ProjectionError> {
    let key = Key::new(LEGACY_GLOBAL)
        .uuid(ws.as_uuid())
        .u64(position)
        .build();
    match tree.get(key).map_err(sled_error)? {
        Some(value) => Ok(Some(be_u64(&value, "workspace log sequence")?)),
        None => Ok(None),
    }
}

fn read_window(
    tree: &sled::Tree,
    ws: WorkspaceId,
    window: u64,
) -> Result<Option<Window>, ProjectionError> {
    match tree.get(window_key(ws, window)).map_err(sled_error)? {
        Some(bytes) => Ok(Some(Window::decode(&bytes)?)),
        None => Ok(None),
    }
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
    let from = from.max(1);
    let (first_run, _) = run_of(from);
    let start = run_key(ws, first_run);
    let end = prefix_end(&Key::new(RUNS).uuid(ws.as_uuid()).build());
    let range = match &end {
        Some(end) => tree.range(start.as_slice()..end.as_slice()),
        None => tree.range(start.as_slice()..),
    };
    let mut out = Vec::new();
    let mut found_runs = false;
    for item in range {
        if out.len() >= limit {
            break;
        }
        found_runs = true;
        let (key, value) = item.map_err(sled_error)?;
        let mut k = Reader::new(&key, "workspace log key");
        k.skip(1 + 16)?;
        let run = k.u64()?;
        for (index, (position, event_type)) in decode_run(&value)?.into_iter().enumerate() {
            let sequence = run * RUN + index as u64 + 1;
            if sequence < from {
                continue;
            }
            if out.len() >= limit {
                break;
            }
            out.push(LogEntry {
                sequence,
                position,
                event_type: event_type.to_owned(),
            });
        }
    }
    if found_runs {
        return Ok(out);
    }
    legacy_entries(tree, ws, from, limit)
}

/// [`entries`] over version 2's rows.
fn legacy_entries(
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
    if sequence == 0 {
        return Ok(None);
    }
    let (run, index) = run_of(sequence);
    if let Some(bytes) = tree.get(run_key(ws, run)).map_err(sled_error)? {
        return Ok(decode_run(&bytes)?
            .get(index)
            .map(|(position, _)| *position));
    }
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
    match read_window(tree, ws, position / WINDOW_SPAN)? {
        Some(window) => Ok(window.sequence(offset(position))),
        None => legacy_sequence(tree, ws, position),
    }
}

/// [`sequence_of`] for many positions, reading each window row once.
pub fn sequences_of(
    tree: &sled::Tree,
    ws: WorkspaceId,
    positions: &[u64],
) -> Result<Vec<Option<u64>>, ProjectionError> {
    let mut windows: Vec<(u64, Option<Window>)> = Vec::new();
    let mut out = Vec::with_capacity(positions.len());
    for &position in positions {
        let index = position / WINDOW_SPAN;
        let window = match windows.iter().position(|(i, _)| *i == index) {
            Some(at) => &windows[at].1,
            None => {
                windows.push((index, read_window(tree, ws, index)?));
                &windows[windows.len() - 1].1
            }
        };
        out.push(match window {
            Some(window) => window.sequence(offset(position)),
            None => legacy_sequence(tree, ws, position)?,
        });
    }
    Ok(out)
}

/// The last event of `ws` at or before global `position`: `(sequence, global position)`.
pub fn last_at_or_before(
    tree: &sled::Tree,
    ws: WorkspaceId,
    position: u64,
) -> Result<Option<(u64, u64)>, ProjectionError> {
    let start = Key::new(WINDOW).uuid(ws.as_uuid()).build();
    let end = window_key(ws, position / WINDOW_SPAN);
    // The position's own window (when the workspace has one), then the one before it.
    let own = tree.get(&end).map_err(sled_error)?;
    if let Some(bytes) = own {
        let window = Window::decode(&bytes)?;
        if let Some((sequence, found)) = window.last_at_or_before(offset(position)) {
            let global = (position / WINDOW_SPAN) * WINDOW_SPAN + u64::from(found);
            return Ok(Some((sequence, global)));
        }
    }
    let Some(item) = tree.range(start.as_slice()..end.as_slice()).next_back() else {
        return legacy_last_at_or_before(tree, ws, position);
    };
    let (key, value) = item.map_err(sled_error)?;
    let mut k = Reader::new(&key, "workspace log key");
    k.skip(1 + 16)?;
    let index = k.u64()?;
    let window = Window::decode(&value)?;
    let last = (WINDOW_SPAN - 1) as u16;
    Ok(window
        .last_at_or_before(last)
        .map(|(sequence, found)| (sequence, index * WINDOW_SPAN + u64::from(found))))
}

/// [`last_at_or_before`] over version 1's rows.
fn legacy_last_at_or_before(
    tree: &sled::Tree,
    ws: WorkspaceId,
    position: u64,
) -> Result<Option<(u64, u64)>, ProjectionError> {
    let start = Key::new(LEGACY_GLOBAL).uuid(ws.as_uuid()).build();
    let end = Key::new(LEGACY_GLOBAL)
        .uuid(ws.as_uuid())
        .u64(position.saturating_add(1))
        .build();
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
        tree.insert(window_key(ws, 0), &[0u8, 0, 0, 0, 0, 0, 0, 0, 7][..])?;
        assert!(sequence_of(&tree, ws, 9).is_err());
        tree.insert(window_key(ws, 0), &[0u8; 7][..])?;
        assert!(sequence_of(&tree, ws, 9).is_err());
        tree.insert(
            window_key(ws, 0),
            &[0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 3][..],
        )?;
        assert!(sequence_of(&tree, ws, 9).is_err());
        tree.insert(window_key(ws, 0), &[0u8, 0, 0, 0, 0, 0, 0, 0, 1, 0][..])?;
        assert!(last_at_or_before(&tree, ws, 9).is_err());
        // Run rows: cut short, a type longer than the row, a type that is not UTF-8.
        for bad in [
            vec![0u8; 9],
            [&7u64.to_be_bytes()[..], &[0, 9], b"Short"].concat(),
            [&7u64.to_be_bytes()[..], &[0, 2], &[0xff, 0xfe]].concat(),
        ] {
            tree.insert(run_key(ws, 0), bad)?;
            assert!(entries(&tree, ws, 1, 10).is_err());
            assert!(position_of(&tree, ws, 1).is_err());
        }
        Ok(())
    }

    /// Numbers `positions` (increasing), each owned by workspace A (`true`) or B, then checks
    /// every lookup of both against a plain list.
    fn check_against_model(positions: &[(u64, bool)]) -> Result<(), Box<dyn std::error::Error>> {
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("t")?;
        let a = WorkspaceId::new(uuid::Uuid::now_v7())?;
        let b = WorkspaceId::new(uuid::Uuid::now_v7())?;
        let mut ov = Overlay::new(&tree);
        for (i, &(position, mine)) in positions.iter().enumerate() {
            number(&mut ov, if mine { a } else { b }, position, "T")?;
            if i % 97 == 0 {
                ov.commit(position)?;
            }
        }
        ov.commit(u64::MAX)?;
        for (ws, mine) in [(a, true), (b, false)] {
            let owned: Vec<u64> = positions
                .iter()
                .filter(|(_, m)| *m == mine)
                .map(|(p, _)| *p)
                .collect();
            let all: Vec<u64> = positions.iter().map(|(p, _)| *p).collect();
            let batch = sequences_of(&tree, ws, &all)?;
            for (&(p, m), got) in positions.iter().zip(batch) {
                let want = (m == mine)
                    .then(|| owned.iter().position(|&o| o == p).map(|i| i as u64 + 1))
                    .flatten();
                assert_eq!(got, want, "position {p}");
                assert_eq!(sequence_of(&tree, ws, p)?, want, "position {p}");
            }
            let last = positions.last().map_or(0, |(p, _)| *p);
            for probe in [
                0,
                1,
                last / 3,
                last / 2,
                last.saturating_sub(1),
                last,
                last + 1,
            ]
            .into_iter()
            .chain(all.iter().copied())
            .chain(all.iter().map(|p| p.saturating_sub(1)))
            {
                let n = owned.partition_point(|&o| o <= probe);
                let want = (n > 0).then(|| (n as u64, owned[n - 1]));
                assert_eq!(last_at_or_before(&tree, ws, probe)?, want, "probe {probe}");
            }
            assert_eq!(count(&tree, ws)?, owned.len() as u64);
            // Local → global: every sequence, and pages starting anywhere (inside a run, on a
            // run's edge, past the end) of sizes within and across runs.
            for (i, &p) in owned.iter().enumerate() {
                assert_eq!(position_of(&tree, ws, i as u64 + 1)?, Some(p));
            }
            assert_eq!(position_of(&tree, ws, 0)?, None);
            assert_eq!(position_of(&tree, ws, owned.len() as u64 + 1)?, None);
            let n = owned.len() as u64;
            for from in [0, 1, 2, 63, 64, 65, 128, 129, n / 2, n, n + 1, n + 70] {
                for limit in [0usize, 1, 7, 64, 65, 200] {
                    let got: Vec<(u64, u64)> = entries(&tree, ws, from, limit)?
                        .into_iter()
                        .map(|e| (e.sequence, e.position))
                        .collect();
                    let want: Vec<(u64, u64)> = owned
                        .iter()
                        .enumerate()
                        .map(|(i, &p)| (i as u64 + 1, p))
                        .filter(|(s, _)| *s >= from)
                        .take(limit)
                        .collect();
                    assert_eq!(got, want, "from {from} limit {limit}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn a_version_2_model_still_answers_local_to_global() -> Result<(), Box<dyn std::error::Error>> {
        // Given rows as version 2 wrote them (a row per sequence, no runs),
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("t")?;
        let ws = WorkspaceId::new(uuid::Uuid::now_v7())?;
        for (sequence, position) in [(1u64, 3u64), (2, 10), (3, 5000)] {
            let mut value = position.to_be_bytes().to_vec();
            value.extend_from_slice(b"CaseOpened");
            tree.insert(sequence_key(ws, sequence), value)?;
        }
        // then lookups and pages read them as before.
        assert_eq!(position_of(&tree, ws, 2)?, Some(10));
        assert_eq!(position_of(&tree, ws, 4)?, None);
        let page = entries(&tree, ws, 2, 10)?;
        assert_eq!(
            page,
            vec![
                LogEntry {
                    sequence: 2,
                    position: 10,
                    event_type: "CaseOpened".into()
                },
                LogEntry {
                    sequence: 3,
                    position: 5000,
                    event_type: "CaseOpened".into()
                }
            ]
        );
        Ok(())
    }

    #[test]
    fn windows_answer_like_a_row_per_event() -> Result<(), Box<dyn std::error::Error>> {
        // Dense (bitmap windows), sparse (listed windows), gaps of whole windows, and a
        // window that switches from a list to a bitmap midway.
        let mut positions = Vec::new();
        for p in 1..=9000u64 {
            positions.push((p, p % 5 != 0));
        }
        for p in (20_000..40_000u64).step_by(37) {
            positions.push((p, p % 2 == 0));
        }
        for p in 50_000..50_600u64 {
            positions.push((p, true));
        }
        check_against_model(&positions)
    }

    #[test]
    fn a_version_1_model_still_answers() -> Result<(), Box<dyn std::error::Error>> {
        // Given rows as version 1 wrote them (a row per event, no windows),
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("t")?;
        let ws = WorkspaceId::new(uuid::Uuid::now_v7())?;
        for (sequence, position) in [(1u64, 3u64), (2, 10), (3, 5000)] {
            let key = Key::new(LEGACY_GLOBAL)
                .uuid(ws.as_uuid())
                .u64(position)
                .build();
            tree.insert(key, &sequence.to_be_bytes())?;
        }
        // then lookups read them as before.
        assert_eq!(sequence_of(&tree, ws, 10)?, Some(2));
        assert_eq!(sequence_of(&tree, ws, 11)?, None);
        assert_eq!(
            sequences_of(&tree, ws, &[3, 5000, 4])?,
            vec![Some(1), Some(3), None]
        );
        assert_eq!(last_at_or_before(&tree, ws, 4999)?, Some((2, 10)));
        assert_eq!(last_at_or_before(&tree, ws, u64::MAX)?, Some((3, 5000)));
        assert_eq!(last_at_or_before(&tree, ws, 2)?, None);
        Ok(())
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn windows_agree_with_the_model_on_random_logs(
            steps in proptest::collection::vec((1u64..600, any::<bool>()), 1..1500)
        ) {
            let mut position = 0u64;
            let positions: Vec<(u64, bool)> = steps
                .into_iter()
                .map(|(gap, mine)| {
                    position += if gap > 590 { gap * 40 } else { gap % 7 + 1 };
                    (position, mine)
                })
                .collect();
            check_against_model(&positions).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
    }
}
