//! Owns compacting the store's sled database offline: every tree is copied, in key order, into
//! a fresh database beside it, which then takes the old one's place. sled's log keeps the
//! superseded versions of its pages until its segment cleaner gets to them, and under the
//! projections' rewrites it falls far behind (a 10M-event store held ~5 GB of live keys and
//! values in 31 GB of files); sled's memory at open grows with its files, not with the live
//! data. The log's segment files are not touched.
//!
//! The swap is crash safe. The fresh database is written and flushed in [`NEW_DIR`] first (a
//! crash there leaves the old database in place and the half copy is removed on the next
//! open); then [`SWAP_MARK`] records the phase: phase 1 moves the old database's files into
//! [`OLD_DIR`], phase 2 moves the fresh ones in, and the mark goes last. Opening a store whose
//! mark is there finishes the swap ([`finish_swap`], called by [`crate::Store::open_with`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::StoreError;

/// Where the fresh database is built.
pub const NEW_DIR: &str = "compact.new";
/// Where the old database's files go during the swap (removed at its end).
pub const OLD_DIR: &str = "compact.old";
/// Present while the swap runs; holds its phase (`1` or `2`).
pub const SWAP_MARK: &str = "compact.swap";

/// Entries copied per sled batch.
const BATCH: usize = 4096;

/// What a compaction did.
#[derive(Clone, Debug, PartialEq)]
pub struct Compacted {
    /// Bytes of sled files before.
    pub bytes_before: u64,
    /// Bytes of sled files after.
    pub bytes_after: u64,
    /// Trees copied.
    pub trees: usize,
    /// Keys copied, over all trees.
    pub entries: u64,
    /// Seconds the whole compaction took.
    pub seconds: f64,
}

/// Whether `name` is one of sled's own files in a database directory.
fn is_sled_file(name: &str) -> bool {
    matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.")
}

/// The sled files directly in `dir`.
fn sled_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(StoreError::io("list the database files"))? {
        let entry = entry.map_err(StoreError::io("list the database files"))?;
        if entry.file_name().to_str().is_some_and(is_sled_file) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Bytes under `path` (a file or a directory).
fn size_of(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| size_of(&e.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(meta) => meta.len(),
        Err(_) => 0,
    }
}

/// Bytes of the sled files directly in `dir`.
fn sled_bytes(dir: &Path) -> Result<u64, StoreError> {
    Ok(sled_files(dir)?.iter().map(|f| size_of(f)).sum())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("sync the data directory"))
}

fn write_mark(dir: &Path, phase: u8) -> Result<(), StoreError> {
    let path = dir.join(SWAP_MARK);
    let mut file = fs::File::create(&path).map_err(StoreError::io("write the compaction mark"))?;
    std::io::Write::write_all(&mut file, &[b'0' + phase])
        .and_then(|()| file.sync_all())
        .map_err(StoreError::io("write the compaction mark"))?;
    sync_dir(dir)
}

/// Moves every sled file of `from` into `to`.
fn move_sled_files(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(to).map_err(StoreError::io("move the database files"))?;
    for file in sled_files(from)? {
        let Some(name) = file.file_name() else {
            continue;
        };
        fs::rename(&file, to.join(name)).map_err(StoreError::io("move the database files"))?;
    }
    sync_dir(from)?;
    sync_dir(to)
}

/// Finishes a swap a compaction left (see the module doc), or removes the half-built copy
/// of one that stopped before its swap. Nothing to do for a store never compacted.
pub(crate) fn finish_swap(dir: &Path) -> Result<(), StoreError> {
    let mark = dir.join(SWAP_MARK);
    let new = dir.join(NEW_DIR);
    let phase = match fs::read(&mark) {
        Ok(bytes) => bytes.first().copied(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if new.exists() {
                tracing::warn!("removing the copy of a compaction that stopped before its swap");
                fs::remove_dir_all(&new)
                    .map_err(StoreError::io("remove an unfinished compaction"))?;
            }
            // Without the mark, old files are what a finished swap had not removed yet.
            let old = dir.join(OLD_DIR);
            if old.exists() {
                fs::remove_dir_all(&old).map_err(StoreError::io("remove the old database"))?;
            }
            return Ok(());
        }
        Err(e) => return Err(StoreError::io("read the compaction mark")(e)),
    };
    tracing::warn!("finishing the swap of an interrupted compaction");
    swap(dir, phase == Some(b'2'))
}

