//! Failover of the PostgreSQL event log ([`PgLog`]) to a synchronous
//! standby: the primary is killed with `kill -9` in the middle of a write
//! burst, the standby is promoted, and every acknowledged event must be
//! there at its acknowledged position with its event id, stream and version;
//! positions stay gap-free, `verify` passes and the chains continue on the
//! promoted standby. A negative control shows that the same check catches a
//! lost acknowledged event when replication is asynchronous and the standby
//! lags.

mod common;
mod pg_support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::events;
use pg_support::PgReplicaPair;
use sijil_store::pg::PgLog;
use sijil_store::{AppendResult, Direction, ExpectedVersion, RecordedEvent};
use uuid::Uuid;

/// Concurrent writers, each on its own stream.
const WRITERS: usize = 16;
/// Events that must be acknowledged before the primary is killed.
const MIN_ACKED_BEFORE_KILL: u64 = 500;
/// The burst runs at least this long before the kill.
const MIN_BURST: Duration = Duration::from_secs(1);
/// The burst must reach [`MIN_ACKED_BEFORE_KILL`] within this.
const MAX_BURST: Duration = Duration::from_secs(60);
/// An append without an answer for this long counts as failed.
const APPEND_TIMEOUT: Duration = Duration::from_secs(30);

/// One acknowledged append.
#[derive(Clone, Debug)]
struct Ack {
    stream: String,
    ids: Vec<Uuid>,
    result: AppendResult,
}

/// An append that failed: it may or may not have committed.
#[derive(Clone, Debug)]
struct Unknown {
    stream: String,
    ids: Vec<Uuid>,
    error: String,
    /// Whether the primary had been (about to be) killed when it failed.
    after_kill: bool,
}

/// What one writer did.
#[derive(Clone, Debug)]
struct WriterRun {
    stream: String,
    acks: Vec<Ack>,
    failed: Option<Unknown>,
}

impl WriterRun {
    fn new(stream: &str) -> WriterRun {
        WriterRun {
            stream: stream.to_owned(),
            acks: Vec::new(),
            failed: None,
        }
    }

    fn acknowledged_events(&self) -> u64 {
        self.acks.iter().map(|a| a.ids.len() as u64).sum()
    }

