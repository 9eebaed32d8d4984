//! Owns the directory of a sealed store: applying customer events whose personal fields are
//! sealed by opening a copy in memory and indexing keyed hashes ([`Vault::index_key`]) of
//! the reference, contact points and name-word prefixes, and the exact lookups and prefix
//! search over those hashes (see the parent module's "Sealed stores").

use std::collections::BTreeSet;

use sijil_domain::personal;
use sijil_domain::validate;
use sijil_domain::{ContactKind, ContactPoint, CustomerId, DomainEvent, WorkspaceId};
use uuid::Uuid;

use super::super::cursor;
use super::super::error::ProjectionError;
use super::super::keys::{typed, Key, Reader};
use super::super::overlay::Overlay;
use super::super::paging::{scan, Window, SKIP_BUDGET};
use super::super::text::tokens;
use super::super::{EventMeta, Projection};
use super::apply::{self, fold_reference, hashed_key, hashed_prefix, load, save, update};
use super::query::{self, DirectoryHit, DirectoryPage, PageQuery};
use super::{Profile, SealedIndex, StoredRow, HASHED, TYPES};
use crate::vault::{Opened, Vault};

/// Longest name-word prefix indexed, in characters; longer query words are cut to it.
pub const MAX_PREFIX_CHARS: usize = 16;

const REFERENCE_PURPOSE: &str = "directory/reference";
const NAME_PURPOSE: &str = "directory/name-prefix";

fn contact_purpose(kind: ContactKind) -> &'static str {
    match kind {
        ContactKind::Email => "directory/contact/email",
        ContactKind::Phone => "directory/contact/phone",
        ContactKind::Social => "directory/contact/social",
        ContactKind::Messaging => "directory/contact/messaging",
    }
}

/// The customer directory of a store whose personal fields are sealed by `vault`. Same name
/// as [`DirectoryProjection`](super::DirectoryProjection), different version, so switching
/// between them rebuilds the model.
#[derive(Clone, Debug)]
pub struct SealedDirectoryProjection {
    vault: Vault,
}

impl SealedDirectoryProjection {
    /// The directory projection indexing through `vault`.
    pub fn new(vault: Vault) -> SealedDirectoryProjection {
        SealedDirectoryProjection { vault }
    }
}

impl Projection for SealedDirectoryProjection {
    fn name(&self) -> &'static str {
        "directory"
    }

    fn version(&self) -> u32 {
        // The unsealed layout is 2; 3 is the keyed-hash layout.
        3
    }

    fn event_types(&self) -> &'static [&'static str] {
        TYPES
    }

    fn apply(
        &self,
        ov: &mut Overlay<'_>,
        meta: &EventMeta<'_>,
        event: &DomainEvent,
    ) -> Result<(), ProjectionError> {
        apply_sealed(&self.vault, ov, meta, event)
    }
}

fn reference_hash(vault: &Vault, ws: WorkspaceId, reference: &str) -> [u8; 32] {
    vault.index_key(ws, REFERENCE_PURPOSE, &fold_reference(reference))
}

fn contact_hash(vault: &Vault, ws: WorkspaceId, point: &ContactPoint) -> [u8; 32] {
    vault.index_key(ws, contact_purpose(point.kind), &point.value)
}

fn prefix_hash(vault: &Vault, ws: WorkspaceId, word: &str) -> [u8; 32] {
    let cut: String = word.chars().take(MAX_PREFIX_CHARS).collect();
    vault.index_key(ws, NAME_PURPOSE, &cut)
}

/// Hashes of every prefix (1 to [`MAX_PREFIX_CHARS`] characters) of every token of `name`,
/// sorted, without duplicates.
fn name_hashes(vault: &Vault, ws: WorkspaceId, name: &str) -> Vec<[u8; 32]> {
    let mut out: BTreeSet<[u8; 32]> = BTreeSet::new();
    for token in tokens(name) {
        let mut prefix = String::new();
        for c in token.chars().take(MAX_PREFIX_CHARS) {
            prefix.push(c);
            out.insert(vault.index_key(ws, NAME_PURPOSE, &prefix));
        }
    }
    out.into_iter().collect()
}

fn index_names(ov: &mut Overlay<'_>, ws: Uuid, customer: Uuid, hashes: &[[u8; 32]]) {
    for hash in hashes {
        ov.insert(hashed_key(ws, hash, customer), Vec::new());
    }
}

fn unindex_names(ov: &mut Overlay<'_>, ws: Uuid, customer: Uuid, hashes: &[[u8; 32]]) {
    for hash in hashes {
        ov.remove(hashed_key(ws, hash, customer));
    }
}

