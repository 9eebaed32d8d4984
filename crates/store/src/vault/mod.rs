//! Owns crypto-shredding: per-customer data keys, sealing each personal field of an event
//! (see [`sijil_domain::personal`]) under its customer's key before it is written, opening it
//! when read, and forgetting a customer by destroying their key, after which every read of
//! their fields gives [`ERASED`] while the log (and its hash chains, which cover the
//! ciphertext) stays intact.
//!
//! # Keys
//!
//! * The **master key** ([`MasterKey`], 256 bits) comes from configuration and is never
//!   written to the data directory. It seals only the key-encryption key.
//! * The **key-encryption key** (KEK) of the current *epoch* lives in the vault key file
//!   (see [`kek_file`]), sealed by the master key. The file doubles as the key check: a wrong
//!   master key fails to open it ([`VaultError::WrongMasterKey`]).
//! * Each customer's **data key** (256 bits, random) lives in the sled tree `vault/keys`
//!   (key `workspace ‖ customer`, 16 raw UUID bytes each), sealed by the KEK with the
//!   workspace, customer and epoch as associated data.
//!
//! # Fields
//!
//! A sealed field is `sjl1:` followed by unpadded URL-safe base64 of
//! `nonce (24) ‖ XChaCha20-Poly1305 ciphertext ‖ tag (16)`. The plaintext is padded
//! (`0x80` then zeros) to a multiple of 32 bytes, so lengths leak only coarsely. The
//! associated data binds the workspace, the customer and the [`PersonalField`] name, so a
//! ciphertext cannot be moved to another customer, workspace or field.
//!
//! # Forgetting, and why old sled pages do not matter
//!
//! [`Vault::forget`] writes a tombstone for the customer and, when they had a key, *rotates
//! the KEK*: it writes a new KEK to the key file's free slot, rewraps every other live data
//! key under it and writes the tombstone in one atomic sled batch, flushes, and then
//! overwrites the old KEK's slot with zeros. sled is log-structured, so the forgotten
//! customer's wrapped key may survive in an old segment, but it is sealed by a KEK that no
//! longer exists anywhere (its only copy was overwritten in place), so the master key and a
//! full copy of the data directory no longer recover it. Residual risks: file systems and
//! devices that do not overwrite in place (copy-on-write file systems, snapshots, SSD
//! wear-levelling), backups of the data directory taken before the forget, and process memory
//! (keys are zeroed when dropped, but not locked against swapping). Each forget costs one
//! rewrap per live customer key.
//!
//! # Moving keys
//!
//! [`Vault::export_keys`] gives every live data key and every forgotten customer as a
//! [`KeyBundle`], which only ever leaves the process sealed under a key derived from the
//! master key (see [`bundle`]); [`Vault::import_keys`] adds a bundle's keys to another data
//! directory's vault under that vault's own KEK. Forgotten customers travel as tombstones
//! without a key, so they stay forgotten after the move, and a live key never revives a
//! customer the destination forgot.
//!
//! # Durability
//!
//! A new data key (and a new subject link) is written to sled without its own flush: it must
//! reach disk before the first event sealed with it is appended, since the log's segments are
//! synced on their own and sled only flushes every second. The vault counts such writes;
//! [`Vault::make_durable`] flushes when any is not yet durable, and the command bus flushes
//! (one group flush for all waiting commands) before every append that needs it. Sled
//! batches used to push sled's buffers out as a side effect, which hid this from `kill -9`
//! tests until session 19.
//!
//! The vault's trees are named `vault/...`; no store or projection tree uses that prefix.

pub mod bundle;
pub mod crypto;
pub mod error;
pub mod kek_file;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sijil_domain::personal::{self, DataSubject, PersonalField, SubjectLink};
use sijil_domain::{CustomerId, DomainEvent, WorkspaceId};
use zeroize::Zeroizing;

pub use bundle::KeyBundle;
pub use crypto::MasterKey;
pub use error::VaultError;
/// What a forgotten customer's personal fields read as.
pub use sijil_domain::personal::ERASED;

use crypto::SecretKey;
use kek_file::{Kek, Slot};

/// Name of the tree of sealed data keys (and the current epoch).
pub const KEYS_TREE: &str = "vault/keys";
/// Name of the tree of case→customer and follow-up→customer links.
pub const LINKS_TREE: &str = "vault/links";
/// Prefix of a sealed field.
pub const SEALED_PREFIX: &str = "sjl1:";
/// Padding block of sealed plaintexts.
const PAD_BLOCK: usize = 32;
/// `vault/keys` key of the current epoch (u64 BE); customer keys are 32 bytes long.
const EPOCH_KEY: &[u8] = b"epoch";
const LIVE: u8 = 1;
const TOMBSTONE: [u8; 1] = [0];

/// How reading a customer's fields went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Every sealed field was decrypted (fields never sealed are left as they were).
    Readable,
    /// The customer was forgotten: every personal field now reads [`ERASED`].
    Erased,
}

/// What [`Vault::forget`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgot {
    /// The customer's key was destroyed.
    KeyDestroyed,
    /// The customer never had a key; they are marked forgotten so none is ever made.
    NoKeyHeld,
    /// They were already forgotten; nothing changed.
    AlreadyForgotten,
}

/// What [`Vault::import_keys`] did with a [`KeyBundle`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeysImported {
    /// Data keys the vault did not hold and now holds.
    pub added: usize,
    /// Data keys the vault already held (the same key).
    pub already_held: usize,
    /// Customers now marked forgotten (a tombstone written, or a live key destroyed).
    pub forgotten: usize,
    /// Entries for customers this vault had already forgotten, which stay forgotten (a live
    /// key in the bundle never brings a forgotten customer back).
    pub stayed_forgotten: usize,
}

/// The per-customer key vault. Cheap to clone; share one per data directory.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    keys: sled::Tree,
    links: sled::Tree,
    kek_path: PathBuf,
    master: MasterKey,
    state: RwLock<State>,
    /// New keys and links written so far ([`Vault::make_durable`]).
    written: AtomicU64,
    /// The value `written` had when the last completed flush started.
    flushed: AtomicU64,
}

