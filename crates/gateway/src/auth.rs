//! Who is calling: bearer API tokens, their roles and the permissions each role grants.
//!
//! A token is shown once when it is created (`sjl_` + 64 hex characters of randomness) and
//! stored only as its SHA-256 hash, in its own sled tree. Each token is bound to one workspace
//! and one role; an `app` token carries an explicit list of permissions instead of a role's.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A role a token is bound to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, async_graphql::Enum)]
pub enum Role {
    /// Reads customers and cases, records interactions, works cases.
    Agent,
    /// An agent who also watches queues and metrics, recognises agents and merges customers.
    Supervisor,
    /// Reads everything, including raw events and as-of state; changes nothing.
    Auditor,
    /// A frontend's service account, limited to the permissions it was given.
    App,
    /// Everything, including tokens and forgetting customers.
    Admin,
}

impl Role {
    /// Parses a role name as typed on the command line.
    pub fn parse(text: &str) -> Option<Role> {
        Some(match text.to_ascii_lowercase().as_str() {
            "agent" => Role::Agent,
            "supervisor" => Role::Supervisor,
            "auditor" => Role::Auditor,
            "app" => Role::App,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Auditor => "auditor",
            Role::App => "app",
            Role::Admin => "admin",
        }
    }

    /// What the role may do (an `app` token's own list replaces this).
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Agent => &[
                ReadCustomers,
                WriteCustomers,
                ReadCases,
                WorkCases,
                RecordInteractions,
                RecordFeedback,
                ManageFollowUps,
            ],
            Role::Supervisor => &[
                ReadCustomers,
                WriteCustomers,
                ReadCases,
                WorkCases,
                RecordInteractions,
                RecordFeedback,
                ManageFollowUps,
                ReadQueues,
                ReadMetrics,
                Recognise,
                MergeCustomers,
                ManageAgents,
            ],
            Role::Auditor => &[
                ReadCustomers,
                ReadCases,
                ReadQueues,
                ReadMetrics,
                ReadEvents,
            ],
            Role::App => &[],
            Role::Admin => Permission::ALL,
        }
    }
}

/// One thing a caller may do. Guards on fields and mutations name these.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, async_graphql::Enum)]
pub enum Permission {
    ReadCustomers,
    WriteCustomers,
    ReadCases,
    WorkCases,
    RecordInteractions,
    RecordFeedback,
    ManageFollowUps,
    ReadQueues,
    ReadMetrics,
    Recognise,
    MergeCustomers,
    ManageAgents,
    ReadEvents,
    ForgetCustomers,
    ManageTokens,
}

impl Permission {
    /// Every permission.
    pub const ALL: &'static [Permission] = &[
        Permission::ReadCustomers,
        Permission::WriteCustomers,
        Permission::ReadCases,
        Permission::WorkCases,
        Permission::RecordInteractions,
        Permission::RecordFeedback,
        Permission::ManageFollowUps,
        Permission::ReadQueues,
        Permission::ReadMetrics,
        Permission::Recognise,
        Permission::MergeCustomers,
        Permission::ManageAgents,
        Permission::ReadEvents,
        Permission::ForgetCustomers,
        Permission::ManageTokens,
    ];

    /// Parses a permission name in SCREAMING_SNAKE_CASE or snake_case.
    pub fn parse(text: &str) -> Option<Permission> {
        let wanted: String = text.chars().filter(|c| *c != '_').collect();
        Permission::ALL
            .iter()
            .copied()
            .find(|p| format!("{p:?}").eq_ignore_ascii_case(&wanted))
    }
}

/// The authenticated caller of one request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Principal {
    pub token_id: Uuid,
    pub workspace_id: Uuid,
    pub role: Role,
    pub name: String,
    /// The permissions in force (the role's, or an app token's own list).
    pub permissions: Vec<Permission>,
}

impl Principal {
    /// Whether the caller may do `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// The actor recorded on every event this caller causes.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token_id)
    }
}

/// A stored token (never the secret itself).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub role: Role,
    pub name: String,
    /// For `app` tokens: the permissions granted; ignored for other roles.
    pub scopes: Vec<Permission>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl TokenRecord {
    fn principal(&self) -> Principal {
        let permissions = if self.role == Role::App {
            self.scopes.clone()
        } else {
            self.role.permissions().to_vec()
        };
        Principal {
            token_id: self.id,
            workspace_id: self.workspace_id,
            role: self.role,
            name: self.name.clone(),
            permissions,
        }
    }
}

