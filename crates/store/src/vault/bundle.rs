//! Owns the key bundle: how a vault's customer data keys move to another data directory
//! together with an export of the log (`sijil export --keys`, `sijil import --keys`).
//!
//! A bundle holds every live data key (workspace, customer, the 256-bit key) and the ids of
//! every forgotten customer (no key: theirs no longer exists), never in clear: the whole body
//! is sealed with XChaCha20-Poly1305 under a bundle key derived from the master key and a
//! random salt (`HMAC-SHA256(master, "sijil/vault/bundle/v1" ‖ salt)`), so only the same
//! master key opens it, and a changed byte anywhere (header included) is refused.
//!
//! Layout: `SJLKEYS1` ‖ salt (32) ‖ nonce (24) ‖ sealed body ‖ tag (16). The body is
//! `live count (u32 BE)` ‖ live entries (`workspace (16) ‖ customer (16) ‖ key (32)`) ‖
//! `forgotten count (u32 BE)` ‖ forgotten entries (`workspace (16) ‖ customer (16)`), in
//! `vault/keys` order. The body is wiped from memory once sealed or parsed.

use zeroize::Zeroizing;

use super::crypto::{self, fill_random, MasterKey, SecretKey, KEY_LEN};
use super::error::VaultError;

/// First bytes of a bundle.
pub const BUNDLE_MAGIC: &[u8; 8] = b"SJLKEYS1";
const SALT_LEN: usize = 32;
const ID_LEN: usize = 32;
const LIVE_LEN: usize = ID_LEN + KEY_LEN;

/// The keys of a vault as they travel: live data keys and forgotten customers, by their
/// `workspace ‖ customer` key. Its `Debug` output never shows a key.
#[derive(Clone, Default)]
pub struct KeyBundle {
    pub(crate) live: Vec<([u8; ID_LEN], SecretKey)>,
    pub(crate) forgotten: Vec<[u8; ID_LEN]>,
}

impl std::fmt::Debug for KeyBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBundle")
            .field("live", &self.live.len())
            .field("forgotten", &self.forgotten.len())
            .finish()
    }
}

fn bundle_key(master: &MasterKey, salt: &[u8]) -> Result<SecretKey, VaultError> {
    let derived = Zeroizing::new(crypto::hmac_sha256(
        master.0.bytes(),
        &[b"sijil/vault/bundle/v1", salt],
    ));
    SecretKey::from_slice(&derived[..])
        .ok_or_else(|| VaultError::Corrupt("a derived key is not 32 bytes".into()))
}

fn aad(salt: &[u8]) -> Vec<u8> {
    let mut aad = BUNDLE_MAGIC.to_vec();
    aad.extend_from_slice(salt);
    aad
}

fn count(n: usize) -> Result<[u8; 4], VaultError> {
    u32::try_from(n)
        .map(u32::to_be_bytes)
        .map_err(|_| VaultError::BundleInvalid("too many keys for one bundle".into()))
}

impl KeyBundle {
    /// How many live data keys it carries.
    pub fn live_keys(&self) -> usize {
        self.live.len()
    }

    /// How many forgotten customers it names.
    pub fn forgotten_customers(&self) -> usize {
        self.forgotten.len()
    }

    /// Adds every entry of `other` to this bundle.
    pub fn merge(&mut self, other: KeyBundle) {
        self.live.extend(other.live);
        self.forgotten.extend(other.forgotten);
    }

    /// One bundle per customer the bundle names, live ones first.
    pub fn split(&self) -> Vec<KeyBundle> {
        let live = self.live.iter().map(|entry| KeyBundle {
            live: vec![entry.clone()],
            forgotten: Vec::new(),
        });
        let forgotten = self.forgotten.iter().map(|id| KeyBundle {
            live: Vec::new(),
            forgotten: vec![*id],
        });
        live.chain(forgotten).collect()
    }

    /// The `(workspace, customer)` pairs the bundle names, live ones first.
    pub fn customers(&self) -> Vec<(uuid::Uuid, uuid::Uuid)> {
        self.live
            .iter()
            .map(|(id, _)| super::split_key(id))
            .chain(self.forgotten.iter().map(super::split_key))
            .collect()
    }

