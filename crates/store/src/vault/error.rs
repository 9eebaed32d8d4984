//! Owns the vault's error type: what can go wrong parsing the master key, opening the vault,
//! sealing, opening and forgetting, each with a stable `code()`.

use std::path::PathBuf;

use sijil_domain::CustomerId;

/// A vault failure. Messages never contain key material or personal data.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No master key was configured.
    #[error(
        "no master key configured: give the 64-hex-character workspace master key with \
         SIJIL_MASTER_KEY or a file with --master-key-file; it must be the key this data \
         directory was created with (without it no personal data can be read, so sijil refuses \
         to start)"
    )]
    MissingMasterKey,
    /// The configured master key is not 64 hexadecimal characters (or both forms were given).
    #[error("invalid master key: {0}")]
    InvalidMasterKey(String),
    /// The master key does not unlock this data directory's vault.
    #[error(
        "wrong master key: it does not unlock the vault key file {path}; start with the key this \
         data directory was created with (sijil refuses to serve unreadable personal data)"
    )]
    WrongMasterKey { path: PathBuf },
    /// The vault holds keys but its key file is gone.
    #[error(
        "the vault key file {path} is missing but the vault holds customer keys; restore it from \
         the backup of this data directory (without it no personal data can be read)"
    )]
    KeyFileMissing { path: PathBuf },
    /// Vault data on disk is not what this build writes.
    #[error("vault data is corrupt: {0}")]
    Corrupt(String),
    /// Reading or writing the key file or the vault's sled tree failed.
    #[error("vault I/O failed ({operation}): {detail}")]
    Io {
        operation: &'static str,
        detail: String,
    },
    /// The operating system's random number generator failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// Personal data cannot be written for a customer who was forgotten.
    #[error("customer {0} was forgotten: no personal data can be recorded for them")]
    Forgotten(CustomerId),
    /// A sealed field names no key in this vault (sealed elsewhere, or under another customer).
    #[error("a sealed {field} has no key in this vault for its customer")]
    NoKey { field: &'static str },
    /// A sealed field does not decrypt under its customer's key (tampered, or not theirs).
    #[error("a sealed {field} does not decrypt for this customer")]
    Undecryptable { field: &'static str },
    /// A key bundle does not open with the configured master key (or was changed).
    #[error(
        "the key bundle does not open with this master key: give the master key of the store \
         it was exported from (or the bundle was changed)"
    )]
    BundleWrongKey,
    /// A file given as a key bundle is not one.
    #[error("not a sijil key bundle: {0}")]
    BundleInvalid(String),
    /// A bundle carries another data key for a customer this vault already holds a key for.
    #[error(
        "the vault already holds a different data key for customer {customer} of workspace \
         {workspace}: the bundle belongs to another store"
    )]
    KeyConflict {
        workspace: uuid::Uuid,
        customer: uuid::Uuid,
    },
}

impl VaultError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::MissingMasterKey => "MASTER_KEY_MISSING",
            VaultError::InvalidMasterKey(_) => "MASTER_KEY_INVALID",
            VaultError::WrongMasterKey { .. } => "MASTER_KEY_WRONG",
            VaultError::KeyFileMissing { .. } => "VAULT_KEY_FILE_MISSING",
            VaultError::Corrupt(_) => "VAULT_CORRUPT",
            VaultError::Io { .. } => "VAULT_IO",
            VaultError::Random(_) => "VAULT_RANDOM",
            VaultError::Forgotten(_) => "CUSTOMER_FORGOTTEN",
            VaultError::NoKey { .. } => "VAULT_NO_KEY",
            VaultError::Undecryptable { .. } => "VAULT_UNDECRYPTABLE",
            VaultError::BundleWrongKey => "KEY_BUNDLE_WRONG_MASTER_KEY",
            VaultError::BundleInvalid(_) => "KEY_BUNDLE_INVALID",
            VaultError::KeyConflict { .. } => "VAULT_KEY_CONFLICT",
        }
    }

    pub(crate) fn io(operation: &'static str) -> impl Fn(std::io::Error) -> VaultError {
        move |e| VaultError::Io {
            operation,
            detail: e.to_string(),
        }
    }

    pub(crate) fn sled(operation: &'static str) -> impl Fn(sled::Error) -> VaultError {
        move |e| VaultError::Io {
            operation,
            detail: e.to_string(),
        }
    }
}