struct State {
    kek: Kek,
    /// Which slot of the key file holds `kek`.
    slot: usize,
    cache: HashMap<[u8; 32], Entry>,
}

#[derive(Clone)]
enum Entry {
    Live(SecretKey),
    Forgotten,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("kek_path", &self.inner.kek_path)
            .finish_non_exhaustive()
    }
}

fn entry_key(ws: WorkspaceId, customer: CustomerId) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(ws.as_uuid().as_bytes());
    key[16..].copy_from_slice(customer.as_uuid().as_bytes());
    key
}

fn data_key_aad(epoch: u64, key: &[u8; 32]) -> Vec<u8> {
    let mut aad = b"sijil/vault/dk/v1".to_vec();
    aad.extend_from_slice(&epoch.to_be_bytes());
    aad.extend_from_slice(key);
    aad
}

fn field_aad(key: &[u8; 32], field: PersonalField) -> Vec<u8> {
    let mut aad = b"sijil/vault/pd/v1".to_vec();
    aad.extend_from_slice(key);
    aad.extend_from_slice(field.name().as_bytes());
    aad
}

fn encode_live(kek: &Kek, key: &[u8; 32], data_key: &SecretKey) -> Result<Vec<u8>, VaultError> {
    let sealed = kek
        .key
        .seal(data_key.bytes(), &data_key_aad(kek.epoch, key))?;
    let mut value = Vec::with_capacity(9 + sealed.len());
    value.push(LIVE);
    value.extend_from_slice(&kek.epoch.to_be_bytes());
    value.extend_from_slice(&sealed);
    Ok(value)
}

fn decode_entry(kek: &Kek, key: &[u8; 32], value: &[u8]) -> Result<Entry, VaultError> {
    match value {
        [0] => Ok(Entry::Forgotten),
        [LIVE, rest @ ..] if rest.len() > 8 => {
            let (epoch, sealed) = rest.split_at(8);
            let epoch = u64::from_be_bytes(<[u8; 8]>::try_from(epoch).unwrap_or([0xff; 8]));
            if epoch != kek.epoch {
                return Err(VaultError::Corrupt(format!(
                    "a data key is sealed under epoch {epoch}, the key file holds epoch {}",
                    kek.epoch
                )));
            }
            kek.key
                .open(sealed, &data_key_aad(epoch, key))
                .and_then(|plain| SecretKey::from_slice(&plain))
                .map(Entry::Live)
                .ok_or_else(|| VaultError::Corrupt("a data key does not unseal".into()))
        }
        _ => Err(VaultError::Corrupt("unknown data key record".into())),
    }
}

fn pad(text: &str) -> Zeroizing<Vec<u8>> {
    let len = (text.len() / PAD_BLOCK + 1) * PAD_BLOCK;
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    out.extend_from_slice(text.as_bytes());
    out.push(0x80);
    out.resize(len, 0);
    out
}

fn unpad(padded: &[u8]) -> Option<&[u8]> {
    let end = padded.iter().rposition(|&b| b != 0)?;
    (padded[end] == 0x80).then(|| &padded[..end])
}

