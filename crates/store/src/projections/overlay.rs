//! Owns [`Overlay`], the in-memory write buffer a projection applies a chunk of events
//! through, and the commit that makes a chunk durable all or nothing. Reads look in the
//! pending writes first, then in the tree; writes stay pending until [`Overlay::commit`].
//! Point reads of the tree (hits and misses) are remembered for the life of the overlay, so a
//! chunk that asks for the same row thousands of times (a customer's redirect, a counter)
//! pays for one tree lookup; nothing else writes the tree while a chunk is applied.
//!
//! A commit writes as plain sled inserts, never as a `sled::Batch`: the first batch or
//! transaction a process runs switches sled's concurrency control, for the rest of the
//! process, to a global read-write lock that every later read and write of the database
//! takes, and each batch then holds it for writing, stalling every read and append while it
//! lasts (BENCHMARKS.md, session 19: with 100 subscribers under the `mixed` load, delivery
//! lag p99 13-14 ms with batches, 9 ms without). Atomicity comes from a redo record: a
//! commit's writes are first stored as parts of at most [`REDO_PART`] bytes under
//! `REDO_KEY ‖ part` (one insert each: a single multi-megabyte value stalled other writers
//! for 200 ms), then the writes themselves, then the checkpoint, then the removal of the
//! record. Sled recovers a prefix of its log, so after a crash a tree has no record (the
//! commit is wholly there or wholly absent), an incomplete one (no row of the commit was
//! written yet: it is dropped), or a complete one, which [`recover`] replays before anything
//! reads or applies to the tree. Every write is an absolute set or removal, so replaying what
//! was already written is harmless. Readers of the live model may see part of a commit while
//! it is written; the checkpoint, and so `wait_for`, moves only when the whole commit is in.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;

use rustc_hash::FxHashMap;
use sled::IVec;

use super::error::ProjectionError;
use super::keys::Reader;

/// Key of the checkpoint (last applied log position, u64 BE) in every projection tree. The
/// keyspace starting with `0x00` is reserved for such bookkeeping.
pub const CHECKPOINT_KEY: &[u8] = b"\x00checkpoint";
/// Key prefix of the redo record of a commit that has not finished (see the module
/// docs); part `i` is `REDO_KEY ‖ i` (u32 big-endian).
pub const REDO_KEY: &[u8] = b"\x00redo";
/// Largest piece of a redo record stored under one key. Small enough that a sled leaf full
/// of parts stays under sled's blob threshold (a quarter of its 512 KiB segment): with 64 KiB
/// parts, sled wrote such leaves out as separate blob files.
pub const REDO_PART: usize = 4 * 1024;

/// Bytes of held-back rows a fill keeps in memory over a commit, by default, per projection
/// ([`Overlay::carry_budget`]).
pub const CARRY_BYTES: usize = 192 * 1024 * 1024;

/// Pending writes over one projection tree.
#[derive(Debug)]
pub struct Overlay<'t> {
    tree: &'t sled::Tree,
    pending: BTreeMap<Vec<u8>, Option<IVec>>,
    /// Tree values already read (`None`: the key is absent), valid until commit.
    read_cache: RefCell<FxHashMap<Vec<u8>, Option<IVec>>>,
    /// State a projection keeps across the events of a chunk and writes out at commit.
    deferred: Option<Box<dyn Deferred>>,
    /// Whether a commit is guarded by a redo record (see [`Overlay::unguarded`]).
    guarded: bool,
    /// When deferred state may be carried over a commit (see [`Overlay::carrying`]): how many
    /// bytes of it may be kept.
    carry: Option<usize>,
    /// Whether the tree was empty when this overlay was made and nothing was committed since.
    empty_start: bool,
}

