//! The workspace master key and the vault it unlocks (see `sijil_store::vault`): where the
//! key comes from, the key file sijil makes for a new store, and the rules for starting.
//!
//! The key is read from `SIJIL_MASTER_KEY` (64 hex characters) or from the file named by
//! `--master-key-file` / `SIJIL_MASTER_KEY_FILE` / `master_key_file`. Without either, sijil
//! looks for the *default key file* beside the data directory, `<data-dir>.master-key`
//! (`./sijil-data.master-key` for the default `./sijil-data`): outside the data directory, so
//! a copy of the directory alone does not carry the key.
//!
//! Every store seals personal data; there is no plaintext mode for `serve`:
//! * with a key, the vault in the data directory is unlocked (created on first use); a wrong,
//!   malformed or unreadable key, or a missing vault key file, stops the command with the
//!   vault's message;
//! * without a key, a store that already seals (it has a vault key file or vault keys) is
//!   refused with a message naming both ways to give the key;
//! * without a key, a store that never sealed anything (a new data directory, or one made by
//!   `token create`, `import` or an older sijil) gets a fresh master key, written to the
//!   default key file (mode 0600, never overwriting a file) and announced on one line;
//! * except when its log holds data sealed elsewhere (imported without its keys): a new key
//!   could never open it, so the store is refused with how to import the keys.
//!
//! `verify`, `rebuild` and `export` never create a key ([`unlock_existing`]), and
//! `import --keys` needs the key its bundle was sealed under ([`required`]).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use sijil_store::projections::decode_event;
use sijil_store::vault::{MasterKey, Vault, VaultError, KEYS_TREE, SEALED_PREFIX};
use sijil_store::{RecordedEvent, Store};

/// The environment variable holding the master key as 64 hex characters.
pub const MASTER_KEY_ENV: &str = "SIJIL_MASTER_KEY";
/// The vault key file in the data directory.
pub const KEK_FILE: &str = "vault.kek";
/// What the default key file's name adds to the data directory's name.
pub const DEFAULT_KEY_SUFFIX: &str = ".master-key";

/// Where a master key was read from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `SIJIL_MASTER_KEY`.
    Inline,
    /// `--master-key-file` (or its variable or configuration key).
    File(PathBuf),
    /// The default key file beside the data directory.
    Default(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Inline => write!(f, "{MASTER_KEY_ENV}"),
            Source::File(path) => write!(f, "the key file {}", path.display()),
            Source::Default(path) => write!(
                f,
                "the default key file {} beside the data directory",
                path.display()
            ),
        }
    }
}

fn fail(e: VaultError) -> anyhow::Error {
    anyhow!("{e} [{}]", e.code())
}

/// The default key file of the data directory `data`: `<data>.master-key` beside it.
pub fn default_key_file(data: &Path) -> Result<PathBuf> {
    let with_suffix = |dir: &Path| {
        dir.file_name().map(|name| {
            let mut name = name.to_os_string();
            name.push(DEFAULT_KEY_SUFFIX);
            dir.with_file_name(name)
        })
    };
    if let Some(path) = with_suffix(data) {
        return Ok(path);
    }
    // `.`, `..` or a path ending in them: name the directory itself.
    let resolved = data
        .canonicalize()
        .with_context(|| format!("cannot resolve the data directory {}", data.display()))?;
    with_suffix(&resolved).ok_or_else(|| {
        anyhow!(
            "the data directory {} has no name to put a key file beside; give the master key \
             with --master-key-file or {MASTER_KEY_ENV}",
            data.display()
        )
    })
}

/// The configured master key, else the one in the default key file; `None` when neither.
pub fn locate(data: &Path, key_file: Option<&PathBuf>) -> Result<Option<(MasterKey, Source)>> {
    let inline = std::env::var(MASTER_KEY_ENV).ok();
    match MasterKey::from_config(inline.as_deref(), key_file.map(PathBuf::as_path)) {
        Ok(key) => {
            let source = match key_file {
                Some(path) if inline.is_none() => Source::File(path.clone()),
                _ => Source::Inline,
            };
            Ok(Some((key, source)))
        }
        Err(VaultError::MissingMasterKey) => {
            let default = default_key_file(data)?;
            let present = default
                .try_exists()
                .with_context(|| format!("cannot look for the key file {}", default.display()))?;
            if !present {
                return Ok(None);
            }
            let key = MasterKey::from_file(&default).map_err(fail)?;
            Ok(Some((key, Source::Default(default))))
        }
        Err(e) => Err(fail(e)),
    }
}

/// Whether the store in `data` seals personal data: it has a vault key file or vault keys.
pub fn seals(data: &Path, store: &Store) -> bool {
    data.join(KEK_FILE).exists()
        || store
            .db()
            .open_tree(KEYS_TREE)
            .map(|tree| !tree.is_empty())
            .unwrap_or(true)
}

/// Whether a stored event's payload holds a sealed personal field (a cheap byte search,
/// confirmed by decoding).
pub fn holds_sealed(event: &RecordedEvent) -> bool {
    let prefix = SEALED_PREFIX.as_bytes();
    event.payload.windows(prefix.len()).any(|w| w == prefix)
        && decode_event(event).is_ok_and(|decoded| {
            sijil_domain::personal::personal_values(&decoded)
                .iter()
                .any(|(_, value)| value.starts_with(SEALED_PREFIX))
        })
}

/// The position of the first event holding sealed personal data, if any (a scan of the
/// whole log, made only for a store without a vault: instant when it is new).
fn first_sealed(store: &Store) -> Result<Option<u64>> {
    const BATCH: usize = 10_000;
    let head = store.head_position();
    let mut next = 1u64;
    while next <= head {
        let batch = store
            .read_all_raw(next, BATCH, None)
            .with_context(|| format!("reading the log at position {next}"))?;
        let Some(last) = batch.last() else { break };
        next = last.position + 1;
        if let Some(event) = batch.iter().find(|e| holds_sealed(e)) {
            return Ok(Some(event.position));
        }
    }
    Ok(None)
}