/// Applies one customer event of a sealed store.
fn apply_sealed(
    vault: &Vault,
    ov: &mut Overlay<'_>,
    meta: &EventMeta<'_>,
    event: &DomainEvent,
) -> Result<(), ProjectionError> {
    let wsid = meta.workspace_id;
    let ws = wsid.as_uuid();
    // A copy opened in memory only; rows keep the sealed text of `event`.
    let mut opened = event.clone();
    let readable = match personal::data_subject(event).customer() {
        Some(subject) => match vault.open(&mut opened, wsid, subject) {
            Ok(Opened::Readable) => true,
            Ok(Opened::Erased) => false,
            Err(e) => {
                return Err(ProjectionError::corrupt(format!(
                    "directory event at {} does not open: {e}",
                    meta.position
                )))
            }
        },
        None => true,
    };
    match (event, &opened) {
        (DomainEvent::CustomerRegistered(e), DomainEvent::CustomerRegistered(o)) => {
            let customer = e.customer_id.as_uuid();
            match load(ov, ws, customer)? {
                Some(StoredRow::Forgotten) => return Ok(()),
                Some(StoredRow::Known(old)) => apply::unindex_all(ov, ws, customer, &old),
                None => {}
            }
            let mut index = SealedIndex::default();
            let mut points: Vec<ContactPoint> = Vec::with_capacity(e.contact_points.len());
            for (i, point) in e.contact_points.iter().enumerate() {
                let hash = o
                    .contact_points
                    .get(i)
                    .filter(|_| readable)
                    .map(|p| contact_hash(vault, wsid, p));
                let duplicate = match hash {
                    Some(h) => index.contacts.contains(&Some(h)),
                    None => points.contains(point),
                };
                if duplicate {
                    continue;
                }
                if let Some(h) = &hash {
                    ov.insert(hashed_key(ws, h, customer), Vec::new());
                }
                index.contacts.push(hash);
                points.push(point.clone());
            }
            if readable {
                let hash = reference_hash(vault, wsid, &o.reference);
                ov.insert(hashed_key(ws, &hash, customer), Vec::new());
                index.reference = Some(hash);
                index.names = name_hashes(vault, wsid, &o.display_name);
                index_names(ov, ws, customer, &index.names);
            }
            let profile = Profile {
                reference: e.reference.clone(),
                display_name: e.display_name.clone(),
                language: e.language.clone(),
                time_zone: e.time_zone.clone(),
                contact_points: points,
                preferred_channel: None,
                consent_to_contact: None,
                registered_at: e.at,
                merged_into: None,
                tokens: Vec::new(),
                sealed: Some(index),
            };
            save(ov, ws, customer, &StoredRow::Known(Box::new(profile)))
        }
        (DomainEvent::CustomerProfileUpdated(e), DomainEvent::CustomerProfileUpdated(o)) => {
            update(ov, ws, e.customer_id, |ov, customer, profile| {
                let merged = profile.merged_into.is_some();
                let index = profile.sealed.get_or_insert_with(SealedIndex::default);
                if let (Some(name), Some(plain)) = (&e.display_name, &o.display_name) {
                    profile.display_name = name.clone();
                    if !merged {
                        unindex_names(ov, ws, customer, &index.names);
                        index.names = if readable {
                            name_hashes(vault, wsid, plain)
                        } else {
                            Vec::new()
                        };
                        index_names(ov, ws, customer, &index.names);
                    }
                }
                if let Some(zone) = &e.time_zone {
                    profile.time_zone = zone.clone();
                }
            })
        }
        (DomainEvent::ContactPointAdded(e), DomainEvent::ContactPointAdded(o)) => {
            update(ov, ws, e.customer_id, |ov, customer, profile| {
                let index = profile.sealed.get_or_insert_with(SealedIndex::default);
                index.contacts.resize(profile.contact_points.len(), None);
                let hash = readable.then(|| contact_hash(vault, wsid, &o.contact_point));
                let duplicate = match hash {
                    Some(h) => index.contacts.contains(&Some(h)),
                    None => profile.contact_points.contains(&e.contact_point),
                };
                if !duplicate {
                    if let Some(h) = &hash {
                        ov.insert(hashed_key(ws, h, customer), Vec::new());
                    }
                    index.contacts.push(hash);
                    profile.contact_points.push(e.contact_point.clone());
                }
            })
        }
        (DomainEvent::ContactPointRemoved(e), DomainEvent::ContactPointRemoved(o)) => {
            update(ov, ws, e.customer_id, |ov, customer, profile| {
                let index = profile.sealed.get_or_insert_with(SealedIndex::default);
                index.contacts.resize(profile.contact_points.len(), None);
                let hash = readable.then(|| contact_hash(vault, wsid, &o.contact_point));
                let at = match hash {
                    Some(h) => index.contacts.iter().position(|c| *c == Some(h)),
                    None => profile
                        .contact_points
                        .iter()
                        .position(|p| *p == e.contact_point),
                };
                if let Some(at) = at {
                    if let Some(Some(h)) = index.contacts.get(at) {
                        ov.remove(hashed_key(ws, h, customer));
                    }
                    index.contacts.remove(at);
                    profile.contact_points.remove(at);
                }
            })
        }
        // Preferences carry nothing personal; merges drop the name hashes and erasure removes
        // every hash listed in the row, exactly as without a vault.
        _ => apply::apply(ov, meta, event),
    }
}