/// Rows a projection holds back while it applies a chunk (a block being filled, counters),
/// so a run of events touching the same rows costs one write each instead of one per event.
/// Kept in the [`Overlay`] ([`Overlay::take_deferred`], [`Overlay::put_deferred`]) and
/// written through it by [`Overlay::commit`] before anything else; dropped with the pending
/// writes by [`Overlay::discard`]. The projection alone reads its rows while a chunk is
/// applied, so it alone must look in this state first.
pub trait Deferred: Any + Send + std::fmt::Debug {
    /// Writes the held-back rows into `ov`'s pending writes.
    fn flush(self: Box<Self>, ov: &mut Overlay<'_>) -> Result<(), ProjectionError>;

    /// For an overlay that carries state from chunk to chunk ([`Overlay::carrying`]): returns
    /// what to keep for the next chunk, having written into `ov` the held-back rows it does
    /// not keep. Rows it keeps may stay unwritten over the commit, since nobody reads the
    /// tree of a fill but the fill itself: [`Overlay::settle`] writes them when the fill ends.
    /// By default everything is written ([`Deferred::flush`]) and nothing is kept.
    fn flush_and_carry(
        self: Box<Self>,
        ov: &mut Overlay<'_>,
    ) -> Result<Option<Box<dyn Deferred>>, ProjectionError> {
        self.flush(ov)?;
        Ok(None)
    }
}

impl<'t> Overlay<'t> {
    /// An empty overlay over `tree`.
    pub fn new(tree: &'t sled::Tree) -> Overlay<'t> {
        Overlay {
            tree,
            pending: BTreeMap::new(),
            read_cache: RefCell::new(FxHashMap::default()),
            deferred: None,
            guarded: true,
            carry: None,
            empty_start: false,
        }
    }

    /// An empty overlay over a tree that is being filled from scratch and is dropped whole
    /// if the process stops before the fill ends (a rebuild's new generation or a check's
    /// scratch tree: [`super::meta::drop_leftovers`] removes them on the next open). Its
    /// commits skip the redo record: a crash can leave a chunk half-written only in a tree
    /// nobody will read. Writing each chunk once instead of twice makes rebuilds faster.
    pub fn unguarded(tree: &'t sled::Tree) -> Overlay<'t> {
        Overlay {
            guarded: false,
            ..Overlay::new(tree)
        }
    }

    /// This overlay is the only writer of its tree for as long as it lives, across all its
    /// commits (a fill, which keeps one overlay from its first chunk to its last): deferred
    /// state may then stay in memory over a commit ([`Deferred::flush_and_carry`]), up to
    /// about `budget` bytes, since the tree changes only through this overlay. `empty_start`
    /// says whether the tree is empty now (checked), so a projection can trust sets it builds
    /// from the first event on to be complete ([`Overlay::started_empty`]).
    pub fn carrying(mut self, budget: usize) -> Result<Overlay<'t>, ProjectionError> {
        self.carry = Some(budget);
        self.empty_start = self
            .tree
            .first()
            .map_err(|e| ProjectionError::sled("read projection", e))?
            .is_none();
        Ok(self)
    }

    /// Roughly how many bytes of held-back rows [`Deferred::flush_and_carry`] may keep in
    /// memory over a commit, unwritten; beyond it they are written at the commit.
    pub fn carry_budget(&self) -> usize {
        self.carry.unwrap_or(0)
    }

    /// Whether this overlay carries state over commits and its tree was empty when it was
    /// made and has had nothing committed since: state made now sees every row the tree
    /// will ever have.
    pub fn started_empty(&self) -> bool {
        self.carry.is_some() && self.empty_start
    }

    /// Takes out the deferred state of type `T` (a new one when there is none); give it back
    /// with [`Overlay::put_deferred`] once the event is applied.
    pub fn take_deferred<T: Deferred + Default>(&mut self) -> Box<T> {
        let held: Option<Box<dyn Any>> = self.deferred.take().map(|d| d as Box<dyn Any>);
        held.and_then(|d| d.downcast::<T>().ok())
            .unwrap_or_default()
    }

    /// Keeps `state` until commit (see [`Deferred`]).
    pub fn put_deferred(&mut self, state: Box<dyn Deferred>) {
        self.deferred = Some(state);
    }

    /// Writes the deferred state, if any, into the pending writes.
    pub fn flush_deferred(&mut self) -> Result<(), ProjectionError> {
        match self.deferred.take() {
            Some(state) if self.carry.is_some() => {
                self.deferred = state.flush_and_carry(self)?;
                Ok(())
            }
            Some(state) => state.flush(self),
            None => Ok(()),
        }
    }

    /// The value of `key`, pending writes first.
    pub fn get(&self, key: &[u8]) -> Result<Option<IVec>, ProjectionError> {
        if let Some(value) = self.pending.get(key) {
            return Ok(value.clone());
        }
        if let Some(value) = self.read_cache.borrow().get(key) {
            return Ok(value.clone());
        }
        let value = self
            .tree
            .get(key)
            .map_err(|e| ProjectionError::sled("read projection", e))?;
        self.read_cache
            .borrow_mut()
            .insert(key.to_vec(), value.clone());
        Ok(value)
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<IVec>) {
        self.pending.insert(key.into(), Some(value.into()));
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.pending.insert(key.into(), None);
    }

    /// Every (key, value) with `start <= key < end` (`end = None`: no upper bound), as the
    /// tree would hold them after commit, in key order.
    pub fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, IVec)>, ProjectionError> {
        if end.is_some_and(|end| end <= start) {
            return Ok(Vec::new());
        }
        let upper = match end {
            Some(end) => Bound::Excluded(end.to_vec()),
            None => Bound::Unbounded,
        };
        let lower = Bound::Included(start.to_vec());
        let mut merged: BTreeMap<Vec<u8>, IVec> = BTreeMap::new();
        for item in self
            .tree
            .range::<Vec<u8>, _>((lower.clone(), upper.clone()))
        {
            let (k, v) = item.map_err(|e| ProjectionError::sled("scan projection", e))?;
            merged.insert(k.to_vec(), v);
        }
        for (k, v) in self.pending.range((lower, upper)) {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().collect())
    }

