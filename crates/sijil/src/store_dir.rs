//! Opening the store in the data directory with messages a person can act on: a missing
//! directory for commands that need an existing store, a path that is not a directory, a
//! directory that cannot be read or written, and a store held by another running sijil.
//!
//! It also keeps a small head mark (`sijil-head`, the last durable position) next to the
//! sled files, written after commands that leave the store consistent (demo, import, a clean
//! shutdown of serve, a passing verify). sled recovers from a damaged file by discarding the
//! damaged part of its log, which can make a damaged store look shorter or even empty; a store
//! whose head is below its mark is refused as damaged instead of being served or verified.

use std::path::Path;

use anyhow::{bail, Context, Result};
use sijil_store::{Store, StoreConfig, StoreError};

/// Whether the directory must already hold a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Create the directory and an empty store if missing (serve, demo, import).
    Create,
    /// Refuse if there is no store yet (export, verify, rebuild, token).
    Existing,
}

/// Opens the store in `dir`.
pub fn open(dir: &Path, mode: Mode) -> Result<Store> {
    open_with_cache(dir, mode, None)
}

/// [`open`] with a sled page cache of `cache_bytes` (the store's default when `None`).
pub fn open_with_cache(dir: &Path, mode: Mode, cache_bytes: Option<u64>) -> Result<Store> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            bail!("the data path {shown} is not a directory (give --data a directory)")
        }
        Ok(_) => {
            std::fs::read_dir(dir)
                .with_context(|| format!("cannot read the data directory {shown}"))?;
            if mode == Mode::Existing && !dir.join("db").exists() && !dir.join("conf").exists() {
                bail!(
                    "there is no sijil store in {shown} (run `sijil serve` or `sijil demo` to create one, or set --data)"
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if mode == Mode::Existing {
                bail!(
                    "the data directory {shown} does not exist (run `sijil serve` or `sijil demo` to create a store, or set --data)"
                );
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data directory {shown}"))?;
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot access the data directory {shown}"))
        }
    }
    let mut config = StoreConfig::new(dir);
    if let Some(bytes) = cache_bytes {
        config = config.with_cache_capacity_bytes(bytes);
    }
    let store = Store::open_with(config).map_err(|e| explain(dir, e))?;
    let marked = read_mark(dir)?;
    let head = store.head_position();
    if head < marked {
        bail!(
            "the store in {shown} is damaged: it ends at position {head} but held {marked} events when it was last closed cleanly (restore it from an export with `sijil import`)"
        );
    }
    Ok(store)
}

/// The file holding the head mark.
const MARK_FILE: &str = "sijil-head";

fn read_mark(dir: &Path) -> Result<u64> {
    let path = dir.join(MARK_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().with_context(|| {
            format!(
                "{} is not a position; remove it if the store is known to be good",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Records the store's durable head as its mark (never lowering it), durably.
pub fn mark(dir: &Path, store: &Store) -> Result<()> {
    let head = store.head_position();
    if head <= read_mark(dir)? {
        return Ok(());
    }
    let tmp = dir.join(format!("{MARK_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, format!("{head}\n").as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(MARK_FILE))?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().with_context(|| format!("cannot write the head mark in {}", dir.display()))
}

pub fn explain(dir: &Path, error: StoreError) -> anyhow::Error {
    let shown = dir.display();
    let text = error.to_string();
    if error.is_store_in_use() || text.contains("WouldBlock") {
        anyhow::anyhow!(
            "the store in {shown} is in use by another sijil process (stop `sijil serve` first, or use another --data)"
        )
    } else if text.contains("Permission denied") || text.contains("PermissionDenied") {
        anyhow::anyhow!("no permission to open the store in {shown}: {text}")
    } else {
        anyhow::Error::new(error).context(format!("cannot open the store in {shown}"))
    }
}
