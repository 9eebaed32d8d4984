//! Owns integrity verification of the PostgreSQL log: in one repeatable-read
//! snapshot, walks `sijil_events` in position order and checks positions
//! 1..=head without gaps, each stream's versions 1, 2, 3, every `prev_hash`
//! against the previous event's hash, and every hash against
//! [`compute_hash`]. Reports the first problem, like the sled verifier.

use std::collections::HashMap;

use tokio_postgres::IsolationLevel;

use crate::canonical::compute_hash;
use crate::error::StoreError;
use crate::verify::{ProblemKind, VerifyProblem, VerifyReport};

use super::rows::{self, non_negative};
use super::{clamp, pg_err};

/// Rows fetched per query while walking.
const PAGE: i64 = 1000;

fn problem(
    position: u64,
    stream_id: Option<&str>,
    kind: ProblemKind,
    detail: String,
) -> Option<VerifyProblem> {
    Some(VerifyProblem {
        position,
        stream_id: stream_id.map(str::to_owned),
        kind,
        detail,
    })
}

/// Verifies the whole log; see the module docs.
pub async fn verify_all(
    client: &mut deadpool_postgres::Object,
) -> Result<VerifyReport, StoreError> {
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg_err("begin verify"))?;
    let head_row = tx
        .query_one("SELECT position FROM sijil_log_head WHERE id", &[])
        .await
        .map_err(pg_err("read head"))?;
    let head = non_negative(rows::get(&head_row, 0, 0)?, 0, "log head")?;
    let mut report = VerifyReport {
        durable_position: head,
        ..VerifyReport::default()
    };
    let page = tx
        .prepare(&format!(
            "SELECT {} FROM sijil_events WHERE position > $1 ORDER BY position LIMIT $2",
            rows::COLUMNS
        ))
        .await
        .map_err(pg_err("prepare verify"))?;
    // Per stream: last version and hash.
    let mut chains: HashMap<String, (u64, [u8; 32])> = HashMap::new();
    let mut expected_position = 1u64;
    'walk: loop {
        let after = clamp(expected_position - 1);
        let batch = tx
            .query(&page, &[&after, &PAGE])
            .await
            .map_err(pg_err("read log"))?;
        if batch.is_empty() {
            break;
        }
        for row in &batch {
            let event = rows::decode(row)?;
            let at = event.position;
            let stream = event.stream_id.as_str();
            if at != expected_position {
                report.problem = problem(
                    expected_position,
                    None,
                    ProblemKind::PositionGap,
                    format!("position {expected_position} is missing (next is {at})"),
                );
                break 'walk;
            }
            if at > head {
                report.problem = problem(
                    at,
                    Some(stream),
                    ProblemKind::MetaMismatch,
                    format!("log head says {head}, but position {at} is stored"),
                );
                break 'walk;
            }
            let (last_version, last_hash) = chains.get(stream).copied().unwrap_or((0, [0; 32]));
            if event.version != last_version + 1 {
                report.problem = problem(
                    at,
                    Some(stream),
                    ProblemKind::VersionGap,
                    format!("version {} follows version {last_version}", event.version),
                );
                break 'walk;
            }
            if event.prev_hash != last_hash {
                report.problem = problem(
                    at,
                    Some(stream),
                    ProblemKind::BrokenChain,
                    format!(
                        "prev_hash of v{} is not the hash of v{last_version}",
                        event.version
                    ),
                );
                break 'walk;
            }
            if compute_hash(&event) != event.hash {
                report.problem = problem(
                    at,
                    Some(stream),
                    ProblemKind::HashMismatch,
                    format!(
                        "stored hash of v{} does not match its content",
                        event.version
                    ),
                );
                break 'walk;
            }
            chains.insert(event.stream_id.clone(), (event.version, event.hash));
            report.events_checked += 1;
            expected_position += 1;
        }
    }
    if report.problem.is_none() && expected_position != head + 1 {
        report.problem = problem(
            expected_position,
            None,
            ProblemKind::LogTruncated,
            format!(
                "the log ends at {}, but the head says {head}",
                expected_position - 1
            ),
        );
    }
    report.streams_checked = chains.len() as u64;
    tx.commit().await.map_err(pg_err("end verify"))?;
    Ok(report)
}
