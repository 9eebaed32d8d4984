//! `sijil verify`: the store's own integrity check (hash chains, gap-free positions and
//! versions, indexes), every payload decoded as a domain event, and every projection compared
//! with a rebuild from scratch. Also the log digest that identifies a whole log.

use std::sync::Arc;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use sijil_store::projections::{self, decode_event, ProjectionHandle};
use sijil_store::Store;

/// Events read per batch when walking the log.
const BATCH: usize = 10_000;

/// A whole log's identity: how many events and a digest of every (position, hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDigest {
    pub events: u64,
    pub head: u64,
    pub digest: [u8; 32],
}

impl LogDigest {
    /// The digest in hex.
    pub fn hex(&self) -> String {
        hex::encode(self.digest)
    }
}

/// Walks the log up to the durable head, calling `each` for every event, and digests it.
pub fn walk(
    store: &Store,
    mut each: impl FnMut(&sijil_store::RecordedEvent) -> Result<()>,
) -> Result<LogDigest> {
    let head = store.head_position();
    let mut hasher = Sha256::new();
    let mut events = 0u64;
    let mut next = 1u64;
    while next <= head {
        let batch = store
            .read_all_raw(next, BATCH, None)
            .with_context(|| format!("reading the log at position {next}"))?;
        let Some(last) = batch.last() else { break };
        next = last.position + 1;
        for event in &batch {
            if event.position > head {
                break;
            }
            hasher.update(event.position.to_be_bytes());
            hasher.update(event.hash);
            events += 1;
            each(event)?;
        }
    }
    Ok(LogDigest {
        events,
        head,
        digest: hasher.finalize().into(),
    })
}

/// The digest alone.
pub fn digest(store: &Store) -> Result<LogDigest> {
    walk(store, |_| Ok(()))
}

/// One problem found by `verify`.
#[derive(Debug)]
pub struct Problem {
    pub position: u64,
    pub what: String,
}

/// What `verify` knows of the store's vault.
pub enum Keys {
    /// The vault when a master key is available, `None` when none is and the store never
    /// sealed anything.
    Available(Option<sijil_store::vault::Vault>),
    /// The store seals personal data but its master key was not given: the directory (whose
    /// keyed hashes need it) is not checked, everything else is.
    Unavailable,
}

/// Runs every check; returns the first problem, if any, after printing progress to stdout.
pub fn run(store: &Store, keys: Keys) -> Result<Option<Problem>> {
    let report = store
        .verify()
        .context("running the store's integrity check")?;
    if let Some(problem) = report.problem {
        return Ok(Some(Problem {
            position: problem.position,
            what: format!(
                "{:?}{}: {}",
                problem.kind,
                problem
                    .stream_id
                    .map(|s| format!(" in stream `{s}`"))
                    .unwrap_or_default(),
                problem.detail
            ),
        }));
    }
    println!(
        "log: {} events in {} streams, positions 1..={} gap-free, every hash chain verified",
        report.events_checked, report.streams_checked, report.durable_position
    );
    let mut bad_payload: Option<Problem> = None;
    let digest = walk(store, |event| {
        if bad_payload.is_none() {
            if let Err(e) = decode_event(event) {
                bad_payload = Some(Problem {
                    position: event.position,
                    what: format!("payload does not decode: {e}"),
                });
            }
        }
        Ok(())
    })?;
    if let Some(problem) = bad_payload {
        return Ok(Some(problem));
    }
    println!("payloads: all {} decode as domain events", digest.events);
    let (vault, skip_directory) = match keys {
        Keys::Available(vault) => (vault, false),
        Keys::Unavailable => (None, true),
    };
    for projection in projections::default_projections_with_vault(vault) {
        if skip_directory && projection.name() == "directory" {
            println!("projection directory: not checked (sealed store, no master key)");
            continue;
        }
        if let Some(problem) = check_projection(store, projection)? {
            return Ok(Some(problem));
        }
    }
    println!("log hash: {} (head {})", digest.hex(), digest.head);
    Ok(None)
}

fn check_projection(
    store: &Store,
    projection: Arc<dyn projections::Projection>,
) -> Result<Option<Problem>> {
    let name = projection.name();
    let handle = ProjectionHandle::open(store.db(), projection)
        .with_context(|| format!("opening projection {name}"))?;
    if let Err(e) = handle.catch_up(store) {
        let position = handle.failure().map_or(0, |(p, _)| p);
        return Ok(Some(Problem {
            position,
            what: format!("projection {name} cannot apply the log: {e}"),
        }));
    }
    let report = handle
        .check(store)
        .with_context(|| format!("checking projection {name}"))?;
    if !report.is_consistent() {
        let examples: Vec<String> = report.examples.iter().map(|d| d.key.clone()).collect();
        return Ok(Some(Problem {
            position: report.position,
            what: format!(
                "projection {name} differs from a rebuild: {} keys only in the live model, {} only in the rebuild, {} different (first keys: {})",
                report.only_live,
                report.only_rebuilt,
                report.different,
                examples.join(", ")
            ),
        }));
    }
    println!(
        "projection {name}: matches a rebuild at position {} ({} keys)",
        report.position, report.live_keys
    );
    Ok(None)
}
