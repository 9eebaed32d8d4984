//! Owns the vault key file: the key-encryption key (KEK) that wraps every customer data key,
//! itself sealed by the master key. It lives in a small fixed-size file *outside* sled and is
//! overwritten in place, because sled is log-structured: a value removed from a tree can
//! linger in old segments. Rotating the KEK on every forget and overwriting the old KEK here
//! makes any lingering copy of a forgotten customer's wrapped key useless.
//!
//! Layout (234 bytes): `SJLVKEK1` ‖ slot 0 ‖ slot 1, each slot 113 bytes:
//! `used (1) ‖ epoch (u64 BE) ‖ nonce (24) ‖ sealed KEK (32) ‖ tag (16) ‖ SHA-256 of the
//! preceding 105 bytes`. An unused slot is all zeros. Two slots let a rotation write the new
//! KEK before the old one is destroyed, so a crash at any point leaves a usable key.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::crypto::{MasterKey, SecretKey, KEY_LEN, NONCE_LEN, TAG_LEN};
use super::error::VaultError;

const MAGIC: &[u8; 8] = b"SJLVKEK1";
const SEALED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
const BODY_LEN: usize = 1 + 8 + SEALED_LEN;
const SLOT_LEN: usize = BODY_LEN + 32;
const FILE_LEN: usize = MAGIC.len() + 2 * SLOT_LEN;

/// The key-encryption key of one epoch.
#[derive(Clone, Debug)]
pub(crate) struct Kek {
    pub(crate) epoch: u64,
    pub(crate) key: SecretKey,
}

/// One used slot: an epoch and its KEK sealed by the master key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) epoch: u64,
    sealed: Vec<u8>,
}

fn kek_aad(epoch: u64) -> Vec<u8> {
    let mut aad = b"sijil/vault/kek/v1".to_vec();
    aad.extend_from_slice(&epoch.to_be_bytes());
    aad
}

impl Slot {
    /// Seals `kek` under `master`.
    pub(crate) fn seal(master: &MasterKey, kek: &Kek) -> Result<Slot, VaultError> {
        let sealed = master.0.seal(kek.key.bytes(), &kek_aad(kek.epoch))?;
        Ok(Slot {
            epoch: kek.epoch,
            sealed,
        })
    }

    /// The KEK, or `None` when `master` is not the key it was sealed with.
    pub(crate) fn unseal(&self, master: &MasterKey) -> Option<Kek> {
        let plain = master.0.open(&self.sealed, &kek_aad(self.epoch))?;
        Some(Kek {
            epoch: self.epoch,
            key: SecretKey::from_slice(&plain)?,
        })
    }

    fn encode(slot: Option<&Slot>) -> [u8; SLOT_LEN] {
        let mut out = [0u8; SLOT_LEN];
        if let Some(slot) = slot {
            out[0] = 1;
            out[1..9].copy_from_slice(&slot.epoch.to_be_bytes());
            out[9..BODY_LEN].copy_from_slice(&slot.sealed);
            let digest = Sha256::digest(&out[..BODY_LEN]);
            out[BODY_LEN..].copy_from_slice(&digest);
        }
        out
    }

    fn decode(bytes: &[u8], index: usize) -> Result<Option<Slot>, VaultError> {
        if bytes.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let bad = |what: &str| VaultError::Corrupt(format!("vault key file slot {index}: {what}"));
        if bytes.len() != SLOT_LEN || bytes[0] != 1 {
            return Err(bad("unknown slot marker"));
        }
        if Sha256::digest(&bytes[..BODY_LEN]).as_slice() != &bytes[BODY_LEN..] {
            return Err(bad("checksum mismatch (the file was damaged)"));
        }
        let epoch =
            u64::from_be_bytes(<[u8; 8]>::try_from(&bytes[1..9]).map_err(|_| bad("short epoch"))?);
        Ok(Some(Slot {
            epoch,
            sealed: bytes[9..BODY_LEN].to_vec(),
        }))
    }
}

/// Reads both slots; `None` when the file does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<[Option<Slot>; 2]>, VaultError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(VaultError::io("open vault key file")(e)),
    };
    let mut bytes = Vec::with_capacity(FILE_LEN);
    Read::by_ref(&mut file)
        .take(FILE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(VaultError::io("read vault key file"))?;
    if bytes.len() != FILE_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(VaultError::Corrupt(format!(
            "{} is not a sijil vault key file ({} bytes)",
            path.display(),
            bytes.len()
        )));
    }
    let first = MAGIC.len();
    Ok(Some([
        Slot::decode(&bytes[first..first + SLOT_LEN], 0)?,
        Slot::decode(&bytes[first + SLOT_LEN..], 1)?,
    ]))
}

/// Creates the file with `slot` in slot 0, durably (file and directory synced). Fails if it
/// exists.
pub(crate) fn create(path: &Path, slot: &Slot) -> Result<(), VaultError> {
    let mut bytes = Vec::with_capacity(FILE_LEN);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&Slot::encode(Some(slot)));
    bytes.extend_from_slice(&Slot::encode(None));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(VaultError::io("create vault key file"))?;
    file.write_all(&bytes)
        .map_err(VaultError::io("write vault key file"))?;
    file.sync_all()
        .map_err(VaultError::io("sync vault key file"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(VaultError::io("sync vault key file directory"))?;
    }
    Ok(())
}

/// Overwrites slot `index` in place (all zeros for `None`) and syncs the file.
pub(crate) fn write_slot(path: &Path, index: usize, slot: Option<&Slot>) -> Result<(), VaultError> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(VaultError::io("open vault key file"))?;
    let offset = MAGIC.len() + index.min(1) * SLOT_LEN;
    file.seek(SeekFrom::Start(offset as u64))
        .map_err(VaultError::io("seek vault key file"))?;
    file.write_all(&Slot::encode(slot))
        .map_err(VaultError::io("write vault key file"))?;
    file.sync_all()
        .map_err(VaultError::io("sync vault key file"))
}
