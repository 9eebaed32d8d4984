//! Mutations, one per domain command, grouped by area. Every mutation follows the same path
//! ([`Write`]): check the permission, stamp the server's clock, mint ids (or recall the ones an
//! earlier try with the same `clientMutationId` minted), run the command through the
//! [`CommandBus`](crate::bus::CommandBus) with the optional `expectedVersion`, then wait
//! (bounded) until the projections have applied the write, so the object read back reflects it.

pub mod case;
pub mod customer;
pub mod feedback;

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions};
use serde::Serialize;
use sijil_domain as d;
use sijil_domain::Aggregate;
use uuid::Uuid;

use crate::auth::Permission;
use crate::bus::{Actor, Outcome, Retry};
use crate::context::{actor, require, shared, workspace, Shared};
use crate::error::ApiError;
use crate::time::now;

/// The longest `clientMutationId` accepted.
const MAX_CLIENT_MUTATION_ID: usize = 128;

/// One mutation in progress.
pub struct Write<'a> {
    pub shared: &'a Arc<Shared>,
    pub actor: Actor,
    pub ws: d::WorkspaceId,
    /// The server's clock when the request arrived: the command's occurrence time.
    pub now: d::Timestamp,
    client_mutation_id: Option<String>,
    fingerprint: Vec<u8>,
}

impl<'a> Write<'a> {
    /// Starts mutation `name`: checks `permission` and fingerprints the client's input.
    pub fn start(
        ctx: &Context<'a>,
        permission: Permission,
        name: &str,
        client_mutation_id: Option<&str>,
        expected_version: Option<u64>,
        input: &impl Serialize,
    ) -> async_graphql::Result<Write<'a>> {
        require(ctx, permission)?;
        if let Some(id) = client_mutation_id {
            if id.is_empty() || id.len() > MAX_CLIENT_MUTATION_ID {
                return Err(ApiError::Validation {
                    message: format!("a clientMutationId is 1 to {MAX_CLIENT_MUTATION_ID} bytes"),
                    reason: "INVALID_CLIENT_MUTATION_ID",
                    field: Some("clientMutationId".to_owned()),
                }
                .extend());
            }
        }
        let fingerprint = serde_json::to_vec(&(name, expected_version, input))
            .map_err(|e| ApiError::internal(e).extend())?;
        Ok(Write {
            shared: shared(ctx)?,
            actor: actor(ctx)?,
            ws: workspace(ctx)?,
            now: now(),
            client_mutation_id: client_mutation_id.map(str::to_owned),
            fingerprint,
        })
    }

    fn retry(&self) -> Option<Retry<'_>> {
        self.client_mutation_id.as_deref().map(|id| Retry {
            client_mutation_id: id,
            request: &self.fingerprint,
        })
    }

    /// A new UUID v7 for the object this mutation creates, or the one an earlier try with the
    /// same `clientMutationId` created.
    pub async fn mint(&self) -> async_graphql::Result<Uuid> {
        if let Some(retry) = self.retry() {
            let earlier = self
                .shared
                .bus
                .recall(&self.actor, &retry)
                .await
                .map_err(|e| ApiError::from(e).extend())?;
            if let Some(id) = earlier.and_then(|r| r.object_id) {
                return Ok(id);
            }
        }
        Ok(Uuid::now_v7())
    }

    /// A customer's status as other aggregates' commands need it.
    pub fn customer_status(&self, id: d::CustomerId) -> async_graphql::Result<d::CustomerStatus> {
        self.shared
            .bus
            .customer_status(self.ws.as_uuid(), id)
            .map_err(|e| ApiError::from(e).extend())
    }

    /// An aggregate's state in this workspace.
    pub fn load<A: Aggregate>(&self, stream: &d::StreamRef) -> async_graphql::Result<A::State> {
        self.shared
            .bus
            .load::<A>(self.ws.as_uuid(), stream)
            .map(|(state, _)| state)
            .map_err(|e| ApiError::from(e).extend())
    }

    /// Runs `command` and waits for the read models to apply it.
    pub async fn run<A: Aggregate>(
        &self,
        stream: d::StreamRef,
        command: A::Command,
        expected_version: Option<u64>,
        object_id: Option<Uuid>,
    ) -> async_graphql::Result<Outcome> {
        let started = std::time::Instant::now();
        let outcome = self
            .shared
            .bus
            .execute::<A>(
                &self.actor,
                stream,
                command,
                expected_version,
                self.retry(),
                object_id,
            )
            .await
            .map_err(|e| ApiError::from(e).extend())?;
        if outcome.last_position.is_some() && !outcome.replayed {
            self.shared.telemetry.record_append(started.elapsed());
        }
        let mut outcome = outcome;
        if let Some(position) = outcome.last_position {
            let timeout = self.shared.config.read_your_writes_timeout;
            if let Err(e) = self.shared.projections.wait_for(position, timeout).await {
                // The write is durable; only the read models lag. Answer with what they hold.
                tracing::warn!(position, code = e.code(), "read models lag behind a write");
            }
        }
        // Clients see positions local to their workspace, never global ones.
        outcome.first_position = self.local_position(outcome.first_position).await?;
        outcome.last_position = self.local_position(outcome.last_position).await?;
        Ok(outcome)
    }

    /// The workspace-local position of global position `global`; `None` when there is none
    /// or the workspace log index has not applied it in time.
    async fn local_position(&self, global: Option<u64>) -> async_graphql::Result<Option<u64>> {
        match global {
            None => Ok(None),
            Some(global) => crate::schema::positions::local_opt(self.shared, self.ws, global).await,
        }
    }
}

