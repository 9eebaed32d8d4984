//! The gateway's side of crypto-shredding (see [`sijil_store::vault`]): finding whose personal
//! data a stored event holds, opening stored events through the vault for every read the
//! gateway serves from the log (command loads, raw events, as-of rebuilds), forgetting a
//! customer together with every customer merged into them, and, at startup, finishing a
//! forget that a crash interrupted between its `CustomerForgotten` event and the destruction
//! of the key.
//!
//! Without a vault (a gateway built with [`Gateway::new`](crate::Gateway::new)) events are
//! stored and read as plaintext and these helpers only decode.

use std::collections::{BTreeSet, HashMap};

use sijil_domain::personal::{self, DataSubject};
use sijil_domain::{CustomerId, DomainEvent, WorkspaceId};
use sijil_store::projections::codec::decode_event;
use sijil_store::vault::{Forgot, Vault, SEALED_PREFIX};
use sijil_store::{Direction, RecordedEvent, Store};

use crate::bus::BusError;

/// Log entries read per batch while scanning for merges and forgets.
const SCAN_BATCH: usize = 2_000;

/// The workspace of a stored event, as a domain id.
pub fn workspace_of(event: &RecordedEvent) -> Result<WorkspaceId, BusError> {
    WorkspaceId::new(event.workspace_id).map_err(|_| {
        BusError::Decode(format!(
            "event at position {} has a workspace id that is not a UUID v7",
            event.position
        ))
    })
}

/// The customer named by the first event of `stream_id` (a case's `CaseOpened`, a
/// follow-up's `FollowUpScheduled`, a customer's registration), if any.
pub fn stream_customer(store: &Store, stream_id: &str) -> Result<Option<CustomerId>, BusError> {
    let first = store.read_stream(stream_id, 1, Direction::Forward, 1)?;
    let Some(first) = first.first() else {
        return Ok(None);
    };
    let event = decode_event(first).map_err(|e| BusError::Decode(e.to_string()))?;
    Ok(personal::data_subject(&event).customer())
}

/// Whose personal data `event` (stored, or about to be stored, on `stream_id`) holds: named
/// by the event, else from the vault's case/follow-up links, else from `fallback` (the
/// customer of the stream, when the caller knows it) or the stream's first event.
pub fn subject_of(
    vault: &Vault,
    store: &Store,
    ws: WorkspaceId,
    event: &DomainEvent,
    stream_id: &str,
    fallback: Option<CustomerId>,
) -> Result<Option<CustomerId>, BusError> {
    let subject = personal::data_subject(event);
    match subject {
        DataSubject::Customer(id) => return Ok(Some(id)),
        DataSubject::NoCustomer => return Ok(None),
        DataSubject::CustomerOfCase(_) | DataSubject::CustomerOfFollowUp(_) => {}
    }
    if let Some(id) = vault.resolve(ws, subject)? {
        return Ok(Some(id));
    }
    if fallback.is_some() {
        return Ok(fallback);
    }
    stream_customer(store, stream_id)
}

/// Whether any personal field of `event` is in sealed form.
pub fn is_sealed(event: &DomainEvent) -> bool {
    personal::personal_values(event)
        .iter()
        .any(|(_, value)| value.starts_with(SEALED_PREFIX))
}

/// Turns the personal fields of a decoded stored event back into plaintext (or `[erased]`
/// once its customer is forgotten). `fallback` is the stream's customer when known.
pub fn open_in_place(
    vault: &Vault,
    store: &Store,
    recorded: &RecordedEvent,
    event: &mut DomainEvent,
    fallback: Option<CustomerId>,
) -> Result<(), BusError> {
    if !personal::has_personal(event) {
        return Ok(());
    }
    let ws = workspace_of(recorded)?;
    match subject_of(vault, store, ws, event, &recorded.stream_id, fallback)? {
        Some(customer) => {
            vault.open(event, ws, customer)?;
            Ok(())
        }
        None if is_sealed(event) => Err(BusError::Decode(format!(
            "event at position {} holds sealed personal data but names no customer",
            recorded.position
        ))),
        None => Ok(()),
    }
}

