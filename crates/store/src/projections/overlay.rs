//! Owns [`Overlay`], the in-memory write buffer a projection applies a chunk of events
//! through. Reads look in the pending writes first, then in the tree; writes stay pending
//! until [`Overlay::commit`] writes them and the checkpoint in one atomic `sled::Batch`, so a
//! crash leaves the tree at a chunk boundary: no event applied twice, none skipped. Point
//! reads of the tree (hits and misses) are remembered for the life of the overlay, so a
//! chunk that asks for the same row thousands of times (a customer's redirect, a counter)
//! pays for one tree lookup; nothing else writes the tree while a chunk is applied.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use sled::IVec;

use super::error::ProjectionError;

/// Key of the checkpoint (last applied log position, u64 BE) in every projection tree. The
/// keyspace starting with `0x00` is reserved for such bookkeeping.
pub const CHECKPOINT_KEY: &[u8] = b"\x00checkpoint";

/// Pending writes over one projection tree.
#[derive(Debug)]
pub struct Overlay<'t> {
    tree: &'t sled::Tree,
    pending: BTreeMap<Vec<u8>, Option<IVec>>,
    /// Tree values already read (`None`: the key is absent), valid until commit.
    read_cache: RefCell<HashMap<Vec<u8>, Option<IVec>>>,
}

impl<'t> Overlay<'t> {
    /// An empty overlay over `tree`.
    pub fn new(tree: &'t sled::Tree) -> Overlay<'t> {
        Overlay {
            tree,
            pending: BTreeMap::new(),
            read_cache: RefCell::new(HashMap::new()),
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

    /// How many writes are pending.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Drops every pending write.
    pub fn discard(&mut self) {
        self.pending.clear();
    }

    /// Forgets every remembered tree read (the tree may have changed underneath).
    fn forget_reads(&mut self) {
        self.read_cache.get_mut().clear();
    }

    /// Writes every pending write and the checkpoint `position` in one atomic batch.
    pub fn commit(&mut self, position: u64) -> Result<(), ProjectionError> {
        let mut batch = sled::Batch::default();
        for (k, v) in std::mem::take(&mut self.pending) {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch.insert(CHECKPOINT_KEY, &position.to_be_bytes());
        self.forget_reads();
        self.tree
            .apply_batch(batch)
            .map_err(|e| ProjectionError::sled("commit projection chunk", e))
    }
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