    /// Every (key, value) whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, IVec)>, ProjectionError> {
        let end = super::keys::prefix_end(prefix);
        self.range(prefix, end.as_deref())
    }

    /// The last row with `lower <= key <= at`, as the tree would hold it after commit.
    pub fn floor(
        &self,
        lower: &[u8],
        at: &[u8],
    ) -> Result<Option<(Vec<u8>, IVec)>, ProjectionError> {
        if at < lower {
            return Ok(None);
        }
        self.nearest((Bound::Included(lower), Bound::Included(at)), true)
    }

    /// The first row with `after < key < upper`, as the tree would hold it after commit.
    pub fn ceiling(
        &self,
        after: &[u8],
        upper: &[u8],
    ) -> Result<Option<(Vec<u8>, IVec)>, ProjectionError> {
        if upper <= after {
            return Ok(None);
        }
        self.nearest((Bound::Excluded(after), Bound::Excluded(upper)), false)
    }

    /// The last row with `lower <= key < upper`, as the tree would hold it after commit.
    pub fn last_below(
        &self,
        lower: &[u8],
        upper: &[u8],
    ) -> Result<Option<(Vec<u8>, IVec)>, ProjectionError> {
        if upper <= lower {
            return Ok(None);
        }
        self.nearest((Bound::Included(lower), Bound::Excluded(upper)), true)
    }

    /// The last (`last`) or first row in `range` (a non-empty range), as the tree would hold
    /// it after commit: the nearest pending write that sets a value, or the nearest tree row
    /// no pending write replaces or removes, whichever is further up (`last`) or down. One
    /// tree lookup, plus one step per tree row that pending writes remove.
    fn nearest(
        &self,
        range: (Bound<&[u8]>, Bound<&[u8]>),
        last: bool,
    ) -> Result<Option<(Vec<u8>, IVec)>, ProjectionError> {
        let set = |(k, v): (&Vec<u8>, &Option<IVec>)| v.as_ref().map(|v| (k.clone(), v.clone()));
        let in_pending = self.pending.range::<[u8], _>(range);
        let pending = if last {
            in_pending.rev().find_map(set)
        } else {
            in_pending.into_iter().find_map(set)
        };
        let in_tree = self.tree.range::<&[u8], _>(range);
        let rows: Box<dyn Iterator<Item = sled::Result<(IVec, IVec)>>> = if last {
            Box::new(in_tree.rev())
        } else {
            Box::new(in_tree)
        };
        let mut tree = None;
        for item in rows {
            let (key, value) = item.map_err(|e| ProjectionError::sled("scan projection", e))?;
            match self.pending.get(&key[..]) {
                // Not shadowed: the tree's candidate.
                None => {
                    tree = Some((key, value));
                    break;
                }
                // Pending sets this key, so `pending` is at least as near.
                Some(Some(_)) => break,
                // Removed by a pending write: look further.
                Some(None) => {}
            }
        }
        Ok(match (pending, tree) {
            (Some(p), Some((k, v))) if (k[..] > p.0[..]) == last => Some((k.to_vec(), v)),
            (Some(p), _) => Some(p),
            (None, tree) => tree.map(|(k, v)| (k.to_vec(), v)),
        })
    }

