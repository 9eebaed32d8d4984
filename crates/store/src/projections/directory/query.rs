//! Reads the customer directory: one customer by id, exact lookups (reference, contact
//! points; merged-away customers resolve to their survivor), name prefix search and the
//! listing of active customers, both paged forward with opaque cursors.

use sijil_domain::validate;
use sijil_domain::{Channel, ContactKind, ContactPoint, CustomerId, Timestamp, WorkspaceId};
use uuid::Uuid;

use super::super::cursor;
use super::super::error::ProjectionError;
use super::super::keys::{typed, Key, Reader};
use super::super::paging::{scan, Scanned, Window, MAX_PAGE, SKIP_BUDGET};
use super::super::rows;
use super::super::text::tokens;
use super::apply::{contact_prefix, reference_prefix, row_key};
use super::{Profile, StoredRow, ROW, SEARCH};

/// Entries per page when `first` is not given.
pub const DEFAULT_PAGE: usize = 20;
/// Longest merge chain followed when resolving a survivor.
const MAX_HOPS: usize = 64;
/// Most customers one exact lookup returns.
const MAX_HITS: usize = MAX_PAGE;

/// One customer as the directory shows them. A forgotten customer has only its id and
/// `forgotten = true`; every other field is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub customer_id: CustomerId,
    pub forgotten: bool,
    pub reference: String,
    pub display_name: String,
    pub language: String,
    pub time_zone: String,
    pub contact_points: Vec<ContactPoint>,
    pub preferred_channel: Option<Channel>,
    pub consent_to_contact: Option<bool>,
    pub registered_at: Option<Timestamp>,
    /// The customer this one was merged into (direct target).
    pub merged_into: Option<CustomerId>,
    /// Paging cursor of this entry (empty outside paged results).
    pub cursor: String,
}

impl DirectoryEntry {
    pub(super) fn new(customer_id: CustomerId, row: StoredRow) -> DirectoryEntry {
        match row {
            StoredRow::Forgotten => DirectoryEntry {
                customer_id,
                forgotten: true,
                reference: String::new(),
                display_name: String::new(),
                language: String::new(),
                time_zone: String::new(),
                contact_points: Vec::new(),
                preferred_channel: None,
                consent_to_contact: None,
                registered_at: None,
                merged_into: None,
                cursor: String::new(),
            },
            StoredRow::Known(profile) => {
                let Profile {
                    reference,
                    display_name,
                    language,
                    time_zone,
                    contact_points,
                    preferred_channel,
                    consent_to_contact,
                    registered_at,
                    merged_into,
                    tokens: _,
                    sealed: _,
                } = *profile;
                DirectoryEntry {
                    customer_id,
                    forgotten: false,
                    reference,
                    display_name,
                    language,
                    time_zone,
                    contact_points,
                    preferred_channel,
                    consent_to_contact,
                    registered_at: Some(registered_at),
                    merged_into,
                    cursor: String::new(),
                }
            }
        }
    }
}

/// One result of an exact lookup: the customer that now answers for the value (the
/// survivor, when the value belonged to a merged-away customer) and the customer whose
/// reference or contact point matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryHit {
    pub customer: DirectoryEntry,
    pub matched: CustomerId,
}

/// Forward paging arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// Page size (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]).
    pub first: Option<usize>,
    /// Exclusive start cursor.
    pub after: Option<String>,
}

/// One page of customers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryPage {
    pub entries: Vec<DirectoryEntry>,
    /// More entries may follow `end_cursor`.
    pub has_next: bool,
    /// Cursor of the last entry (or, when a scan gave up early, of where it stopped).
    pub end_cursor: Option<String>,
}

/// The stored row of `customer` in `ws`, decoded as `T` (a [`StoredRow`], or less of it).
pub(super) fn read_row<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
    ws: Uuid,
    customer: Uuid,
) -> Result<Option<T>, ProjectionError> {
    row_bytes(tree, ws, customer)?
        .map(|bytes| rows::decode(&bytes, "directory row"))
        .transpose()
}

/// The stored bytes of `customer`'s row, undecoded.
fn row_bytes(
    tree: &sled::Tree,
    ws: Uuid,
    customer: Uuid,
) -> Result<Option<sled::IVec>, ProjectionError> {
    tree.get(row_key(ws, customer))
        .map_err(|e| ProjectionError::sled("read directory row", e))
}