impl Vault {
    /// Opens the vault kept in `db` (tree `vault/keys`) with its key file at `kek_path`,
    /// creating both on first use. Fails with [`VaultError::WrongMasterKey`] when `master`
    /// does not unlock the key file and [`VaultError::KeyFileMissing`] when the tree holds
    /// keys but the file is gone. Finishes a forget that a crash interrupted.
    pub fn unlock(
        db: &sled::Db,
        kek_path: impl AsRef<Path>,
        master: MasterKey,
    ) -> Result<Vault, VaultError> {
        let kek_path = kek_path.as_ref().to_path_buf();
        let keys = db
            .open_tree(KEYS_TREE)
            .map_err(VaultError::sled("open vault tree"))?;
        let links = db
            .open_tree(LINKS_TREE)
            .map_err(VaultError::sled("open vault tree"))?;
        let epoch = keys
            .get(EPOCH_KEY)
            .map_err(VaultError::sled("read vault epoch"))?
            .map(|v| {
                <[u8; 8]>::try_from(v.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| VaultError::Corrupt("vault epoch is not 8 bytes".into()))
            })
            .transpose()?;
        let holds_keys = keys.iter().keys().next().is_some();
        let wrong = || VaultError::WrongMasterKey {
            path: kek_path.clone(),
        };
        let (kek, slot) = match (kek_file::read(&kek_path)?, epoch) {
            (None, _) if holds_keys => {
                return Err(VaultError::KeyFileMissing {
                    path: kek_path.clone(),
                })
            }
            (None, _) => {
                let kek = Kek {
                    epoch: 1,
                    key: SecretKey::generate()?,
                };
                kek_file::create(&kek_path, &Slot::seal(&master, &kek)?)?;
                (kek, 0)
            }
            (Some(slots), Some(epoch)) => {
                let index = slots
                    .iter()
                    .position(|s| s.as_ref().is_some_and(|s| s.epoch == epoch))
                    .ok_or_else(|| {
                        VaultError::Corrupt(format!(
                            "the vault key file holds no key for epoch {epoch}"
                        ))
                    })?;
                let kek = slots[index]
                    .as_ref()
                    .and_then(|s| s.unseal(&master))
                    .ok_or_else(wrong)?;
                if slots[1 - index].is_some() {
                    // A forget stopped between writing a new KEK and destroying the old one.
                    kek_file::write_slot(&kek_path, 1 - index, None)?;
                }
                (kek, index)
            }
            (Some(slots), None) => {
                // Created, but the epoch never reached sled: only valid while no key exists.
                let used: Vec<usize> = (0..2).filter(|&i| slots[i].is_some()).collect();
                if holds_keys || used.len() != 1 {
                    return Err(VaultError::Corrupt(
                        "the vault tree and the vault key file disagree about the epoch".into(),
                    ));
                }
                let kek = slots[used[0]]
                    .as_ref()
                    .and_then(|s| s.unseal(&master))
                    .ok_or_else(wrong)?;
                (kek, used[0])
            }
        };
        if epoch.is_none() {
            keys.insert(EPOCH_KEY, &kek.epoch.to_be_bytes())
                .map_err(VaultError::sled("write vault epoch"))?;
            db.flush().map_err(VaultError::sled("flush vault"))?;
        }
        Ok(Vault {
            inner: Arc::new(Inner {
                db: db.clone(),
                keys,
                links,
                kek_path,
                master,
                state: RwLock::new(State {
                    kek,
                    slot,
                    cache: HashMap::new(),
                }),
                written: AtomicU64::new(0),
                flushed: AtomicU64::new(0),
            }),
        })
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The customer's entry (`None`: no key yet), loading it into the cache.
    fn entry(&self, key: &[u8; 32]) -> Result<Option<Entry>, VaultError> {
        if let Some(entry) = self.read_state().cache.get(key) {
            return Ok(Some(entry.clone()));
        }
        let mut state = self.write_state();
        Self::load(&self.inner.keys, &mut state, key)
    }

    fn load(
        tree: &sled::Tree,
        state: &mut State,
        key: &[u8; 32],
    ) -> Result<Option<Entry>, VaultError> {
        if let Some(entry) = state.cache.get(key) {
            return Ok(Some(entry.clone()));
        }
        let Some(value) = tree.get(key).map_err(VaultError::sled("read data key"))? else {
            return Ok(None);
        };
        let entry = decode_entry(&state.kek, key, &value)?;
        state.cache.insert(*key, entry.clone());
        Ok(Some(entry))
    }

    /// The customer's data key, made on first use.
    fn data_key(&self, ws: WorkspaceId, customer: CustomerId) -> Result<SecretKey, VaultError> {
        let key = entry_key(ws, customer);
        match self.entry(&key)? {
            Some(Entry::Live(data_key)) => return Ok(data_key),
            Some(Entry::Forgotten) => return Err(VaultError::Forgotten(customer)),
            None => {}
        }
        let mut state = self.write_state();
        match Self::load(&self.inner.keys, &mut state, &key)? {
            Some(Entry::Live(data_key)) => Ok(data_key),
            Some(Entry::Forgotten) => Err(VaultError::Forgotten(customer)),
            None => {
                let data_key = SecretKey::generate()?;
                let value = encode_live(&state.kek, &key, &data_key)?;
                self.inner
                    .keys
                    .insert(key, value)
                    .map_err(VaultError::sled("write data key"))?;
                self.inner.written.fetch_add(1, Ordering::SeqCst);
                state.cache.insert(key, Entry::Live(data_key.clone()));
                Ok(data_key)
            }
        }
    }

    /// Replaces every personal field of `event` with its sealed form under `subject`'s key
    /// (made on first use). Events without personal fields are left alone and make no key.
    /// Fails with [`VaultError::Forgotten`] when `subject` was forgotten.
    pub fn seal(
        &self,
        event: &mut DomainEvent,
        ws: WorkspaceId,
        subject: CustomerId,
    ) -> Result<(), VaultError> {
        if !personal::has_personal(event) {
            return Ok(());
        }
        let data_key = self.data_key(ws, subject)?;
        let key = entry_key(ws, subject);
        personal::try_map_personal(event, |field, value| {
            let sealed = data_key.seal(&pad(value), &field_aad(&key, field))?;
            let mut text = String::with_capacity(SEALED_PREFIX.len() + sealed.len() * 4 / 3 + 4);
            text.push_str(SEALED_PREFIX);
            URL_SAFE_NO_PAD.encode_string(&sealed, &mut text);
            let old = std::mem::replace(value, text);
            drop(Zeroizing::new(old.into_bytes()));
            Ok(())
        })
    }

    /// Turns the personal fields of `event` back into plaintext with `subject`'s key, or into
    /// [`ERASED`] when `subject` was forgotten (sealed or not). Fields that are not sealed
    /// (written before sealing existed) are left as they are. Fails when a sealed field does
    /// not authenticate for `subject` or `subject` has no key; `event` may then be partly
    /// opened and must be dropped.
    pub fn open(
        &self,
        event: &mut DomainEvent,
        ws: WorkspaceId,
        subject: CustomerId,
    ) -> Result<Opened, VaultError> {
        let key = entry_key(ws, subject);
        let entry = self.entry(&key)?;
        if matches!(entry, Some(Entry::Forgotten)) {
            personal::erase(event);
            return Ok(Opened::Erased);
        }
        personal::try_map_personal(event, |field, value| {
            if let Some(text) = open_field(entry.as_ref(), &key, field, value)? {
                *value = text;
            }
            Ok(())
        })?;
        Ok(Opened::Readable)
    }

    /// One personal text as a reader may see it: `text` opened with `subject`'s key when it
    /// is a sealed `field` (as a projection may keep it), [`ERASED`] once `subject` is
    /// forgotten, and `text` itself when it is not sealed. Fails like [`Vault::open`].
    pub fn open_text(
        &self,
        ws: WorkspaceId,
        subject: CustomerId,
        field: PersonalField,
        text: &str,
    ) -> Result<String, VaultError> {
        let key = entry_key(ws, subject);
        let entry = self.entry(&key)?;
        if matches!(entry, Some(Entry::Forgotten)) {
            return Ok(ERASED.to_owned());
        }
        Ok(open_field(entry.as_ref(), &key, field, text)?.unwrap_or_else(|| text.to_owned()))
    }

    /// A keyed hash (HMAC-SHA256) of `value` for exact-match indexes that must not hold
    /// personal data in clear (a directory's email, phone or name-prefix keys). The key is
    /// derived from the master key for workspace `ws`, so the hash of a value is stable
    /// across restarts and forgets, differs between workspaces and `purpose`s, and cannot be
    /// computed (or confirmed by guessing) without the master key.
    pub fn index_key(&self, ws: WorkspaceId, purpose: &str, value: &str) -> [u8; 32] {
        let workspace_key = Zeroizing::new(crypto::hmac_sha256(
            self.inner.master.0.bytes(),
            &[b"sijil/vault/index/v1", ws.as_uuid().as_bytes()],
        ));
        crypto::hmac_sha256(
            &workspace_key,
            &[purpose.as_bytes(), &[0], value.as_bytes()],
        )
    }

    /// Whether `customer` was forgotten.
    pub fn is_forgotten(&self, ws: WorkspaceId, customer: CustomerId) -> Result<bool, VaultError> {
        Ok(matches!(
            self.entry(&entry_key(ws, customer))?,
            Some(Entry::Forgotten)
        ))
    }

    /// Forgets `customer`: destroys their data key durably (see the module docs) and marks
    /// them forgotten, so their sealed fields read as [`ERASED`] from now on and no new
    /// personal data can be sealed for them. Forgetting again changes nothing.
    // A batch: every key rewrapped, the tombstone and the epoch change together (rare; see clippy.toml).
    #[allow(clippy::disallowed_methods)]
    pub fn forget(&self, ws: WorkspaceId, customer: CustomerId) -> Result<Forgot, VaultError> {
        let key = entry_key(ws, customer);
        let mut state = self.write_state();
        match Self::load(&self.inner.keys, &mut state, &key)? {
            Some(Entry::Forgotten) => return Ok(Forgot::AlreadyForgotten),
            None => {
                self.inner
                    .keys
                    .insert(key, &TOMBSTONE)
                    .map_err(VaultError::sled("write tombstone"))?;
                self.flush()?;
                state.cache.insert(key, Entry::Forgotten);
                return Ok(Forgot::NoKeyHeld);
            }
            Some(Entry::Live(_)) => {}
        }
        // 1. The next KEK, durably in the free slot (the current one stays usable).
        let next = Kek {
            epoch: state.kek.epoch + 1,
            key: SecretKey::generate()?,
        };
        let free = 1 - state.slot;
        let path = &self.inner.kek_path;
        kek_file::write_slot(path, free, Some(&Slot::seal(&self.inner.master, &next)?))?;
        // 2. Every other live key rewrapped, the tombstone and the new epoch: one batch.
        let mut batch = sled::Batch::default();
        for item in self.inner.keys.iter() {
            let (k, v) = item.map_err(VaultError::sled("scan data keys"))?;
            let Ok(k) = <[u8; 32]>::try_from(k.as_ref()) else {
                continue;
            };
            if k == key {
                continue;
            }
            if let Entry::Live(data_key) = decode_entry(&state.kek, &k, &v)? {
                batch.insert(&k[..], encode_live(&next, &k, &data_key)?);
            }
        }
        batch.insert(&key[..], &TOMBSTONE[..]);
        batch.insert(EPOCH_KEY, &next.epoch.to_be_bytes()[..]);
        self.inner
            .keys
            .apply_batch(batch)
            .map_err(VaultError::sled("rewrap data keys"))?;
        self.flush()?;
        // 3. The old KEK overwritten in place: lingering copies of the key are now useless.
        kek_file::write_slot(path, state.slot, None)?;
        state.kek = next;
        state.slot = free;
        state.cache.insert(key, Entry::Forgotten);
        Ok(Forgot::KeyDestroyed)
    }

    /// One customer's entry (their live data key, or that they were forgotten) as a key
    /// bundle sealed under the master key, for nodes that share a PostgreSQL log to hand keys
    /// to each other; `None` when this vault holds nothing for them.
    pub fn share(
        &self,
        ws: WorkspaceId,
        customer: CustomerId,
    ) -> Result<Option<Vec<u8>>, VaultError> {
        let key = entry_key(ws, customer);
        let mut bundle = KeyBundle::default();
        match self.entry(&key)? {
            None => return Ok(None),
            Some(Entry::Live(data_key)) => bundle.live.push((key, data_key)),
            Some(Entry::Forgotten) => bundle.forgotten.push(key),
        }
        self.seal_bundle(&bundle).map(Some)
    }

    /// `bundle` sealed under this vault's master key (see [`KeyBundle::seal`]).
    pub fn seal_bundle(&self, bundle: &KeyBundle) -> Result<Vec<u8>, VaultError> {
        bundle.seal(&self.inner.master)
    }

    /// The bundle `bytes` made by [`Vault::share`] (or [`KeyBundle::seal`]) under this vault's
    /// master key; [`VaultError::BundleWrongKey`] under another.
    pub fn open_shared(&self, bytes: &[u8]) -> Result<KeyBundle, VaultError> {
        KeyBundle::open(&self.inner.master, bytes)
    }

    /// Replaces this vault's data keys for the live customers of `bundle` with the bundle's,
    /// durably. Only for a key this node made but never used for anything durable, when
    /// another node sharing the log published a different key for the same customer first:
    /// the caller seals again with the adopted key. Tombstones in `bundle` are ignored.
    // A batch: the adopted keys replace the node's own together (rare; see clippy.toml).
    #[allow(clippy::disallowed_methods)]
    pub fn adopt(&self, bundle: &KeyBundle) -> Result<(), VaultError> {
        let mut state = self.write_state();
        let mut batch = sled::Batch::default();
        for (key, data_key) in &bundle.live {
            if let Some(Entry::Forgotten) = Self::load(&self.inner.keys, &mut state, key)? {
                let (_, customer) = split_key(key);
                let customer = CustomerId::new(customer).map_err(|_| {
                    VaultError::Corrupt("a vault key does not name a customer".into())
                })?;
                return Err(VaultError::Forgotten(customer));
            }
            batch.insert(&key[..], encode_live(&state.kek, key, data_key)?);
        }
        self.inner
            .keys
            .apply_batch(batch)
            .map_err(VaultError::sled("adopt data keys"))?;
        self.flush()?;
        for (key, data_key) in &bundle.live {
            state.cache.insert(*key, Entry::Live(data_key.clone()));
        }
        Ok(())
    }

    /// Whether this vault holds an entry (a live key, or a tombstone) for `customer`.
    pub fn holds(&self, ws: WorkspaceId, customer: CustomerId) -> Result<bool, VaultError> {
        Ok(self.entry(&entry_key(ws, customer))?.is_some())
    }

    /// Every live data key and every forgotten customer of this vault, to move them with an
    /// export of the log (seal the bundle with [`KeyBundle::seal`]; it never leaves in clear).
    pub fn export_keys(&self) -> Result<KeyBundle, VaultError> {
        let state = self.read_state();
        let mut bundle = KeyBundle::default();
        for item in self.inner.keys.iter() {
            let (k, v) = item.map_err(VaultError::sled("scan data keys"))?;
            let Ok(k) = <[u8; 32]>::try_from(k.as_ref()) else {
                continue;
            };
            match decode_entry(&state.kek, &k, &v)? {
                Entry::Live(data_key) => bundle.live.push((k, data_key)),
                Entry::Forgotten => bundle.forgotten.push(k),
            }
        }
        Ok(bundle)
    }

    /// Adds the keys of `bundle` (from [`Vault::export_keys`] of another data directory),
    /// wrapped under this vault's own KEK, durably. Customers the bundle names as forgotten
    /// are forgotten here too (a key this vault holds for them is destroyed as by
    /// [`Vault::forget`]); customers this vault forgot stay forgotten. Importing the same
    /// bundle again changes nothing. Fails with [`VaultError::KeyConflict`], writing nothing,
    /// when the vault holds another key for a customer of the bundle.
    // A batch: an import's keys land together (offline or rare; see clippy.toml).
    #[allow(clippy::disallowed_methods)]
    pub fn import_keys(&self, bundle: &KeyBundle) -> Result<KeysImported, VaultError> {
        let mut done = KeysImported::default();
        let mut to_forget = Vec::new();
        {
            let mut state = self.write_state();
            let mut batch = sled::Batch::default();
            let mut pending: HashMap<[u8; 32], Entry> = HashMap::new();
            for (key, data_key) in &bundle.live {
                let existing = match pending.get(key) {
                    Some(entry) => Some(entry.clone()),
                    None => Self::load(&self.inner.keys, &mut state, key)?,
                };
                match existing {
                    None => {
                        batch.insert(&key[..], encode_live(&state.kek, key, data_key)?);
                        pending.insert(*key, Entry::Live(data_key.clone()));
                        done.added += 1;
                    }
                    Some(Entry::Live(held)) if held.bytes() == data_key.bytes() => {
                        done.already_held += 1;
                    }
                    Some(Entry::Live(_)) => {
                        let (workspace, customer) = split_key(key);
                        return Err(VaultError::KeyConflict {
                            workspace,
                            customer,
                        });
                    }
                    Some(Entry::Forgotten) => done.stayed_forgotten += 1,
                }
            }
            for key in &bundle.forgotten {
                let existing = match pending.get(key) {
                    Some(entry) => Some(entry.clone()),
                    None => Self::load(&self.inner.keys, &mut state, key)?,
                };
                match existing {
                    None => {
                        batch.insert(&key[..], &TOMBSTONE[..]);
                        pending.insert(*key, Entry::Forgotten);
                        done.forgotten += 1;
                    }
                    Some(Entry::Live(_)) => to_forget.push(*key),
                    Some(Entry::Forgotten) => done.stayed_forgotten += 1,
                }
            }
            self.inner
                .keys
                .apply_batch(batch)
                .map_err(VaultError::sled("import data keys"))?;
            self.flush()?;
            state.cache.extend(pending);
        }
        for key in to_forget {
            let (workspace, customer) = split_key(&key);
            let corrupt = || VaultError::Corrupt("a vault key does not name a customer".into());
            let ws = WorkspaceId::new(workspace).map_err(|_| corrupt())?;
            let customer = CustomerId::new(customer).map_err(|_| corrupt())?;
            if self.forget(ws, customer)? != Forgot::AlreadyForgotten {
                done.forgotten += 1;
            }
        }
        Ok(done)
    }

    /// Remembers the case→customer or follow-up→customer link `event` makes, if any, so later
    /// events of that case or follow-up can be resolved with [`Vault::resolve`].
    pub fn record_link(&self, ws: WorkspaceId, event: &DomainEvent) -> Result<(), VaultError> {
        let (link_key, customer) = match personal::subject_link(event) {
            Some(SubjectLink::Case(case, customer)) => {
                (link_key(ws, b'c', case.as_uuid()), customer)
            }
            Some(SubjectLink::FollowUp(follow_up, customer)) => {
                (link_key(ws, b'f', follow_up.as_uuid()), customer)
            }
            None => return Ok(()),
        };
        let before = self
            .inner
            .links
            .insert(link_key, customer.as_uuid().as_bytes())
            .map_err(VaultError::sled("write subject link"))?;
        if before.as_deref() != Some(customer.as_uuid().as_bytes()) {
            self.inner.written.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// The customer whose personal data an event with `subject` holds, from the links
    /// recorded so far; `None` for agent events and unknown cases or follow-ups.
    pub fn resolve(
        &self,
        ws: WorkspaceId,
        subject: DataSubject,
    ) -> Result<Option<CustomerId>, VaultError> {
        let key = match subject {
            DataSubject::Customer(id) => return Ok(Some(id)),
            DataSubject::NoCustomer => return Ok(None),
            DataSubject::CustomerOfCase(case) => link_key(ws, b'c', case.as_uuid()),
            DataSubject::CustomerOfFollowUp(f) => link_key(ws, b'f', f.as_uuid()),
        };
        let Some(value) = self
            .inner
            .links
            .get(key)
            .map_err(VaultError::sled("read subject link"))?
        else {
            return Ok(None);
        };
        let uuid = uuid::Uuid::from_slice(&value)
            .map_err(|_| VaultError::Corrupt("a subject link is not a UUID".into()))?;
        CustomerId::new(uuid)
            .map(Some)
            .map_err(|_| VaultError::Corrupt("a subject link is not a customer id".into()))
    }

    /// Whether a key or link written so far may not be durable yet.
    pub fn needs_flush(&self) -> bool {
        self.inner.flushed.load(Ordering::SeqCst) < self.inner.written.load(Ordering::SeqCst)
    }

    /// How many new keys and links were written so far: pass it to [`Vault::note_flushed`]
    /// once a flush that started after reading it has completed.
    pub fn written(&self) -> u64 {
        self.inner.written.load(Ordering::SeqCst)
    }

    /// Records that the keys and links counted by `written` ([`Vault::written`]) are durable.
    pub fn note_flushed(&self, written: u64) {
        self.inner.flushed.fetch_max(written, Ordering::SeqCst);
    }

    /// Makes every key and link written before this call durable, flushing the database
    /// unless a flush that started after the last of them has completed already. Call it
    /// before appending events sealed with a new key (blocking: it may sync the disk).
    pub fn make_durable(&self) -> Result<(), VaultError> {
        if self.needs_flush() {
            self.flush()?;
        }
        Ok(())
    }

    /// Makes every key and link written so far durable, and counts them as such.
    pub fn flush(&self) -> Result<(), VaultError> {
        let target = self.written();
        self.inner
            .db
            .flush()
            .map_err(VaultError::sled("flush vault"))?;
        self.note_flushed(target);
        Ok(())
    }
}

/// Decrypts one field value sealed under the customer `key` (whose entry is `entry`):
/// `None` when `value` is not sealed.
fn open_field(
    entry: Option<&Entry>,
    key: &[u8; 32],
    field: PersonalField,
    value: &str,
) -> Result<Option<String>, VaultError> {
    let Some(encoded) = value.strip_prefix(SEALED_PREFIX) else {
        return Ok(None);
    };
    let Some(Entry::Live(data_key)) = entry else {
        return Err(VaultError::NoKey {
            field: field.name(),
        });
    };
    let undecryptable = || VaultError::Undecryptable {
        field: field.name(),
    };
    let sealed = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| undecryptable())?;
    let padded = data_key
        .open(&sealed, &field_aad(key, field))
        .ok_or_else(undecryptable)?;
    let plain = unpad(&padded).ok_or_else(undecryptable)?;
    let text = std::str::from_utf8(plain).map_err(|_| undecryptable())?;
    Ok(Some(text.to_owned()))
}

/// The workspace and customer ids of a `vault/keys` key.
pub(crate) fn split_key(key: &[u8; 32]) -> (uuid::Uuid, uuid::Uuid) {
    let mut ws = [0u8; 16];
    let mut customer = [0u8; 16];
    ws.copy_from_slice(&key[..16]);
    customer.copy_from_slice(&key[16..]);
    (uuid::Uuid::from_bytes(ws), uuid::Uuid::from_bytes(customer))
}

fn link_key(ws: WorkspaceId, kind: u8, id: uuid::Uuid) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[..16].copy_from_slice(ws.as_uuid().as_bytes());
    key[16] = kind;
    key[17..].copy_from_slice(id.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use sijil_domain::events::NoteAdded;
    use sijil_domain::{NoteId, NoteTarget, Timestamp};

    fn id(n: u8) -> uuid::Uuid {
        uuid::Builder::from_unix_timestamp_millis(1_700_000_000_000, &[n; 10]).into_uuid()
    }

    fn note(customer: CustomerId, text: &str) -> DomainEvent {
        NoteAdded {
            note_id: NoteId::new(id(9)).expect("v7"),
            target: NoteTarget::Case(sijil_domain::CaseId::new(id(8)).expect("v7")),
            customer_id: customer,
            author: None,
            text: text.into(),
            at: Timestamp(1),
        }
        .into()
    }

    struct Setup {
        dir: tempfile::TempDir,
        db: sled::Db,
        master: MasterKey,
        ws: WorkspaceId,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path().join("db")).expect("sled");
        Setup {
            dir,
            db,
            master: MasterKey::generate().expect("random"),
            ws: WorkspaceId::new(id(1)).expect("v7"),
        }
    }

    impl Setup {
        fn kek_path(&self) -> PathBuf {
            self.dir.path().join("vault.kek")
        }
        fn unlock(&self) -> Result<Vault, VaultError> {
            Vault::unlock(&self.db, self.kek_path(), self.master.clone())
        }
    }

    #[test]
    fn new_keys_and_links_need_a_flush_until_one_completes() {
        let s = setup();
        let vault = s.unlock().expect("unlock");
        assert!(!vault.needs_flush());
        // A new key (and the note's case link) must be made durable
        let a = CustomerId::new(id(2)).expect("v7");
        vault.record_link(s.ws, &note(a, "x")).expect("link");
        vault.seal(&mut note(a, "x"), s.ws, a).expect("seal");
        assert!(vault.needs_flush());
        vault.make_durable().expect("durable");
        assert!(!vault.needs_flush());
        // Sealing again with the same key, and the same link again, write nothing new
        vault.record_link(s.ws, &note(a, "y")).expect("link");
        vault.seal(&mut note(a, "y"), s.ws, a).expect("seal");
        assert!(!vault.needs_flush());
        // A forget's own flush counts too
        let b = CustomerId::new(id(3)).expect("v7");
        vault.seal(&mut note(b, "z"), s.ws, b).expect("seal");
        assert!(vault.needs_flush());
        vault.forget(s.ws, a).expect("forget");
        assert!(!vault.needs_flush());
    }

    #[test]
    fn a_lingering_copy_of_a_forgotten_key_is_useless_after_rotation() {
        // Given two customers with sealed notes, and a copy of A's wrapped key and of the
        // key file as they were on disk (what an old sled segment or page could still hold),
        let s = setup();
        let vault = s.unlock().expect("unlock");
        let (a, b) = (
            CustomerId::new(id(2)).expect("v7"),
            CustomerId::new(id(3)).expect("v7"),
        );
        let mut note_a = note(a, "Amina's secret");
        let mut note_b = note(b, "Badr's secret");
        vault.seal(&mut note_a, s.ws, a).expect("seal a");
        vault.seal(&mut note_b, s.ws, b).expect("seal b");
        let key_a = entry_key(s.ws, a);
        let stale_value = vault
            .inner
            .keys
            .get(key_a)
            .expect("read")
            .expect("a has a key");
        let old_file = std::fs::read(s.kek_path()).expect("key file");
        // when A is forgotten,
        assert_eq!(vault.forget(s.ws, a).expect("forget"), Forgot::KeyDestroyed);
        // then the key file no longer holds the old KEK's sealed bytes,
        let new_file = std::fs::read(s.kek_path()).expect("key file");
        let old_slot = &old_file[8..8 + 113];
        assert!(!new_file.windows(old_slot.len()).any(|w| w == old_slot));
        // the master key and the current key file cannot unwrap the stale copy of A's key,
        let slots = kek_file::read(&s.kek_path())
            .expect("read")
            .expect("exists");
        let live: Vec<Kek> = slots
            .iter()
            .flatten()
            .map(|slot| slot.unseal(&s.master).expect("unseals"))
            .collect();
        assert_eq!(live.len(), 1, "only the new KEK remains");
        let sealed = &stale_value[9..];
        for kek in &live {
            for epoch in [kek.epoch, kek.epoch - 1] {
                assert!(kek.key.open(sealed, &data_key_aad(epoch, &key_a)).is_none());
            }
        }
        // and B, rewrapped under the new KEK, still opens after a restart.
        drop(vault);
        let vault = s.unlock().expect("unlock again");
        vault.open(&mut note_b, s.ws, b).expect("open b");
        assert_eq!(note_b, note(b, "Badr's secret"));
        assert_eq!(
            vault.open(&mut note_a, s.ws, a).expect("open a"),
            Opened::Erased
        );
    }

    #[test]
    fn a_forget_interrupted_before_its_batch_leaves_the_old_key_working() {
        // Given a vault whose key file got a next KEK but whose batch never ran (a crash),
        let s = setup();
        let vault = s.unlock().expect("unlock");
        let a = CustomerId::new(id(2)).expect("v7");
        let mut sealed = note(a, "kept");
        vault.seal(&mut sealed, s.ws, a).expect("seal");
        let (epoch, slot) = {
            let state = vault.read_state();
            (state.kek.epoch, state.slot)
        };
        let next = Kek {
            epoch: epoch + 1,
            key: SecretKey::generate().expect("random"),
        };
        kek_file::write_slot(
            &s.kek_path(),
            1 - slot,
            Some(&Slot::seal(&s.master, &next).expect("seal kek")),
        )
        .expect("write");
        vault.flush().expect("flush");
        drop(vault);
        // when it is unlocked again,
        let vault = s.unlock().expect("unlock after crash");
        // then the data still opens, and the unused next KEK was wiped.
        vault.open(&mut sealed, s.ws, a).expect("open");
        assert_eq!(sealed, note(a, "kept"));
        let slots = kek_file::read(&s.kek_path())
            .expect("read")
            .expect("exists");
        assert_eq!(slots.iter().flatten().count(), 1);
        // And a forget after that recovery still works.
        assert_eq!(vault.forget(s.ws, a).expect("forget"), Forgot::KeyDestroyed);
    }

    #[test]
    fn a_forget_interrupted_after_its_batch_finishes_on_unlock() {
        // Given a forget whose batch ran but whose old KEK was not yet wiped (a crash),
        let s = setup();
        let vault = s.unlock().expect("unlock");
        let (a, b) = (
            CustomerId::new(id(2)).expect("v7"),
            CustomerId::new(id(3)).expect("v7"),
        );
        let mut note_b = note(b, "Badr");
        vault.seal(&mut note(a, "x"), s.ws, a).expect("seal a");
        vault.seal(&mut note_b, s.ws, b).expect("seal b");
        let before = std::fs::read(s.kek_path()).expect("key file");
        vault.forget(s.ws, a).expect("forget");
        drop(vault);
        // put the old KEK back in its slot, as if step 3 had not happened
        let after = std::fs::read(s.kek_path()).expect("key file");
        let mut crashed = after.clone();
        for i in 8..before.len() {
            if after[i] == 0 && before[i] != 0 {
                crashed[i] = before[i];
            }
        }
        std::fs::write(s.kek_path(), &crashed).expect("write");
        assert_eq!(
            kek_file::read(&s.kek_path())
                .expect("read")
                .expect("exists")
                .iter()
                .flatten()
                .count(),
            2
        );
        // when it is unlocked again, the old KEK is wiped and B still opens.
        let vault = s.unlock().expect("unlock after crash");
        let slots = kek_file::read(&s.kek_path())
            .expect("read")
            .expect("exists");
        assert_eq!(slots.iter().flatten().count(), 1);
        vault.open(&mut note_b, s.ws, b).expect("open b");
        assert_eq!(note_b, note(b, "Badr"));
        assert!(vault.is_forgotten(s.ws, a).expect("read"));
    }

    #[test]
    fn a_single_sealed_field_opens_only_as_that_field_and_reads_erased_once_forgotten() {
        // Given a note sealed for A,
        let s = setup();
        let vault = s.unlock().expect("unlock");
        let a = CustomerId::new(id(2)).expect("v7");
        let mut sealed = note(a, "Amina's secret");
        vault.seal(&mut sealed, s.ws, a).expect("seal");
        let DomainEvent::NoteAdded(n) = &sealed else {
            panic!("a note");
        };
        let text = n.text.clone();
        // then its text opens as a note text, not as another field, and plaintext passes,
        assert_eq!(
            vault
                .open_text(s.ws, a, PersonalField::NoteText, &text)
                .expect("open"),
            "Amina's secret"
        );
        assert!(matches!(
            vault.open_text(s.ws, a, PersonalField::DisplayName, &text),
            Err(VaultError::Undecryptable { .. })
        ));
        assert_eq!(
            vault
                .open_text(s.ws, a, PersonalField::NoteText, "plain")
                .expect("plain"),
            "plain"
        );
        // and once A is forgotten it reads erased.
        vault.forget(s.ws, a).expect("forget");
        assert_eq!(
            vault
                .open_text(s.ws, a, PersonalField::NoteText, &text)
                .expect("erased"),
            ERASED
        );
    }

    #[test]
    fn index_keys_are_stable_per_master_key_and_separate_workspaces_and_purposes() {
        let s = setup();
        let vault = s.unlock().expect("unlock");
        let other_ws = WorkspaceId::new(id(7)).expect("v7");
        let k = vault.index_key(s.ws, "email", "amina@example.com");
        assert_eq!(k, vault.index_key(s.ws, "email", "amina@example.com"));
        assert_ne!(k, vault.index_key(other_ws, "email", "amina@example.com"));
        assert_ne!(k, vault.index_key(s.ws, "phone", "amina@example.com"));
        assert_ne!(k, vault.index_key(s.ws, "email", "amina@example.org"));
        // The purpose and the value are separated: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            vault.index_key(s.ws, "ab", "c"),
            vault.index_key(s.ws, "a", "bc")
        );
        drop(vault);
        let again = s.unlock().expect("unlock again");
        assert_eq!(k, again.index_key(s.ws, "email", "amina@example.com"));
    }