/// Failures of the token store.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("unknown or revoked token")]
    Invalid,
    #[error("token store: {0}")]
    Storage(#[from] sled::Error),
    #[error("token record does not decode: {0}")]
    Corrupt(String),
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error("no token with id {0}")]
    NotFound(Uuid),
}

/// Tokens by hash (`h` ‖ sha256) → record, and by id (`i` ‖ uuid) → hash, in one sled tree.
#[derive(Clone)]
pub struct TokenStore {
    tree: sled::Tree,
}

/// One stored row of the token tree: key and value.
pub type TokenRow = (Vec<u8>, Vec<u8>);

const BY_HASH: u8 = b'h';
const BY_ID: u8 = b'i';

fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn key(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

impl TokenStore {
    /// Opens the token tree of a sled database.
    pub fn open(db: &sled::Db) -> Result<TokenStore, AuthError> {
        Ok(TokenStore {
            tree: db.open_tree("gateway/tokens")?,
        })
    }

    /// A new token's record, its secret (never stored) and the rows that store it, without
    /// writing them (for [`create`](Self::create), or a shared table on PostgreSQL).
    pub fn mint(
        workspace_id: Uuid,
        role: Role,
        name: &str,
        scopes: Vec<Permission>,
        now_ms: i64,
    ) -> Result<(TokenRecord, String, Vec<TokenRow>), AuthError> {
        let mut secret_bytes = [0u8; 32];
        getrandom::fill(&mut secret_bytes).map_err(|e| AuthError::Random(e.to_string()))?;
        let secret = format!("sjl_{}", hex::encode(secret_bytes));
        let record = TokenRecord {
            id: Uuid::now_v7(),
            workspace_id,
            role,
            name: name.chars().take(100).collect(),
            scopes,
            created_at: now_ms,
            revoked_at: None,
        };
        let hash = hash_secret(&secret);
        let bytes =
            rmp_serde::to_vec_named(&record).map_err(|e| AuthError::Corrupt(e.to_string()))?;
        let rows = vec![
            (key(BY_HASH, &hash), bytes),
            (key(BY_ID, record.id.as_bytes()), hash.to_vec()),
        ];
        Ok((record, secret, rows))
    }

    /// Creates a token and returns its record and the secret, which is never stored.
    pub fn create(
        &self,
        workspace_id: Uuid,
        role: Role,
        name: &str,
        scopes: Vec<Permission>,
        now_ms: i64,
    ) -> Result<(TokenRecord, String), AuthError> {
        let (record, secret, rows) = Self::mint(workspace_id, role, name, scopes, now_ms)?;
        self.write_rows(&rows, &[])?;
        self.tree.flush()?;
        Ok((record, secret))
    }

    /// Makes the token tree hold exactly `rows` (a copy of tokens kept elsewhere, as
    /// [`mint`](Self::mint) and [`revocation`](Self::revocation) make them). Returns whether
    /// anything changed.
    pub fn mirror(&self, rows: &[TokenRow]) -> Result<bool, AuthError> {
        let wanted: std::collections::HashMap<&[u8], &[u8]> = rows
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        let mut gone = Vec::new();
        for item in self.tree.iter() {
            let (k, _) = item?;
            if !wanted.contains_key(k.as_ref()) {
                gone.push(k.to_vec());
            }
        }
        let mut set = Vec::new();
        for (k, v) in rows {
            if self.tree.get(k)?.as_deref() != Some(v.as_slice()) {
                set.push((k.clone(), v.clone()));
            }
        }
        let changed = !gone.is_empty() || !set.is_empty();
        if changed {
            self.write_rows(&set, &gone)?;
            self.tree.flush()?;
        }
        Ok(changed)
    }

    /// Sets `set` and removes `gone` one key at a time, never as a sled batch (see
    /// clippy.toml), in an order that keeps every state in between harmless: the records
    /// that make a token usable and listed (`BY_HASH`) are removed first and set last, the
    /// id rows (which only point at a record) set first and removed last. sled keeps a
    /// prefix of its writes, so a stop in between leaves at most id rows that name no
    /// record, which no lookup finds, or a record not yet changed.
    fn write_rows(&self, set: &[TokenRow], gone: &[Vec<u8>]) -> Result<(), AuthError> {
        let record = |k: &[u8]| k.first() == Some(&BY_HASH);
        for k in gone.iter().filter(|k| record(k)) {
            self.tree.remove(k.as_slice())?;
        }
        for records in [false, true] {
            for (k, v) in set.iter().filter(|(k, _)| record(k) == records) {
                self.tree.insert(k.as_slice(), v.as_slice())?;
            }
        }
        for k in gone.iter().filter(|k| !record(k)) {
            self.tree.remove(k.as_slice())?;
        }
        Ok(())
    }

    /// The caller behind a secret, if it is a live token.
    pub fn authenticate(&self, secret: &str) -> Result<Principal, AuthError> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(AuthError::Missing);
        }
        let Some(bytes) = self.tree.get(key(BY_HASH, &hash_secret(secret)))? else {
            return Err(AuthError::Invalid);
        };
        let record = decode(&bytes)?;
        if record.revoked_at.is_some() {
            return Err(AuthError::Invalid);
        }
        Ok(record.principal())
    }

    /// Every token (revoked ones included), oldest first.
    pub fn list(&self) -> Result<Vec<TokenRecord>, AuthError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([BY_HASH]) {
            let (_, v) = item?;
            out.push(decode(&v)?);
        }
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    /// The token `id` as revoked at `now_ms`, and the row to write for it (`None` when it
    /// was already revoked), without writing it.
    pub fn revocation(
        &self,
        id: Uuid,
        now_ms: i64,
    ) -> Result<(TokenRecord, Option<TokenRow>), AuthError> {
        let Some(hash) = self.tree.get(key(BY_ID, id.as_bytes()))? else {
            return Err(AuthError::NotFound(id));
        };
        let hash_key = key(BY_HASH, &hash);
        let Some(bytes) = self.tree.get(&hash_key)? else {
            return Err(AuthError::NotFound(id));
        };
        let mut record = decode(&bytes)?;
        if record.revoked_at.is_some() {
            return Ok((record, None));
        }
        record.revoked_at = Some(now_ms);
        let bytes =
            rmp_serde::to_vec_named(&record).map_err(|e| AuthError::Corrupt(e.to_string()))?;
        Ok((record, Some((hash_key, bytes))))
    }

    /// Revokes a token; revoking twice is harmless.
    pub fn revoke(&self, id: Uuid, now_ms: i64) -> Result<TokenRecord, AuthError> {
        let (record, row) = self.revocation(id, now_ms)?;
        if let Some((k, v)) = row {
            self.tree.insert(k, v)?;
            self.tree.flush()?;
        }
        Ok(record)
    }

    /// Whether any token exists (a new store gets an admin token at first start).
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