/// The swap itself, from phase 1 or (`in_phase_two`) from phase 2.
fn swap(dir: &Path, in_phase_two: bool) -> Result<(), StoreError> {
    let mark = dir.join(SWAP_MARK);
    let new = dir.join(NEW_DIR);
    let old = dir.join(OLD_DIR);
    if !in_phase_two {
        // Phase 1: every sled file still in place is the old database's.
        move_sled_files(dir, &old)?;
        write_mark(dir, 2)?;
    }
    // Phase 2: every sled file in place is the fresh database's.
    move_sled_files(&new, dir)?;
    fs::remove_file(&mark).map_err(StoreError::io("remove the compaction mark"))?;
    sync_dir(dir)?;
    fs::remove_dir_all(&new).map_err(StoreError::io("remove the compaction's directory"))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(StoreError::io("remove the old database"))?;
    }
    Ok(())
}

/// Copies every tree of `from` into `to`, in key order; returns (trees, entries).
// Batches: the offline copy runs in its own process, beside no reader (see clippy.toml).
#[allow(clippy::disallowed_methods)]
fn copy_trees(from: &sled::Db, to: &sled::Db) -> Result<(usize, u64), StoreError> {
    let sled_err = |e| StoreError::sled("copy the database", e);
    let mut trees = 0;
    let mut entries = 0u64;
    for name in from.tree_names() {
        let source = from.open_tree(&name).map_err(sled_err)?;
        let target = to.open_tree(&name).map_err(sled_err)?;
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        for item in source.iter() {
            let (key, value) = item.map_err(sled_err)?;
            batch.insert(key, value);
            pending += 1;
            entries += 1;
            if pending == BATCH {
                target
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(sled_err)?;
                pending = 0;
            }
        }
        target.apply_batch(batch).map_err(sled_err)?;
        trees += 1;
    }
    to.flush().map_err(sled_err)?;
    Ok((trees, entries))
}

