//! Owns what a gateway node does when several nodes share one PostgreSQL log (its store
//! follows that log, see [`sijil_store::replica`]): sharing the state that is not in the
//! log — customer data keys, API tokens, the master-key check — through PostgreSQL's shared
//! table ([`sijil_store::pg::shared`]).
//!
//! - **Data keys.** A node that makes a customer's data key publishes it (sealed under the
//!   master key, which every node of a cluster must be given) before the first event sealed
//!   with it is appended ([`KeyShare::publish`]), so any node that sees the event can fetch
//!   the key first ([`KeyFollower::before`]). Forgetting a customer appends
//!   `CustomerForgotten`, destroys the key on the node that served it, overwrites the shared
//!   row with a tombstone ([`KeyShare::forget`]); every other node destroys its copy as soon
//!   as it copies the event ([`KeyFollower::after`]).
//! - **Tokens** live in PostgreSQL; each node mirrors them into its local token tree at start
//!   and every [`TOKEN_SYNC`] after ([`sync_tokens`]), so a token made or revoked on any node
//!   (or with `sijil token … --store`) takes effect everywhere within that time.
//! - **Master key check**: the first node stores a bundle sealed under its master key; a node
//!   started with another key is refused ([`check_master_key`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sijil_domain::{personal, CustomerId, DomainEvent, WorkspaceId};
use sijil_store::pg::shared::{customer_key, Space};
use sijil_store::pg::PgLog;
use sijil_store::projections::codec::decode_event;
use sijil_store::replica::{HookFuture, ReplicaHook};
use sijil_store::vault::{KeyBundle, Vault, VaultError};
use sijil_store::{RecordedEvent, Store, StoreError};

use crate::auth::{AuthError, TokenStore};
use crate::bus::BusError;

/// How often a node re-reads the shared tokens.
pub const TOKEN_SYNC: Duration = Duration::from_secs(1);

/// The settings row holding the master-key check.
const MASTER_CHECK: &[u8] = b"master-key-check";

/// Publishes the data keys this node makes, once each.
pub struct KeyShare {
    log: PgLog,
    vault: Vault,
    published: Mutex<HashSet<(WorkspaceId, CustomerId)>>,
}

impl KeyShare {
    /// Key sharing over `log` for `vault`.
    pub fn new(log: PgLog, vault: Vault) -> KeyShare {
        KeyShare {
            log,
            vault,
            published: Mutex::new(HashSet::new()),
        }
    }