/// The customer `customer` in workspace `ws`, whatever their state.
pub fn get(
    tree: &sled::Tree,
    ws: WorkspaceId,
    customer: CustomerId,
) -> Result<Option<DirectoryEntry>, ProjectionError> {
    Ok(read_row(tree, ws.as_uuid(), customer.as_uuid())?
        .map(|row| DirectoryEntry::new(customer, row)))
}

/// The stored form of [`StoredRow::Forgotten`] (MessagePack: the variant's name).
const FORGOTTEN_ROW: &[u8] = b"\xa9Forgotten";
/// How every stored [`StoredRow::Known`] starts (MessagePack: a map of one entry, keyed by
/// the variant's name); the profile follows.
const KNOWN_ROW_PREFIX: &[u8] = b"\x81\xa5Known";

/// Whether `customer` in workspace `ws` is forgotten (`None`: not in the directory). Every
/// timeline page asks this, so it reads only the row's variant: a row is recognised by its
/// first bytes, without walking the profile (walking it was ~2 % of the server's CPU under
/// the timeline load); a row that starts otherwise is decoded, and an undecodable one is an
/// error as before.
pub fn is_forgotten(
    tree: &sled::Tree,
    ws: WorkspaceId,
    customer: CustomerId,
) -> Result<Option<bool>, ProjectionError> {
    row_bytes(tree, ws.as_uuid(), customer.as_uuid())?
        .map(|bytes| row_is_forgotten(&bytes))
        .transpose()
}

/// Whether the stored row `bytes` is [`StoredRow::Forgotten`] (see [`is_forgotten`]).
fn row_is_forgotten(bytes: &[u8]) -> Result<bool, ProjectionError> {
    if bytes == FORGOTTEN_ROW {
        return Ok(true);
    }
    if bytes.starts_with(KNOWN_ROW_PREFIX) {
        return Ok(false);
    }
    /// [`StoredRow`] with the profile skipped, not decoded.
    #[derive(serde::Deserialize)]
    enum RowKind {
        Known(serde::de::IgnoredAny),
        Forgotten,
    }
    rows::decode(bytes, "directory row").map(|kind: RowKind| matches!(kind, RowKind::Forgotten))
}

/// Follows merges from `customer` to the customer now answering for them, with its row.
fn survivor(
    tree: &sled::Tree,
    ws: Uuid,
    customer: CustomerId,
) -> Result<Option<(CustomerId, StoredRow)>, ProjectionError> {
    let mut current = customer;
    for _ in 0..MAX_HOPS {
        let Some(row) = read_row(tree, ws, current.as_uuid())? else {
            return Ok(None);
        };
        match &row {
            StoredRow::Known(profile) => match profile.merged_into {
                Some(next) if next != customer && next != current => current = next,
                _ => return Ok(Some((current, row))),
            },
            StoredRow::Forgotten => return Ok(Some((current, row))),
        }
    }
    Ok(None)
}

/// Every customer whose index key starts with `prefix` (the key ends with the id), resolved
/// to survivors, without duplicates and without forgotten customers.
pub(super) fn lookup(
    tree: &sled::Tree,
    ws: Uuid,
    prefix: &[u8],
) -> Result<Vec<DirectoryHit>, ProjectionError> {
    let mut hits: Vec<DirectoryHit> = Vec::new();
    for item in tree.scan_prefix(prefix).take(MAX_HITS) {
        let (key, _) = item.map_err(|e| ProjectionError::sled("scan directory index", e))?;
        let mut reader = Reader::new(&key, "directory index key");
        reader.skip(prefix.len())?;
        let matched: CustomerId = typed(reader.uuid()?, "customer id")?;
        let Some((id, row)) = survivor(tree, ws, matched)? else {
            continue;
        };
        if matches!(row, StoredRow::Forgotten) {
            continue;
        }
        match hits.iter_mut().find(|h| h.customer.customer_id == id) {
            // Prefer the customer's own match over one inherited through a merge.
            Some(hit) if matched == id => hit.matched = matched,
            Some(_) => {}
            None => hits.push(DirectoryHit {
                customer: DirectoryEntry::new(id, row),
                matched,
            }),
        }
    }
    Ok(hits)
}

