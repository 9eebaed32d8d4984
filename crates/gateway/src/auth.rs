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
    // A batch: a token's rows land together (rare; see clippy.toml).
    #[allow(clippy::disallowed_methods)]
    pub fn create(
        &self,
        workspace_id: Uuid,
        role: Role,
        name: &str,
        scopes: Vec<Permission>,
        now_ms: i64,
    ) -> Result<(TokenRecord, String), AuthError> {
        let (record, secret, rows) = Self::mint(workspace_id, role, name, scopes, now_ms)?;
        let mut batch = sled::Batch::default();
        for (k, v) in rows {
            batch.insert(k, v);
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok((record, secret))
    }

    /// Makes the token tree hold exactly `rows` (a copy of tokens kept elsewhere, as
    /// [`mint`](Self::mint) and [`revocation`](Self::revocation) make them). Returns whether
    /// anything changed.
    // A batch: the mirrored token rows change together (rare; see clippy.toml).
    #[allow(clippy::disallowed_methods)]
    pub fn mirror(&self, rows: &[TokenRow]) -> Result<bool, AuthError> {
        let wanted: std::collections::HashMap<&[u8], &[u8]> = rows
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        let mut batch = sled::Batch::default();
        let mut changed = false;
        for item in self.tree.iter() {
            let (k, _) = item?;
            if !wanted.contains_key(k.as_ref()) {
                batch.remove(k);
                changed = true;
            }
        }
        for (k, v) in rows {
            if self.tree.get(k)?.as_deref() != Some(v.as_slice()) {
                batch.insert(k.as_slice(), v.as_slice());
                changed = true;
            }
        }
        if changed {
            self.tree.apply_batch(batch)?;
            self.tree.flush()?;
        }
        Ok(changed)
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
