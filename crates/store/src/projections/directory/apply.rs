//! Applies customer events to the directory: writes rows, keeps the reference, contact point
//! and name indexes in step with them (old keys removed on change), drops merged-away
//! customers from search, and erases forgotten customers (and those merged into them).

use std::collections::BTreeSet;

use sijil_domain::{ContactPoint, CustomerId, DomainEvent};
use uuid::Uuid;

use super::super::error::ProjectionError;
use super::super::keys::{Key, Reader};
use super::super::overlay::Overlay;
use super::super::rows;
use super::super::text::tokens;
use super::super::EventMeta;
use super::{contact_code, Profile, StoredRow, CONTACT, HASHED, MERGED, REFERENCE, ROW, SEARCH};

/// Most customers one erasure walks through via merges.
const MAX_MERGED: usize = 10_000;

pub(crate) fn row_key(ws: Uuid, customer: Uuid) -> Vec<u8> {
    Key::new(ROW).uuid(ws).uuid(customer).build()
}

/// The reference as indexed: ASCII upper case (references are ASCII by domain rule).
pub(crate) fn fold_reference(reference: &str) -> String {
    reference.trim().to_ascii_uppercase()
}

pub(crate) fn reference_prefix(ws: Uuid, reference: &str) -> Vec<u8> {
    Key::new(REFERENCE)
        .uuid(ws)
        .sized(fold_reference(reference).as_bytes())
        .build()
}

pub(crate) fn contact_prefix(ws: Uuid, point: &ContactPoint) -> Vec<u8> {
    Key::new(CONTACT)
        .uuid(ws)
        .u8(contact_code(point.kind))
        .sized(point.value.as_bytes())
        .build()
}

pub(crate) fn token_key(ws: Uuid, token: &str, customer: Uuid) -> Vec<u8> {
    Key::new(SEARCH)
        .uuid(ws)
        .bytes(token.as_bytes())
        .u8(0)
        .uuid(customer)
        .build()
}

/// The key of `hash` for `customer` in the keyed-hash index of a sealed store.
pub(crate) fn hashed_key(ws: Uuid, hash: &[u8; 32], customer: Uuid) -> Vec<u8> {
    Key::new(HASHED).uuid(ws).bytes(hash).uuid(customer).build()
}

pub(crate) fn hashed_prefix(ws: Uuid, hash: &[u8; 32]) -> Vec<u8> {
    Key::new(HASHED).uuid(ws).bytes(hash).build()
}

fn with_customer(mut prefix: Vec<u8>, customer: Uuid) -> Vec<u8> {
    prefix.extend_from_slice(customer.as_bytes());
    prefix
}

pub(crate) fn merged_prefix(ws: Uuid, survivor: Uuid) -> Vec<u8> {
    Key::new(MERGED).uuid(ws).uuid(survivor).build()
}

/// The stored row of `customer`, if any.
pub(crate) fn load(
    ov: &Overlay<'_>,
    ws: Uuid,
    customer: Uuid,
) -> Result<Option<StoredRow>, ProjectionError> {
    ov.get(&row_key(ws, customer))?
        .map(|bytes| rows::decode(&bytes, "directory row"))
        .transpose()
}

pub(crate) fn save(
    ov: &mut Overlay<'_>,
    ws: Uuid,
    customer: Uuid,
    row: &StoredRow,
) -> Result<(), ProjectionError> {
    ov.insert(row_key(ws, customer), rows::encode(row)?);
    Ok(())
}

/// Indexes the words of `name` for `customer` (unless merged away); returns the tokens.
fn index_name(ov: &mut Overlay<'_>, ws: Uuid, customer: Uuid, name: &str) -> Vec<String> {
    let words = tokens(name);
    for word in &words {
        ov.insert(token_key(ws, word, customer), Vec::new());
    }
    words
}

fn unindex_name(ov: &mut Overlay<'_>, ws: Uuid, customer: Uuid, words: &[String]) {
    for word in words {
        ov.remove(token_key(ws, word, customer));
    }
}

/// Removes every index key of `profile` (plain and keyed-hash).
pub(crate) fn unindex_all(ov: &mut Overlay<'_>, ws: Uuid, customer: Uuid, profile: &Profile) {
    match &profile.sealed {
        None => {
            ov.remove(with_customer(
                reference_prefix(ws, &profile.reference),
                customer,
            ));
            for point in &profile.contact_points {
                ov.remove(with_customer(contact_prefix(ws, point), customer));
            }
        }
        Some(index) => {
            let hashes = index
                .reference
                .iter()
                .chain(index.contacts.iter().flatten())
                .chain(index.names.iter());
            for hash in hashes {
                ov.remove(hashed_key(ws, hash, customer));
            }
        }
    }
    unindex_name(ov, ws, customer, &profile.tokens);
}