/// Customers with reference number `reference` (compared ASCII case-insensitively).
pub fn by_reference(
    tree: &sled::Tree,
    ws: WorkspaceId,
    reference: &str,
) -> Result<Vec<DirectoryHit>, ProjectionError> {
    let reference = validate::reference("customer reference", reference)
        .map_err(|e| ProjectionError::InvalidQuery(e.to_string()))?;
    lookup(
        tree,
        ws.as_uuid(),
        &reference_prefix(ws.as_uuid(), &reference),
    )
}

/// Customers reachable at `point` (normalised as the domain does before the lookup).
pub fn by_contact(
    tree: &sled::Tree,
    ws: WorkspaceId,
    point: &ContactPoint,
) -> Result<Vec<DirectoryHit>, ProjectionError> {
    let point =
        validate::contact_point(point).map_err(|e| ProjectionError::InvalidQuery(e.to_string()))?;
    lookup(tree, ws.as_uuid(), &contact_prefix(ws.as_uuid(), &point))
}

fn by_kind(
    tree: &sled::Tree,
    ws: WorkspaceId,
    kind: ContactKind,
    value: &str,
) -> Result<Vec<DirectoryHit>, ProjectionError> {
    let point = ContactPoint {
        kind,
        value: value.to_owned(),
    };
    by_contact(tree, ws, &point)
}

/// Customers with email address `email` (case-insensitive).
pub fn by_email(
    tree: &sled::Tree,
    ws: WorkspaceId,
    email: &str,
) -> Result<Vec<DirectoryHit>, ProjectionError> {
    by_kind(tree, ws, ContactKind::Email, email)
}

/// Customers with phone number `phone` (any accepted spelling of the E.164 number).
pub fn by_phone(
    tree: &sled::Tree,
    ws: WorkspaceId,
    phone: &str,
) -> Result<Vec<DirectoryHit>, ProjectionError> {
    by_kind(tree, ws, ContactKind::Phone, phone)
}

/// Customers with social handle `handle` (`network:handle`).
pub fn by_social(
    tree: &sled::Tree,
    ws: WorkspaceId,
    handle: &str,
) -> Result<Vec<DirectoryHit>, ProjectionError> {
    by_kind(tree, ws, ContactKind::Social, handle)
}

/// Customers with messaging id `id` (`service:id`).
pub fn by_messaging(
    tree: &sled::Tree,
    ws: WorkspaceId,
    id: &str,
) -> Result<Vec<DirectoryHit>, ProjectionError> {
    by_kind(tree, ws, ContactKind::Messaging, id)
}

pub(super) fn page_size(query: &PageQuery) -> Result<usize, ProjectionError> {
    let size = query.first.unwrap_or(DEFAULT_PAGE);
    if size > MAX_PAGE {
        return Err(ProjectionError::InvalidQuery(format!(
            "a page holds at most {MAX_PAGE} entries"
        )));
    }
    Ok(size)
}

/// Decodes a cursor of any length (its bytes are a key suffix).
fn decode_cursor(text: &str) -> Result<Vec<u8>, ProjectionError> {
    cursor::decode(text, text.len() * 3 / 4)
}

pub(super) fn finish(
    scanned: Scanned<DirectoryEntry>,
    base_len: usize,
) -> Result<DirectoryPage, ProjectionError> {
    let Scanned {
        items,
        more,
        stopped_at,
    } = scanned;
    let entries: Vec<DirectoryEntry> = items.into_iter().map(|(_, e)| e).collect();
    let end_cursor = match stopped_at {
        Some(key) => Some(cursor::encode(key.get(base_len..).unwrap_or_default())),
        None => entries.last().map(|e| e.cursor.clone()),
    };
    Ok(DirectoryPage {
        entries,
        has_next: more,
        end_cursor,
    })
}

/// Active customers (neither merged away nor forgotten) of `ws`, in id (registration) order.
pub fn list(
    tree: &sled::Tree,
    ws: WorkspaceId,
    query: &PageQuery,
) -> Result<DirectoryPage, ProjectionError> {
    let size = page_size(query)?;
    let base = Key::new(ROW).uuid(ws.as_uuid()).build();
    let mut window = Window::prefix(&base);
    if let Some(after) = &query.after {
        let suffix = cursor::decode(after, 16)?;
        let mut key = base.clone();
        key.extend_from_slice(&suffix);
        window.above(&key);
    }
    let base_len = base.len();
    let mut budget = SKIP_BUDGET;
    let scanned = scan(tree, &window, false, size, &mut budget, |key, value| {
        let mut reader = Reader::new(key, "directory row key");
        reader.skip(base_len)?;
        let id: CustomerId = typed(reader.uuid()?, "customer id")?;
        let row: StoredRow = rows::decode(value, "directory row")?;
        match &row {
            StoredRow::Known(profile) if profile.merged_into.is_none() => {
                let mut entry = DirectoryEntry::new(id, row);
                entry.cursor = cursor::encode(&key[base_len..]);
                Ok(Some(entry))
            }
            _ => Ok(None),
        }
    })?;
    finish(scanned, base_len)
}