    /// Ends a fill: writes every held-back row the chunks' commits left in memory (see
    /// [`Deferred::flush_and_carry`]) and commits them with the checkpoint `position` (the
    /// fill's last). The overlay carries nothing from here on, so afterwards the tree holds
    /// exactly the model at `position`.
    pub fn settle(&mut self, position: u64) -> Result<(), ProjectionError> {
        self.carry = None;
        if self.deferred.is_none() && self.pending.is_empty() {
            return Ok(());
        }
        self.commit(position)
    }

    /// How many writes are pending.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Drops every pending write.
    pub fn discard(&mut self) {
        self.pending.clear();
        self.deferred = None;
    }

    /// Forgets every remembered tree read (the tree may have changed underneath).
    fn forget_reads(&mut self) {
        self.read_cache.get_mut().clear();
    }

    /// Writes the deferred state, every pending write and the checkpoint `position`, all or
    /// nothing: behind a redo record unless the overlay is unguarded or the checkpoint is the
    /// only write (see the module docs).
    pub fn commit(&mut self, position: u64) -> Result<(), ProjectionError> {
        self.flush_deferred()?;
        let pending = std::mem::take(&mut self.pending);
        self.forget_reads();
        self.empty_start = false;
        let mut parts = 0;
        if self.guarded && !pending.is_empty() {
            let redo = encode_redo(position, &pending);
            parts = write_redo(self.tree, &redo)?;
        }
        write_all(self.tree, pending, position, parts)
    }
}

/// The key of part `part` of the redo record.
fn redo_part_key(part: u32) -> Vec<u8> {
    let mut key = REDO_KEY.to_vec();
    key.extend_from_slice(&part.to_be_bytes());
    key
}

/// Stores `redo` as parts of at most [`REDO_PART`] bytes, each prefixed by the number of
/// parts (u32); returns that number.
fn write_redo(tree: &sled::Tree, redo: &[u8]) -> Result<u32, ProjectionError> {
    let pieces: Vec<&[u8]> = redo.chunks(REDO_PART).collect();
    let total = u32::try_from(pieces.len())
        .map_err(|_| ProjectionError::corrupt("projection chunk too large for a redo record"))?;
    for (part, piece) in (0..total).zip(pieces) {
        let mut value = Vec::with_capacity(4 + piece.len());
        value.extend_from_slice(&total.to_be_bytes());
        value.extend_from_slice(piece);
        tree.insert(redo_part_key(part), value)
            .map_err(|e| ProjectionError::sled("write projection redo record", e))?;
    }
    Ok(total)
}

/// The redo record in `tree`, if a whole one is there; an incomplete one (the commit was cut
/// off before any of its rows were written) is removed and reads as none.
fn read_redo(tree: &sled::Tree) -> Result<Option<(Vec<u8>, u32)>, ProjectionError> {
    let mut bytes = Vec::new();
    let mut keys = Vec::new();
    let mut total = None;
    for item in tree.scan_prefix(REDO_KEY) {
        let (key, value) =
            item.map_err(|e| ProjectionError::sled("read projection redo record", e))?;
        let mut reader = Reader::new(&key[REDO_KEY.len()..], "projection redo key");
        let part = reader.u32()?;
        if !reader.rest().is_empty() {
            return Err(ProjectionError::corrupt("projection redo key is too long"));
        }
        let mut reader = Reader::new(&value, "projection redo part");
        let declared = reader.u32()?;
        if part as usize != keys.len() || total.is_some_and(|t| t != declared) {
            return Err(ProjectionError::corrupt(format!(
                "projection redo record has part {part} of {declared} out of place"
            )));
        }
        total = Some(declared);
        bytes.extend_from_slice(reader.rest());
        keys.push(key);
    }
    match total {
        None => Ok(None),
        Some(total) if keys.len() as u64 == u64::from(total) => Ok(Some((bytes, total))),
        Some(total) if (keys.len() as u64) < u64::from(total) => {
            let held = u32::try_from(keys.len())
                .map_err(|_| ProjectionError::corrupt("projection redo record too long"))?;
            remove_redo(tree, held)
                .map_err(|e| ProjectionError::sled("drop incomplete redo record", e))?;
            Ok(None)
        }
        Some(total) => Err(ProjectionError::corrupt(format!(
            "projection redo record has {} parts, declares {total}",
            keys.len()
        ))),
    }
}

