//! [`Gateway`]: the one value the `sijil` binary builds. It ties the store, the running
//! projections, the token store, the schema, the limits and the metrics together and hands out
//! the axum router of the whole HTTP surface.
//!
//! [`Gateway::with_vault`] is the production form: personal data is sealed with each
//! customer's key before it is written and opened when read, and a forget destroys the key.
//! [`Gateway::new`] stores plaintext (tests, tools).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sijil_store::projections::{ProjectionState, Projections};
use sijil_store::vault::Vault;
use sijil_store::Store;

use crate::auth::{AuthError, TokenStore};
use crate::bus::{BusError, CommandBus};
use crate::case_feed::CaseFeeds;
use crate::context::Shared;
use crate::executor::ServedSchema;
use crate::limits::{GatewayConfig, RateLimiter};
use crate::log_tail::LogTails;
use crate::schema;
use crate::server::{self, HttpState};
use crate::subscription_limits::SubscriptionLimits;
use crate::telemetry::Telemetry;

/// Why a gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("token store: {0}")]
    Tokens(#[from] AuthError),
    #[error("command bus: {0}")]
    Bus(#[from] BusError),
}

impl GatewayError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::Tokens(_) => "TOKEN_STORE",
            GatewayError::Bus(_) => "COMMAND_BUS",
        }
    }
}

/// The GraphQL gateway of one store. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    schema: ServedSchema,
    tokens: TokenStore,
    telemetry: Telemetry,
    limiter: Arc<RateLimiter>,
    config: GatewayConfig,
    ready: Arc<AtomicBool>,
    shared: Arc<Shared>,
    /// Mirrors the shared tokens when the store follows a PostgreSQL log.
    token_sync: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = &self.token_sync {
            task.abort();
        }
    }
}

impl Gateway {
    /// A gateway over `store` and its running `projections` that stores personal data as
    /// plaintext.
    pub fn new(
        store: Store,
        projections: Arc<Projections>,
        config: GatewayConfig,
    ) -> Result<Gateway, GatewayError> {
        Gateway::build(store, projections, config, None)
    }

    /// A gateway that seals personal data with `vault` (unlocked over `store`'s database).
    /// First finishes any forget a crash interrupted (a `CustomerForgotten` event whose
    /// customer still has a key), so no erased customer is ever served readable.
    pub fn with_vault(
        store: Store,
        projections: Arc<Projections>,
        config: GatewayConfig,
        vault: Vault,
    ) -> Result<Gateway, GatewayError> {
        let repaired = crate::shredding::repair(&vault, &store)?;
        if repaired > 0 {
            tracing::warn!(repaired, "finished interrupted customer erasures");
        }
        Gateway::build(store, projections, config, Some(vault))
    }

    fn build(
        store: Store,
        projections: Arc<Projections>,
        config: GatewayConfig,
        vault: Option<Vault>,
    ) -> Result<Gateway, GatewayError> {
        let tokens = TokenStore::open(store.db())?;
        let bus = CommandBus::with_vault(store.clone(), vault.clone())?;
        let telemetry = Telemetry::default();
        let shared = Arc::new(Shared {
            store: store.clone(),
            projections: Arc::clone(&projections),
            bus,
            config: config.clone(),
            telemetry: telemetry.clone(),
            vault,
            tails: Arc::new(LogTails::default()),
            case_feeds: CaseFeeds::default(),
        });
        let limiter = Arc::new(RateLimiter::new(config.rate_per_second, config.rate_burst));
        let subscriptions = SubscriptionLimits::new(
            Arc::clone(&limiter),
            config.max_subscriptions_per_connection,
            config.max_subscriptions_per_token,
        );
        let schema = ServedSchema::new(
            schema::build(Arc::clone(&shared), &config),
            Arc::clone(&subscriptions),
        );
        register_gauges(&telemetry, &store, &projections);
        telemetry.gauge(
            "sijil_subscriptions_active",
            "GraphQL subscriptions running now (all connections).",
            move || vec![(String::new(), subscriptions.active() as f64)],
        );
        let tails = Arc::clone(&shared.tails);
        telemetry.gauge(
            "sijil_log_tails_running",
            "Shared workspace log tails running now (one per workspace with eventAppended subscribers).",
            move || vec![(String::new(), tails.running() as f64)],
        );
        let token_sync = store
            .upstream()
            .map(|log| crate::cluster::spawn_token_sync(tokens.clone(), log.clone()));
        Ok(Gateway {
            inner: Arc::new(Inner {
                token_sync,
                schema,
                tokens,
                telemetry,
                limiter,
                config,
                ready: Arc::new(AtomicBool::new(false)),
                shared,
            }),
        })
    }

    /// The API tokens.
    pub fn tokens(&self) -> &TokenStore {
        &self.inner.tokens
    }

    /// The executable schema as the server runs it (for in-process use and tests).
    pub fn schema(&self) -> &ServedSchema {
        &self.inner.schema
    }

    /// The server's metrics.
    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// The configuration in force.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    /// Says whether `/readyz` may answer ready (it also requires no projection to have
    /// stopped on an error).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Release);
    }

    /// The whole HTTP surface.
    pub fn router(&self) -> axum::Router {
        let flag = Arc::clone(&self.inner.ready);
        let projections = Arc::clone(&self.inner.shared.projections);
        server::router(HttpState {
            schema: self.inner.schema.clone(),
            tokens: self.inner.tokens.clone(),
            telemetry: self.inner.telemetry.clone(),
            limiter: Arc::clone(&self.inner.limiter),
            config: self.inner.config.clone(),
            shared: Arc::clone(&self.inner.shared),
            queries: Arc::new(crate::query_cache::QueryCache::new()),
            ready: Arc::new(move || {
                flag.load(Ordering::Acquire)
                    && projections
                        .status()
                        .iter()
                        .all(|s| !matches!(s.state, ProjectionState::Failed { .. }))
            }),
        })
    }
}

fn register_gauges(telemetry: &Telemetry, store: &Store, projections: &Arc<Projections>) {
    let head_store = store.clone();
    telemetry.gauge(
        "sijil_log_head_position",
        "The last durable position of the event log.",
        move || vec![(String::new(), head_store.head_position() as f64)],
    );
    let applied = Arc::clone(projections);
    telemetry.gauge(
        "sijil_projection_applied_position",
        "The last log position each projection has applied.",
        move || {
            applied
                .status()
                .iter()
                .map(|s| {
                    (
                        format!("projection=\"{}\"", s.name),
                        s.applied_position as f64,
                    )
                })
                .collect()
        },
    );
    let lag = Arc::clone(projections);
    let lag_store = store.clone();
    telemetry.gauge(
        "sijil_projection_lag_events",
        "Events appended but not yet applied, per projection.",
        move || {
            let head = lag_store.head_position();
            lag.status()
                .iter()
                .map(|s| {
                    (
                        format!("projection=\"{}\"", s.name),
                        head.saturating_sub(s.applied_position) as f64,
                    )
                })
                .collect()
        },
    );
}
