//! The command bus: runs one domain command end to end. Loads the aggregate from its stream,
//! asks the pure `decide`, appends the events with optimistic concurrency, and retries on a
//! concurrent write when the caller did not pin a version. Also the home of safe retries with a
//! `clientMutationId`: event ids are minted from a record written before the append, so a retry
//! after a lost acknowledgement finds the stored events instead of writing them twice.
//!
//! With a [`Vault`] the bus is where personal data is sealed: each event's personal fields
//! are encrypted with its customer's data key just before it is encoded, and every event
//! loaded to decide a command is opened first (so the aggregates see plaintext, and
//! `[erased]` once the customer is forgotten). Personal data cannot be written for a
//! forgotten customer (`CUSTOMER_FORGOTTEN`).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sijil_domain::aggregates::customer::CustomerAggregate;
use sijil_domain::commands::{Aggregate, CustomerStatus};
use sijil_domain::personal;
use sijil_domain::{CustomerId, DomainError, DomainEvent, StreamRef, WorkspaceId};
use sijil_store::pg::shared::Space;
use sijil_store::pg::PgLog;
use sijil_store::projections::codec::{decode_event, encode_event};
use sijil_store::vault::{Vault, VaultError};
use sijil_store::{Direction, ExpectedVersion, NewEvent, Store, StoreError};
use uuid::Uuid;

use crate::cluster::KeyShare;
use crate::error::ApiError;
use crate::group_flush::GroupFlush;
use crate::snapshots::Snapshots;

/// Who is acting, for whom, in which workspace.
#[derive(Clone, Debug)]
pub struct Actor {
    pub workspace_id: Uuid,
    /// Recorded on every event, e.g. `token:<id>`.
    pub actor: String,
    /// The person the actor works for, when it is a service account acting for someone.
    pub on_behalf_of: Option<String>,
    pub correlation_id: Option<Uuid>,
}

/// What a command did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub stream_id: String,
    /// The stream's version after the command (unchanged when it emitted nothing).
    pub version: u64,
    /// Positions of the appended events; `None` when the command emitted nothing.
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    /// Whether this is the stored result of an earlier try with the same `clientMutationId`.
    pub replayed: bool,
}

/// Errors of the bus, mapped onto API codes.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("version conflict on {stream}: expected {expected}, actual {actual:?}")]
    Conflict {
        stream: String,
        expected: ExpectedVersion,
        actual: Option<u64>,
    },
    #[error("clientMutationId `{0}` was already used for a different request")]
    MutationIdReused(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("stored event does not decode: {0}")]
    Decode(String),
    #[error("vault: {0}")]
    Vault(#[from] VaultError),
}

impl BusError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            BusError::Domain(e) => e.code(),
            BusError::Conflict { .. } => "CONFLICT",
            BusError::MutationIdReused(_) => "CLIENT_MUTATION_ID_REUSED",
            BusError::NotFound(_) => "NOT_FOUND",
            BusError::Store(_) => "STORE",
            BusError::Decode(_) => "DECODE",
            BusError::Vault(e) => e.code(),
        }
    }
}

impl From<BusError> for ApiError {
    fn from(err: BusError) -> ApiError {
        match err {
            BusError::Domain(e) => match e.kind() {
                sijil_domain::error::ErrorKind::NotFound => ApiError::NotFound(e.to_string()),
                _ => ApiError::Validation {
                    message: e.to_string(),
                    reason: e.code(),
                    field: None,
                },
            },
            BusError::Conflict {
                stream,
                expected,
                actual,
            } => ApiError::Conflict {
                stream,
                expected: match expected {
                    ExpectedVersion::Exact(v) => v,
                    ExpectedVersion::NoStream | ExpectedVersion::Any => 0,
                },
                actual: actual.unwrap_or(0),
            },
            BusError::MutationIdReused(_) => ApiError::Validation {
                message: err.to_string(),
                reason: "CLIENT_MUTATION_ID_REUSED",
                field: Some("clientMutationId".to_owned()),
            },
            BusError::NotFound(what) => ApiError::NotFound(what),
            BusError::Store(StoreError::Invalid(msg)) => ApiError::validation(msg, "INVALID_INPUT"),
            BusError::Store(e @ (StoreError::Io { .. } | StoreError::Closed)) => {
                ApiError::unavailable(e)
            }
            BusError::Vault(e @ VaultError::Forgotten(_)) => ApiError::Validation {
                message: e.to_string(),
                reason: e.code(),
                field: None,
            },
            other => ApiError::internal(other),
        }
    }
}

