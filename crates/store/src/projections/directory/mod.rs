//! The customer directory: one row per customer (profile, contact points, preferences, merge
//! and erasure state), exact lookups by reference number, email, phone, social handle and
//! messaging id, and Unicode-aware name prefix search, all paged with opaque cursors.
//!
//! Key layout of the `directory` tree (`ws` = workspace UUID, ids are raw 16-byte UUIDs,
//! `sized(x)` = length (u32 BE) ‖ bytes, all integers big-endian):
//!
//! | key                                          | value                                   |
//! |----------------------------------------------|-----------------------------------------|
//! | `C ‖ ws ‖ customer`                          | MessagePack [`StoredRow`]               |
//! | `F ‖ ws ‖ sized(REFERENCE) ‖ customer`       | empty: reference lookup (ASCII upper-cased) |
//! | `P ‖ ws ‖ kind (u8) ‖ sized(value) ‖ customer` | empty: contact point lookup (value as the domain normalised it) |
//! | `S ‖ ws ‖ token ‖ 0x00 ‖ customer`           | empty: name search, one key per word of the display name |
//! | `M ‖ ws ‖ survivor ‖ merged`                 | empty: `merged` was merged into `survivor` |
//!
//! Tokens are the display name's words folded by [`text::tokens`](super::text::tokens)
//! (Unicode lower case, Arabic tashkeel and tatweel stripped, alef variants unified, Latin
//! diacritics folded); they never contain a `0x00` byte, so `0x00` ends a token and a prefix
//! scan over `S ‖ ws ‖ prefix` finds every word starting with `prefix`. Several customers may
//! share a reference or a contact point (duplicates are what merges are for), so lookup keys
//! end with the customer id and a lookup returns a list.
//!
//! # Sealed stores
//!
//! With a vault ([`SealedDirectoryProjection`]) events arrive with their personal fields
//! sealed, and rows keep them sealed. The projection opens a copy of each event in memory
//! (never written) and indexes keyed hashes ([`Vault::index_key`]) instead of text, under
//! `H ‖ ws ‖ hash (32) ‖ customer` (empty value), with purposes `reference`,
//! `contact:<kind>` and `name-prefix`: the folded reference, each contact point value as the
//! domain normalised it, and every prefix of 1 to [`MAX_PREFIX_CHARS`] characters of each
//! name token. Prefix search hashes the query words (cut to that many characters) and looks
//! them up exactly; results are ordered by the hash of the longest query word's prefix, then
//! by id, which is stable but unrelated to the names (unlike the unsealed order). The hashes
//! are listed in the row ([`SealedIndex`]) so renames, removed contact points, merges and
//! erasures delete exactly those keys. A customer whose fields already read as erased when
//! an event is applied (a rebuild after a forget) indexes nothing, so a rebuild equals the
//! incremental build once the `CustomerForgotten` event is applied.
//!
//! Merges (B merged into A): B's row records `merged_into = A` and B's name keys are removed,
//! so B no longer appears in search or in the listing. B's reference and contact point keys
//! stay and **resolve to the survivor at query time** (the chain of `merged_into` is
//! followed), so looking up B's old email finds A; the hit says which customer matched.
//!
//! Erasure (`CustomerForgotten`): every key of the customer (reference, contact points, name
//! tokens) is removed and the row is replaced by [`StoredRow::Forgotten`], which holds nothing
//! but the fact (the id is in the key). As in the timeline, forgetting a survivor also forgets
//! every customer merged into it (they were the same person); forgetting a merged-away
//! customer leaves the survivor alone. Events about a forgotten customer change nothing.

mod apply;
mod query;
mod sealed;

use serde::{Deserialize, Serialize};
use sijil_domain::{Channel, ContactKind, ContactPoint, CustomerId, DomainEvent, Timestamp};

use super::error::ProjectionError;
use super::overlay::Overlay;
use super::{EventMeta, Projection};
#[cfg(doc)]
use crate::vault::Vault;