    fn is_published(&self, ws: WorkspaceId, customer: CustomerId) -> bool {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(ws, customer))
    }

    fn mark_published(&self, ws: WorkspaceId, customer: CustomerId) {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((ws, customer));
    }

    /// Makes sure every node can read what this node sealed for `customers`: publishes each
    /// key not yet shared. Returns `true` when another node had shared a different key for one
    /// of them first (both made one at once): this node then adopts that key (its own was
    /// never used for anything durable, since it was not yet published) and the caller must
    /// seal again. A customer forgotten elsewhere fails the command
    /// ([`VaultError::Forgotten`]); nothing is appended.
    pub async fn publish(
        &self,
        ws: WorkspaceId,
        customers: &[CustomerId],
    ) -> Result<bool, BusError> {
        let mut rekeyed = false;
        for &customer in customers {
            if self.is_published(ws, customer) {
                continue;
            }
            let Some(sealed) = self.vault.share(ws, customer)? else {
                continue;
            };
            let key = customer_key(ws.as_uuid(), customer.as_uuid());
            if let Some(theirs) = self
                .log
                .shared_insert_new(Space::VaultKeys, &key, &sealed)
                .await?
            {
                // Someone shared first: the same key is fine, a tombstone forgets the customer
                // here too, a different key replaces ours.
                let bundle = self.vault.open_shared(&theirs)?;
                match self.vault.import_keys(&bundle) {
                    Ok(_) => {}
                    Err(VaultError::KeyConflict { .. }) => {
                        self.vault.adopt(&bundle)?;
                        rekeyed = true;
                    }
                    Err(e) => return Err(e.into()),
                }
                if self.vault.is_forgotten(ws, customer)? {
                    return Err(VaultError::Forgotten(customer).into());
                }
            }
            self.mark_published(ws, customer);
        }
        Ok(rekeyed)
    }

    /// Shares every key and tombstone of the vault not yet shared (after this node filled its
    /// store on its own, e.g. with `serve --demo`, and uploaded the log). Returns how many
    /// rows it wrote.
    pub async fn publish_all(&self) -> Result<usize, BusError> {
        let bundle = self.vault.export_keys()?;
        let mut written = 0;
        for (ws, customer) in bundle.customers() {
            let (Ok(ws), Ok(customer)) = (WorkspaceId::new(ws), CustomerId::new(customer)) else {
                continue;
            };
            let Some(sealed) = self.vault.share(ws, customer)? else {
                continue;
            };
            let key = customer_key(ws.as_uuid(), customer.as_uuid());
            if self
                .log
                .shared_insert_new(Space::VaultKeys, &key, &sealed)
                .await?
                .is_none()
            {
                written += 1;
            }
            self.mark_published(ws, customer);
        }
        Ok(written)
    }

    /// Replaces the shared rows of `customers` (just forgotten on this node) with tombstones
    /// and asks PostgreSQL to drop the old row versions.
    pub async fn forget(&self, ws: WorkspaceId, customers: &[CustomerId]) -> Result<(), BusError> {
        for &customer in customers {
            let Some(tombstone) = self.vault.share(ws, customer)? else {
                continue;
            };
            let key = customer_key(ws.as_uuid(), customer.as_uuid());
            self.log
                .shared_put(Space::VaultKeys, &key, &tombstone)
                .await?;
        }
        if let Err(e) = self.log.shared_vacuum().await {
            tracing::warn!(error = %e, "could not vacuum the shared key table after a forget");
        }
        Ok(())
    }
}

/// The node's replica hook: fetches the keys of customers it has not seen before their
/// events land, records case/follow-up links, and destroys keys of customers forgotten on
/// other nodes.
pub struct KeyFollower {
    store: Store,
    log: PgLog,
    vault: Vault,
}

impl KeyFollower {
    /// The hook for `store` (following `log`) and its `vault`.
    pub fn new(store: Store, log: PgLog, vault: Vault) -> Arc<KeyFollower> {
        Arc::new(KeyFollower { store, log, vault })
    }

    async fn fetch_keys(&self, events: &[RecordedEvent]) -> Result<(), BusError> {
        let mut wanted: Vec<(WorkspaceId, CustomerId)> = Vec::new();
        for recorded in events {
            let Ok(event) = decode_event(recorded) else {
                // Not a domain event this build knows: nothing personal to prepare.
                continue;
            };
            let ws = crate::shredding::workspace_of(recorded)?;
            self.vault.record_link(ws, &event)?;
            if !personal::has_personal(&event) {
                continue;
            }
            let Some(customer) = self.vault.resolve(ws, personal::data_subject(&event))? else {
                continue;
            };
            if !wanted.contains(&(ws, customer)) && !self.vault.holds(ws, customer)? {
                wanted.push((ws, customer));
            }
        }
        if wanted.is_empty() {
            // The links just recorded must be durable before the events are copied (the
            // copy is not read again); importing keys below flushes them with the keys.
            let vault = self.vault.clone();
            return tokio::task::spawn_blocking(move || vault.make_durable())
                .await
                .map_err(|e| BusError::Decode(format!("flushing subject links: {e}")))?
                .map_err(BusError::from);
        }
        let keys: Vec<Vec<u8>> = wanted
            .iter()
            .map(|(ws, c)| customer_key(ws.as_uuid(), c.as_uuid()))
            .collect();
        let rows = self.log.shared_get_many(Space::VaultKeys, &keys).await?;
        if rows.len() < wanted.len() {
            tracing::warn!(
                missing = wanted.len() - rows.len(),
                "events hold sealed data of customers whose key was never shared"
            );
        }
        let mut bundle = KeyBundle::default();
        for (_, sealed) in rows {
            bundle.merge(self.vault.open_shared(&sealed)?);
        }
        let vault = self.vault.clone();
        tokio::task::spawn_blocking(move || vault.import_keys(&bundle))
            .await
            .map_err(|e| BusError::Decode(format!("importing shared keys: {e}")))??;
        Ok(())
    }