/// How often a command is retried on a concurrent write when no version was pinned.
const MAX_ATTEMPTS: usize = 12;

/// The pause before retry `attempt` (0-based): up to 200 µs doubled per attempt, capped at
/// 50 ms, at a random point of its upper half.
fn backoff(attempt: usize) -> Duration {
    let ceiling = (200u64 << attempt.min(16)).min(50_000);
    let mut noise = [0u8; 8];
    // Without randomness the pause is still bounded, just not spread.
    let _ = getrandom::fill(&mut noise);
    let spread = u64::from_le_bytes(noise) % (ceiling / 2 + 1);
    Duration::from_micros(ceiling / 2 + spread)
}

/// A record of a mutation with a client-chosen id, written just before its append.
#[derive(Serialize, Deserialize)]
struct MutationRecord {
    request_hash: [u8; 32],
    base_event_id: Uuid,
    stream_id: String,
    object_id: Option<Uuid>,
}

/// A client's retry key and the fingerprint of its request (the mutation's name and input,
/// never the server's clock).
#[derive(Clone, Copy, Debug)]
pub struct Retry<'a> {
    pub client_mutation_id: &'a str,
    pub request: &'a [u8],
}

impl Retry<'_> {
    fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.request).into()
    }
}

/// What an earlier call with the same `clientMutationId` recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recalled {
    /// The id minted for the object the mutation created, if it created one.
    pub object_id: Option<Uuid>,
    pub stream_id: String,
    pub base_event_id: Uuid,
}

/// The workspace and customer whose key sealed some of a command's events.
type SealedFor = (WorkspaceId, CustomerId);

/// An aggregate's state, its stream version, and the customer the stream's first event names.
type Loaded<A> = (<A as Aggregate>::State, Option<u64>, Option<CustomerId>);

/// How many locks the streams of a node are spread over (see [`StreamTurns`]).
const STREAM_TURN_STRIPES: usize = 1024;

/// Commands on one stream take turns on a node: each holds its stream's turn from loading the
/// aggregate to the durable append. Concurrent writers on one node then never race each
/// other's optimistic checks (only writers on other nodes can, which the retry loop handles),
/// so a hot stream cannot starve a writer through repeated conflicts. Streams share
/// [`STREAM_TURN_STRIPES`] locks by hash: unrelated commands rarely wait on each other, and
/// then only for one append.
struct StreamTurns {
    stripes: Box<[tokio::sync::Mutex<()>]>,
}

