//! Owns [`Overlay`], the in-memory write buffer a projection applies a chunk of events
//! through. Reads look in the pending writes first, then in the tree; writes stay pending
//! until [`Overlay::commit`] writes them and the checkpoint in one atomic `sled::Batch`, so a
//! crash leaves the tree at a chunk boundary: no event applied twice, none skipped.

use std::collections::BTreeMap;
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
}

impl<'t> Overlay<'t> {
    /// An empty overlay over `tree`.
    pub fn new(tree: &'t sled::Tree) -> Overlay<'t> {
        Overlay {
            tree,
            pending: BTreeMap::new(),
        }
    }

    /// The value of `key`, pending writes first.
    pub fn get(&self, key: &[u8]) -> Result<Option<IVec>, ProjectionError> {
        match self.pending.get(key) {
            Some(value) => Ok(value.clone()),
            None => self
                .tree
                .get(key)
                .map_err(|e| ProjectionError::sled("read projection", e)),
        }
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
}
