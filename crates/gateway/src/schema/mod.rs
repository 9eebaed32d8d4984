//! The GraphQL schema: one Query, Mutation and Subscription object per area, merged, plus the
//! limits (depth, complexity) every request is held to. [`sdl`] is the SDL the server serves;
//! `schema/schema.graphql` at the repository root must equal it (a test checks).

pub mod audit;
pub mod case;
pub mod customer;
pub mod erasure;
pub mod metrics;
pub mod mutations;
pub mod positions;
pub mod records;
pub mod subscription;
pub mod timeline_edges;
pub mod types;

use std::sync::Arc;

use async_graphql::{MergedObject, MergedSubscription, SDLExportOptions, Schema};

use crate::context::Shared;
use crate::limits::GatewayConfig;

/// Every query.
#[derive(MergedObject, Default)]
pub struct Query(
    customer::CustomerQuery,
    case::CaseQuery,
    metrics::MetricsQuery,
    audit::AuditQuery,
);

/// Every mutation.
#[derive(MergedObject, Default)]
pub struct Mutation(
    mutations::customer::CustomerMutation,
    mutations::case::CaseMutation,
    mutations::feedback::FeedbackMutation,
);

/// Every subscription.
#[derive(MergedSubscription, Default)]
pub struct Subscription(
    subscription::CustomerSubscription,
    subscription::CaseSubscription,
    subscription::AuditSubscription,
);

/// The served schema.
pub type SijilSchema = Schema<Query, Mutation, Subscription>;

/// Builds the schema over `shared` with the limits of `config`. It has no extensions: with
/// one installed, async-graphql sends every field's resolution through it; what applies to
/// whole operations (error codes, subscription limits) wraps the executor instead
/// ([`crate::executor::ServedSchema`]).
pub fn build(shared: Arc<Shared>, config: &GatewayConfig) -> SijilSchema {
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .data(shared)
    .limit_depth(config.max_depth)
    .limit_complexity(config.max_complexity);
    if !config.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The SDL of the schema, as committed in `schema/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .finish()
    .sdl_with_options(SDLExportOptions::new().sorted_fields().sorted_enum_items())
}
