//! Owns the vault's cryptographic primitives: 256-bit secret keys that wipe themselves from
//! memory, the workspace [`MasterKey`] and how it is configured, randomness, and
//! XChaCha20-Poly1305 sealing with associated data (192-bit random nonces, so random nonces
//! never collide in practice however many fields are sealed under one key).
//!
//! The workspace builds poly1305 with its portable backend (`--cfg poly1305_force_soft` in
//! `.cargo/config.toml`): on one personal field the AVX2 backend's per-message set-up made
//! an open ×2.8 slower (`cargo bench -p sijil-store --bench vault`).

use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::error::VaultError;

/// Nonce length of XChaCha20-Poly1305.
pub(crate) const NONCE_LEN: usize = 24;
/// Authentication tag length.
pub(crate) const TAG_LEN: usize = 16;
/// Key length.
pub(crate) const KEY_LEN: usize = 32;

/// A 256-bit secret key, zeroed when dropped.
#[derive(Clone)]
pub(crate) struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl SecretKey {
    /// A fresh random key.
    pub(crate) fn generate() -> Result<SecretKey, VaultError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut key[..])?;
        Ok(SecretKey(key))
    }

    /// A key from exactly 32 bytes.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<SecretKey> {
        let array = <[u8; KEY_LEN]>::try_from(bytes).ok()?;
        Some(SecretKey(Zeroizing::new(array)))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// `nonce ‖ ciphertext ‖ tag` of `plaintext` bound to `aad`.
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| VaultError::Corrupt("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plaintext of `nonce ‖ ciphertext ‖ tag` made by [`SecretKey::seal`] with the same
    /// key and `aad`; `None` when it does not authenticate.
    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
            .ok()
            .map(Zeroizing::new)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts` under `key`.
pub(crate) fn hmac_sha256(key: &[u8; KEY_LEN], parts: &[&[u8]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut ipad = Zeroizing::new([0x36u8; BLOCK]);
    let mut opad = Zeroizing::new([0x5cu8; BLOCK]);
    for (i, b) in key.iter().enumerate() {
        ipad[i] ^= b;
        opad[i] ^= b;
    }
    let mut inner = Sha256::new();
    inner.update(&ipad[..]);
    for part in parts {
        inner.update(part);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(&opad[..]);
    outer.update(inner);
    outer.finalize().into()
}

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), VaultError> {
    getrandom::fill(buf).map_err(|e| VaultError::Random(e.to_string()))
}

/// The workspace master key: 256 bits given to the server by configuration (64 hex
/// characters in the environment or in a file), never stored in the data directory. It only
/// wraps the vault's key-encryption key; its `Debug` output never shows it.
#[derive(Clone)]
pub struct MasterKey(pub(crate) SecretKey);

impl MasterKey {
    /// Parses 64 hexadecimal characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<MasterKey, VaultError> {
        let text = text.trim();
        if text.len() != 2 * KEY_LEN || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(VaultError::InvalidMasterKey(format!(
                "expected 64 hexadecimal characters, got {} characters{}",
                text.chars().count(),
                if text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    ""
                } else {
                    " that are not all hexadecimal"
                }
            )));
        }
        let bytes = Zeroizing::new(
            hex::decode(text).map_err(|e| VaultError::InvalidMasterKey(e.to_string()))?,
        );
        SecretKey::from_slice(&bytes)
            .map(MasterKey)
            .ok_or_else(|| VaultError::InvalidMasterKey("expected 32 bytes".into()))
    }

    /// Reads a file holding the key as 64 hexadecimal characters.
    pub fn from_file(path: &Path) -> Result<MasterKey, VaultError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            VaultError::InvalidMasterKey(format!(
                "cannot read master key file {}: {e}",
                path.display()
            ))
        })?);
        MasterKey::from_hex(&text).map_err(|e| match e {
            VaultError::InvalidMasterKey(detail) => {
                VaultError::InvalidMasterKey(format!("in {}: {detail}", path.display()))
            }
            other => other,
        })
    }

    /// The key from configuration: inline hex (for example `SIJIL_MASTER_KEY`) or a file,
    /// exactly one of them. Neither is [`VaultError::MissingMasterKey`].
    pub fn from_config(hex: Option<&str>, file: Option<&Path>) -> Result<MasterKey, VaultError> {
        match (hex, file) {
            (Some(_), Some(_)) => Err(VaultError::InvalidMasterKey(
                "give the master key either inline or as a file, not both".into(),
            )),
            (Some(hex), None) => MasterKey::from_hex(hex),
            (None, Some(file)) => MasterKey::from_file(file),
            (None, None) => Err(VaultError::MissingMasterKey),
        }
    }

    /// A fresh random master key (for `sijil` to offer when a store is created).
    pub fn generate() -> Result<MasterKey, VaultError> {
        SecretKey::generate().map(MasterKey)
    }

    /// The key as 64 lower-case hex characters, to show once to an operator.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.bytes()))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}
