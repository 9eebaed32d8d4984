//! The SLA breach checker: finds SLA targets whose due time has passed (the escalation
//! projection's due index, [`escalation::due_before`]), lets the case aggregate decide
//! whether a breach is to be recorded (its `BreachSla` command, so the case's own SLA policy
//! and rules apply), and appends the `SlaBreached` event it returns.
//!
//! Exactly once per target per case, across retries, restarts and concurrent checkers:
//! - the decision comes from the case stream itself, folded fresh before each append, and the
//!   aggregate refuses a second breach of a target (`ALREADY_BREACHED`), so a lagging
//!   projection only costs a re-check;
//! - the append expects the version the decision was made at (`ExpectedVersion::Exact`): if
//!   someone else wrote meanwhile the checker reloads and decides again, once, and otherwise
//!   leaves the target for the next round;
//! - the event id is derived from (case id, target) ([`breach_event_id`]), so two checkers
//!   racing on the same version cannot both succeed, and a stored breach is recognised by id;
//!   each round's events carry the round's correlation id, so a racing checker's identical
//!   append is refused (`IDEMPOTENCY_MISMATCH`) rather than acknowledged as a repeat.
//!
//! [`SlaChecker::check_once`] runs one round at a given time (tests drive it directly);
//! [`spawn`] runs rounds on a tokio interval with an injected clock.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sijil_domain::case::CaseAggregate;
use sijil_domain::{Aggregate, CaseCommand, CaseId, DomainEvent, SlaTarget, StreamRef, Timestamp};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{Direction, ExpectedVersion, NewEvent};
use crate::store::Store;

use super::codec::{decode_event, encode_event};
use super::error::ProjectionError;
use super::escalation::{self, DueTarget};
use super::runner::Projections;

/// The actor recorded on breach events.
pub const ACTOR: &str = "system:sla-checker";
/// Due targets read from the projection per scan.
const BATCH: usize = 500;
/// Most due targets one round looks at (the rest wait for the next round).
const MAX_PER_ROUND: usize = 20_000;
/// Events read from a case stream per read.
const STREAM_CHUNK: usize = 1_000;
/// The shortest interval [`spawn`] accepts.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// What can stop a round of the checker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlaError {
    /// Reading the escalation projection, or decoding a case event, failed.
    #[error("SLA checker: {0}")]
    Projection(#[from] ProjectionError),
    /// The event store failed.
    #[error("SLA checker: event store: {0}")]
    Store(#[from] StoreError),
}

impl SlaError {
    /// A stable, upper-case code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            SlaError::Projection(e) => e.code(),
            SlaError::Store(e) => e.code(),
        }
    }
}

