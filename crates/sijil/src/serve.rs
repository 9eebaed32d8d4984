//! `sijil serve`: opens (or creates) the store, fills it with demo data if asked, starts the
//! projections, the SLA checker and the GraphQL gateway, and serves until Ctrl-C or SIGTERM.
//!
//! Personal data is always sealed: the vault is unlocked with the configured master key, or
//! the one in the key file beside the data directory, which a store that never sealed
//! anything gets on its first start (see [`crate::keys`]); a sealed store without its key is
//! refused.
//!
//! On a new store (no token yet) it creates an admin token and prints its secret once. It
//! prints the address it actually listens on (`--listen 127.0.0.1:0` picks a free port) as the
//! line `sijil listening on http://ADDR/graphql`.
//!
//! Shutdown: the first signal stops accepting connections and lets requests in flight finish
//! (for at most [`DRAIN`]); every append is acknowledged only after its flush, so nothing
//! acknowledged can be lost; the store is flushed once more and closed before exit.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::serve::ListenerExt;
use sijil_domain::Timestamp;
use sijil_gateway::Gateway;
use sijil_store::projections::{sla, Projections};
use sijil_store::vault::Vault;
use sijil_store::Store;

use crate::commands::{create_token, now_ms};
use crate::config::{Common, ServeConfig};
use crate::demo;
use crate::store_dir::{self, Mode};

/// The demo's seed for `serve --demo`.
pub const DEMO_SEED: u64 = 7;

/// How long `serve` waits for the projections to catch up before listening anyway.
pub const CATCH_UP_LIMIT: Duration = Duration::from_secs(600);

/// How long requests in flight may take to finish after a shutdown signal.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Runs `sijil serve`.
pub fn run(common: &Common, config: ServeConfig) -> Result<()> {
    let store = store_dir::open_with_cache(&common.data, Mode::Create, Some(config.cache_bytes))?;
    let vault = crate::keys::unlock(&common.data, &store, common.master_key_file.as_ref())?;
    let runtime = crate::cluster::runtime()?;
    let mut workspace = config.workspace;
    // On PostgreSQL, --demo fills only an empty log: the demo is written to this node's
    // store and then sent to PostgreSQL when the node joins.
    let log_is_empty = match &common.postgres {
        Some(url) if config.demo => runtime.block_on(async {
            let log = crate::cluster::connect(url).await?;
            let head = log
                .head()
                .await
                .map_err(|e| anyhow::anyhow!("reading the log head: {e}"))?;
            log.close();
            Ok::<bool, anyhow::Error>(head == 0)
        })?,
        _ => true,
    };
    if config.demo {
        if store.head_position() == 0 && log_is_empty {
            let report = demo::run(&store, Some(&vault), config.demo_customers, DEMO_SEED, true)?;
            println!(
                "demo: {} customers, {} agents, {} events in {:.1} s (workspace {})",
                report.customers,
                report.agents,
                report.events,
                report.elapsed.as_secs_f64(),
                report.workspace
            );
            store_dir::mark(&common.data, &store)?;
            workspace = workspace.or(Some(report.workspace));
        } else {
            println!("demo: the log already holds events; --demo only fills an empty store");
        }
    }
    let result = runtime.block_on(serve(
        store.clone(),
        vault,
        config,
        workspace,
        common.postgres.clone(),
    ));
    // Tasks still holding the store (projection followers, the SLA checker) stop here.
    runtime.shutdown_timeout(Duration::from_secs(5));
    let head = store.head_position();
    store
        .db()
        .flush()
        .context("flushing the store before exit")?;
    store_dir::mark(&common.data, &store)?;
    drop(store);
    if result.is_ok() {
        println!("sijil stopped; the store is flushed and closed (head {head})");
    }
    result
}

/// The workspace of the first event in the log, if any.
fn first_workspace(store: &Store) -> Option<uuid::Uuid> {
    store
        .read_all_raw(1, 1, None)
        .ok()
        .and_then(|events| events.first().map(|e| e.workspace_id))
}

