//! The PostgreSQL event log ([`PgLog`]) against a throw-away server:
//! round trips, optimistic concurrency under contention, idempotency,
//! gap-free global order under concurrent writers, hash-chain verification,
//! migrations, subscriptions (catch-up, live, woken by NOTIFY across nodes)
//! and read-your-writes across two nodes on one database.

mod common;
mod pg_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{event, events, Note};
use pg_support::PgServer;
use sijil_store::canonical::compute_hash;
use sijil_store::pg::{PgConfig, PgLog};
use sijil_store::{Direction, EventLog, ExpectedVersion, ProblemKind, StoreError};

async fn fresh(server: &PgServer, db: &str) -> PgLog {
    PgLog::connect(&server.create_database(db))
        .await
        .expect("connect to PostgreSQL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_then_read_round_trips_the_envelope() {
    // Given an empty log
    let server = PgServer::start();
    let log = fresh(&server, "t").await;
    assert_eq!(log.head().await.unwrap(), 0);
    assert_eq!(log.stream_version("s-1").await.unwrap(), None);

    // When three events go to one stream and one to another
    let mut batch = events("Noted", 3);
    batch[1].on_behalf_of = Some("user:1".into());
    batch[2].correlation_id = Some(uuid::Uuid::now_v7());
    let first = log
        .append("s-1", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    let second = log
        .append("s-2", ExpectedVersion::Any, events("Other", 1))
        .await
        .unwrap();

    // Then positions and versions are assigned in order
    assert_eq!(
        (
            first.first_position,
            first.last_position,
            first.next_version
        ),
        (1, 3, 4)
    );
    assert_eq!(
        (
            second.first_position,
            second.last_position,
            second.next_version
        ),
        (4, 4, 2)
    );
    assert_eq!(log.head().await.unwrap(), 4);
    assert_eq!(log.stream_version("s-1").await.unwrap(), Some(3));

    // And the stream reads back exactly, with a valid hash chain
    let read = log
        .read_stream("s-1", 1, Direction::Forward, 10)
        .await
        .unwrap();
    assert_eq!(read.len(), 3);
    let mut prev = [0u8; 32];
    for (i, (stored, new)) in read.iter().zip(&batch).enumerate() {
        assert_eq!(stored.position, i as u64 + 1);
        assert_eq!(stored.version, i as u64 + 1);
        assert_eq!(stored.stream_id, "s-1");
        assert_eq!(stored.event_id, new.event_id);
        assert_eq!(stored.workspace_id, new.workspace_id);
        assert_eq!(stored.event_type, new.event_type);
        assert_eq!(stored.schema_version, new.schema_version);
        assert_eq!(stored.occurred_at, new.occurred_at);
        assert_eq!(stored.actor, new.actor);
        assert_eq!(stored.on_behalf_of, new.on_behalf_of);
        assert_eq!(stored.correlation_id, new.correlation_id);
        assert_eq!(stored.causation_id, new.causation_id);
        assert_eq!(stored.payload, new.payload);
        assert_eq!(stored.prev_hash, prev);
        assert_eq!(stored.hash, compute_hash(stored));
        assert!(stored.recorded_at > 0);
        prev = stored.hash;
    }
    let backward = log
        .read_stream("s-1", u64::MAX, Direction::Backward, 2)
        .await
        .unwrap();
    assert_eq!(
        backward.iter().map(|e| e.version).collect::<Vec<_>>(),
        [3, 2]
    );
    let from_two = log
        .read_stream("s-1", 2, Direction::Forward, 1)
        .await
        .unwrap();
    assert_eq!(from_two[0].version, 2);

    // And the global log reads in position order, optionally by type
    let all = log.read_all(1, 100, None).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let others = log
        .read_all(1, 100, Some(&["Other".to_owned()]))
        .await
        .unwrap();
    assert_eq!(others.iter().map(|e| e.position).collect::<Vec<_>>(), [4]);
    assert!(log.read_all(5, 100, None).await.unwrap().is_empty());

    // And invalid input is refused before touching the database
    let err = log
        .append("bad stream", ExpectedVersion::Any, events("X", 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "VALIDATION");
    assert!(log.verify().await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exact_appends_have_exactly_one_winner_per_version() {
    // Given 64 writers on two nodes racing on one stream, round after round
    let server = PgServer::start();
    let url = server.create_database("t");
    let log = PgLog::connect(&url).await.unwrap();
    let other_node = PgLog::connect(&url).await.unwrap();
    const WRITERS: usize = 64;
    const ROUNDS: u64 = 5;
    for round in 0..ROUNDS {
        // When every writer expects the stream at `round`
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let log = if w % 2 == 0 { &log } else { &other_node }.clone();
            tasks.push(tokio::spawn(async move {
                log.append(
                    "contended",
                    ExpectedVersion::Exact(round),
                    events("Raced", 1),
                )
                .await
            }));
        }
        let mut winners = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(result) => {
                    winners += 1;
                    assert_eq!(result.next_version, round + 2);
                }
                Err(StoreError::Conflict {
                    actual, expected, ..
                }) => {
                    assert_eq!(expected, ExpectedVersion::Exact(round));
                    assert_eq!(actual, Some(round + 1));
                }
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        // Then exactly one of them wrote
        assert_eq!(winners, 1, "round {round}");
    }
    assert_eq!(log.stream_version("contended").await.unwrap(), Some(ROUNDS));
    assert_eq!(log.head().await.unwrap(), ROUNDS);
    let report = log.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events_checked, ROUNDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retries_return_the_original_result_and_mismatches_are_refused() {
    let server = PgServer::start();
    let log = fresh(&server, "t").await;
    let batch = events("Noted", 3);
    let original = log
        .append("s-1", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    log.append("s-1", ExpectedVersion::Any, events("Later", 1))
        .await
        .unwrap();

    // When the same batch is re-sent (even with a now-stale expectation)
    let retry = log
        .append("s-1", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    // Then it gets the original result and nothing is written
    assert_eq!(retry, original);
    assert_eq!(log.head().await.unwrap(), 4);

    // When one event's content differs
    let mut changed = batch.clone();
    changed[1].payload = common::msgpack(&Note { n: 99 });
    let err = log
        .append("s-1", ExpectedVersion::Any, changed)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::IdempotencyMismatch {
            event_id: batch[1].event_id
        }
    );

    // When the same ids go to another stream
    let err = log
        .append("s-2", ExpectedVersion::Any, batch.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "IDEMPOTENCY_MISMATCH");

    // When a stored id is mixed with new ones
    let mut mixed = events("Noted", 2);
    mixed.push(batch[0].clone());
    let err = log
        .append("s-1", ExpectedVersion::Any, mixed)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::IdempotencyMismatch {
            event_id: batch[0].event_id
        }
    );

    // When only a part of the batch is re-sent
    let err = log
        .append("s-1", ExpectedVersion::Any, batch[1..].to_vec())
        .await;
    // Then it is the original result for exactly those events
    let partial = err.unwrap();
    assert_eq!((partial.first_position, partial.last_position), (2, 3));

    // And nothing of the refused appends was written
    assert_eq!(log.head().await.unwrap(), 4);
    assert!(log.verify().await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_a_gap_while_many_writers_append() {
    // Given 32 writers on two nodes appending batches of 1..=3 to their own
    // streams
    let server = PgServer::start();
    let url = server.create_database("t");
    let log = PgLog::connect(&url).await.unwrap();
    let other_node = PgLog::connect(&url).await.unwrap();
    let reader_log = PgLog::connect(&url).await.unwrap();
    const WRITERS: usize = 32;
    const APPENDS: usize = 15;
    let done = Arc::new(AtomicBool::new(false));

    // And a reader polling the global log as fast as it can
    let reader = {
        let done = Arc::clone(&done);
        let log = reader_log.clone();
        tokio::spawn(async move {
            let mut cursor = 1u64;
            let mut seen = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let batch = log.read_all(cursor, 50, None).await.unwrap();
                for event in &batch {
                    // Then every read continues exactly where the last ended
                    assert_eq!(event.position, cursor, "reader skipped a position");
                    cursor += 1;
                    seen.push(event.event_id);
                }
                if finished && batch.is_empty() {
                    return seen;
                }
            }
        })
    };
    // And a subscription following live
    let subscriber = {
        let mut sub = reader_log.subscribe(1, None);
        tokio::spawn(async move {
            let mut expected = 1u64;
            let mut seen = Vec::new();
            while seen.len() < WRITERS * APPENDS * 2 {
                let event = tokio::time::timeout(Duration::from_secs(60), sub.next())
                    .await
                    .expect("subscription stalled")
                    .expect("subscription ended")
                    .expect("subscription error");
                assert_eq!(event.position, expected, "subscription skipped a position");
                expected += 1;
                seen.push(event.event_id);
            }
            seen
        })
    };

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let log = if w % 2 == 0 { &log } else { &other_node }.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for a in 0..APPENDS {
                // 1, 2 or 3 events: 2 per append on average.
                let n = [1, 2, 3][(w + a) % 3];
                let batch = events("Burst", n);
                let result = log
                    .append(&format!("w-{w}"), ExpectedVersion::Any, batch.clone())
                    .await
                    .unwrap();
                assert_eq!(result.last_position - result.first_position + 1, n as u64);
                for (i, e) in batch.iter().enumerate() {
                    acked.push((result.first_position + i as u64, e.event_id));
                }
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let followed = subscriber.await.unwrap();

    // Then positions are exactly 1..=N and the readers saw every event
    acked.sort();
    let total = acked.len();
    assert_eq!(total, WRITERS * APPENDS * 2);
    let positions: Vec<u64> = acked.iter().map(|(p, _)| *p).collect();
    assert_eq!(positions, (1..=total as u64).collect::<Vec<_>>());
    let in_order: Vec<uuid::Uuid> = acked.iter().map(|(_, id)| *id).collect();
    assert_eq!(seen, in_order);
    assert_eq!(followed, in_order);
    let report = log.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.streams_checked, WRITERS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_tampering() {
    // Given a valid log
    let server = PgServer::start();
    let log = fresh(&server, "t").await;
    for s in 0..3 {
        log.append(&format!("s-{s}"), ExpectedVersion::Any, events("Noted", 4))
            .await
            .unwrap();
    }
    let report = log.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!((report.events_checked, report.streams_checked), (12, 3));

    // When a payload is changed behind sijil's back
    server.psql(
        "t",
        "UPDATE sijil_events SET payload = '\\x81a16ecd0063' WHERE position = 6",
    );
    // Then verify points at it
    let problem = log
        .verify()
        .await
        .unwrap()
        .problem
        .expect("tampering found");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::HashMismatch, 6)
    );

    // When an event disappears from the middle
    server.psql("t", "DELETE FROM sijil_events WHERE position = 2");
    let problem = log.verify().await.unwrap().problem.expect("gap found");
    assert_eq!(
        (problem.kind, problem.position),
        (ProblemKind::PositionGap, 2)
    );

    // When the tail disappears
    server.psql("t", "DELETE FROM sijil_events WHERE position >= 2");
    let problem = log
        .verify()
        .await
        .unwrap()
        .problem
        .expect("truncation found");
    assert_eq!(problem.kind, ProblemKind::LogTruncated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_recorded_rerun_safely_and_refuse_newer_schemas() {
    let server = PgServer::start();
    let url = server.create_database("t");
    // Given two nodes connecting at once
    let (a, b) = tokio::join!(PgLog::connect(&url), PgLog::connect(&url));
    a.unwrap();
    b.unwrap();
    // Then every migration is applied exactly once, in order
    let all: Vec<String> = (1..=sijil_store::pg::schema::latest_version())
        .map(|v| v.to_string())
        .collect();
    assert_eq!(
        server.psql(
            "t",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM sijil_schema_migrations"
        ),
        all.join(",")
    );
    // When a newer sijil has migrated the database further
    server.psql(
        "t",
        "INSERT INTO sijil_schema_migrations (version, name) VALUES (999, 'from the future')",
    );
    // Then this build refuses it
    let err = PgLog::connect(&url).await.unwrap_err();
    assert_eq!(err.code(), "INCOMPATIBLE_FORMAT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_catches_up_then_follows_a_writer_on_another_node() {
    // Given two nodes on one database; the follower never polls in time, so
    // only NOTIFY can wake it
    let server = PgServer::start();
    let url = server.create_database("t");
    let writer = PgLog::connect(&url).await.unwrap();
    let follower = PgLog::connect_with(PgConfig {
        poll_interval: Duration::from_secs(3600),
        ..PgConfig::new(url.clone())
    })
    .await
    .unwrap();
    writer
        .append("s-1", ExpectedVersion::Any, events("Noted", 5))
        .await
        .unwrap();
    writer
        .append("s-2", ExpectedVersion::Any, events("Other", 2))
        .await
        .unwrap();

    // When the follower subscribes from position 3, Noted only
    let mut sub = follower.subscribe(3, Some(vec!["Noted".to_owned()]));
    // Then it catches up on the stored events
    for expected in 3..=5 {
        let e = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("catch-up stalled")
            .unwrap()
            .unwrap();
        assert_eq!(e.position, expected);
    }
    // And then follows new commits of the other node, woken by NOTIFY
    let started = Instant::now();
    let live = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 3 {
            let e = sub.next().await.unwrap().unwrap();
            got.push((e.position, e.event_type));
        }
        (got, sub)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    for t in ["Noted", "Other", "Noted", "Noted"] {
        writer
            .append("s-3", ExpectedVersion::Any, vec![event(t, &Note { n: 1 })])
            .await
            .unwrap();
    }
    let (got, mut sub) = tokio::time::timeout(Duration::from_secs(20), live)
        .await
        .expect("NOTIFY did not wake the follower")
        .unwrap();
    assert_eq!(got.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [8, 10, 11]);
    assert!(started.elapsed() < Duration::from_secs(20));

    // And read-your-writes holds across nodes
    let r = writer
        .append("s-4", ExpectedVersion::NoStream, events("Noted", 1))
        .await
        .unwrap();
    let read = follower
        .read_stream("s-4", 1, Direction::Forward, 1)
        .await
        .unwrap();
    assert_eq!(read[0].position, r.last_position);

    // When the follower closes, its subscription ends
    follower.close();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match sub.next().await {
                None => return,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("unexpected error: {e}"),
            }
        }
    })
    .await;
    assert!(end.is_ok(), "subscription did not end on close");
    let err = follower.head().await.unwrap_err();
    assert_eq!(err, StoreError::Closed);
}

/// Prints append throughput at 1, 8 and 64 writers (single-event appends,
/// each writer on its own stream). `cargo test -p sijil-store --test pg_log
/// -- --ignored --nocapture append_throughput`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn append_throughput() {
    let server = PgServer::start();
    for (i, writers) in [1usize, 8, 64].into_iter().enumerate() {
        let log = PgLog::connect_with(PgConfig {
            pool_size: writers.min(64),
            ..PgConfig::new(server.create_database(&format!("b{i}")))
        })
        .await
        .unwrap();
        let seconds = 5.0;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut took = Vec::new();
                while started.elapsed().as_secs_f64() < seconds {
                    let one = Instant::now();
                    log.append(&format!("w-{w}"), ExpectedVersion::Any, events("Bench", 1))
                        .await
                        .unwrap();
                    took.push(one.elapsed());
                }
                took
            }));
        }
        let mut took = Vec::new();
        for t in tasks {
            took.extend(t.await.unwrap());
        }
        let total = took.len() as u64;
        took.sort();
        let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "writers {writers:>3}: {total} appends in {elapsed:.1}s = {:.0} appends/s, \
             p50 {:.2} ms, p99 {:.2} ms",
            total as f64 / elapsed,
            at(0.5),
            at(0.99)
        );
        assert!(log.verify().await.unwrap().is_ok());
        let ids: BTreeSet<u64> = (1..=total).collect();
        assert_eq!(ids.len() as u64, log.head().await.unwrap());
    }
}