/// Decodes a stored event and, with a vault, opens its personal fields.
pub fn open_event(
    vault: Option<&Vault>,
    store: &Store,
    recorded: &RecordedEvent,
) -> Result<DomainEvent, BusError> {
    let mut event = decode_event(recorded).map_err(|e| BusError::Decode(e.to_string()))?;
    if let Some(vault) = vault {
        open_in_place(vault, store, recorded, &mut event, None)?;
    }
    Ok(event)
}

/// Visits every stored event of the given types, oldest first.
fn scan(
    store: &Store,
    types: &[&str],
    mut visit: impl FnMut(&RecordedEvent, DomainEvent),
) -> Result<(), BusError> {
    let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
    let mut next = 1u64;
    loop {
        let batch = store.read_all(next, SCAN_BATCH, Some(&types))?;
        let Some(last) = batch.last().map(|e| e.position) else {
            return Ok(());
        };
        for recorded in &batch {
            let event = decode_event(recorded).map_err(|e| BusError::Decode(e.to_string()))?;
            visit(recorded, event);
        }
        next = last + 1;
    }
}

/// Every merge of the store: survivor → customers merged into it, per workspace.
type MergeMap = HashMap<(WorkspaceId, CustomerId), Vec<CustomerId>>;

fn merges(store: &Store) -> Result<MergeMap, BusError> {
    let mut map = MergeMap::new();
    scan(store, &["CustomerMerged"], |recorded, event| {
        if let (DomainEvent::CustomerMerged(e), Ok(ws)) =
            (event, WorkspaceId::new(recorded.workspace_id))
        {
            map.entry((ws, e.into)).or_default().push(e.customer_id);
        }
    })?;
    Ok(map)
}

/// `customer` and everyone merged into them, directly or through a chain of merges.
fn with_merged(map: &MergeMap, ws: WorkspaceId, customer: CustomerId) -> BTreeSet<CustomerId> {
    let mut seen = BTreeSet::from([customer]);
    let mut todo = vec![customer];
    while let Some(next) = todo.pop() {
        for merged in map.get(&(ws, next)).into_iter().flatten() {
            if seen.insert(*merged) {
                todo.push(*merged);
            }
        }
    }
    seen
}

/// Destroys the data keys of `customer` and of every customer merged into them (they are the
/// same person; forgetting the survivor erases the merged identities as well). Call it after
/// the `CustomerForgotten` event is durable. Harmless to repeat.
pub fn forget(
    vault: &Vault,
    store: &Store,
    ws: WorkspaceId,
    customer: CustomerId,
) -> Result<Vec<(CustomerId, Forgot)>, BusError> {
    let map = merges(store)?;
    with_merged(&map, ws, customer)
        .into_iter()
        .map(|id| Ok((id, vault.forget(ws, id)?)))
        .collect()
}

/// Finishes forgets a crash interrupted: every customer with a `CustomerForgotten` event (and
/// everyone merged into them) whose key is still live is forgotten now. Returns how many keys
/// this destroyed or marked.
pub fn repair(vault: &Vault, store: &Store) -> Result<usize, BusError> {
    let mut forgotten = Vec::new();
    scan(store, &["CustomerForgotten"], |recorded, event| {
        if let (DomainEvent::CustomerForgotten(e), Ok(ws)) =
            (event, WorkspaceId::new(recorded.workspace_id))
        {
            forgotten.push((ws, e.customer_id));
        }
    })?;
    if forgotten.is_empty() {
        return Ok(0);
    }
    let map = merges(store)?;
    let mut repaired = 0;
    for (ws, customer) in forgotten {
        for id in with_merged(&map, ws, customer) {
            if !vault.is_forgotten(ws, id)? {
                vault.forget(ws, id)?;
                repaired += 1;
            }
        }
    }
    Ok(repaired)
}