    #[test]
    fn keys_moved_in_a_bundle_open_the_same_ciphertext_and_forgotten_customers_stay_erased() {
        // Given a vault with sealed notes for A and B, C forgotten after sealing, and D
        // forgotten without ever holding a key,
        let source = setup();
        let vault = source.unlock().expect("unlock");
        let [a, b, c, d] = [2, 3, 4, 5].map(|n| CustomerId::new(id(n)).expect("v7"));
        let mut notes: Vec<DomainEvent> = [a, b, c]
            .iter()
            .map(|&who| {
                let mut sealed = note(who, "secret");
                vault.seal(&mut sealed, source.ws, who).expect("seal");
                sealed
            })
            .collect();
        vault.forget(source.ws, c).expect("forget c");
        vault.forget(source.ws, d).expect("forget d");
        // when its keys are exported, sealed under the master key, and imported into another
        // data directory's vault (its own KEK) unlocked with the same master key,
        let bundle = vault.export_keys().expect("export");
        assert_eq!((bundle.live_keys(), bundle.forgotten_customers()), (2, 2));
        let bytes = bundle.seal(&source.master).expect("seal bundle");
        let mut target = setup();
        target.master = source.master.clone();
        let moved = target.unlock().expect("unlock target");
        let opened = KeyBundle::open(&target.master, &bytes).expect("open bundle");
        let done = moved.import_keys(&opened).expect("import");
        assert_eq!(
            done,
            KeysImported {
                added: 2,
                forgotten: 2,
                ..KeysImported::default()
            }
        );
        // then A's and B's notes open there, also after a restart, C's and D's read erased,
        drop(moved);
        let moved = target.unlock().expect("unlock again");
        for (who, sealed) in [a, b].iter().zip(&mut notes) {
            assert_eq!(
                moved.open(sealed, target.ws, *who).expect("open"),
                Opened::Readable
            );
            assert_eq!(*sealed, note(*who, "secret"));
        }
        assert_eq!(
            moved.open(&mut notes[2], target.ws, c).expect("open c"),
            Opened::Erased
        );
        assert!(moved.is_forgotten(target.ws, d).expect("read"));
        assert!(matches!(
            moved.seal(&mut note(c, "new"), target.ws, c),
            Err(VaultError::Forgotten(_))
        ));
        // importing the same bundle again changes nothing,
        let again = moved.import_keys(&opened).expect("import again");
        assert_eq!(
            again,
            KeysImported {
                already_held: 2,
                stayed_forgotten: 2,
                ..KeysImported::default()
            }
        );
        // and another master key cannot open the bundle.
        let other = MasterKey::generate().expect("random");
        assert!(matches!(
            KeyBundle::open(&other, &bytes),
            Err(VaultError::BundleWrongKey)
        ));
    }