    async fn forget_copied(&self, events: &[RecordedEvent]) -> Result<(), BusError> {
        let mut forgotten = Vec::new();
        for recorded in events {
            if recorded.event_type != "CustomerForgotten" {
                continue;
            }
            if let Ok(DomainEvent::CustomerForgotten(e)) = decode_event(recorded) {
                forgotten.push((crate::shredding::workspace_of(recorded)?, e.customer_id));
            }
        }
        if forgotten.is_empty() {
            return Ok(());
        }
        let (vault, store) = (self.vault.clone(), self.store.clone());
        tokio::task::spawn_blocking(move || {
            for (ws, customer) in forgotten {
                crate::shredding::forget(&vault, &store, ws, customer)?;
            }
            Ok::<(), BusError>(())
        })
        .await
        .map_err(|e| BusError::Decode(format!("forgetting copied customers: {e}")))?
    }
}

fn to_store(e: BusError) -> StoreError {
    match e {
        BusError::Store(e) => e,
        other => StoreError::Io {
            operation: "prepare copied events",
            detail: other.to_string(),
        },
    }
}

impl ReplicaHook for KeyFollower {
    fn before<'a>(&'a self, events: &'a [RecordedEvent]) -> HookFuture<'a> {
        Box::pin(async move { self.fetch_keys(events).await.map_err(to_store) })
    }

    fn after<'a>(&'a self, events: &'a [RecordedEvent]) -> HookFuture<'a> {
        Box::pin(async move { self.forget_copied(events).await.map_err(to_store) })
    }
}

/// Why a node cannot join a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("this node's master key is not the one the other nodes of this PostgreSQL log use; give every node the same key (--master-key-file or SIJIL_MASTER_KEY)")]
    WrongMasterKey,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl ClusterError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ClusterError::WrongMasterKey => "MASTER_KEY_WRONG",
            ClusterError::Vault(e) => e.code(),
            ClusterError::Store(e) => e.code(),
            ClusterError::Auth(_) => "AUTH_STORE",
        }
    }
}

/// Refuses a node whose master key differs from the cluster's; the first node records its
/// key's check. The check is an empty key bundle sealed under the master key.
pub async fn check_master_key(log: &PgLog, vault: &Vault) -> Result<(), ClusterError> {
    let ours = KeyBundle::default();
    let sealed = vault.seal_bundle(&ours)?;
    let stored = log
        .shared_insert_new(Space::Settings, MASTER_CHECK, &sealed)
        .await?;
    match stored {
        None => Ok(()),
        Some(theirs) => match vault.open_shared(&theirs) {
            Ok(_) => Ok(()),
            Err(VaultError::BundleWrongKey) => Err(ClusterError::WrongMasterKey),
            Err(e) => Err(e.into()),
        },
    }
}

/// Makes the node's local token tree equal to the shared tokens. Returns whether anything
/// changed.
pub async fn sync_tokens(tokens: &TokenStore, log: &PgLog) -> Result<bool, ClusterError> {
    let rows = log.shared_scan(Space::Tokens).await?;
    Ok(tokens.mirror(&rows)?)
}

/// Keeps the local token tree in step with the shared tokens until the task is aborted.
pub fn spawn_token_sync(tokens: TokenStore, log: PgLog) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TOKEN_SYNC).await;
            if log.is_closed() {
                return;
            }
            if let Err(e) = sync_tokens(&tokens, &log).await {
                tracing::warn!(error = %e, "could not read the shared tokens");
            }
        }
    })
}

/// Stores token rows (from [`TokenStore::mint`] or [`TokenStore::revoked_rows`]) in the shared
/// table, then mirrors them locally.
pub async fn put_token_rows(
    tokens: &TokenStore,
    log: &PgLog,
    rows: &[(Vec<u8>, Vec<u8>)],
) -> Result<(), ClusterError> {
    for (key, value) in rows {
        log.shared_put(Space::Tokens, key, value).await?;
    }
    sync_tokens(tokens, log).await?;
    Ok(())
}
