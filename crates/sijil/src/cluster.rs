//! `--store postgres://…`: the log on PostgreSQL, shared by any number of `serve` nodes.
//!
//! A node keeps, in its `--data` directory, a local copy of the log next to its read models
//! and vault ([`sijil_store::replica`]); appends go to PostgreSQL. What is not in the log is
//! shared through PostgreSQL too ([`sijil_gateway::cluster`]): tokens, mutation records,
//! customer data keys (sealed under the master key every node must share) and the check that
//! a node holds that key. This module joins a node to the log at `serve` start, and runs
//! `token` and `verify` against PostgreSQL.

use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use sijil_gateway::auth::TokenStore;
use sijil_gateway::cluster::{self as shared, KeyFollower, KeyShare};
use sijil_store::pg::shared::Space;
use sijil_store::pg::PgLog;
use sijil_store::replica::{self, Replica, ReplicaError};
use sijil_store::vault::{KeyBundle, Vault};
use sijil_store::Store;
use tokio::runtime::Runtime;

use crate::commands::now_ms;

/// The settings row that elects the node making the first admin token.
const FIRST_ADMIN: &[u8] = b"first-admin-token";

/// The async runtime every PostgreSQL command runs on.
pub fn runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sijil")
        .build()
        .context("starting the async runtime")
}

/// Connects to the PostgreSQL log (migrating its schema). The connection string is never
/// printed: it may hold a password.
pub async fn connect(url: &str) -> Result<PgLog> {
    PgLog::connect(url).await.map_err(|e| {
        anyhow!(
            "cannot use the PostgreSQL log given by --store: {e} [{}]",
            e.code()
        )
    })
}

/// A node that joined the log: the follower keeping its local copy, and the log.
pub struct Joined {
    pub log: PgLog,
    pub replica: Replica,
    /// The PostgreSQL head when the node joined; `serve` listens once the copy holds it.
    pub head_at_join: u64,
}