/// Writes `writes` in order, then the checkpoint `position`, then removes the `redo_parts`
/// parts of the redo record: plain inserts, in that order (see the module docs).
fn write_all(
    tree: &sled::Tree,
    writes: impl IntoIterator<Item = Write>,
    position: u64,
    redo_parts: u32,
) -> Result<(), ProjectionError> {
    let err = |e| ProjectionError::sled("commit projection chunk", e);
    for (key, value) in writes {
        match value {
            Some(value) => tree.insert(key, value).map_err(err)?,
            None => tree.remove(key).map_err(err)?,
        };
    }
    tree.insert(CHECKPOINT_KEY, &position.to_be_bytes())
        .map_err(err)?;
    remove_redo(tree, redo_parts).map_err(err)
}

/// Removes parts `0..parts` of the redo record, the last one first, so a stop in between
/// leaves parts `0..k` of a record that declares more: an incomplete record, which
/// [`read_redo`] drops. (Removed first to last, the rest would start past part 0, which
/// reads as corruption.)
fn remove_redo(tree: &sled::Tree, parts: u32) -> Result<(), sled::Error> {
    for part in redo_removal_order(parts) {
        tree.remove(redo_part_key(part))?;
    }
    Ok(())
}

/// The order [`remove_redo`] removes parts `0..parts` in.
fn redo_removal_order(parts: u32) -> impl Iterator<Item = u32> {
    (0..parts).rev()
}

/// One pending write: a key and its new value (`None`: removed).
type Write = (Vec<u8>, Option<IVec>);

/// The redo record of a chunk: position (u64) ‖ write count (u64) ‖ per write: key length
/// (u64) ‖ key ‖ 0 (removal) or 1 ‖ value length (u64) ‖ value; integers big-endian.
fn encode_redo(position: u64, writes: &BTreeMap<Vec<u8>, Option<IVec>>) -> Vec<u8> {
    let size: usize = writes
        .iter()
        .map(|(k, v)| 17 + k.len() + v.as_ref().map_or(0, |v| 8 + v.len()))
        .sum();
    let mut out = Vec::with_capacity(16 + size);
    out.extend_from_slice(&position.to_be_bytes());
    out.extend_from_slice(&(writes.len() as u64).to_be_bytes());
    for (key, value) in writes {
        out.extend_from_slice(&(key.len() as u64).to_be_bytes());
        out.extend_from_slice(key);
        match value {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                out.extend_from_slice(&(value.len() as u64).to_be_bytes());
                out.extend_from_slice(value);
            }
        }
    }
    out
}

/// Decodes a redo record made by [`encode_redo`]; anything malformed is corruption.
fn decode_redo(bytes: &[u8]) -> Result<(u64, Vec<Write>), ProjectionError> {
    let mut reader = Reader::new(bytes, "projection redo record");
    let position = reader.u64()?;
    let count = reader.u64()?;
    let mut writes = Vec::new();
    for _ in 0..count {
        let len = length(reader.u64()?)?;
        let key = reader.take(len)?.to_vec();
        let value = match reader.u8()? {
            0 => None,
            1 => {
                let len = length(reader.u64()?)?;
                Some(IVec::from(reader.take(len)?))
            }
            tag => {
                return Err(ProjectionError::corrupt(format!(
                    "projection redo record has write tag {tag}"
                )))
            }
        };
        writes.push((key, value));
    }
    if !reader.rest().is_empty() {
        return Err(ProjectionError::corrupt(
            "projection redo record has bytes after its last write",
        ));
    }
    Ok((position, writes))
}

fn length(value: u64) -> Result<usize, ProjectionError> {
    usize::try_from(value)
        .map_err(|_| ProjectionError::corrupt("projection redo record length overflows"))
}

/// Finishes a commit that a crash (or a failed write) interrupted: replays the redo
/// record's writes and its checkpoint. Returns whether there was one. Call before reading
/// the checkpoint of a tree one is about to apply to or serve.
pub fn recover(tree: &sled::Tree) -> Result<bool, ProjectionError> {
    let Some((redo, parts)) = read_redo(tree)? else {
        return Ok(false);
    };
    let (position, writes) = decode_redo(&redo)?;
    write_all(tree, writes, position, parts)?;
    Ok(true)
}