    /// Appends `n` events expecting the stream at its last acknowledged
    /// version; records the acknowledgement or the failure.
    async fn append_next(&mut self, log: &PgLog, n: usize, after_kill: &AtomicBool) -> bool {
        let version = self.acks.last().map_or(0, |a| a.result.next_version - 1);
        let batch = events("Burst", n);
        let ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
        let outcome = tokio::time::timeout(
            APPEND_TIMEOUT,
            log.append(&self.stream, ExpectedVersion::Exact(version), batch),
        )
        .await;
        let error = match outcome {
            Ok(Ok(result)) => {
                assert_eq!(
                    result.next_version,
                    version + n as u64 + 1,
                    "{}: acknowledged at the wrong version",
                    self.stream
                );
                assert_eq!(
                    result.last_position + 1 - result.first_position,
                    n as u64,
                    "{}: acknowledged positions do not match the batch",
                    self.stream
                );
                self.acks.push(Ack {
                    stream: self.stream.clone(),
                    ids,
                    result,
                });
                return true;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {APPEND_TIMEOUT:?}"),
        };
        self.failed = Some(Unknown {
            stream: self.stream.clone(),
            ids,
            error,
            after_kill: after_kill.load(Ordering::SeqCst),
        });
        false
    }
}

/// Appends batches of 1 to 3 events to `stream` until an append fails or
/// `stop` is set, counting acknowledged events in `acked`.
async fn write_until_failure(
    log: PgLog,
    stream: String,
    acked: Arc<AtomicU64>,
    killed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> WriterRun {
    let mut run = WriterRun::new(&stream);
    let mut round = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let n = 1 + round % 3;
        round += 1;
        if !run.append_next(&log, n, &killed).await {
            break;
        }
        acked.fetch_add(n as u64, Ordering::SeqCst);
    }
    run
}

/// What [`check_acknowledged`] found.
#[derive(Debug)]
struct Checked {
    head: u64,
    acknowledged: u64,
    /// Events of failed (unanswered) appends that committed anyway.
    unacknowledged_landed: u64,
}

/// Checks `log` against what `runs` were told: positions 1..=head without
/// gaps and nothing beyond; every acknowledged event at its acknowledged
/// position with its event id, stream and version; every other stored
/// event from a failed append, whose batch landed whole; `verify` clean.
/// Returns the first problem found.
async fn check_acknowledged(log: &PgLog, runs: &[WriterRun]) -> Result<Checked, String> {
    let head = log.head().await.map_err(|e| format!("read head: {e}"))?;
    let mut stored: Vec<RecordedEvent> = Vec::new();
    while (stored.len() as u64) < head {
        let from = stored.len() as u64 + 1;
        let page = log
            .read_all_raw(from, head, 1000)
            .await
            .map_err(|e| format!("read log from {from}: {e}"))?;
        if page.is_empty() {
            return Err(format!("positions {from}..={head} are missing"));
        }
        for event in page {
            let expected = stored.len() as u64 + 1;
            if event.position != expected {
                return Err(format!(
                    "gap: position {} follows {}",
                    event.position,
                    expected - 1
                ));
            }
            stored.push(event);
        }
    }
    let beyond = log
        .read_all_raw(head + 1, u64::MAX, 1)
        .await
        .map_err(|e| format!("read beyond head: {e}"))?;
    if let Some(event) = beyond.first() {
        return Err(format!(
            "event at position {} beyond head {head}",
            event.position
        ));
    }

    let mut acknowledged_ids = HashSet::new();
    for ack in runs.iter().flat_map(|r| &r.acks) {
        let n = ack.ids.len() as u64;
        for (k, id) in ack.ids.iter().enumerate() {
            let position = ack.result.first_position + k as u64;
            let version = ack.result.next_version - n + k as u64;
            let event = position
                .checked_sub(1)
                .and_then(|i| stored.get(usize::try_from(i).ok()?))
                .ok_or_else(|| {
                    format!(
                        "acknowledged event {id} ({}@{version}) at position {position} is \
                         missing: head is {head}",
                        ack.stream
                    )
                })?;
            if event.event_id != *id || event.stream_id != ack.stream || event.version != version {
                return Err(format!(
                    "position {position} holds {} ({}@{}) but {id} ({}@{version}) was \
                     acknowledged there",
                    event.event_id, event.stream_id, event.version, ack.stream
                ));
            }
            acknowledged_ids.insert(*id);
        }
    }

    let by_id: HashMap<Uuid, &RecordedEvent> = stored.iter().map(|e| (e.event_id, e)).collect();
    let mut unknown_ids = HashSet::new();
    let mut unacknowledged_landed = 0;
    for unknown in runs.iter().filter_map(|r| r.failed.as_ref()) {
        let landed: Vec<&RecordedEvent> = unknown
            .ids
            .iter()
            .filter_map(|id| by_id.get(id).copied())
            .collect();
        if !landed.is_empty() && landed.len() != unknown.ids.len() {
            return Err(format!(
                "{} of {} events of a failed append to {} landed",
                landed.len(),
                unknown.ids.len(),
                unknown.stream
            ));
        }
        if let Some(wrong) = landed.iter().find(|e| e.stream_id != unknown.stream) {
            return Err(format!(
                "event {} of a failed append to {} landed in {}",
                wrong.event_id, unknown.stream, wrong.stream_id
            ));
        }
        unacknowledged_landed += landed.len() as u64;
        unknown_ids.extend(unknown.ids.iter().copied());
    }
    if let Some(stranger) = stored
        .iter()
        .find(|e| !acknowledged_ids.contains(&e.event_id) && !unknown_ids.contains(&e.event_id))
    {
        return Err(format!(
            "position {} holds {} ({}@{}), which no writer appended",
            stranger.position, stranger.event_id, stranger.stream_id, stranger.version
        ));
    }

    let report = log.verify().await.map_err(|e| format!("verify: {e}"))?;
    if !report.is_ok() || report.events_checked != head {
        return Err(format!("verify: {report:?} (head {head})"));
    }
    Ok(Checked {
        head,
        acknowledged: acknowledged_ids.len() as u64,
        unacknowledged_landed,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_of_the_primary_and_promotion_of_its_sync_standby() {
    // Given a primary with a synchronous standby and a log on the primary
    let pair = PgReplicaPair::start_sync();
    let log = PgLog::connect(&pair.create_database("t"))
        .await
        .expect("connect to the primary");

    // When 16 writers append small batches to their own streams
    let acked = Arc::new(AtomicU64::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(write_until_failure(
                log.clone(),
                format!("burst-{w}"),
                acked.clone(),
                killed.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    while acked.load(Ordering::SeqCst) < MIN_ACKED_BEFORE_KILL || started.elapsed() < MIN_BURST {
        if started.elapsed() > MAX_BURST || writers.iter().any(|w| w.is_finished()) {
            stop.store(true, Ordering::SeqCst);
            panic!(
                "the burst stopped early or acknowledged only {} events in {:?}",
                acked.load(Ordering::SeqCst),
                started.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // And the primary's postmaster gets SIGKILL in the middle of the burst
    let acked_before_kill = acked.load(Ordering::SeqCst);
    let burst = started.elapsed();
    killed.store(true, Ordering::SeqCst);
    tokio::task::block_in_place(|| pair.kill_primary_hard());

    // Then every writer, still writing at the kill, ends with an error
    let mut runs = Vec::new();
    for writer in writers {
        runs.push(writer.await.expect("writer task"));
    }
    for run in &runs {
        let failed = run.failed.as_ref().unwrap_or_else(|| {
            panic!(
                "{} stopped without an error: it was not writing",
                run.stream
            )
        });
        assert!(
            failed.after_kill,
            "{} failed before the kill: {}",
            run.stream, failed.error
        );
        assert!(
            !run.acks.is_empty(),
            "{} got no acknowledgement before the kill",
            run.stream
        );
    }
    let acknowledged: u64 = runs.iter().map(WriterRun::acknowledged_events).sum();
    assert!(acknowledged >= acked_before_kill && acked_before_kill >= MIN_ACKED_BEFORE_KILL);
    log.close();

    // When the standby is promoted and a new log connects to it
    tokio::task::block_in_place(|| pair.promote_standby());
    let promoted = PgLog::connect(&pair.standby_url("t"))
        .await
        .expect("connect to the promoted standby");

    // Then every acknowledged event is there, in place, and verify passes
    let checked = check_acknowledged(&promoted, &runs)
        .await
        .unwrap_or_else(|problem| panic!("after failover: {problem}"));
    assert_eq!(checked.acknowledged, acknowledged);
    assert_eq!(
        checked.head,
        checked.acknowledged + checked.unacknowledged_landed
    );

    // And the promoted standby takes new appends that continue every chain
    for run in &runs {
        let version = promoted
            .stream_version(&run.stream)
            .await
            .expect("stream version")
            .expect("the stream exists");
        let last = promoted
            .read_stream(&run.stream, version, Direction::Forward, 1)
            .await
            .expect("read the stream's last event");
        let result = promoted
            .append(
                &run.stream,
                ExpectedVersion::Exact(version),
                events("AfterFailover", 2),
            )
            .await
            .expect("append to the promoted standby");
        assert_eq!(result.next_version, version + 3);
        assert!(result.first_position > checked.head);
        let new = promoted
            .read_stream(&run.stream, version + 1, Direction::Forward, 10)
            .await
            .expect("read the new events");
        assert_eq!(new.len(), 2);
        assert_eq!(new[0].prev_hash, last[0].hash);
        assert_eq!(new[1].prev_hash, new[0].hash);
    }
    let head = promoted.head().await.expect("head");
    assert_eq!(head, checked.head + 2 * WRITERS as u64);
    let report = promoted.verify().await.expect("verify");
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events_checked, head);
    let errors: HashSet<&str> = runs
        .iter()
        .filter_map(|r| r.failed.as_ref().map(|f| f.error.as_str()))
        .collect();
    println!(
        "failover: {acked_before_kill} events acknowledged in {burst:?} before the kill, \
         {acknowledged} in all, {} of failed appends landed, head {}; writers saw {errors:?}",
        checked.unacknowledged_landed, checked.head
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_catches_acknowledged_events_lost_with_a_lagging_async_standby() {
    // Given a primary with an asynchronous standby that has replayed the
    // first acknowledged events
    let pair = PgReplicaPair::start_async();
    let log = PgLog::connect(&pair.create_database("t"))
        .await
        .expect("connect to the primary");
    let never_killed = AtomicBool::new(false);
    let mut run = WriterRun::new("control");
    for n in [1, 2, 3] {
        assert!(run.append_next(&log, n, &never_killed).await, "{run:?}");
    }
    tokio::task::block_in_place(|| pair.wait_for_catch_up());
    let replicated = WriterRun {
        acks: run.acks.clone(),
        ..run.clone()
    };

    // When the standby stops receiving, the primary acknowledges more
    // events, is killed with SIGKILL, and the standby is promoted
    tokio::task::block_in_place(|| pair.detach_standby());
    for n in [1, 2, 3] {
        assert!(run.append_next(&log, n, &never_killed).await, "{run:?}");
    }
    log.close();
    tokio::task::block_in_place(|| {
        pair.kill_primary_hard();
        pair.promote_standby();
    });
    let promoted = PgLog::connect(&pair.standby_url("t"))
        .await
        .expect("connect to the promoted standby");

    // Then the check reports the lost acknowledged events
    let problem = check_acknowledged(&promoted, std::slice::from_ref(&run))
        .await
        .expect_err("acknowledged events the standby never received must be missing");
    assert!(problem.contains("is missing"), "{problem}");
    println!("negative control: {problem}");
    // While the events it had replayed pass the same check
    let checked = check_acknowledged(&promoted, &[replicated])
        .await
        .unwrap_or_else(|problem| panic!("replicated events: {problem}"));
    assert_eq!((checked.head, checked.acknowledged), (6, 6));
}
