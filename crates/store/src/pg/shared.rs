//! Owns the small key-value state that every sijil node on one PostgreSQL database shares
//! besides the log: API tokens, `clientMutationId` records, sealed customer data keys and
//! settings such as the master-key check. One table, `sijil_shared`, keyed by
//! `(space, key)`; each user of it picks its own [`Space`].
//!
//! Writes are durable when they return (`synchronous_commit = on`, as for appends). Nothing
//! here is part of the hash-chained log: these rows are operational state, and a forgotten
//! customer's key row is overwritten (see [`PgLog::shared_put`] and
//! [`PgLog::shared_vacuum`]).

use uuid::Uuid;

use crate::error::StoreError;

use super::rows::get;
use super::{pg_err, PgLog};

/// Which kind of shared state a row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// API tokens (by secret hash and by id).
    Tokens,
    /// Records of mutations sent with a `clientMutationId`.
    Mutations,
    /// Customer data keys, each sealed under the master key.
    VaultKeys,
    /// Cluster settings (the master-key check).
    Settings,
}

impl Space {
    fn name(self) -> &'static str {
        match self {
            Space::Tokens => "tokens",
            Space::Mutations => "mutations",
            Space::VaultKeys => "vault_keys",
            Space::Settings => "settings",
        }
    }
}

/// The `(workspace ‖ customer)` key of a customer's data key row.
pub fn customer_key(workspace: Uuid, customer: Uuid) -> Vec<u8> {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(workspace.as_bytes());
    key.extend_from_slice(customer.as_bytes());
    key
}

impl PgLog {
    /// The value stored under `key` in `space`, if any.
    pub async fn shared_get(
        &self,
        space: Space,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT value FROM sijil_shared WHERE space = $1 AND key = $2")
            .await
            .map_err(pg_err("prepare shared read"))?;
        let row = client
            .query_opt(&statement, &[&space.name(), &key])
            .await
            .map_err(pg_err("read shared state"))?;
        row.map(|row| get::<Vec<u8>>(&row, 0, 0)).transpose()
    }

    /// The values stored under each of `keys` in `space` (absent keys are left out), as
    /// `(key, value)` pairs.
    pub async fn shared_get_many(
        &self,
        space: Space,
        keys: &[Vec<u8>],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT key, value FROM sijil_shared WHERE space = $1 AND key = ANY($2)",
            )
            .await
            .map_err(pg_err("prepare shared read"))?;
        let rows = client
            .query(&statement, &[&space.name(), &keys])
            .await
            .map_err(pg_err("read shared state"))?;
        rows.iter()
            .map(|row| Ok((get(row, 0, 0)?, get(row, 1, 0)?)))
            .collect()
    }

    /// Every `(key, value)` of `space`, by key.
    pub async fn shared_scan(&self, space: Space) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT key, value FROM sijil_shared WHERE space = $1 ORDER BY key")
            .await
            .map_err(pg_err("prepare shared scan"))?;
        let rows = client
            .query(&statement, &[&space.name()])
            .await
            .map_err(pg_err("scan shared state"))?;
        rows.iter()
            .map(|row| Ok((get(row, 0, 0)?, get(row, 1, 0)?)))
            .collect()
    }

    /// Stores `value` under `key` unless a value is already there. Returns `None` when this
    /// call stored it, else the value that was already stored (which is kept). Concurrent
    /// callers on any node agree on one winner.
    pub async fn shared_insert_new(
        &self,
        space: Space,
        key: &[u8],
        value: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let insert = client
            .prepare_cached(
                "INSERT INTO sijil_shared (space, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (space, key) DO NOTHING RETURNING true",
            )
            .await
            .map_err(pg_err("prepare shared insert"))?;
        let stored = client
            .query_opt(&insert, &[&space.name(), &key, &value])
            .await
            .map_err(pg_err("write shared state"))?;
        if stored.is_some() {
            return Ok(None);
        }
        drop(client);
        // The winner committed before our insert saw its row, so it is visible now.
        self.shared_get(space, key)
            .await?
            .map(Some)
            .ok_or_else(|| StoreError::Io {
                operation: "read shared state",
                detail: "a row that refused an insert is gone".to_owned(),
            })
    }

    /// Stores `value` under `key`, replacing what was there.
    pub async fn shared_put(
        &self,
        space: Space,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let upsert = client
            .prepare_cached(
                "INSERT INTO sijil_shared (space, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value, changed_at = now()",
            )
            .await
            .map_err(pg_err("prepare shared write"))?;
        client
            .execute(&upsert, &[&space.name(), &key, &value])
            .await
            .map_err(pg_err("write shared state"))?;
        Ok(())
    }

    /// Asks PostgreSQL to reclaim the dead row versions of the shared table now (after a
    /// forgotten customer's key row was overwritten), instead of whenever autovacuum runs.
    /// Best effort: the old version can still live in WAL and in base backups until they are
    /// recycled (see the threat model in the README).
    pub async fn shared_vacuum(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .batch_execute("VACUUM sijil_shared")
            .await
            .map_err(pg_err("vacuum shared state"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_keys_are_workspace_then_customer() {
        let (ws, c) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let key = customer_key(ws, c);
        assert_eq!(&key[..16], ws.as_bytes());
        assert_eq!(&key[16..], c.as_bytes());
        assert_ne!(key, customer_key(c, ws));
    }

    #[test]
    fn spaces_have_distinct_names() {
        let names = [
            Space::Tokens,
            Space::Mutations,
            Space::VaultKeys,
            Space::Settings,
        ]
        .map(Space::name);
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }
}
