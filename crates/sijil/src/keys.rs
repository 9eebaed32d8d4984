//! The workspace master key and the vault it unlocks (see `sijil_store::vault`): where the
//! key comes from (`SIJIL_MASTER_KEY`, 64 hex characters, or a file named by
//! `--master-key-file` / `SIJIL_MASTER_KEY_FILE` / `master_key_file`), and the rule for
//! starting without one.
//!
//! With a key, the vault in the data directory is unlocked (created on first use); a wrong
//! key, a malformed key or a missing vault key file stops the command with the vault's
//! message. Without a key, a store that already seals personal data (it has a vault key file
//! or vault keys) is refused: it could only serve ciphertext. A store that never sealed
//! anything is opened as before, storing personal data in clear, with a warning.

use std::path::{Path, PathBuf};

use anyhow::Result;
use sijil_store::vault::{MasterKey, Vault, VaultError, KEYS_TREE};
use sijil_store::Store;

/// The environment variable holding the master key as 64 hex characters.
pub const MASTER_KEY_ENV: &str = "SIJIL_MASTER_KEY";
/// The vault key file in the data directory.
pub const KEK_FILE: &str = "vault.kek";

/// Unlocks the vault of the store in `data`, or `None` when no key is configured and the
/// store has never sealed anything.
pub fn unlock(data: &Path, store: &Store, key_file: Option<&PathBuf>) -> Result<Option<Vault>> {
    let inline = std::env::var(MASTER_KEY_ENV).ok();
    let kek_path = data.join(KEK_FILE);
    let fail = |e: VaultError| anyhow::anyhow!("{e} [{}]", e.code());
    let key = match MasterKey::from_config(inline.as_deref(), key_file.map(PathBuf::as_path)) {
        Ok(key) => key,
        Err(VaultError::MissingMasterKey) => {
            let has_keys = store
                .db()
                .open_tree(KEYS_TREE)
                .map(|tree| !tree.is_empty())
                .unwrap_or(true);
            if kek_path.exists() || has_keys {
                return Err(fail(VaultError::MissingMasterKey));
            }
            tracing::warn!(
                "no master key configured ({MASTER_KEY_ENV} or --master-key-file): personal data \
                 is stored in clear and cannot be crypto-shredded"
            );
            return Ok(None);
        }
        Err(e) => return Err(fail(e)),
    };
    Vault::unlock(store.db(), &kek_path, key)
        .map(Some)
        .map_err(fail)
}

/// A fresh master key as 64 hex characters, for `sijil master-key`.
pub fn generate() -> Result<String> {
    let key = MasterKey::generate().map_err(|e| anyhow::anyhow!("{e} [{}]", e.code()))?;
    Ok(key.to_hex().as_str().to_owned())
}