/// The refusal for a store that seals but whose key was not given.
fn missing(data: &Path) -> anyhow::Error {
    let default = default_key_file(data)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| format!("<data-dir>{DEFAULT_KEY_SUFFIX}"));
    anyhow!(
        "{}; the default key file {default} is not there either (restore it, or give the key \
         this store was created with)",
        fail(VaultError::MissingMasterKey)
    )
}

/// Unlocks the vault of the store in `data` with `master` read from `source`.
pub fn open_vault(data: &Path, store: &Store, master: MasterKey, source: &Source) -> Result<Vault> {
    Vault::unlock(store.db(), data.join(KEK_FILE), master)
        .map_err(|e| anyhow!("{} (master key from {source})", fail(e)))
}

/// For `serve` and `demo`: unlocks the vault, creating the master key and its default key
/// file when no key is configured and the store never sealed anything (see the module docs).
pub fn unlock(data: &Path, store: &Store, key_file: Option<&PathBuf>) -> Result<Vault> {
    if let Some((master, source)) = locate(data, key_file)? {
        return open_vault(data, store, master, &source);
    }
    if seals(data, store) {
        return Err(missing(data));
    }
    if let Some(position) = first_sealed(store)? {
        bail!(
            "the store in {} holds personal data sealed elsewhere (from position {position}) but \
             none of its keys: it was imported without them. Import them with `sijil import \
             FILE --keys BUNDLE` (FILE the same export, BUNDLE from `sijil export --keys` on the \
             source) giving the source's master key with --master-key-file, then start with \
             that key [{}]",
            data.display(),
            VaultError::MissingMasterKey.code()
        );
    }
    let path = default_key_file(data)?;
    let master = MasterKey::generate().map_err(fail)?;
    create_key_file(&path, &master)?;
    println!(
        "master key created in {} (read from there on every start): keep a copy somewhere \
         safe and apart from backups of {} — without it no personal data can be read, and a \
         backup that holds it undoes erasure",
        path.display(),
        data.display()
    );
    open_vault(data, store, master, &Source::Default(path))
}

/// For `verify`, `rebuild` and `export`: the vault when a key is available; `None` when
/// none is and the store never sealed anything. Never creates a key.
pub fn unlock_existing(
    data: &Path,
    store: &Store,
    key_file: Option<&PathBuf>,
) -> Result<Option<(Vault, MasterKey)>> {
    match locate(data, key_file)? {
        Some((master, source)) => {
            let vault = open_vault(data, store, master.clone(), &source)?;
            Ok(Some((vault, master)))
        }
        None if seals(data, store) => Err(missing(data)),
        None => Ok(None),
    }
}

/// For `import --keys`: the master key, which must be given (configured, or in the default
/// key file of the destination); never created, since only the key the bundle was sealed
/// under can open it.
pub fn required(data: &Path, key_file: Option<&PathBuf>) -> Result<(MasterKey, Source)> {
    locate(data, key_file)?.ok_or_else(|| {
        anyhow!(
            "importing keys needs the master key of the store they were exported from: give it \
             with --master-key-file FILE (for a store made without a key, the \
             `<data-dir>{DEFAULT_KEY_SUFFIX}` file beside it) or {MASTER_KEY_ENV} [{}]",
            VaultError::MissingMasterKey.code()
        )
    })
}

/// Writes `master` to a new file at `path`, readable by its owner only, durably. Refuses to
/// overwrite an existing file.
fn create_key_file(path: &Path, master: &MasterKey) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let shown = path.display();
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow!("the key file {shown} already exists; sijil never overwrites a key file")
        } else {
            anyhow!("cannot create the master key file {shown}: {e}")
        }
    })?;
    let hex = master.to_hex();
    file.write_all(hex.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the master key file {shown}"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync the directory of {shown}"))?;
    }
    Ok(())
}

/// A fresh master key as 64 hex characters, for `sijil master-key`.
pub fn generate() -> Result<String> {
    let key = MasterKey::generate().map_err(fail)?;
    Ok(key.to_hex().as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_key_file_sits_beside_the_data_directory() {
        assert_eq!(
            default_key_file(Path::new("./sijil-data")).expect("named"),
            PathBuf::from("./sijil-data.master-key")
        );
        assert_eq!(
            default_key_file(Path::new("/var/lib/sijil/")).expect("named"),
            PathBuf::from("/var/lib/sijil.master-key")
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let inner = dir.path().join("data");
        std::fs::create_dir(&inner).expect("mkdir");
        let dotted = inner.join(".");
        let found = default_key_file(&dotted).expect("resolved");
        assert_eq!(found.file_name().expect("name"), "data.master-key");
        assert!(!found.starts_with(inner.canonicalize().expect("canonical")));
    }

    #[test]
    fn a_key_file_is_private_and_never_overwritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("data.master-key");
        let key = MasterKey::generate().expect("random");
        create_key_file(&path, &key).expect("create");
        let read = MasterKey::from_file(&path).expect("read back");
        assert_eq!(read.to_hex().as_str(), key.to_hex().as_str());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = MasterKey::generate().expect("random");
        let refused = create_key_file(&path, &other).expect_err("exists");
        assert!(
            refused.to_string().contains("never overwrites"),
            "{refused}"
        );
        let kept = MasterKey::from_file(&path).expect("read back");
        assert_eq!(kept.to_hex().as_str(), key.to_hex().as_str());
    }
}