/// The checkpoint stored in `tree` (0 when nothing was applied yet).
pub fn checkpoint(tree: &sled::Tree) -> Result<u64, ProjectionError> {
    match tree
        .get(CHECKPOINT_KEY)
        .map_err(|e| ProjectionError::sled("read checkpoint", e))?
    {
        None => Ok(0),
        Some(bytes) => <[u8; 8]>::try_from(&bytes[..])
            .map(u64::from_be_bytes)
            .map_err(|_| {
                ProjectionError::corrupt(format!(
                    "checkpoint has {} bytes, expected 8",
                    bytes.len()
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_writes_shadow_the_tree_until_commit() -> Result<(), Box<dyn std::error::Error>> {
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("t")?;
        tree.insert(b"a1", b"old")?;
        tree.insert(b"a2", b"keep")?;
        tree.insert(b"b1", b"other")?;
        let mut ov = Overlay::new(&tree);
        ov.insert(b"a1".to_vec(), b"new".to_vec());
        ov.remove(b"a2".to_vec());
        ov.insert(b"a3".to_vec(), b"added".to_vec());
        assert_eq!(ov.get(b"a1")?.as_deref(), Some(&b"new"[..]));
        assert_eq!(ov.get(b"a2")?, None);
        let keys: Vec<Vec<u8>> = ov.scan_prefix(b"a")?.into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"a1".to_vec(), b"a3".to_vec()]);
        // A range whose end is not above its start is empty (not a panic).
        assert!(ov.range(b"a3", Some(b"a1"))?.is_empty());
        assert!(ov.range(b"a1", Some(b"a1"))?.is_empty());
        assert_eq!(tree.get(b"a1")?.as_deref(), Some(&b"old"[..]));
        assert_eq!(checkpoint(&tree)?, 0);
        ov.commit(42)?;
        assert_eq!(tree.get(b"a1")?.as_deref(), Some(&b"new"[..]));
        assert_eq!(tree.get(b"a2")?, None);
        assert_eq!(checkpoint(&tree)?, 42);
        assert_eq!(ov.pending_len(), 0);
        Ok(())
    }

    #[test]
    fn floor_ceiling_and_last_below_see_pending_writes_over_the_tree(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("t")?;
        for key in [b"p1", b"p3", b"p5", b"p6", b"p7", b"q0"] {
            tree.insert(key, &key[..])?;
        }
        let mut ov = Overlay::new(&tree);
        ov.remove(b"p5".to_vec());
        ov.remove(b"p7".to_vec());
        ov.insert(b"p4".to_vec(), b"new".to_vec());
        ov.insert(b"p3".to_vec(), b"replaced".to_vec());
        let key = |row: Option<(Vec<u8>, IVec)>| row.map(|(k, _)| k);
        // Removed tree rows are skipped, pending rows win over the tree rows they replace.
        assert_eq!(key(ov.floor(b"p", b"p9")?), Some(b"p6".to_vec()));
        assert_eq!(key(ov.floor(b"p", b"p5")?), Some(b"p4".to_vec()));
        assert_eq!(key(ov.floor(b"p", b"p3")?), Some(b"p3".to_vec()));
        assert_eq!(
            ov.floor(b"p", b"p3")?.map(|(_, v)| v.to_vec()),
            Some(b"replaced".to_vec())
        );
        assert_eq!(key(ov.floor(b"p", b"p2")?), Some(b"p1".to_vec()));
        assert_eq!(key(ov.floor(b"p2", b"p2")?), None);
        assert_eq!(key(ov.floor(b"p9", b"p2")?), None);
        assert_eq!(key(ov.last_below(b"p", b"q")?), Some(b"p6".to_vec()));
        assert_eq!(key(ov.last_below(b"p", b"p6")?), Some(b"p4".to_vec()));
        assert_eq!(key(ov.last_below(b"p", b"p1")?), None);
        assert_eq!(key(ov.ceiling(b"p3", b"q")?), Some(b"p4".to_vec()));
        assert_eq!(key(ov.ceiling(b"p4", b"q")?), Some(b"p6".to_vec()));
        assert_eq!(key(ov.ceiling(b"p6", b"q")?), None);
        assert_eq!(key(ov.ceiling(b"p6", b"r")?), Some(b"q0".to_vec()));
        assert_eq!(key(ov.ceiling(b"p1", b"q")?), Some(b"p3".to_vec()));
        assert_eq!(key(ov.ceiling(b"p", b"p1")?), None);
        assert_eq!(key(ov.ceiling(b"q", b"p")?), None);
        Ok(())
    }

    /// The rows of `tree` except the bookkeeping keyspace.
    fn rows(tree: &sled::Tree) -> Result<Vec<(IVec, IVec)>, sled::Error> {
        tree.range(&[1u8][..]..).collect()
    }

    fn big_chunk(ov: &mut Overlay<'_>, n: usize) {
        for i in 0..n {
            let key = format!("k{i:06}").into_bytes();
            if i % 7 == 3 {
                ov.remove(key);
            } else {
                ov.insert(key, format!("v{i}-{}", "x".repeat(300)).into_bytes());
            }
        }
    }

    fn redo_parts(tree: &sled::Tree) -> usize {
        tree.scan_prefix(REDO_KEY).count()
    }

    /// Sizes of commits the tests make: one write, a few, and one whose redo record takes
    /// several parts.
    const SIZES: [usize; 3] = [1, 5, 773];

    #[test]
    fn a_commit_leaves_its_rows_and_no_redo_record() -> Result<(), Box<dyn std::error::Error>> {
        for n in SIZES {
            let db = sled::Config::new().temporary(true).open()?;
            let tree = db.open_tree("t")?;
            tree.insert(b"k000003", b"removed by the chunk")?;
            let mut ov = Overlay::new(&tree);
            big_chunk(&mut ov, n);
            ov.commit(77)?;
            assert_eq!(checkpoint(&tree)?, 77);
            assert_eq!(redo_parts(&tree), 0);
            let removed = n > 3;
            assert_eq!(tree.get(b"k000003")?.is_none(), removed, "{n}");
            let kept = if removed { 0 } else { 1 };
            assert_eq!(rows(&tree)?.len(), n - (n + 3) / 7 + kept, "{n}");
            assert!(!recover(&tree)?);
        }
        Ok(())
    }

    #[test]
    fn an_unguarded_commit_writes_no_redo_record() -> Result<(), Box<dyn std::error::Error>> {
        for n in SIZES {
            for guarded in [true, false] {
                let db = sled::Config::new().temporary(true).open()?;
                let tree = db.open_tree("t")?;
                let mut redo_writes = tree.watch_prefix(REDO_KEY);
                let mut ov = if guarded {
                    Overlay::new(&tree)
                } else {
                    Overlay::unguarded(&tree)
                };
                big_chunk(&mut ov, n);
                ov.commit(77)?;
                assert_eq!(checkpoint(&tree)?, 77);
                assert_eq!(rows(&tree)?.len(), n - (n + 3) / 7);
                let seen = std::iter::from_fn(|| {
                    redo_writes
                        .next_timeout(std::time::Duration::from_millis(50))
                        .ok()
                })
                .count();
                assert_eq!(
                    seen > 0,
                    guarded,
                    "n: {n}, guarded: {guarded}, redo writes seen: {seen}"
                );
            }
        }
        Ok(())
    }

    /// A tree holding checkpoint 5 and, as a crash would leave it, the redo record of the
    /// chunk [`big_chunk`] of `n` writes (checkpoint 9) and then the first `written` of its
    /// writes.
    fn cut_off(n: usize, written: usize) -> Result<(sled::Db, sled::Tree), sled::Error> {
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("t")?;
        tree.insert(CHECKPOINT_KEY, &5u64.to_be_bytes())?;
        let mut ov = Overlay::new(&tree);
        big_chunk(&mut ov, n);
        let writes = std::mem::take(&mut ov.pending);
        write_redo(&tree, &encode_redo(9, &writes))
            .map_err(|e| sled::Error::Unsupported(format!("redo: {e}")))?;
        for (k, v) in writes.into_iter().take(written) {
            match v {
                Some(v) => tree.insert(k, v)?,
                None => tree.remove(k)?,
            };
        }
        Ok((db, tree))
    }

    #[test]
    fn an_interrupted_commit_is_finished_by_recover() -> Result<(), Box<dyn std::error::Error>> {
        for n in SIZES {
            // The tree a whole commit gives.
            let whole_db = sled::Config::new().temporary(true).open()?;
            let whole = whole_db.open_tree("t")?;
            let mut ov = Overlay::new(&whole);
            big_chunk(&mut ov, n);
            ov.commit(9)?;

            for written in [0, n / 2, n - 1] {
                let (_db, tree) = cut_off(n, written)?;
                assert_eq!(checkpoint(&tree)?, 5);
                assert!(recover(&tree)?);
                assert_eq!(checkpoint(&tree)?, 9);
                assert_eq!(redo_parts(&tree), 0);
                assert_eq!(rows(&tree)?, rows(&whole)?, "n {n}, written {written}");
                // Replaying is idempotent and happens once.
                assert!(!recover(&tree)?);
            }
        }
        Ok(())
    }

    #[test]
    fn a_removal_of_the_redo_record_cut_at_any_point_leaves_it_droppable(
    ) -> Result<(), Box<dyn std::error::Error>> {
        // Given a commit finished up to its checkpoint (redo record and every write in)
        let n = 773;
        let (_db, whole) = cut_off(n, n)?;
        whole.insert(CHECKPOINT_KEY, &9u64.to_be_bytes())?;
        let parts = u32::try_from(redo_parts(&whole))?;
        assert!(parts > 1);
        let rows_then = rows(&whole)?;
        for removed in 0..parts {
            // When the removal of its record stops after `removed` parts
            let (_db, tree) = cut_off(n, n)?;
            tree.insert(CHECKPOINT_KEY, &9u64.to_be_bytes())?;
            for part in redo_removal_order(parts).take(removed as usize) {
                tree.remove(redo_part_key(part))?;
            }
            // Then what is left reads as an incomplete record (dropped), never as corruption
            let replayed = recover(&tree)?;
            assert_eq!(replayed, removed == 0, "removed {removed}");
            assert_eq!(redo_parts(&tree), 0);
            assert_eq!(checkpoint(&tree)?, 9);
            assert_eq!(rows(&tree)?, rows_then);
        }
        Ok(())
    }

    #[test]
    fn an_incomplete_redo_record_means_the_chunk_never_started(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (_db, tree) = cut_off(773, 0)?;
        let last = tree
            .scan_prefix(REDO_KEY)
            .keys()
            .last()
            .ok_or("no redo parts")??;
        tree.remove(last)?;
        assert!(!recover(&tree)?);
        assert_eq!(redo_parts(&tree), 0);
        assert_eq!(checkpoint(&tree)?, 5);
        assert!(rows(&tree)?.is_empty());
        Ok(())
    }

    #[test]
    fn a_damaged_redo_record_is_corruption_not_a_panic() -> Result<(), Box<dyn std::error::Error>> {
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("t")?;
        let mut writes = BTreeMap::new();
        writes.insert(b"a".to_vec(), Some(IVec::from(&b"1"[..])));
        writes.insert(b"b".to_vec(), None);
        let good = encode_redo(3, &writes);
        let mut bad_tag = good.clone();
        bad_tag[16 + 8 + 1] = 7;
        let mut huge = good.clone();
        huge[16..24].copy_from_slice(&u64::MAX.to_be_bytes());
        let mut trailing = good.clone();
        trailing.push(0);
        for damaged in [
            good[..good.len() - 1].to_vec(),
            bad_tag,
            huge,
            trailing,
            vec![1],
        ] {
            write_redo(&tree, &damaged)?;
            assert!(matches!(recover(&tree), Err(ProjectionError::Corrupt(_))));
        }
        // Parts out of place: a second part where the record declares one.
        write_redo(&tree, &good)?;
        tree.insert(redo_part_key(1), &[0, 0, 0, 1, 9][..])?;
        assert!(matches!(recover(&tree), Err(ProjectionError::Corrupt(_))));
        tree.remove(redo_part_key(1))?;
        assert!(recover(&tree)?);
        assert_eq!(tree.get(b"a")?.as_deref(), Some(&b"1"[..]));
        assert_eq!(checkpoint(&tree)?, 3);
        Ok(())
    }

    #[test]
    fn remembered_reads_last_until_commit() -> Result<(), Box<dyn std::error::Error>> {
        let db = sled::Config::new().temporary(true).open()?;
        let tree = db.open_tree("t")?;
        let mut ov = Overlay::new(&tree);
        assert_eq!(ov.get(b"k")?, None);
        // Only the overlay's owner writes the tree while it lives; a write behind its back
        // stays unseen until the next commit.
        tree.insert(b"k", b"behind")?;
        assert_eq!(ov.get(b"k")?, None);
        ov.insert(b"k".to_vec(), b"mine".to_vec());
        assert_eq!(ov.get(b"k")?.as_deref(), Some(&b"mine"[..]));
        ov.commit(1)?;
        tree.insert(b"j", b"later")?;
        assert_eq!(ov.get(b"j")?.as_deref(), Some(&b"later"[..]));
        assert_eq!(ov.get(b"k")?.as_deref(), Some(&b"mine"[..]));
        Ok(())
    }
}