/// The fields every mutation payload carries.
#[derive(async_graphql::SimpleObject, Clone, Debug)]
pub struct WriteInfo {
    /// Echoed from the input.
    pub client_mutation_id: Option<String>,
    /// The version of the written stream after the mutation.
    pub version: u64,
    /// The position of the last event written, local to the workspace as in `allEvents`
    /// (none when nothing changed, or when the log index lags the write).
    pub position: Option<u64>,
    /// Whether this is the stored result of an earlier try with the same `clientMutationId`.
    pub replayed: bool,
}

impl WriteInfo {
    pub fn new(write: &Write<'_>, outcome: &Outcome) -> WriteInfo {
        WriteInfo {
            client_mutation_id: write.client_mutation_id.clone(),
            version: outcome.version,
            position: outcome.last_position,
            replayed: outcome.replayed,
        }
    }
}

/// Declares a mutation payload: the write's fields plus the object read back, guarded by the
/// permission needed to read it.
macro_rules! payload {
    ($(#[$doc:meta])* $name:ident { $field:ident: $ty:ty } needs $perm:literal) => {
        $(#[$doc])*
        #[derive(async_graphql::SimpleObject)]
        pub struct $name {
            /// Echoed from the input.
            pub client_mutation_id: Option<String>,
            /// The version of the written stream after the mutation.
            pub version: u64,
            /// The position of the last event written, local to the workspace as in
            /// `allEvents` (none when nothing changed, or when the log index lags the write).
            pub position: Option<u64>,
            /// Whether this is the stored result of an earlier try with the same
            /// `clientMutationId`.
            pub replayed: bool,
            #[graphql(guard = $perm)]
            pub $field: $ty,
        }

        impl $name {
            pub fn new(write: &$crate::schema::mutations::Write<'_>, outcome: &$crate::bus::Outcome, $field: $ty) -> $name {
                let info = $crate::schema::mutations::WriteInfo::new(write, outcome);
                $name {
                    client_mutation_id: info.client_mutation_id,
                    version: info.version,
                    position: info.position,
                    replayed: info.replayed,
                    $field,
                }
            }
        }
    };
}
pub(crate) use payload;

/// Wraps a minted UUID as a domain id (always v7, so this cannot fail in practice; an
/// unexpected failure is INTERNAL).
pub fn typed_id<T>(
    uuid: Uuid,
    make: impl Fn(Uuid) -> Result<T, d::DomainError>,
) -> async_graphql::Result<T> {
    make(uuid).map_err(|e| ApiError::internal(e).extend())
}