/// Customers of a sealed store with reference number `reference` (ASCII case-insensitive).
pub fn by_reference_sealed(
    tree: &sled::Tree,
    vault: &Vault,
    ws: WorkspaceId,
    reference: &str,
) -> Result<Vec<DirectoryHit>, ProjectionError> {
    let reference = validate::reference("customer reference", reference)
        .map_err(|e| ProjectionError::InvalidQuery(e.to_string()))?;
    let hash = reference_hash(vault, ws, &reference);
    query::lookup(tree, ws.as_uuid(), &hashed_prefix(ws.as_uuid(), &hash))
}

/// Customers of a sealed store reachable at `point` (normalised as the domain does).
pub fn by_contact_sealed(
    tree: &sled::Tree,
    vault: &Vault,
    ws: WorkspaceId,
    point: &ContactPoint,
) -> Result<Vec<DirectoryHit>, ProjectionError> {
    let point =
        validate::contact_point(point).map_err(|e| ProjectionError::InvalidQuery(e.to_string()))?;
    let hash = contact_hash(vault, ws, &point);
    query::lookup(tree, ws.as_uuid(), &hashed_prefix(ws.as_uuid(), &hash))
}

/// Active customers of a sealed store with a word of their display name starting with each
/// word of `text` (folded like the index; words are cut to [`MAX_PREFIX_CHARS`] characters),
/// each customer once, ordered by the hash of the longest query word, then by id.
pub fn search_sealed(
    tree: &sled::Tree,
    vault: &Vault,
    ws: WorkspaceId,
    text: &str,
    query: &PageQuery,
) -> Result<DirectoryPage, ProjectionError> {
    let size = query::page_size(query)?;
    let words = tokens(text);
    let Some(lead) = words.iter().max_by_key(|w| w.chars().count()).cloned() else {
        return Err(ProjectionError::InvalidQuery(
            "a search needs at least one letter or digit".into(),
        ));
    };
    let lead_hash = prefix_hash(vault, ws, &lead);
    let wanted: Vec<[u8; 32]> = words.iter().map(|w| prefix_hash(vault, ws, w)).collect();
    let base = Key::new(HASHED).uuid(ws.as_uuid()).build();
    let mut window = Window::prefix(&hashed_prefix(ws.as_uuid(), &lead_hash));
    if let Some(after) = &query.after {
        let suffix = cursor::decode(after, 48)?;
        if suffix.len() != 48 {
            return Err(ProjectionError::InvalidCursor(
                "not a directory search cursor".into(),
            ));
        }
        let mut key = base.clone();
        key.extend_from_slice(&suffix);
        window.above(&key);
    }
    let base_len = base.len();
    let mut budget = SKIP_BUDGET;
    let scanned = scan(tree, &window, false, size, &mut budget, |key, _| {
        if key.len() != base_len + 48 {
            return Err(ProjectionError::corrupt(
                "directory hashed key has the wrong length",
            ));
        }
        let mut reader = Reader::new(&key[key.len() - 16..], "directory hashed key");
        let id: CustomerId = typed(reader.uuid()?, "customer id")?;
        let Some(row) = query::read_row(tree, ws.as_uuid(), id.as_uuid())? else {
            return Ok(None);
        };
        let StoredRow::Known(profile) = &row else {
            return Ok(None);
        };
        if profile.merged_into.is_some() {
            return Ok(None);
        }
        let Some(index) = &profile.sealed else {
            return Ok(None);
        };
        if !wanted.iter().all(|h| index.names.binary_search(h).is_ok()) {
            return Ok(None);
        }
        let mut entry = query::DirectoryEntry::new(id, row);
        entry.cursor = cursor::encode(&key[base_len..]);
        Ok(Some(entry))
    })?;
    query::finish(scanned, base_len)
}
