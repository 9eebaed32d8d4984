//! Owns integrity verification: walking the log and the indexes, recomputing
//! every hash chain, and reporting the first problem found precisely.
//!
//! Verification reads stored bytes only (no upcasting) and looks at nothing
//! past the durable position taken when it starts, so it can run while
//! appends continue.

use std::collections::HashMap;

use serde::Serialize;

use crate::canonical::compute_hash;
use crate::codec;
use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::layout::{decode_u64, split_stream_key, stream_key, Head, META_LAST_POSITION};
use crate::trees::Trees;

/// What kind of problem verification found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ProblemKind {
    /// A log key is not an 8-byte position (format 1's `log` tree; the
    /// segment files of format 2 give each record its position).
    MalformedKey,
    /// A position is missing from the log.
    PositionGap,
    /// The log ends before the durable position.
    LogTruncated,
    /// An envelope does not decode or claims another position, or its
    /// record in the log's segment fails its checksum.
    Undecodable,
    /// A stream's versions are not 1, 2, 3, ...
    VersionGap,
    /// An event's `prev_hash` is not the previous event's hash.
    BrokenChain,
    /// An event's hash does not match its recomputed hash.
    HashMismatch,
    /// The `streams` index disagrees with the log.
    StreamIndexMismatch,
    /// The `event_ids` index disagrees with the log.
    EventIdIndexMismatch,
    /// The `heads` index disagrees with the log.
    HeadMismatch,
    /// The `meta` tree disagrees with the log.
    MetaMismatch,
}

/// The first problem verification found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyProblem {
    /// The log position concerned (0 if none applies).
    pub position: u64,
    /// The stream concerned, when known.
    pub stream_id: Option<String>,
    /// What is wrong.
    pub kind: ProblemKind,
    /// Details for a human.
    pub detail: String,
}

/// The outcome of [`verify`](crate::Store::verify) or
/// [`verify_stream`](crate::Store::verify_stream).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events checked before stopping.
    pub events_checked: u64,
    /// Streams seen.
    pub streams_checked: u64,
    /// The durable position verification was bounded by.
    pub durable_position: u64,
    /// The first problem, `None` if everything holds.
    pub problem: Option<VerifyProblem>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Where a stream's chain stands while walking.
#[derive(Clone, Copy)]
struct Chain {
    version: u64,
    hash: [u8; 32],
    position: u64,
}

fn problem(
    position: u64,
    stream_id: Option<&str>,
    kind: ProblemKind,
    detail: impl Into<String>,
) -> VerifyProblem {
    VerifyProblem {
        position,
        stream_id: stream_id.map(str::to_owned),
        kind,
        detail: detail.into(),
    }
}

fn io(operation: &'static str) -> impl Fn(sled::Error) -> StoreError {
    move |e| StoreError::sled(operation, e)
}

/// Verifies the whole store up to `durable`.
pub fn verify_all(trees: &Trees, durable: u64) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport {
        durable_position: durable,
        ..VerifyReport::default()
    };
    let mut chains: HashMap<String, Chain> = HashMap::new();
    match walk_log(trees, durable, &mut chains, &mut report)? {
        Some(p) => report.problem = Some(p),
        None => report.problem = check_indexes(trees, durable, &chains, report.events_checked)?,
    }
    report.streams_checked = chains.len() as u64;
    Ok(report)
}

