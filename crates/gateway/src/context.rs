//! What a resolver sees: the shared handles (store, projections, command bus, limits) every
//! request uses, the caller ([`Principal`]) of the request or WebSocket connection, the
//! permission guard put on fields, and small helpers that turn store and projection failures
//! into typed API errors.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, Guard};
use sijil_domain::WorkspaceId;
use sijil_store::projections::{ProjectionError, Projections};
use sijil_store::{Store, StoreError};

use crate::auth::{Permission, Principal};
use crate::bus::{Actor, CommandBus};
use crate::error::ApiError;
use crate::limits::GatewayConfig;

/// Handles shared by every request.
pub struct Shared {
    pub store: Store,
    pub projections: Arc<Projections>,
    pub bus: CommandBus,
    pub config: GatewayConfig,
    pub telemetry: crate::telemetry::Telemetry,
    /// The vault sealing personal data; `None` when events are stored as plaintext.
    pub vault: Option<sijil_store::vault::Vault>,
    /// The shared tails of the workspaces' logs (`eventAppended`).
    pub tails: Arc<crate::log_tail::LogTails>,
    /// The shared feeds of the workspaces' case changes (`escalationChanged`).
    pub case_feeds: crate::case_feed::CaseFeeds,
}

/// The shared handles of the schema.
pub fn shared<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<Shared>> {
    ctx.data::<Arc<Shared>>()
        .map_err(|_| ApiError::internal("schema built without shared handles").extend())
}

/// The authenticated caller.
pub fn principal<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Principal> {
    ctx.data::<Principal>()
        .map_err(|_| ApiError::Unauthenticated.extend())
}

/// The caller's workspace, as a domain id.
pub fn workspace(ctx: &Context<'_>) -> async_graphql::Result<WorkspaceId> {
    let p = principal(ctx)?;
    WorkspaceId::new(p.workspace_id).map_err(|_| {
        ApiError::internal(format!("token {} has a non-v7 workspace", p.token_id)).extend()
    })
}

/// Refuses unless the caller holds `permission`.
pub fn require<'a>(
    ctx: &Context<'a>,
    permission: Permission,
) -> async_graphql::Result<&'a Principal> {
    let p = principal(ctx)?;
    if p.may(permission) {
        Ok(p)
    } else {
        Err(ApiError::Forbidden(describe(permission).to_owned()).extend())
    }
}

/// The actor recorded on events the caller causes.
pub fn actor(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    let p = principal(ctx)?;
    Ok(Actor {
        workspace_id: p.workspace_id,
        actor: p.actor(),
        on_behalf_of: None,
        correlation_id: None,
    })
}

/// What a permission lets a caller do, for FORBIDDEN messages.
pub fn describe(permission: Permission) -> &'static str {
    match permission {
        Permission::ReadCustomers => "read customers",
        Permission::WriteCustomers => "change customers",
        Permission::ReadCases => "read cases",
        Permission::WorkCases => "work cases",
        Permission::RecordInteractions => "record interactions",
        Permission::RecordFeedback => "record survey answers",
        Permission::ManageFollowUps => "manage follow-ups",
        Permission::ReadQueues => "read escalation queues",
        Permission::ReadMetrics => "read metrics",
        Permission::Recognise => "recognise agents",
        Permission::MergeCustomers => "merge customers",
        Permission::ManageAgents => "register agents",
        Permission::ReadEvents => "read raw events",
        Permission::ForgetCustomers => "forget customers",
        Permission::ManageTokens => "manage tokens",
    }
}

/// A field guard: the caller must hold the permission.
pub struct Need(pub Permission);

impl Guard for Need {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        require(ctx, self.0).map(|_| ())
    }
}

/// Maps a store failure: bad input is VALIDATION, anything else INTERNAL (logged, hidden).
pub fn store_error(err: StoreError) -> async_graphql::Error {
    match err {
        StoreError::Invalid(msg) => ApiError::validation(msg, "INVALID_INPUT").extend(),
        other => ApiError::internal(other).extend(),
    }
}

/// Maps a projection failure: bad cursors and queries are VALIDATION, the rest INTERNAL.
pub fn projection_error(err: ProjectionError) -> async_graphql::Error {
    match err {
        ProjectionError::InvalidCursor(msg) => {
            ApiError::validation(format!("invalid cursor: {msg}"), "INVALID_CURSOR").extend()
        }
        ProjectionError::InvalidQuery(msg) => ApiError::validation(msg, "INVALID_QUERY").extend(),
        other => ApiError::internal(other).extend(),
    }
}

/// Checks a requested page size against the configured cap (and 1..).
pub fn page_size(
    config: &GatewayConfig,
    requested: Option<i32>,
    default: usize,
) -> async_graphql::Result<usize> {
    match requested {
        None => Ok(default.min(config.max_page)),
        Some(n) if n < 0 => {
            Err(ApiError::validation("a page size cannot be negative", "PAGE_SIZE").extend())
        }
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > config.max_page {
                Err(ApiError::validation(
                    format!("a page holds at most {} items", config.max_page),
                    "PAGE_SIZE",
                )
                .extend())
            } else {
                Ok(n)
            }
        }
    }
}