/// Active customers of `ws` with a word of their display name starting with each word of
/// `text` (folded like the index: case, diacritics and Arabic tashkeel do not matter), each
/// customer once, ordered by the matching word of the longest query word, then by id.
pub fn search(
    tree: &sled::Tree,
    ws: WorkspaceId,
    text: &str,
    query: &PageQuery,
) -> Result<DirectoryPage, ProjectionError> {
    let size = page_size(query)?;
    let words = tokens(text);
    let Some(lead) = words.iter().max_by_key(|w| w.len()).cloned() else {
        return Err(ProjectionError::InvalidQuery(
            "a search needs at least one letter or digit".into(),
        ));
    };
    let base = Key::new(SEARCH).uuid(ws.as_uuid()).build();
    let mut window = Window::prefix(
        &Key::new(SEARCH)
            .uuid(ws.as_uuid())
            .bytes(lead.as_bytes())
            .build(),
    );
    if let Some(after) = &query.after {
        let suffix = decode_cursor(after)?;
        if suffix.len() < 17 || suffix[suffix.len() - 17] != 0 {
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
        if key.len() < base_len + 17 {
            return Err(ProjectionError::corrupt(
                "directory search key is too short",
            ));
        }
        let token = &key[base_len..key.len() - 17];
        let mut reader = Reader::new(&key[key.len() - 16..], "directory search key");
        let id: CustomerId = typed(reader.uuid()?, "customer id")?;
        let Some(row) = read_row(tree, ws.as_uuid(), id.as_uuid())? else {
            return Ok(None);
        };
        let StoredRow::Known(profile) = &row else {
            return Ok(None);
        };
        if profile.merged_into.is_some() {
            return Ok(None);
        }
        // Each customer once: only at their smallest word matching the lead.
        let first_match = profile
            .tokens
            .iter()
            .filter(|t| t.starts_with(lead.as_str()))
            .min();
        if first_match.map(String::as_bytes) != Some(token) {
            return Ok(None);
        }
        let all_words = words
            .iter()
            .all(|w| profile.tokens.iter().any(|t| t.starts_with(w.as_str())));
        if !all_words {
            return Ok(None);
        }
        let mut entry = DirectoryEntry::new(id, row);
        entry.cursor = cursor::encode(&key[base_len..]);
        Ok(Some(entry))
    })?;
    finish(scanned, base_len)
}

#[cfg(test)]
mod tests {
    use super::super::SealedIndex;
    use super::*;

    fn known() -> StoredRow {
        StoredRow::Known(Box::new(Profile {
            reference: "C-1".to_owned(),
            display_name: "Amina Haddad".to_owned(),
            language: "ar".to_owned(),
            time_zone: "Asia/Amman".to_owned(),
            contact_points: Vec::new(),
            preferred_channel: None,
            consent_to_contact: Some(true),
            registered_at: Timestamp(0),
            merged_into: None,
            tokens: vec!["amina".to_owned()],
            sealed: Some(SealedIndex::default()),
        }))
    }

    #[test]
    fn a_rows_first_bytes_say_what_the_full_decode_says() -> Result<(), ProjectionError> {
        let forgotten = rows::encode(&StoredRow::Forgotten)?;
        assert_eq!(forgotten, FORGOTTEN_ROW);
        let known = rows::encode(&known())?;
        assert!(known.starts_with(KNOWN_ROW_PREFIX));
        assert!(row_is_forgotten(&forgotten)?);
        assert!(!row_is_forgotten(&known)?);
        Ok(())
    }

    #[test]
    fn a_row_that_starts_otherwise_is_decoded() {
        assert!(row_is_forgotten(b"").is_err());
        assert!(row_is_forgotten(b"\x81\xa5Knowx\xc0").is_err());
        assert!(row_is_forgotten(b"\xa6Forgot").is_err());
    }
}