/// Compacts the sled database of the store in `dir` (see the module doc). The store must
/// not be open: sled's lock on it makes this fail instead.
pub fn compact(dir: &Path) -> Result<Compacted, StoreError> {
    let started = Instant::now();
    // Whatever an earlier compaction left, and the store's own recovery, first.
    drop(crate::Store::open(dir)?);
    let bytes_before = sled_bytes(dir)?;
    let new = dir.join(NEW_DIR);
    let (trees, entries) = {
        let sled_err = |e| StoreError::sled("compact the database", e);
        let from = crate::store::open_db(&crate::StoreConfig::new(dir))?;
        // A small cache: the copy reads each page once and writes in key order.
        let to = sled::Config::new()
            .path(&new)
            .cache_capacity(64 << 20)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(sled_err)?;
        copy_trees(&from, &to)?
    };
    sync_dir(&new)?;
    write_mark(dir, 1)?;
    swap(dir, false)?;
    let bytes_after = sled_bytes(dir)?;
    Ok(Compacted {
        bytes_before,
        bytes_after,
        trees,
        entries,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::bulk::{BulkAppend, RecordedAt};
    use crate::event::{sample_event, ExpectedVersion};
    use crate::Store;

    type Dump = BTreeMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>>;

    /// Every tree of the store's database, key by key.
    fn dump(store: &Store) -> Dump {
        let db = store.db();
        db.tree_names()
            .into_iter()
            .map(|name| {
                let tree = db.open_tree(&name).unwrap();
                let rows = tree
                    .iter()
                    .map(|item| {
                        let (k, v) = item.unwrap();
                        (k.to_vec(), v.to_vec())
                    })
                    .collect();
                (name.to_vec(), rows)
            })
            .collect()
    }

    /// A store with 300 events over 30 streams and a side tree rewritten five times
    /// over (the garbage a projection's rewrites leave); returns its dump.
    fn churned(dir: &Path) -> Dump {
        let store = Store::open(dir).unwrap();
        let appends: Vec<BulkAppend> = (0..30)
            .map(|s| BulkAppend {
                stream: format!("s-{s}"),
                expected: ExpectedVersion::NoStream,
                events: (0..10).map(|_| sample_event()).collect(),
            })
            .collect();
        store.append_bulk(&appends, RecordedAt::StoreClock).unwrap();
        let side = store.db().open_tree("proj/side").unwrap();
        for round in 0..5u32 {
            for key in 0..2000u32 {
                side.insert(key.to_be_bytes(), vec![round as u8; 200])
                    .unwrap();
            }
        }
        store.db().flush().unwrap();
        dump(&store)
    }

    /// The store at `dir` holds exactly `before`, verifies and takes an append.
    fn holds(dir: &Path, before: &Dump) {
        let store = Store::open(dir).unwrap();
        assert_eq!(&dump(&store), before);
        assert!(store.verify().unwrap().is_ok());
        assert_eq!(store.head_position(), 300);
        let next = BulkAppend {
            stream: "s-0".into(),
            expected: ExpectedVersion::Exact(10),
            events: vec![sample_event()],
        };
        let appended = store.append_bulk(&[next], RecordedAt::StoreClock).unwrap();
        assert_eq!(appended[0].first_position, 301);
        for leftover in [NEW_DIR, OLD_DIR, SWAP_MARK] {
            assert!(!dir.join(leftover).exists(), "{leftover}");
        }
    }

    #[test]
    fn compacting_keeps_every_tree_and_leaves_the_garbage_behind() {
        // Given a store whose side tree was rewritten five times
        let dir = tempfile::tempdir().unwrap();
        let before = churned(dir.path());
        // When it is compacted
        let compacted = compact(dir.path()).unwrap();
        // Then its database is smaller and holds exactly what it held
        assert!(
            compacted.bytes_after < compacted.bytes_before,
            "{compacted:?}"
        );
        assert_eq!(compacted.bytes_after, sled_bytes(dir.path()).unwrap());
        assert_eq!(
            compacted.entries,
            before.values().map(|rows| rows.len() as u64).sum::<u64>()
        );
        holds(dir.path(), &before);
    }

    #[test]
    fn a_store_held_open_is_not_compacted() {
        let dir = tempfile::tempdir().unwrap();
        churned(dir.path());
        let _open = Store::open(dir.path()).unwrap();
        assert!(compact(dir.path()).is_err());
        assert!(!dir.path().join(NEW_DIR).exists());
    }

    /// A copy of the store's database in [`NEW_DIR`], as `compact` builds it.
    fn fresh_copy(dir: &Path) {
        let from = crate::store::open_db(&crate::StoreConfig::new(dir)).unwrap();
        let to = sled::Config::new().path(dir.join(NEW_DIR)).open().unwrap();
        copy_trees(&from, &to).unwrap();
    }

    #[test]
    fn a_swap_stopped_in_either_phase_is_finished_when_the_store_opens() {
        for phase in [1u8, 2] {
            // Given a compaction stopped in `phase`, one file moved
            let dir = tempfile::tempdir().unwrap();
            let before = churned(dir.path());
            fresh_copy(dir.path());
            write_mark(dir.path(), phase).unwrap();
            let (from, to) = match phase {
                1 => (dir.path().to_path_buf(), dir.path().join(OLD_DIR)),
                _ => {
                    move_sled_files(dir.path(), &dir.path().join(OLD_DIR)).unwrap();
                    (dir.path().join(NEW_DIR), dir.path().to_path_buf())
                }
            };
            fs::create_dir_all(&to).unwrap();
            fs::rename(from.join("conf"), to.join("conf")).unwrap();
            // When the store opens, then the swap is done and it holds what it held
            holds(dir.path(), &before);
        }
    }

    #[test]
    fn a_copy_that_stopped_before_its_swap_is_removed_and_the_store_stays() {
        let dir = tempfile::tempdir().unwrap();
        let before = churned(dir.path());
        fresh_copy(dir.path());
        holds(dir.path(), &before);
    }

    #[test]
    fn old_files_a_finished_swap_left_are_removed_when_the_store_opens() {
        // Given a compacted store and the old database's files still beside it (a stop
        // after the mark went, before they were removed)
        let dir = tempfile::tempdir().unwrap();
        let before = churned(dir.path());
        compact(dir.path()).unwrap();
        fs::create_dir_all(dir.path().join(OLD_DIR).join("blobs")).unwrap();
        fs::write(dir.path().join(OLD_DIR).join("db"), b"old").unwrap();
        // Then opening removes them and the store holds what it held
        holds(dir.path(), &before);
    }
}