/// Applies one customer event.
pub(crate) fn apply(
    ov: &mut Overlay<'_>,
    meta: &EventMeta<'_>,
    event: &DomainEvent,
) -> Result<(), ProjectionError> {
    let ws = meta.workspace_id.as_uuid();
    match event {
        DomainEvent::CustomerRegistered(e) => {
            let customer = e.customer_id.as_uuid();
            match load(ov, ws, customer)? {
                // A forgotten customer stays forgotten.
                Some(StoredRow::Forgotten) => return Ok(()),
                // A repeated registration (not produced by the domain) replaces the row.
                Some(StoredRow::Known(old)) => unindex_all(ov, ws, customer, &old),
                None => {}
            }
            let mut points: Vec<ContactPoint> = Vec::with_capacity(e.contact_points.len());
            for point in &e.contact_points {
                if !points.contains(point) {
                    ov.insert(
                        with_customer(contact_prefix(ws, point), customer),
                        Vec::new(),
                    );
                    points.push(point.clone());
                }
            }
            ov.insert(
                with_customer(reference_prefix(ws, &e.reference), customer),
                Vec::new(),
            );
            let words = index_name(ov, ws, customer, &e.display_name);
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
                tokens: words,
                sealed: None,
            };
            save(ov, ws, customer, &StoredRow::Known(Box::new(profile)))
        }
        DomainEvent::CustomerProfileUpdated(e) => {
            update(ov, ws, e.customer_id, |ov, customer, profile| {
                if let Some(name) = &e.display_name {
                    profile.display_name = name.clone();
                    if profile.merged_into.is_none() {
                        unindex_name(ov, ws, customer, &profile.tokens);
                        profile.tokens = index_name(ov, ws, customer, name);
                    }
                }
                if let Some(zone) = &e.time_zone {
                    profile.time_zone = zone.clone();
                }
            })
        }
        DomainEvent::ContactPointAdded(e) => {
            update(ov, ws, e.customer_id, |ov, customer, profile| {
                if !profile.contact_points.contains(&e.contact_point) {
                    ov.insert(
                        with_customer(contact_prefix(ws, &e.contact_point), customer),
                        Vec::new(),
                    );
                    profile.contact_points.push(e.contact_point.clone());
                }
            })
        }
        DomainEvent::ContactPointRemoved(e) => {
            update(ov, ws, e.customer_id, |ov, customer, profile| {
                if profile.contact_points.contains(&e.contact_point) {
                    ov.remove(with_customer(
                        contact_prefix(ws, &e.contact_point),
                        customer,
                    ));
                    profile.contact_points.retain(|p| *p != e.contact_point);
                }
            })
        }
        DomainEvent::CustomerPreferencesChanged(e) => {
            update(ov, ws, e.customer_id, |_, _, profile| {
                if let Some(language) = &e.language {
                    profile.language = language.clone();
                }
                if e.preferred_channel.is_some() {
                    profile.preferred_channel = e.preferred_channel;
                }
                if e.consent_to_contact.is_some() {
                    profile.consent_to_contact = e.consent_to_contact;
                }
            })
        }
        DomainEvent::CustomerMerged(e) => {
            let into = e.into;
            let merged = e.customer_id.as_uuid();
            if merged == into.as_uuid() {
                return Ok(());
            }
            update(ov, ws, e.customer_id, |ov, customer, profile| {
                unindex_name(ov, ws, customer, &profile.tokens);
                profile.tokens.clear();
                if let Some(index) = &mut profile.sealed {
                    for hash in index.names.drain(..) {
                        ov.remove(hashed_key(ws, &hash, customer));
                    }
                }
                profile.merged_into = Some(into);
                ov.insert(
                    with_customer(merged_prefix(ws, into.as_uuid()), customer),
                    Vec::new(),
                );
            })
        }
        DomainEvent::CustomerForgotten(e) => forget(ov, ws, e.customer_id.as_uuid()),
        // Events this projection does not list in its types never reach it.
        _ => Ok(()),
    }
}

/// Changes the profile of a known customer (forgotten or unknown customers are left alone).
pub(crate) fn update(
    ov: &mut Overlay<'_>,
    ws: Uuid,
    customer: CustomerId,
    change: impl FnOnce(&mut Overlay<'_>, Uuid, &mut Profile),
) -> Result<(), ProjectionError> {
    let id = customer.as_uuid();
    let Some(StoredRow::Known(mut profile)) = load(ov, ws, id)? else {
        return Ok(());
    };
    change(ov, id, &mut profile);
    save(ov, ws, id, &StoredRow::Known(profile))
}

/// Erases `customer` and everyone merged into them (transitively).
pub(crate) fn forget(
    ov: &mut Overlay<'_>,
    ws: Uuid,
    customer: Uuid,
) -> Result<(), ProjectionError> {
    let mut people: BTreeSet<Uuid> = BTreeSet::new();
    let mut queue = vec![customer];
    while let Some(next) = queue.pop() {
        if people.len() >= MAX_MERGED || !people.insert(next) {
            continue;
        }
        let prefix = merged_prefix(ws, next);
        for (key, _) in ov.scan_prefix(&prefix)? {
            let mut reader = Reader::new(&key[prefix.len()..], "directory merge key");
            queue.push(reader.uuid()?);
        }
    }
    for person in people {
        match load(ov, ws, person)? {
            Some(StoredRow::Known(profile)) => {
                unindex_all(ov, ws, person, &profile);
                save(ov, ws, person, &StoredRow::Forgotten)?;
            }
            Some(StoredRow::Forgotten) | None => {}
        }
    }
    Ok(())
}