pub use query::{
    by_contact, by_email, by_messaging, by_phone, by_reference, by_social, get, is_forgotten, list,
    search, DirectoryEntry, DirectoryHit, DirectoryPage, PageQuery,
};
pub use sealed::{
    by_contact_sealed, by_reference_sealed, search_sealed, SealedDirectoryProjection,
    MAX_PREFIX_CHARS,
};

/// Keyspace of customer rows.
pub(crate) const ROW: u8 = b'C';
/// Keyspace of the reference index.
pub(crate) const REFERENCE: u8 = b'F';
/// Keyspace of the contact point index.
pub(crate) const CONTACT: u8 = b'P';
/// Keyspace of the name token index.
pub(crate) const SEARCH: u8 = b'S';
/// Keyspace of the keyed-hash index of sealed stores.
pub(crate) const HASHED: u8 = b'H';
/// Keyspace of merged customers by survivor.
pub(crate) const MERGED: u8 = b'M';

/// The stable one-byte code of a contact kind in index keys.
pub(crate) fn contact_code(kind: ContactKind) -> u8 {
    match kind {
        ContactKind::Email => 0,
        ContactKind::Phone => 1,
        ContactKind::Social => 2,
        ContactKind::Messaging => 3,
    }
}

/// A known customer's directory data.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Profile {
    pub reference: String,
    pub display_name: String,
    pub language: String,
    pub time_zone: String,
    /// In the order added.
    pub contact_points: Vec<ContactPoint>,
    pub preferred_channel: Option<Channel>,
    pub consent_to_contact: Option<bool>,
    pub registered_at: Timestamp,
    /// The customer this one was merged into (the direct target; follow it for the survivor).
    pub merged_into: Option<CustomerId>,
    /// The folded name tokens currently indexed (so they can be removed on change); empty
    /// on a sealed store, whose name index is in `sealed`.
    pub tokens: Vec<String>,
    /// On a sealed store: the keyed hashes this customer is indexed under (see
    /// [`sealed`](self#sealed-stores)); `None` on a store without a vault.
    pub sealed: Option<SealedIndex>,
}

/// The keyed hashes ([`Vault::index_key`]) a customer of a sealed store is indexed under, so
/// a change or an erasure removes exactly those keys without needing the plaintext.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct SealedIndex {
    /// Hash of the folded reference (`None` when the customer's fields read as erased).
    pub reference: Option<[u8; 32]>,
    /// Hash of each contact point, parallel to [`Profile::contact_points`] (`None` when it
    /// could not be opened).
    pub contacts: Vec<Option<[u8; 32]>>,
    /// Hashes of the name-word prefixes, sorted, without duplicates.
    pub names: Vec<[u8; 32]>,
}

/// The stored row of one customer.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum StoredRow {
    Known(Box<Profile>),
    /// Erased on request: nothing personal is kept.
    Forgotten,
}

/// The customer directory projection.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectoryProjection;

pub(crate) const TYPES: &[&str] = &[
    "CustomerRegistered",
    "CustomerProfileUpdated",
    "ContactPointAdded",
    "ContactPointRemoved",
    "CustomerPreferencesChanged",
    "CustomerMerged",
    "CustomerForgotten",
];

impl Projection for DirectoryProjection {
    fn name(&self) -> &'static str {
        "directory"
    }

    fn version(&self) -> u32 {
        // 2: rows gained `Profile::sealed`.
        2
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
        apply::apply(ov, meta, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumes_only_known_event_types() {
        assert!(TYPES
            .iter()
            .all(|t| sijil_domain::events::EVENT_TYPES.contains(t)));
        let codes: Vec<u8> = [
            ContactKind::Email,
            ContactKind::Phone,
            ContactKind::Social,
            ContactKind::Messaging,
        ]
        .into_iter()
        .map(contact_code)
        .collect();
        assert_eq!(codes, vec![0, 1, 2, 3]);
    }
}