    #[test]
    fn importing_keys_never_revives_a_forgotten_customer_and_refuses_a_foreign_key() {
        // Given a bundle with live keys for A and B,
        let source = setup();
        let vault = source.unlock().expect("unlock");
        let [a, b, e] = [2, 3, 6].map(|n| CustomerId::new(id(n)).expect("v7"));
        for who in [a, b] {
            vault
                .seal(&mut note(who, "x"), source.ws, who)
                .expect("seal");
        }
        let bundle = vault.export_keys().expect("export");
        // when it is imported into a vault that forgot A,
        let mut target = setup();
        target.master = source.master.clone();
        let moved = target.unlock().expect("unlock");
        moved.forget(target.ws, a).expect("forget a");
        let done = moved.import_keys(&bundle).expect("import");
        // then A stays forgotten and only B's key is added;
        assert_eq!((done.added, done.stayed_forgotten), (1, 1));
        assert!(moved.is_forgotten(target.ws, a).expect("read"));
        // and a vault holding another key for B refuses the bundle, writing nothing (E's key,
        // also in the bundle, is not added).
        let third = setup();
        let other = third.unlock().expect("unlock");
        other
            .seal(&mut note(b, "x"), third.ws, b)
            .expect("own key for b");
        let source_e = vault.seal(&mut note(e, "x"), source.ws, e);
        source_e.expect("seal e");
        let with_e = vault.export_keys().expect("export");
        assert!(matches!(
            other.import_keys(&with_e),
            Err(VaultError::KeyConflict { .. })
        ));
        assert!(other
            .inner
            .keys
            .get(entry_key(third.ws, e))
            .expect("read")
            .is_none());
        // A vault with a key for a customer the bundle names as forgotten destroys it.
        vault.forget(source.ws, e).expect("forget e");
        let forgetting = vault.export_keys().expect("export");
        let fourth = setup();
        let holder =
            Vault::unlock(&fourth.db, fourth.kek_path(), source.master.clone()).expect("unlock");
        holder
            .seal(&mut note(e, "y"), fourth.ws, e)
            .expect("own key for e");
        let done = holder.import_keys(&forgetting).expect("import");
        assert!(done.forgotten >= 1);
        assert!(holder.is_forgotten(fourth.ws, e).expect("read"));
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_1() {
        // Case 1 uses a 20-byte key; HMAC pads keys with zeros to the block size, so the
        // same key padded to our fixed 32 bytes must give the published MAC.
        let mut key = [0u8; 32];
        key[..20].copy_from_slice(&[0x0b; 20]);
        let mac = crypto::hmac_sha256(&key, &[b"Hi ", b"There"]);
        assert_eq!(
            hex::encode(mac),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn padding_round_trips_and_hides_exact_lengths() {
        for text in ["", "a", &"x".repeat(31), &"y".repeat(32), "أمينة"] {
            let padded = pad(text);
            assert_eq!(padded.len() % PAD_BLOCK, 0);
            assert!(padded.len() > text.len());
            assert_eq!(unpad(&padded), Some(text.as_bytes()));
        }
        assert_eq!(pad("a").len(), pad(&"b".repeat(30)).len());
        assert_eq!(unpad(&[0, 0]), None);
        assert_eq!(unpad(&[1, 0]), None);
    }
}
