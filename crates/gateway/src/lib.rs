//! The sijil gateway: the GraphQL schema (one Query/Mutation/Subscription object per area,
//! merged), authentication and roles, limits, and the axum server that serves it all.
//!
//! The `sijil` binary builds a [`Gateway`] over a store and its running projections and serves
//! [`Gateway::router`]; [`sdl`] is the schema it serves.

pub mod auth;
pub mod bus;
pub mod case_feed;
pub mod cluster;
pub mod codes;
pub mod context;
pub mod error;
pub mod executor;
pub mod fanout;
pub mod gateway;
pub mod group_flush;
pub mod limits;
pub mod log_tail;
pub mod query_cache;
pub mod schema;
pub mod server;
pub mod shredding;
pub mod snapshots;
pub mod subscription_limits;
pub mod telemetry;
pub mod time;
pub mod websocket;

pub use auth::{AuthError, Permission, Principal, Role, TokenRecord, TokenStore};
pub use error::{ApiError, ErrorCode};
pub use executor::ServedSchema;
pub use gateway::{Gateway, GatewayError};
pub use limits::GatewayConfig;
pub use schema::{sdl, SijilSchema};