/// Joins `store` (a node's local copy) to the log at `url`: checks the master key against the
/// cluster's, sends a local tail the log lacks (what `serve --demo` wrote into an empty
/// database, or an upload interrupted earlier) together with its keys, starts the follower
/// and mirrors the shared tokens.
pub async fn join(url: &str, store: &Store, vault: &Vault, tokens: &TokenStore) -> Result<Joined> {
    let log = connect(url).await?;
    shared::check_master_key(&log, vault)
        .await
        .map_err(|e| anyhow!("{e} [{}]", e.code()))?;
    let upstream = log
        .head()
        .await
        .map_err(|e| anyhow!("reading the log head: {e}"))?;
    if store.head_position() > upstream {
        let started = Instant::now();
        let sent = replica::upload(store, &log).await.map_err(|e| {
            anyhow!(
                "cannot send this node's events to PostgreSQL: {e} [{}]",
                e.code()
            )
        })?;
        let keys = KeyShare::new(log.clone(), vault.clone())
            .publish_all()
            .await
            .map_err(|e| anyhow!("cannot share this node's keys: {e} [{}]", e.code()))?;
        println!(
            "sent {sent} events and {keys} customer keys of this node's store to PostgreSQL in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let head_at_join = log
        .head()
        .await
        .map_err(|e| anyhow!("reading the log head: {e}"))?;
    let hook = KeyFollower::new(store.clone(), log.clone(), vault.clone());
    let replica = Replica::start(store.clone(), log.clone(), Some(hook))
        .await
        .map_err(|e: ReplicaError| anyhow!("{e} [{}]", e.code()))?;
    shared::sync_tokens(tokens, &log)
        .await
        .map_err(|e| anyhow!("reading the shared tokens: {e} [{}]", e.code()))?;
    Ok(Joined {
        log,
        replica,
        head_at_join,
    })
}

/// Whether this node should make the cluster's first admin token: no token exists and no
/// other node has claimed it.
pub async fn claims_first_admin(log: &PgLog) -> Result<bool> {
    let any = !log
        .shared_scan(Space::Tokens)
        .await
        .map_err(|e| anyhow!("reading the shared tokens: {e}"))?
        .is_empty();
    if any {
        return Ok(false);
    }
    let claim = uuid::Uuid::now_v7();
    Ok(log
        .shared_insert_new(Space::Settings, FIRST_ADMIN, claim.as_bytes())
        .await
        .map_err(|e| anyhow!("claiming the first admin token: {e}"))?
        .is_none())
}

/// A throw-away token tree holding a copy of the shared tokens (for listing and revoking
/// without a data directory).
async fn shared_tokens(log: &PgLog) -> Result<(sled::Db, TokenStore)> {
    let db = sled::Config::new()
        .temporary(true)
        .open()
        .context("opening a scratch token tree")?;
    let tokens = TokenStore::open(&db).context("opening the token tree")?;
    shared::sync_tokens(&tokens, log)
        .await
        .map_err(|e| anyhow!("reading the shared tokens: {e} [{}]", e.code()))?;
    Ok((db, tokens))
}

/// `sijil token create` on PostgreSQL: the token is stored in the shared table, so every node
/// accepts it within a second.
pub fn create_token(
    url: &str,
    request: crate::commands::TokenRequest,
) -> Result<(sijil_gateway::TokenRecord, String)> {
    let rt = runtime()?;
    rt.block_on(async {
        let log = connect(url).await?;
        let (_db, tokens) = shared_tokens(&log).await?;
        let (record, secret, rows) = TokenStore::mint(
            request.workspace,
            request.role,
            &request.name,
            request.scopes,
            now_ms(),
        )
        .map_err(|e| anyhow!("cannot create the token: {e}"))?;
        shared::put_token_rows(&tokens, &log, &rows)
            .await
            .map_err(|e| anyhow!("cannot store the token: {e} [{}]", e.code()))?;
        Ok((record, secret))
    })
}

/// Every shared token (revoked ones included), oldest first.
pub fn list_tokens(url: &str) -> Result<Vec<sijil_gateway::TokenRecord>> {
    let rt = runtime()?;
    rt.block_on(async {
        let log = connect(url).await?;
        let (_db, tokens) = shared_tokens(&log).await?;
        tokens.list().map_err(|e| anyhow!("listing tokens: {e}"))
    })
}

/// Revokes a shared token; every node refuses it within a second.
pub fn revoke_token(url: &str, id: uuid::Uuid) -> Result<sijil_gateway::TokenRecord> {
    let rt = runtime()?;
    rt.block_on(async {
        let log = connect(url).await?;
        let (_db, tokens) = shared_tokens(&log).await?;
        let (record, row) = tokens
            .revocation(id, now_ms())
            .map_err(|e| anyhow!("cannot revoke token {id}: {e}"))?;
        if let Some(row) = row {
            shared::put_token_rows(&tokens, &log, &[row])
                .await
                .map_err(|e| anyhow!("cannot store the revocation: {e} [{}]", e.code()))?;
        }
        Ok(record)
    })
}

/// `sijil verify` on PostgreSQL: the log's positions, versions and hash chains in one
/// snapshot. Returns the first problem as `(position, what)`.
pub fn verify_log(url: &str) -> Result<(Option<(u64, String)>, u64)> {
    let rt = runtime()?;
    rt.block_on(async {
        let log = connect(url).await?;
        let report = log
            .verify()
            .await
            .map_err(|e| anyhow!("verifying the PostgreSQL log: {e} [{}]", e.code()))?;
        let problem = report
            .problem
            .map(|p| (p.position, format!("{:?}: {}", p.kind, p.detail)));
        Ok((problem, report.events_checked))
    })
}

/// Whether the local copy in `store` is a prefix of the PostgreSQL log; the difference when
/// it is not.
pub fn compare_copy(url: &str, store: &Store) -> Result<Option<String>> {
    let rt = runtime()?;
    rt.block_on(async {
        let log = connect(url).await?;
        let upstream = log
            .head()
            .await
            .map_err(|e| anyhow!("reading the log head: {e}"))?;
        match replica::check_copy(store, &log, upstream).await {
            Ok(()) if store.head_position() > upstream => Ok(Some(format!(
                "the local copy holds positions {}..={} that the PostgreSQL log does not",
                upstream + 1,
                store.head_position()
            ))),
            Ok(()) => Ok(None),
            Err(ReplicaError::Diverged { position, detail }) => Ok(Some(format!(
                "the local copy differs from the PostgreSQL log at position {position}: {detail}"
            ))),
            Err(e) => Err(anyhow!("comparing the local copy: {e} [{}]", e.code())),
        }
    })
}

/// `sijil export --store postgres://…`: the PostgreSQL log as `export` writes a sled one;
/// with `--keys`, every shared customer key, sealed under the master key.
pub fn export(
    url: &str,
    common: &crate::config::Common,
    args: &crate::cli::ExportArgs,
) -> Result<()> {
    let rt = runtime()?;
    let log = rt.block_on(connect(url))?;
    let bundle = match &args.keys {
        Some(path) => {
            let (master, source) =
                crate::keys::required(&common.data, common.master_key_file.as_ref())?;
            let rows = rt
                .block_on(log.shared_scan(Space::VaultKeys))
                .map_err(|e| anyhow!("reading the shared keys: {e}"))?;
            let mut bundle = KeyBundle::default();
            for (_, sealed) in rows {
                bundle.merge(KeyBundle::open(&master, &sealed).map_err(|e| {
                    anyhow!(
                        "a shared key does not open with the master key from {source}: {e} [{}]",
                        e.code()
                    )
                })?);
            }
            let bytes = bundle
                .seal(&master)
                .map_err(|e| anyhow!("cannot seal the key bundle: {e} [{}]", e.code()))?;
            Some((path, bundle, bytes))
        }
        None => None,
    };
    let head = rt
        .block_on(log.head())
        .map_err(|e| anyhow!("reading the log head: {e}"))?;
    let written =
        crate::commands::write_export(args.format, args.out.as_deref(), args.from, head, |next| {
            rt.block_on(log.read_all_raw(next, head, EXPORT_CHUNK))
                .map_err(|e| anyhow!("reading the PostgreSQL log at position {next}: {e}"))
        })?;
    crate::commands::report_export(args.out.as_deref(), args.from, written);
    if let Some((path, bundle, bytes)) = bundle {
        crate::commands::write_bundle(path, &bundle, &bytes)?;
    }
    Ok(())
}

/// Events per read or write of `export` and `import` on PostgreSQL.
const EXPORT_CHUNK: usize = 5_000;

/// `sijil import --store postgres://…`: shares the bundle's keys (so every node can read the
/// imported personal data), then writes the file's events as they are, chunk by chunk, each
/// chunk checked whole and written in one transaction (a stop leaves a valid prefix; running
/// it again finishes it).
pub fn import(
    url: &str,
    file: &std::path::Path,
    keys: Option<(KeyBundle, sijil_store::vault::MasterKey)>,
) -> Result<()> {
    let rt = runtime()?;
    let log = rt.block_on(connect(url))?;
    if let Some((bundle, master)) = keys {
        let (mut added, mut held) = (0, 0);
        for one in bundle.split() {
            let Some((ws, customer)) = one.customers().first().copied() else {
                continue;
            };
            let sealed = one
                .seal(&master)
                .map_err(|e| anyhow!("cannot seal a key: {e} [{}]", e.code()))?;
            let key = sijil_store::pg::shared::customer_key(ws, customer);
            match rt
                .block_on(log.shared_insert_new(Space::VaultKeys, &key, &sealed))
                .map_err(|e| anyhow!("sharing the keys: {e}"))?
            {
                None => added += 1,
                Some(_) => held += 1,
            }
        }
        println!("shared keys: {added} added, {held} already shared");
    }
    let before = rt
        .block_on(log.head())
        .map_err(|e| anyhow!("reading the log head: {e}"))?;
    let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
    let mut written = 0u64;
    let mut seen = 0u64;
    let mut flush = |chunk: &mut Vec<sijil_store::RecordedEvent>| -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        written += rt
            .block_on(log.import_events(chunk))
            .map_err(|e| anyhow!("import stopped: {e} [{}]", e.code()))?;
        chunk.clear();
        Ok(())
    };
    for event in crate::logfile::LogReader::open(file)? {
        chunk.push(event.with_context(|| format!("reading {}", file.display()))?);
        seen += 1;
        if chunk.len() >= EXPORT_CHUNK {
            flush(&mut chunk)?;
        }
    }
    flush(&mut chunk)?;
    let head = rt
        .block_on(log.head())
        .map_err(|e| anyhow!("reading the log head: {e}"))?;
    println!(
        "imported {written} new events into PostgreSQL; {} of {seen} were already there; head {before} -> {head}",
        seen - written
    );
    Ok(())
}