    /// The bundle sealed under `master` (see the module docs).
    pub fn seal(&self, master: &MasterKey) -> Result<Vec<u8>, VaultError> {
        let mut body = Zeroizing::new(Vec::with_capacity(
            8 + self.live.len() * LIVE_LEN + self.forgotten.len() * ID_LEN,
        ));
        body.extend_from_slice(&count(self.live.len())?);
        for (id, key) in &self.live {
            body.extend_from_slice(id);
            body.extend_from_slice(key.bytes());
        }
        body.extend_from_slice(&count(self.forgotten.len())?);
        for id in &self.forgotten {
            body.extend_from_slice(id);
        }
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let sealed = bundle_key(master, &salt)?.seal(&body, &aad(&salt))?;
        let mut out = Vec::with_capacity(BUNDLE_MAGIC.len() + SALT_LEN + sealed.len());
        out.extend_from_slice(BUNDLE_MAGIC);
        out.extend_from_slice(&salt);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a bundle made by [`KeyBundle::seal`]. Fails with
    /// [`VaultError::BundleWrongKey`] when `master` is not the key it was sealed under (or
    /// a byte of it was changed) and [`VaultError::BundleInvalid`] when it is not a bundle.
    pub fn open(master: &MasterKey, bytes: &[u8]) -> Result<KeyBundle, VaultError> {
        let header = BUNDLE_MAGIC.len() + SALT_LEN;
        if bytes.len() < header || &bytes[..BUNDLE_MAGIC.len()] != BUNDLE_MAGIC {
            return Err(VaultError::BundleInvalid(
                "it does not start like a sijil key bundle".into(),
            ));
        }
        let salt = &bytes[BUNDLE_MAGIC.len()..header];
        let body = bundle_key(master, salt)?
            .open(&bytes[header..], &aad(salt))
            .ok_or(VaultError::BundleWrongKey)?;
        parse(&body)
    }
}

fn parse(body: &[u8]) -> Result<KeyBundle, VaultError> {
    let bad = || VaultError::BundleInvalid("its contents are malformed".into());
    let mut rest = body;
    let mut take = |n: usize| -> Result<&[u8], VaultError> {
        if rest.len() < n {
            return Err(bad());
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let read_count = |b: &[u8]| -> usize {
        u32::from_be_bytes(<[u8; 4]>::try_from(b).unwrap_or([0; 4])) as usize
    };
    let live_count = read_count(take(4)?);
    let mut bundle = KeyBundle::default();
    for _ in 0..live_count {
        let entry = take(LIVE_LEN)?;
        let id = <[u8; ID_LEN]>::try_from(&entry[..ID_LEN]).map_err(|_| bad())?;
        let key = SecretKey::from_slice(&entry[ID_LEN..]).ok_or_else(bad)?;
        bundle.live.push((id, key));
    }
    let forgotten_count = read_count(take(4)?);
    for _ in 0..forgotten_count {
        let id = <[u8; ID_LEN]>::try_from(take(ID_LEN)?).map_err(|_| bad())?;
        bundle.forgotten.push(id);
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KeyBundle {
        KeyBundle {
            live: vec![
                ([1; 32], SecretKey::generate().expect("random")),
                ([2; 32], SecretKey::generate().expect("random")),
            ],
            forgotten: vec![[3; 32]],
        }
    }

    #[test]
    fn a_bundle_opens_with_its_master_key_only() {
        let master = MasterKey::generate().expect("random");
        let bundle = sample();
        let bytes = bundle.seal(&master).expect("seal");
        // The keys are nowhere in clear.
        for (_, key) in &bundle.live {
            assert!(!bytes.windows(KEY_LEN).any(|w| w == key.bytes()));
        }
        let opened = KeyBundle::open(&master, &bytes).expect("open");
        assert_eq!(opened.live_keys(), 2);
        assert_eq!(opened.forgotten, vec![[3; 32]]);
        for ((a, ka), (b, kb)) in opened.live.iter().zip(&bundle.live) {
            assert_eq!(a, b);
            assert_eq!(ka.bytes(), kb.bytes());
        }
        let other = MasterKey::generate().expect("random");
        assert!(matches!(
            KeyBundle::open(&other, &bytes),
            Err(VaultError::BundleWrongKey)
        ));
    }

    #[test]
    fn a_changed_or_foreign_bundle_is_refused() {
        let master = MasterKey::generate().expect("random");
        let bytes = sample().seal(&master).expect("seal");
        for at in [0, 9, BUNDLE_MAGIC.len() + SALT_LEN + 3, bytes.len() - 1] {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            assert!(KeyBundle::open(&master, &changed).is_err(), "byte {at}");
        }
        assert!(matches!(
            KeyBundle::open(&master, b"{\"position\":1}"),
            Err(VaultError::BundleInvalid(_))
        ));
        assert!(KeyBundle::open(&master, &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn malformed_bodies_are_refused_without_panicking() {
        for body in [
            &[][..],
            &[0, 0, 0, 1][..],
            &[0, 0, 0, 0, 0, 0, 0][..],
            &[0, 0, 0, 0, 0, 0, 0, 0, 9][..],
            &[0xff, 0xff, 0xff, 0xff][..],
        ] {
            assert!(parse(body).is_err(), "{body:?}");
        }
        assert!(parse(&[0; 8]).expect("empty bundle").live.is_empty());
    }
}
