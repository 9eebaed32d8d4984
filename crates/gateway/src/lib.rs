//! The sijil gateway: the GraphQL schema (one Query/Mutation/Subscription object per area,
//! merged), authentication and roles, limits, and the axum server that serves it all.

pub mod auth;
pub mod error;