fn decode(bytes: &[u8]) -> Result<TokenRecord, AuthError> {
    rmp_serde::from_slice(bytes).map_err(|e| AuthError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> TokenStore {
        let db = sled::Config::new().temporary(true).open().expect("sled");
        TokenStore::open(&db).expect("tokens")
    }

    #[test]
    fn a_token_whose_record_was_not_written_yet_is_unknown_and_a_mirror_completes_it() {
        // Given a token's id row alone in the tree (a stop between its two writes)
        let tokens = store();
        let ws = Uuid::now_v7();
        let (record, secret, rows) =
            TokenStore::mint(ws, Role::Agent, "agent", Vec::new(), 1).expect("mint");
        let (id_key, id_value) = rows.iter().find(|(k, _)| k[0] == BY_ID).expect("id row");
        tokens
            .tree
            .insert(id_key, id_value.as_slice())
            .expect("insert");
        // Then no lookup finds it
        assert!(tokens.list().expect("list").is_empty());
        assert!(matches!(
            tokens.authenticate(&secret),
            Err(AuthError::Invalid)
        ));
        // When the rows are mirrored, the token is whole and usable
        assert!(tokens.mirror(&rows).expect("mirror"));
        assert_eq!(tokens.list().expect("list"), vec![record.clone()]);
        assert!(tokens.authenticate(&secret).is_ok());
        // And mirroring none removes both rows
        assert!(tokens.mirror(&[]).expect("mirror"));
        assert!(tokens.list().expect("list").is_empty());
        assert_eq!(tokens.tree.len(), 0);
    }

    #[test]
    fn a_created_token_authenticates_until_revoked() {
        let tokens = store();
        let (record, secret) = tokens
            .create(Uuid::now_v7(), Role::Supervisor, "s", Vec::new(), 5)
            .expect("create");
        assert_eq!(tokens.tree.len(), 2);
        assert_eq!(
            tokens.authenticate(&secret).expect("auth").role,
            Role::Supervisor
        );
        tokens.revoke(record.id, 6).expect("revoke");
        assert!(matches!(
            tokens.authenticate(&secret),
            Err(AuthError::Invalid)
        ));
    }
}