async fn serve(
    store: Store,
    vault: Vault,
    config: ServeConfig,
    workspace: Option<uuid::Uuid>,
    postgres: Option<String>,
) -> Result<()> {
    // On PostgreSQL: join the log before anything reads the local copy, and hold the copy
    // of what the log held at start before serving.
    let joined = match &postgres {
        Some(url) => {
            let tokens = sijil_gateway::auth::TokenStore::open(store.db())
                .context("opening the token store")?;
            let joined = crate::cluster::join(url, &store, &vault, &tokens).await?;
            tracing::info!(head = joined.head_at_join, "copying the PostgreSQL log");
            if !sijil_store::replica::copied(&store, joined.head_at_join, CATCH_UP_LIMIT).await {
                tracing::warn!("the local copy of the log is not caught up; serving anyway");
            }
            Some(joined)
        }
        None => None,
    };
    let projections = Projections::start_with_vault(store.clone(), Some(vault.clone()))
        .context("starting the projections")?;
    let checker = sla::spawn(
        store.clone(),
        projections.clone(),
        config.sla_interval,
        || Timestamp(now_ms()),
    );
    let projections_handle = Arc::new(projections.clone());
    let gateway = Gateway::with_vault(store.clone(), projections_handle, config.gateway, vault)
        .map_err(|e| anyhow::anyhow!("cannot start the gateway: {e} [{}]", e.code()))?;
    if let Some(joined) = &joined {
        let status = joined.replica.status();
        gateway.telemetry().gauge(
            "sijil_log_copy_lag_events",
            "Events committed in PostgreSQL that this node's local copy does not hold yet.",
            move || {
                let s = status.borrow();
                vec![(
                    String::new(),
                    s.upstream_head.saturating_sub(s.local_head) as f64,
                )]
            },
        );
    }
    let first_admin = match &joined {
        Some(joined) => crate::cluster::claims_first_admin(&joined.log).await?,
        None => gateway.tokens().is_empty(),
    };
    if first_admin {
        let workspace = workspace
            .or_else(|| first_workspace(&store))
            .unwrap_or_else(uuid::Uuid::now_v7);
        let (record, secret) = match &joined {
            Some(joined) => {
                let (record, secret, rows) = sijil_gateway::auth::TokenStore::mint(
                    workspace,
                    sijil_gateway::Role::Admin,
                    "first admin",
                    Vec::new(),
                    crate::commands::now_ms(),
                )
                .map_err(|e| anyhow::anyhow!("cannot create the first admin token: {e}"))?;
                sijil_gateway::cluster::put_token_rows(gateway.tokens(), &joined.log, &rows)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot store the first admin token: {e}"))?;
                (record, secret)
            }
            None => create_token(gateway.tokens(), workspace, "admin", "first admin", &[])?,
        };
        println!(
            "admin token for workspace {}: {secret}   (shown once; `sijil token create` makes more; id {})",
            record.workspace_id, record.id
        );
    }
    // Serve only once the read models hold what the log held at start, so the first query
    // sees the whole store (projections persist, so this is quick after the first start).
    let head = store.head_position();
    if head > 0 {
        tracing::info!(head, "catching the projections up with the log");
        if let Err(e) = projections.wait_for(head, CATCH_UP_LIMIT).await {
            tracing::warn!(error = %e, "projections are not caught up; serving anyway (see /readyz)");
        }
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    println!(
        "sijil listening on http://{address}/graphql (GraphiQL in a browser; WebSocket at /graphql/ws)"
    );
    std::io::stdout().flush().ok();
    gateway.set_ready(true);

    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let ready = gateway.clone();
    // Subscriptions write many small WebSocket messages: without TCP_NODELAY, Nagle's
    // algorithm holds a message back until the client acknowledges the previous one.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let server = axum::serve(listener, gateway.router()).with_graceful_shutdown(async move {
        let signal = shutdown_signal().await;
        tracing::info!(
            signal,
            "shutting down: no new connections, finishing requests in flight"
        );
        ready.set_ready(false);
        stopping_tx.send_replace(true);
    });
    let drained = async {
        if stopping.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        served = std::future::IntoFuture::into_future(server) => {
            served.context("serving HTTP")?;
        }
        () = drained => {
            tracing::warn!(seconds = DRAIN.as_secs(), "requests still open after the drain time; closing them");
        }
    }
    checker.abort();
    drop(gateway);
    drop(projections);
    if let Some(joined) = joined {
        drop(joined.replica);
        joined.log.close();
    }
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM and names it.
async fn shutdown_signal() -> &'static str {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => "SIGINT",
        () = terminate => "SIGTERM",
    }
}