/// Walks the log, checking positions, envelopes, chains and the per-event
/// index entries. Returns the first problem.
fn walk_log(
    trees: &Trees,
    durable: u64,
    chains: &mut HashMap<String, Chain>,
    report: &mut VerifyReport,
) -> Result<Option<VerifyProblem>, StoreError> {
    let mut expected = 1u64;
    let mut found = None;
    let walked = trees
        .log
        .visit::<StoreError>(1, durable, |position, value| {
            let event = match codec::decode(position, value) {
                Ok(event) => event,
                Err(e) => {
                    found = Some(problem(
                        position,
                        None,
                        ProblemKind::Undecodable,
                        e.to_string(),
                    ));
                    return Ok(false);
                }
            };
            let chain = chains.get(&event.stream_id).copied();
            if let Some(p) = check_event(trees, &event, chain)? {
                found = Some(p);
                return Ok(false);
            }
            chains.insert(
                event.stream_id.clone(),
                Chain {
                    version: event.version,
                    hash: event.hash,
                    position,
                },
            );
            report.events_checked += 1;
            expected += 1;
            Ok(true)
        });
    match walked {
        // A record that is damaged in the segment file (its checksum, its
        // length or its position do not hold).
        Err(StoreError::Corrupt { position, detail }) => {
            return Ok(Some(problem(
                position,
                None,
                ProblemKind::Undecodable,
                detail,
            )))
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    if let Some(found) = found {
        return Ok(Some(found));
    }
    let last = expected - 1;
    if last < durable {
        return Ok(Some(problem(
            expected,
            None,
            ProblemKind::LogTruncated,
            format!("the log ends at {last} but the durable position is {durable}"),
        )));
    }
    Ok(None)
}

/// Checks one event against its stream's chain so far and its index entries.
fn check_event(
    trees: &Trees,
    event: &RecordedEvent,
    chain: Option<Chain>,
) -> Result<Option<VerifyProblem>, StoreError> {
    let stream = Some(event.stream_id.as_str());
    let position = event.position;
    let expected_version = chain.map_or(1, |c| c.version + 1);
    if event.version != expected_version {
        return Ok(Some(problem(
            position,
            stream,
            ProblemKind::VersionGap,
            format!(
                "version {} where {expected_version} was expected",
                event.version
            ),
        )));
    }
    let expected_prev = chain.map_or([0; 32], |c| c.hash);
    if event.prev_hash != expected_prev {
        return Ok(Some(problem(
            position,
            stream,
            ProblemKind::BrokenChain,
            format!(
                "prev_hash {} but the previous event's hash is {}",
                hex::encode(event.prev_hash),
                hex::encode(expected_prev)
            ),
        )));
    }
    let recomputed = compute_hash(event);
    if recomputed != event.hash {
        return Ok(Some(problem(
            position,
            stream,
            ProblemKind::HashMismatch,
            format!(
                "stored hash {} but the content hashes to {}",
                hex::encode(event.hash),
                hex::encode(recomputed)
            ),
        )));
    }
    let indexed = trees
        .streams
        .get(stream_key(&event.stream_id, event.version))
        .map_err(io("verify stream index"))?;
    if indexed.as_deref().and_then(decode_u64) != Some(position) {
        return Ok(Some(problem(
            position,
            stream,
            ProblemKind::StreamIndexMismatch,
            format!(
                "streams entry for v{} is {:?}, expected {position}",
                event.version,
                indexed.as_deref().map(describe)
            ),
        )));
    }
    let indexed = trees
        .event_ids
        .get(event.event_id.as_bytes())
        .map_err(io("verify event id index"))?;
    if indexed.as_deref().and_then(decode_u64) != Some(position) {
        return Ok(Some(problem(
            position,
            stream,
            ProblemKind::EventIdIndexMismatch,
            format!(
                "event_ids entry for {} is {:?}, expected {position}",
                event.event_id,
                indexed.as_deref().map(describe)
            ),
        )));
    }
    Ok(None)
}

/// Renders an index value for a problem detail.
fn describe(bytes: &[u8]) -> String {
    match decode_u64(bytes) {
        Some(p) => p.to_string(),
        None => format!("{} malformed bytes", bytes.len()),
    }
}

/// After a clean walk: checks that `heads`, `streams`, `event_ids` and
/// `meta` hold nothing the log does not explain.
fn check_indexes(
    trees: &Trees,
    durable: u64,
    chains: &HashMap<String, Chain>,
    events: u64,
) -> Result<Option<VerifyProblem>, StoreError> {
    let mut names: Vec<&String> = chains.keys().collect();
    names.sort_unstable();
    for stream in names {
        let Some(chain) = chains.get(stream).copied() else {
            continue;
        };
        if let Some(p) = check_head(trees, stream, Some(chain), durable)? {
            return Ok(Some(p));
        }
    }
    for entry in trees.heads.iter() {
        let (key, value) = entry.map_err(io("verify heads"))?;
        let stream = String::from_utf8_lossy(&key).into_owned();
        if chains.contains_key(&stream) {
            continue;
        }
        let head = match Head::decode(&stream, &value) {
            Ok(head) => head,
            Err(e) => {
                return Ok(Some(problem(
                    0,
                    Some(&stream),
                    ProblemKind::HeadMismatch,
                    e.to_string(),
                )))
            }
        };
        if head.position <= durable {
            return Ok(Some(problem(
                head.position,
                Some(&stream),
                ProblemKind::HeadMismatch,
                "a head exists for a stream with no event in the log",
            )));
        }
    }
    for entry in trees.streams.iter() {
        let (key, value) = entry.map_err(io("verify stream index"))?;
        let Some((stream, version)) = split_stream_key(&key) else {
            return Ok(Some(problem(
                0,
                None,
                ProblemKind::StreamIndexMismatch,
                "malformed streams key",
            )));
        };
        let Some(position) = decode_u64(&value) else {
            return Ok(Some(problem(
                0,
                Some(stream),
                ProblemKind::StreamIndexMismatch,
                format!("v{version} has a malformed position"),
            )));
        };
        let explained = chains.get(stream).is_some_and(|c| version <= c.version);
        if position <= durable && !explained {
            return Ok(Some(problem(
                position,
                Some(stream),
                ProblemKind::StreamIndexMismatch,
                format!("streams entry v{version} → {position} has no event in the log"),
            )));
        }
    }
    let mut indexed = 0u64;
    for entry in trees.event_ids.iter() {
        let (key, value) = entry.map_err(io("verify event id index"))?;
        match decode_u64(&value) {
            Some(position) if position <= durable => indexed += 1,
            Some(_) => {}
            None => {
                return Ok(Some(problem(
                    0,
                    None,
                    ProblemKind::EventIdIndexMismatch,
                    format!("event_ids entry for key {} is malformed", hex::encode(&key)),
                )))
            }
        }
    }
    if indexed != events {
        return Ok(Some(problem(
            0,
            None,
            ProblemKind::EventIdIndexMismatch,
            format!("event_ids indexes {indexed} durable events, the log holds {events}"),
        )));
    }
    let last = trees
        .meta
        .get(META_LAST_POSITION)
        .map_err(io("verify meta"))?;
    match last.as_deref().and_then(decode_u64) {
        Some(last) if last >= durable => Ok(None),
        other => Ok(Some(problem(
            0,
            None,
            ProblemKind::MetaMismatch,
            format!("meta last_position is {other:?}, the durable position is {durable}"),
        ))),
    }
}

/// Checks the `heads` entry of `stream` against where its chain ended.
fn check_head(
    trees: &Trees,
    stream: &str,
    chain: Option<Chain>,
    durable: u64,
) -> Result<Option<VerifyProblem>, StoreError> {
    let at = chain.map_or(0, |c| c.position);
    let stored = trees
        .heads
        .get(stream.as_bytes())
        .map_err(io("verify heads"))?;
    let head = match stored {
        None if chain.is_none() => return Ok(None),
        None => {
            return Ok(Some(problem(
                at,
                Some(stream),
                ProblemKind::HeadMismatch,
                "the stream has events but no head",
            )))
        }
        Some(bytes) => match Head::decode(stream, &bytes) {
            Ok(head) => head,
            Err(e) => {
                return Ok(Some(problem(
                    at,
                    Some(stream),
                    ProblemKind::HeadMismatch,
                    e.to_string(),
                )))
            }
        },
    };
    if head.position > durable {
        // Appends past the durable position are in flight; the walk already
        // checked every durable event of the stream.
        return Ok(None);
    }
    let Some(chain) = chain else {
        return Ok(Some(problem(
            head.position,
            Some(stream),
            ProblemKind::HeadMismatch,
            "a head exists for a stream with no event",
        )));
    };
    if head.version != chain.version || head.hash != chain.hash || head.position != chain.position {
        return Ok(Some(problem(
            at,
            Some(stream),
            ProblemKind::HeadMismatch,
            format!(
                "head says v{} at {} ({}), the log ends at v{} at {} ({})",
                head.version,
                head.position,
                hex::encode(head.hash),
                chain.version,
                chain.position,
                hex::encode(chain.hash)
            ),
        )));
    }
    Ok(None)
}

/// Verifies one stream up to `durable`.
pub fn verify_stream(
    trees: &Trees,
    stream: &str,
    durable: u64,
) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport {
        durable_position: durable,
        ..VerifyReport::default()
    };
    let mut chain: Option<Chain> = None;
    for entry in trees
        .streams
        .scan_prefix(crate::layout::stream_prefix(stream))
    {
        let (key, value) = entry.map_err(io("verify stream index"))?;
        let Some(position) = decode_u64(&value) else {
            report.problem = Some(problem(
                0,
                Some(stream),
                ProblemKind::StreamIndexMismatch,
                "malformed position in the streams index",
            ));
            return Ok(report);
        };
        if position > durable {
            break;
        }
        let version = split_stream_key(&key).map(|(_, v)| v);
        let bytes = trees.log.get(position)?;
        let Some(bytes) = bytes else {
            report.problem = Some(problem(
                position,
                Some(stream),
                ProblemKind::StreamIndexMismatch,
                format!("v{version:?} points at a missing log entry"),
            ));
            return Ok(report);
        };
        let event = match codec::decode(position, &bytes) {
            Ok(event) => event,
            Err(e) => {
                report.problem = Some(problem(
                    position,
                    Some(stream),
                    ProblemKind::Undecodable,
                    e.to_string(),
                ));
                return Ok(report);
            }
        };
        if event.stream_id != stream || Some(event.version) != version {
            report.problem = Some(problem(
                position,
                Some(stream),
                ProblemKind::StreamIndexMismatch,
                format!(
                    "index says v{version:?}, the log holds `{}` v{}",
                    event.stream_id, event.version
                ),
            ));
            return Ok(report);
        }
        if let Some(p) = check_event(trees, &event, chain)? {
            report.problem = Some(p);
            return Ok(report);
        }
        chain = Some(Chain {
            version: event.version,
            hash: event.hash,
            position,
        });
        report.events_checked += 1;
    }
    report.streams_checked = u64::from(chain.is_some());
    report.problem = check_head(trees, stream, chain, durable)?;
    Ok(report)
}
