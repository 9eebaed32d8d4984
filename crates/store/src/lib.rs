//! sijil-store: sijil's durable, hash-chained event store: the log in its own
//! append-only segment files, indexed in sled.
//!
//! The store keeps opaque MessagePack payloads with a type name and schema
//! version in a global, gap-free log, grouped into streams with optimistic
//! concurrency. Appends are durable when acknowledged (one `fdatasync` of the
//! log per group of concurrent appends), readers never see anything that is not yet on disk,
//! payloads are upcast on read, and [`Store::verify`] re-checks every hash
//! chain and index.
//!
//! Module map: [`event`] (value types), [`error`], [`canonical`] (hashing),
//! [`layout`] (on-disk keys), `segments` (the log's files), `recover`
//! (making the indexes match the log when the store opens), [`store`] (the [`Store`]), [`event_log`] (the
//! backend-neutral traits), [`subscription`], [`upcast`], [`verify`],
//! [`validate`] (limits), [`format`] (format versions), [`config`],
//! [`bulk`] (many appends, one flush), [`import`] (writing an exported log).

mod apply;
pub mod bulk;
mod bytes_serde;
pub mod canonical;
mod codec;
pub mod compact;
pub mod config;
pub mod disk;
mod durable;
pub mod error;
pub mod event;
pub mod event_log;
pub mod format;
pub mod import;
pub mod layout;
mod msgpack_check;
pub mod pg;
pub mod projections;
mod read;
mod recover;
pub mod replica;
mod segments;
pub mod store;
pub mod subscription;
mod trees;
pub mod upcast;
pub mod validate;
pub mod vault;
pub mod verify;
mod writer;

pub use bulk::{BulkAppend, RecordedAt};
pub use config::StoreConfig;
pub use disk::SyncMode;
pub use error::StoreError;
pub use event::{AppendResult, Direction, ExpectedVersion, NewEvent, RecordedEvent};
pub use event_log::{EventLog, EventSubscription};
pub use import::{ImportCheck, ImportError, ImportSummary};
pub use layout::RESERVED_TREES;
pub use store::Store;
pub use subscription::Subscription;
pub use upcast::Upcasters;
pub use verify::{ProblemKind, VerifyProblem, VerifyReport};