/// The id of the breach event of `target` on `case`: a UUID v7 carrying the case id's
/// timestamp, with the rest taken from SHA-256 of (case id, target). The same inputs always
/// give the same id.
pub fn breach_event_id(case: CaseId, target: SlaTarget) -> Uuid {
    let code: u8 = match target {
        SlaTarget::FirstResponse => 0,
        SlaTarget::Resolution => 1,
    };
    let digest = Sha256::new()
        .chain_update(b"sijil/sla-breach/v1")
        .chain_update(case.as_uuid().as_bytes())
        .chain_update([code])
        .finalize();
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&case.as_uuid().as_bytes()[..6]);
    bytes[6..].copy_from_slice(&digest[..10]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// What happened to one due target.
enum Outcome {
    /// A breach event was appended.
    Recorded,
    /// Nothing to record (met, not due, already breached, closed, or written by another).
    Skipped,
    /// The stream kept changing; try next round.
    Contended,
}

/// Records SLA breaches for one store, reading due targets from its running projections.
#[derive(Clone, Debug)]
pub struct SlaChecker {
    store: Store,
    projections: Projections,
}

impl SlaChecker {
    /// A checker over `store`, reading the escalation projection of `projections`.
    pub fn new(store: Store, projections: Projections) -> SlaChecker {
        SlaChecker { store, projections }
    }

    /// One round at `now`: records every breach due before `now` that the case aggregate
    /// accepts, and returns how many breach events were appended.
    pub async fn check_once(&self, now: Timestamp) -> Result<usize, SlaError> {
        let mut recorded = 0;
        let mut seen = 0;
        let mut after: Option<DueTarget> = None;
        // Groups this round's events; it also makes two checkers' otherwise identical appends
        // differ, so the store refuses the second instead of acknowledging it as a repeat,
        // and each breach is counted by the checker that stored it.
        let round = Uuid::now_v7();
        loop {
            let batch = self.projections.read("escalation", |tree| {
                escalation::due_before(tree, now, after.as_ref(), BATCH)
            })??;
            for due in &batch {
                match self.breach(due, now, round).await? {
                    Outcome::Recorded => recorded += 1,
                    Outcome::Skipped => {}
                    Outcome::Contended => tracing::debug!(
                        case = %due.case_id,
                        "case stream changed twice during the SLA check; retrying next round"
                    ),
                }
            }
            seen += batch.len();
            if batch.len() < BATCH || seen >= MAX_PER_ROUND {
                break;
            }
            after = batch.last().copied();
        }
        Ok(recorded)
    }

    /// Folds the case stream; returns its state and version, or `None` when the stream is
    /// empty or belongs to another workspace than the due entry says.
    fn load(
        &self,
        stream: &str,
        due: &DueTarget,
    ) -> Result<Option<(sijil_domain::case::State, u64)>, SlaError> {
        let mut state = sijil_domain::case::State::default();
        let mut version = 0;
        loop {
            let events =
                self.store
                    .read_stream(stream, version + 1, Direction::Forward, STREAM_CHUNK)?;
            let done = events.len() < STREAM_CHUNK;
            for recorded in &events {
                if recorded.workspace_id != due.workspace.as_uuid() {
                    tracing::warn!(
                        stream,
                        "case stream belongs to another workspace than its escalation row"
                    );
                    return Ok(None);
                }
                let event: DomainEvent = decode_event(recorded)?;
                state = CaseAggregate::evolve(state, &event);
                version = recorded.version;
            }
            if done || events.is_empty() {
                break;
            }
        }
        Ok((version > 0).then_some((state, version)))
    }

    async fn breach(
        &self,
        due: &DueTarget,
        now: Timestamp,
        round: Uuid,
    ) -> Result<Outcome, SlaError> {
        let stream = StreamRef::Case(due.case_id).stream_id();
        let event_id = breach_event_id(due.case_id, due.target);
        if self.store.event_position(event_id)?.is_some() {
            return Ok(Outcome::Skipped);
        }
        for attempt in 0..2 {
            let Some((state, version)) = self.load(&stream, due)? else {
                return Ok(Outcome::Skipped);
            };
            let command = CaseCommand::BreachSla {
                target: due.target,
                now,
            };
            let events = match CaseAggregate::decide(&state, command) {
                Ok(events) => events,
                // Met in time, not due yet, already breached, resolved or closed: the
                // projection is behind the stream; nothing to record.
                Err(refusal) => {
                    tracing::debug!(case = %due.case_id, code = refusal.code(), "no breach to record");
                    return Ok(Outcome::Skipped);
                }
            };
            let mut batch = Vec::with_capacity(events.len());
            for (index, event) in events.iter().enumerate() {
                batch.push(NewEvent {
                    // The aggregate returns one event; further ones would get derived ids.
                    event_id: if index == 0 {
                        event_id
                    } else {
                        breach_event_id_nth(event_id, index)
                    },
                    workspace_id: due.workspace.as_uuid(),
                    event_type: event.event_type().to_owned(),
                    schema_version: event.schema_version(),
                    occurred_at: now.millis(),
                    actor: ACTOR.to_owned(),
                    on_behalf_of: None,
                    correlation_id: Some(round),
                    causation_id: None,
                    payload: encode_event(event),
                });
            }
            if batch.is_empty() {
                return Ok(Outcome::Skipped);
            }
            match self
                .store
                .append(&stream, ExpectedVersion::Exact(version), batch)
                .await
            {
                Ok(_) => return Ok(Outcome::Recorded),
                Err(StoreError::Conflict { .. }) if attempt == 0 => continue,
                Err(StoreError::Conflict { .. }) => return Ok(Outcome::Contended),
                // The id is taken: another checker recorded this breach.
                Err(StoreError::IdempotencyMismatch { .. }) => return Ok(Outcome::Skipped),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Outcome::Contended)
    }
}

/// A further id derived from a breach event id (for a decision returning several events).
fn breach_event_id_nth(base: Uuid, index: usize) -> Uuid {
    let digest = Sha256::new()
        .chain_update(base.as_bytes())
        .chain_update(index.to_be_bytes())
        .finalize();
    let mut bytes = *base.as_bytes();
    bytes[10..].copy_from_slice(&digest[..6]);
    Uuid::from_bytes(bytes)
}

/// Runs the checker every `interval` (at least 10 ms) at the time `clock` gives, logging
/// failures and carrying on. The task holds the projections: abort the handle to stop it.
pub fn spawn<C>(
    store: Store,
    projections: Projections,
    interval: Duration,
    clock: C,
) -> JoinHandle<()>
where
    C: Fn() -> Timestamp + Send + Sync + 'static,
{
    let clock = Arc::new(clock);
    tokio::spawn(async move {
        let checker = SlaChecker::new(store, projections);
        let mut ticker = tokio::time::interval(interval.max(MIN_INTERVAL));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match checker.check_once(clock()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(breaches = n, "recorded SLA breaches"),
                Err(e) => tracing::warn!(error = %e, code = e.code(), "SLA check failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breach_ids_are_deterministic_v7_and_distinct() -> Result<(), sijil_domain::DomainError> {
        let case = CaseId::new(Uuid::now_v7())?;
        let other = CaseId::new(Uuid::now_v7())?;
        let a = breach_event_id(case, SlaTarget::FirstResponse);
        assert_eq!(a, breach_event_id(case, SlaTarget::FirstResponse));
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.as_bytes()[..6], case.as_uuid().as_bytes()[..6]);
        assert_ne!(a, breach_event_id(case, SlaTarget::Resolution));
        assert_ne!(a, breach_event_id(other, SlaTarget::FirstResponse));
        let nth = breach_event_id_nth(a, 1);
        assert_ne!(nth, a);
        assert_eq!(nth.get_version_num(), 7);
        Ok(())
    }
}