impl StreamTurns {
    fn new() -> StreamTurns {
        StreamTurns {
            stripes: (0..STREAM_TURN_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    async fn take(&self, stream: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        stream.hash(&mut hasher);
        let stripe = usize::try_from(hasher.finish() % STREAM_TURN_STRIPES as u64).unwrap_or(0);
        self.stripes[stripe].lock().await
    }
}

/// Runs commands against the store.
#[derive(Clone)]
pub struct CommandBus {
    turns: Arc<StreamTurns>,
    store: Store,
    mutations: sled::Tree,
    vault: Option<Vault>,
    /// When the store follows a PostgreSQL log: the log, where mutation records live, and
    /// the key sharing of the vault (see [`crate::cluster`]).
    shared: Option<PgLog>,
    keys: Option<Arc<KeyShare>>,
    /// States folded recently, reused while their stream has not moved.
    snapshots: Arc<Snapshots>,
    /// Flushes of the database for commands that wrote beside the log ([`Self::make_durable`]).
    flush: Arc<GroupFlush>,
}

impl CommandBus {
    /// A bus over `store`, keeping its `clientMutationId` records in the store's database.
    pub fn new(store: Store) -> Result<CommandBus, BusError> {
        CommandBus::with_vault(store, None)
    }

    /// A bus that seals personal data with `vault` (when given) before writing it and opens
    /// it when loading.
    pub fn with_vault(store: Store, vault: Option<Vault>) -> Result<CommandBus, BusError> {
        let mutations = store
            .db()
            .open_tree("gateway/mutations")
            .map_err(|e| StoreError::Io {
                operation: "open mutations tree",
                detail: e.to_string(),
            })?;
        let shared = store.upstream().cloned();
        let keys = match (&shared, &vault) {
            (Some(log), Some(vault)) => Some(Arc::new(KeyShare::new(log.clone(), vault.clone()))),
            _ => None,
        };
        Ok(CommandBus {
            turns: Arc::new(StreamTurns::new()),
            store,
            vault,
            shared,
            keys,
            snapshots: Arc::new(Snapshots::default()),
            flush: Arc::new(GroupFlush::new(mutations.clone())),
            mutations,
        })
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The vault sealing personal data, if any.
    pub fn vault(&self) -> Option<&Vault> {
        self.vault.as_ref()
    }

    /// The aggregate states kept from recent loads.
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// The sharing of data keys with other nodes, when the store follows a PostgreSQL log.
    pub fn key_share(&self) -> Option<&KeyShare> {
        self.keys.as_deref()
    }

    /// Loads an aggregate's state and version from its stream. A stream that belongs to another
    /// workspace reads as absent.
    pub fn load<A: Aggregate>(
        &self,
        workspace: Uuid,
        stream: &StreamRef,
    ) -> Result<(A::State, Option<u64>), BusError> {
        self.load_opened::<A>(workspace, stream)
            .map(|(state, version, _)| (state, version))
    }

    /// [`load`](Self::load), also giving the customer the stream's first event names (the
    /// data subject of later case and follow-up events). Events are opened through the vault
    /// before the aggregate sees them.
    fn load_opened<A: Aggregate>(
        &self,
        workspace: Uuid,
        stream: &StreamRef,
    ) -> Result<Loaded<A>, BusError> {
        let id = stream.stream_id();
        // A state folded at the stream's current version is what a fold would give, unless
        // the data key of the customer it is about was destroyed since (then fold again,
        // and their sealed fields read erased).
        if let Some(version) = self.store.stream_version(&id)? {
            if let Some((state, subject)) =
                self.snapshots.get::<A, A::State>(workspace, &id, version)
            {
                let readable = match (&self.vault, subject, WorkspaceId::new(workspace)) {
                    (None, _, _) | (Some(_), None, _) => true,
                    (Some(vault), Some(customer), Ok(ws)) => vault
                        .is_forgotten(ws, customer)
                        .is_ok_and(|forgotten| !forgotten),
                    (Some(_), Some(_), Err(_)) => false,
                };
                if readable {
                    return Ok((state, Some(version), subject));
                }
            }
        }
        let mut loaded: Loaded<A> = (A::State::default(), None, None);
        loop {
            let from = loaded.1.map_or(1, |v| v + 1);
            let batch = self
                .store
                .read_stream(&id, from, Direction::Forward, 1000)?;
            if !self.fold::<A>(workspace, &mut loaded, &batch)? {
                return Ok((A::State::default(), None, None));
            }
            if batch.len() < 1000 {
                if let Some(version) = loaded.1 {
                    self.snapshots
                        .put::<A, A::State>(workspace, &id, version, &loaded.0, loaded.2);
                }
                return Ok(loaded);
            }
        }
    }

    /// [`load_opened`](Self::load_opened), then, when the store follows a PostgreSQL log,
    /// the stream's newer events straight from PostgreSQL: after a lost race on another
    /// node, the retry decides on the winner's write without waiting for the local copy.
    async fn load_latest<A: Aggregate>(
        &self,
        workspace: Uuid,
        stream: &StreamRef,
    ) -> Result<Loaded<A>, BusError> {
        let mut loaded = self.load_opened::<A>(workspace, stream)?;
        let Some(log) = &self.shared else {
            return Ok(loaded);
        };
        let id = stream.stream_id();
        loop {
            let from = loaded.1.map_or(1, |v| v + 1);
            let batch = log.read_stream(&id, from, Direction::Forward, 1000).await?;
            if !self.fold::<A>(workspace, &mut loaded, &batch)? {
                return Ok((A::State::default(), None, None));
            }
            if batch.len() < 1000 {
                return Ok(loaded);
            }
        }
    }

    /// Applies the stored events `batch` (the stream's next ones) to `loaded`. `false` when
    /// an event belongs to another workspace (the stream then reads as absent).
    fn fold<A: Aggregate>(
        &self,
        workspace: Uuid,
        loaded: &mut Loaded<A>,
        batch: &[sijil_store::RecordedEvent],
    ) -> Result<bool, BusError> {
        for recorded in batch {
            if recorded.workspace_id != workspace {
                return Ok(false);
            }
            let mut event = decode_event(recorded).map_err(|e| BusError::Decode(e.to_string()))?;
            if loaded.1.is_none() {
                loaded.2 = personal::data_subject(&event).customer();
            }
            if let Some(vault) = &self.vault {
                crate::shredding::open_in_place(
                    vault,
                    &self.store,
                    recorded,
                    &mut event,
                    loaded.2,
                )?;
            }
            let state = std::mem::take(&mut loaded.0);
            loaded.0 = A::evolve(state, &event);
            loaded.1 = Some(recorded.version);
        }
        Ok(true)
    }

    /// A customer's status as other aggregates' commands need it.
    pub fn customer_status(
        &self,
        workspace: Uuid,
        customer: CustomerId,
    ) -> Result<CustomerStatus, BusError> {
        let (state, _) =
            self.load::<CustomerAggregate>(workspace, &StreamRef::Customer(customer))?;
        Ok(state.status())
    }

    /// What an earlier call with the same `clientMutationId` recorded, if any: the object id
    /// it minted and its event ids. The same id with a different request is refused
    /// (`MutationIdReused`), so a client cannot mistake one mutation's result for another's.
    pub async fn recall(
        &self,
        actor: &Actor,
        retry: &Retry<'_>,
    ) -> Result<Option<Recalled>, BusError> {
        let key = mutation_key(actor, retry.client_mutation_id);
        let bytes = match &self.shared {
            Some(log) => log.shared_get(Space::Mutations, &key).await?,
            None => self
                .mutations
                .get(&key)
                .map_err(io("read mutation record"))?
                .map(|v| v.to_vec()),
        };
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let record: MutationRecord =
            rmp_serde::from_slice(&bytes).map_err(|e| BusError::Decode(e.to_string()))?;
        if record.request_hash != retry.hash() {
            return Err(BusError::MutationIdReused(
                retry.client_mutation_id.chars().take(100).collect(),
            ));
        }
        Ok(Some(Recalled {
            object_id: record.object_id,
            stream_id: record.stream_id,
            base_event_id: record.base_event_id,
        }))
    }

    /// Runs `command` on the aggregate at `stream`.
    ///
    /// `expected` pins the stream version the caller saw (a mismatch is a conflict, never
    /// retried); without it a concurrent write makes the bus reload and decide again.
    /// `retry` makes the call safe to repeat: the same `clientMutationId` with the same request
    /// fingerprint returns the first call's outcome, writing nothing. The record of a call is
    /// written only once its command was accepted, so refused input leaves no trace;
    /// `object_id` (the id the mutation minted for a new object) is kept in it for
    /// [`recall`](Self::recall).
    pub async fn execute<A: Aggregate>(
        &self,
        actor: &Actor,
        stream: StreamRef,
        command: A::Command,
        expected: Option<u64>,
        retry: Option<Retry<'_>>,
        object_id: Option<Uuid>,
    ) -> Result<Outcome, BusError> {
        let stream_id = stream.stream_id();
        let mut base_id = Uuid::now_v7();
        let mut recorded = false;
        // A mutation record written to sled and not flushed yet.
        let mut record_unflushed = false;
        if let Some(retry) = &retry {
            if let Some(earlier) = self.recall(actor, retry).await? {
                if earlier.stream_id != stream_id {
                    return Err(BusError::MutationIdReused(
                        retry.client_mutation_id.chars().take(100).collect(),
                    ));
                }
                if let Some(outcome) = self.replay(&earlier)? {
                    return Ok(outcome);
                }
                base_id = earlier.base_event_id;
                recorded = true;
            }
        }

        let _turn = self.turns.take(&stream_id).await;
        let mut last_conflict = None;
        for attempt in 0..MAX_ATTEMPTS {
            let (state, version, subject) = if attempt == 0 {
                self.load_opened::<A>(actor.workspace_id, &stream)?
            } else {
                self.load_latest::<A>(actor.workspace_id, &stream).await?
            };
            if let Some(pinned) = expected {
                if version.unwrap_or(0) != pinned {
                    return Err(BusError::Conflict {
                        stream: stream_id,
                        expected: ExpectedVersion::Exact(pinned),
                        actual: version,
                    });
                }
            }
            if version.is_none() && self.store.stream_version(&stream_id)?.is_some() {
                // The id is taken in another workspace: refuse without saying more.
                return Err(BusError::NotFound(format!("stream {stream_id}")));
            }
            let events = A::decide(&state, command.clone())?;
            if events.is_empty() {
                return Ok(Outcome {
                    stream_id,
                    version: version.unwrap_or(0),
                    first_position: None,
                    last_position: None,
                    replayed: false,
                });
            }
            if let (Some(retry), false) = (&retry, recorded) {
                let record = MutationRecord {
                    request_hash: retry.hash(),
                    base_event_id: base_id,
                    stream_id: stream_id.clone(),
                    object_id,
                };
                let bytes = rmp_serde::to_vec_named(&record)
                    .map_err(|e| BusError::Decode(e.to_string()))?;
                let key = mutation_key(actor, retry.client_mutation_id);
                match &self.shared {
                    Some(log) => {
                        if let Some(theirs) = log
                            .shared_insert_new(Space::Mutations, &key, &bytes)
                            .await?
                        {
                            // The same retry key is being served on another node right now.
                            let theirs: MutationRecord = rmp_serde::from_slice(&theirs)
                                .map_err(|e| BusError::Decode(e.to_string()))?;
                            if theirs.request_hash != record.request_hash
                                || theirs.stream_id != record.stream_id
                            {
                                return Err(BusError::MutationIdReused(
                                    retry.client_mutation_id.chars().take(100).collect(),
                                ));
                            }
                            // Same request: mint the same event ids, so only one lands.
                            base_id = theirs.base_event_id;
                        }
                    }
                    // Not flushed here: `make_durable` below flushes it with any new key
                    // before the events are appended.
                    None => {
                        self.mutations
                            .insert(key, bytes)
                            .map_err(io("write mutation record"))?;
                        record_unflushed = true;
                    }
                }
                recorded = true;
            }
            let (mut new_events, sealed_for) =
                self.to_new_events(actor, &stream_id, subject, &events, base_id)?;
            if let (Some(keys), Some(ws)) = (&self.keys, sealed_for.first().map(|(ws, _)| *ws)) {
                let customers: Vec<CustomerId> = sealed_for.iter().map(|(_, c)| *c).collect();
                if keys.publish(ws, &customers).await? {
                    // Another node's key for this customer won: seal with it instead.
                    new_events = self
                        .to_new_events(actor, &stream_id, subject, &events, base_id)?
                        .0;
                }
            }
            self.make_durable(&mut record_unflushed).await?;
            let expectation = match version {
                Some(v) => ExpectedVersion::Exact(v),
                None => ExpectedVersion::NoStream,
            };
            match self.store.append(&stream_id, expectation, new_events).await {
                Ok(result) => {
                    return Ok(Outcome {
                        stream_id,
                        version: result.next_version.saturating_sub(1),
                        first_position: Some(result.first_position),
                        last_position: Some(result.last_position),
                        replayed: false,
                    })
                }
                Err(StoreError::Conflict {
                    stream,
                    expected: seen,
                    actual,
                }) => {
                    let conflict = BusError::Conflict {
                        stream,
                        expected: seen,
                        actual,
                    };
                    if expected.is_some() {
                        return Err(conflict);
                    }
                    // Someone wrote between our read and our append: decide again on the
                    // newer state, after a short pause that grows and is jittered, so
                    // writers racing on one stream (on one node or several) spread out.
                    last_conflict = Some(conflict);
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last_conflict.unwrap_or(BusError::NotFound(stream_id)))
    }

    /// The stored outcome of an earlier try, if its events are in the store.
    fn replay(&self, record: &Recalled) -> Result<Option<Outcome>, BusError> {
        let Some(first) = self.store.event_position(record.base_event_id)? else {
            return Ok(None);
        };
        let mut last = first;
        let mut version = 0;
        for i in 0..=255u8 {
            let id = derive_event_id(record.base_event_id, i);
            match self.store.event_position(id)? {
                Some(pos) => last = last.max(pos),
                None => break,
            }
        }
        if let Some(events) = self.store.read_all(last, 1, None)?.first() {
            version = events.version;
        }
        Ok(Some(Outcome {
            stream_id: record.stream_id.clone(),
            version,
            first_position: Some(first),
            last_position: Some(last),
            replayed: true,
        }))
    }

    /// Makes what this command wrote to sled beside the log durable before its events are
    /// appended: a new data key or subject link (the vault counts them) and its mutation
    /// record (`record_unflushed`). The append syncs only the log's segment, and sled flushes
    /// on its own only every second, so without this a `kill -9` after the acknowledgement
    /// could leave an event sealed with a key that is gone, or a retry of an acknowledged
    /// mutation that no record dedupes. One sled flush covers both (one database);
    /// concurrent commands share it.
    async fn make_durable(&self, record_unflushed: &mut bool) -> Result<(), BusError> {
        let vault = self.vault.as_ref().filter(|v| v.needs_flush());
        if vault.is_none() && !*record_unflushed {
            return Ok(());
        }
        let written = vault.map(Vault::written);
        self.flush
            .flush()
            .await
            .map_err(io("flush before append"))?;
        if let (Some(vault), Some(written)) = (vault, written) {
            vault.note_flushed(written);
        }
        *record_unflushed = false;
        Ok(())
    }

    /// Seals the personal fields of `event` (about to be appended to `stream_id`, whose
    /// customer is `subject` when known) and records the case/follow-up link it makes.
    fn seal(
        &self,
        actor: &Actor,
        stream_id: &str,
        subject: &mut Option<CustomerId>,
        event: &mut DomainEvent,
    ) -> Result<Option<(WorkspaceId, CustomerId)>, BusError> {
        let Some(vault) = &self.vault else {
            return Ok(None);
        };
        let ws = WorkspaceId::new(actor.workspace_id)
            .map_err(|_| BusError::Decode("the actor's workspace is not a UUID v7".to_owned()))?;
        vault.record_link(ws, event)?;
        if subject.is_none() {
            *subject = personal::data_subject(event).customer();
        }
        let customer =
            crate::shredding::subject_of(vault, &self.store, ws, event, stream_id, *subject)?;
        match customer {
            Some(customer) => {
                vault.seal(event, ws, customer)?;
                Ok(personal::has_personal(event).then_some((ws, customer)))
            }
            None if personal::has_personal(event) => Err(BusError::Decode(format!(
                "a {} event holds personal data but names no customer",
                event.event_type()
            ))),
            None => Ok(None),
        }
    }

    fn to_new_events(
        &self,
        actor: &Actor,
        stream_id: &str,
        mut subject: Option<CustomerId>,
        events: &[DomainEvent],
        base_id: Uuid,
    ) -> Result<(Vec<NewEvent>, Vec<SealedFor>), BusError> {
        let mut out = Vec::with_capacity(events.len());
        let mut sealed_for = Vec::new();
        let mut previous = None;
        for (i, event) in events.iter().enumerate() {
            let mut sealed;
            let event = if self.vault.is_some() {
                sealed = event.clone();
                if let Some(whom) = self.seal(actor, stream_id, &mut subject, &mut sealed)? {
                    if !sealed_for.contains(&whom) {
                        sealed_for.push(whom);
                    }
                }
                &sealed
            } else {
                event
            };
            let index = u8::try_from(i).map_err(|_| {
                BusError::Decode("a command emitted more than 256 events".to_owned())
            })?;
            let event_id = derive_event_id(base_id, index);
            out.push(NewEvent {
                event_id,
                workspace_id: actor.workspace_id,
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                occurred_at: event.occurred_at().millis(),
                actor: actor.actor.clone(),
                on_behalf_of: actor.on_behalf_of.clone(),
                correlation_id: actor.correlation_id.or(Some(base_id)),
                causation_id: previous,
                payload: encode_event(event),
            });
            previous = Some(event_id);
        }
        Ok((out, sealed_for))
    }
}

/// The i-th event id of a command: the base id with its last byte mixed with `i`, keeping the
/// UUID's version (7) and variant bits, so retries mint the same ids.
pub fn derive_event_id(base: Uuid, index: u8) -> Uuid {
    if index == 0 {
        return base;
    }
    let mut bytes = *base.as_bytes();
    bytes[15] ^= index;
    bytes[14] = bytes[14].wrapping_add(index.rotate_left(3));
    Uuid::from_bytes(bytes)
}

fn mutation_key(actor: &Actor, client_mutation_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + actor.actor.len() + client_mutation_id.len() + 2);
    key.extend_from_slice(actor.workspace_id.as_bytes());
    key.extend_from_slice(actor.actor.as_bytes());
    key.push(0);
    key.extend_from_slice(client_mutation_id.as_bytes());
    key
}

fn io(operation: &'static str) -> impl Fn(sled::Error) -> BusError {
    move |e| {
        BusError::Store(StoreError::Io {
            operation,
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_event_ids_stay_v7_and_distinct() {
        let base = Uuid::now_v7();
        let ids: Vec<Uuid> = (0..=255u8).map(|i| derive_event_id(base, i)).collect();
        assert_eq!(ids[0], base);
        for id in &ids {
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        }
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert_eq!(derive_event_id(base, 9), derive_event_id(base, 9));
    }

    #[test]
    fn mutation_keys_separate_workspaces_actors_and_ids() {
        let actor = |ws: Uuid, who: &str| Actor {
            workspace_id: ws,
            actor: who.to_owned(),
            on_behalf_of: None,
            correlation_id: None,
        };
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let key = mutation_key(&actor(a, "token:1"), "m-1");
        assert_ne!(key, mutation_key(&actor(b, "token:1"), "m-1"));
        assert_ne!(key, mutation_key(&actor(a, "token:2"), "m-1"));
        assert_ne!(key, mutation_key(&actor(a, "token:1"), "m-2"));
        // The separator keeps `token:1` + `0m` apart from `token:10` + `m`.
        assert_ne!(
            mutation_key(&actor(a, "token:1"), "0m"),
            mutation_key(&actor(a, "token:10"), "m")
        );
    }

    #[test]
    fn retry_pauses_grow_stay_bounded_and_spread() {
        for attempt in 0..MAX_ATTEMPTS {
            let ceiling = Duration::from_micros((200u64 << attempt).min(50_000));
            for _ in 0..20 {
                let pause = backoff(attempt);
                assert!(
                    pause <= ceiling && pause >= ceiling / 2,
                    "{attempt}: {pause:?}"
                );
            }
        }
        let total: Duration = (0..MAX_ATTEMPTS).map(backoff).sum();
        assert!(total < Duration::from_millis(400), "{total:?}");
        let distinct: std::collections::BTreeSet<_> = (0..20).map(|_| backoff(6)).collect();
        assert!(distinct.len() > 1, "pauses are jittered");
    }

    #[test]
    fn retry_fingerprints_differ_with_the_request() {
        let r1 = Retry {
            client_mutation_id: "x",
            request: b"one",
        };
        let r2 = Retry {
            client_mutation_id: "x",
            request: b"two",
        };
        assert_ne!(r1.hash(), r2.hash());
        assert_eq!(r1.hash(), r1.hash());
    }
}
