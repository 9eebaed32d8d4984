//! Importing a recorded log into PostgreSQL ([`PgLog::import_events`])
//! against a throw-away server: a sled log copied in chunks reads back
//! identically and verifies, a second import writes nothing, tampered,
//! different, gapped or id-reusing envelopes are refused with nothing of
//! their chunk written, and appends after an import continue the chains.

mod common;
mod pg_support;

use std::time::Instant;

use common::{event, events, temp_store, Note};
use pg_support::PgServer;
use sijil_store::canonical::compute_hash;
use sijil_store::pg::PgLog;
use sijil_store::{
    BulkAppend, Direction, ExpectedVersion, ImportError, RecordedAt, RecordedEvent, Store,
};
use tempfile::TempDir;
use uuid::Uuid;

async fn fresh(server: &PgServer, db: &str) -> PgLog {
    PgLog::connect(&server.create_database(db))
        .await
        .expect("connect to PostgreSQL")
}

/// A sled store holding `rounds` rounds of appends to four streams (1 to 3
/// events each, some with optional envelope fields set), and its whole log.
async fn sled_log(rounds: usize) -> (TempDir, Store, Vec<RecordedEvent>) {
    let (dir, store) = temp_store();
    let streams = ["customer-a", "customer-b", "case-1", "case-2"];
    for round in 0..rounds {
        for (i, stream) in streams.iter().enumerate() {
            let mut batch = events("Noted", 1 + (round + i) % 3);
            if round % 2 == 0 {
                batch[0].on_behalf_of = Some(format!("user:{round}"));
                batch[0].correlation_id = Some(Uuid::now_v7());
                batch[0].causation_id = Some(Uuid::now_v7());
            }
            store
                .append(stream, ExpectedVersion::Any, batch)
                .await
                .expect("append to the sled store");
        }
    }
    let log = store
        .read_all_raw(1, usize::MAX, None)
        .expect("read sled log");
    (dir, store, log)
}

/// Imports `events` in chunks of `size` and returns how many were written.
async fn import_in_chunks(log: &PgLog, events: &[RecordedEvent], size: usize) -> u64 {
    let mut written = 0;
    for chunk in events.chunks(size) {
        written += log.import_events(chunk).await.expect("import chunk");
    }
    written
}

async fn pg_all(log: &PgLog) -> Vec<RecordedEvent> {
    log.read_all_raw(1, u64::MAX, usize::MAX)
        .await
        .expect("read PostgreSQL log")
}

/// `event` with a changed payload, re-hashed so that it is a valid envelope
/// of its own (only the chain or the comparison can refuse it).
fn rehashed(mut event: RecordedEvent, payload: Vec<u8>) -> RecordedEvent {
    event.payload = payload;
    event.hash = compute_hash(&event);
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_log_imported_in_chunks_reads_back_identically() {
    // Given a sled log over several streams and an empty PostgreSQL log
    let (_dir, _store, sled) = sled_log(6).await;
    assert!(sled.len() > 40, "the source log has {} events", sled.len());
    let server = PgServer::start();
    let log = fresh(&server, "t").await;
    assert_eq!(log.import_events(&[]).await.unwrap(), 0);

    // When it is imported in chunks that cut through batches and streams
    let written = import_in_chunks(&log, &sled, 7).await;

    // Then every envelope is stored as it was: positions, versions,
    // recorded_at and hashes, and the log verifies
    assert_eq!(written, sled.len() as u64);
    assert_eq!(log.head().await.unwrap(), sled.len() as u64);
    assert_eq!(pg_all(&log).await, sled);
    let report = log.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events_checked, sled.len() as u64);
    let recorded: std::collections::BTreeSet<i64> = sled.iter().map(|e| e.recorded_at).collect();
    assert!(recorded.len() > 1, "the source log has varied recorded_at");

    // And importing it again, whole or in other chunks, writes nothing
    assert_eq!(log.import_events(&sled).await.unwrap(), 0);
    assert_eq!(import_in_chunks(&log, &sled, 11).await, 0);
    assert_eq!(pg_all(&log).await, sled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_overlapping_the_head_writes_only_its_new_part() {
    // Given the first 10 envelopes imported
    let (_dir, _store, sled) = sled_log(4).await;
    let server = PgServer::start();
    let log = fresh(&server, "t").await;
    assert_eq!(log.import_events(&sled[..10]).await.unwrap(), 10);

    // When a chunk holding positions 6..=20 is imported
    let written = log.import_events(&sled[5..20]).await.unwrap();

    // Then only 11..=20 are written
    assert_eq!(written, 10);
    assert_eq!(log.head().await.unwrap(), 20);
    assert_eq!(pg_all(&log).await, sled[..20].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_envelope_is_refused_and_nothing_of_its_chunk_is_written() {
    // Given the first 10 envelopes imported
    let (_dir, _store, sled) = sled_log(4).await;
    let server = PgServer::start();
    let log = fresh(&server, "t").await;
    log.import_events(&sled[..10]).await.unwrap();

    // When the next chunk has a payload changed with its hash kept
    let mut chunk = sled[10..20].to_vec();
    chunk[5].payload = common::msgpack(&Note { n: 999 });
    let err = log.import_events(&chunk).await.expect_err("tampered");

    // Then it is refused at that position and nothing of the chunk is stored
    assert!(
        matches!(err, ImportError::BrokenChain { position: 16, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "BROKEN_CHAIN");
    assert_eq!(log.head().await.unwrap(), 10);
    assert_eq!(pg_all(&log).await, sled[..10].to_vec());

    // When instead position 14 is re-hashed (valid on its own), so that the
    // next envelope of its stream no longer continues the chain
    let mut chunk = sled[10..].to_vec();
    chunk[3] = rehashed(chunk[3].clone(), common::msgpack(&Note { n: 998 }));
    let err = log.import_events(&chunk).await.expect_err("broken chain");

    // Then the call is refused as a whole: positions 11..=14 are not written
    // either, and the untouched envelopes still import
    let broken_at = chunk[4..]
        .iter()
        .find(|e| e.stream_id == chunk[3].stream_id)
        .map(|e| e.position);
    match (err, broken_at) {
        (ImportError::BrokenChain { position, .. }, Some(at)) => assert_eq!(position, at),
        (other, at) => panic!("expected a broken chain at {at:?}, got {other:?}"),
    }
    assert_eq!(log.head().await.unwrap(), 10);
    assert_eq!(pg_all(&log).await, sled[..10].to_vec());
    assert_eq!(
        log.import_events(&sled[10..]).await.unwrap(),
        sled.len() as u64 - 10
    );
    assert!(log.verify().await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_log_at_held_positions_is_refused() {
    // Given a PostgreSQL log that already holds other events
    let (_dir, _store, sled) = sled_log(3).await;
    let server = PgServer::start();
    let log = fresh(&server, "other").await;
    log.append("elsewhere", ExpectedVersion::NoStream, events("Other", 2))
        .await
        .unwrap();

    // When the sled log is imported into it
    let err = log.import_events(&sled).await.expect_err("different log");

    // Then it is refused at the first position and nothing changes
    assert!(
        matches!(err, ImportError::DifferentLog { position: 1, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "DIFFERENT_LOG");
    assert_eq!(log.head().await.unwrap(), 2);

    // Given a log holding the sled log's first 10 envelopes
    let same = fresh(&server, "same").await;
    same.import_events(&sled[..10]).await.unwrap();

    // When a chunk re-sends position 4 as another valid envelope, followed by
    // new ones
    let mut chunk = sled[2..15].to_vec();
    chunk[1] = rehashed(chunk[1].clone(), common::msgpack(&Note { n: 4242 }));
    let err = same.import_events(&chunk).await.expect_err("differs at 4");

    // Then it is refused at 4 and none of the new ones is written
    assert!(
        matches!(err, ImportError::DifferentLog { position: 4, .. }),
        "{err:?}"
    );
    assert_eq!(same.head().await.unwrap(), 10);
    assert_eq!(pg_all(&same).await, sled[..10].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_is_refused() {
    let (_dir, _store, sled) = sled_log(4).await;
    let server = PgServer::start();
    let log = fresh(&server, "t").await;

    // When an import starts past an empty log's end
    let err = log.import_events(&sled[10..]).await.expect_err("gap");

    // Then it is a gap and nothing is written
    assert_eq!(err, ImportError::Gap { first: 11, head: 0 });
    assert_eq!(err.code(), "LOG_GAP");
    assert_eq!(log.head().await.unwrap(), 0);

    // Given 10 imported, when the next chunk skips position 11
    log.import_events(&sled[..10]).await.unwrap();
    let err = log.import_events(&sled[11..20]).await.expect_err("gap");
    assert_eq!(
        err,
        ImportError::Gap {
            first: 12,
            head: 10
        }
    );

    // When a chunk has a hole inside it
    let mut holed = sled[10..20].to_vec();
    holed.remove(4);
    let err = log.import_events(&holed).await.expect_err("hole");

    // Then it is refused at the hole and nothing of it is written
    assert!(
        matches!(err, ImportError::Invalid { position: 16, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "INVALID_LOG");
    assert_eq!(log.head().await.unwrap(), 10);
    assert_eq!(pg_all(&log).await, sled[..10].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_event_id_is_refused() {
    // Given the first 10 envelopes imported
    let (_dir, _store, sled) = sled_log(4).await;
    let server = PgServer::start();
    let log = fresh(&server, "t").await;
    log.import_events(&sled[..10]).await.unwrap();

    // When position 11 is a valid envelope that continues its stream but
    // reuses the event id of position 1
    let mut reused = sled[10].clone();
    reused.event_id = sled[0].event_id;
    reused.hash = compute_hash(&reused);
    let err = log
        .import_events(&[reused])
        .await
        .expect_err("reused event id");

    // Then it is refused and nothing is written
    assert!(
        matches!(err, ImportError::Invalid { position: 11, .. }),
        "{err:?}"
    );
    assert_eq!(log.head().await.unwrap(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_after_an_import_continue_the_chains_and_positions() {
    // Given a sled log imported into PostgreSQL
    let (_dir, _store, sled) = sled_log(3).await;
    let server = PgServer::start();
    let log = fresh(&server, "t").await;
    import_in_chunks(&log, &sled, 9).await;
    let head = sled.len() as u64;

    // When every stream gets one more event, expecting its imported version
    let streams = ["customer-a", "customer-b", "case-1", "case-2"];
    for (next_position, stream) in (head + 1..).zip(streams) {
        let last = sled
            .iter()
            .rev()
            .find(|e| e.stream_id == stream)
            .expect("stream in the source log");
        let result = log
            .append(
                stream,
                ExpectedVersion::Exact(last.version),
                vec![event("After", &Note { n: 1 })],
            )
            .await
            .expect("append after import");

        // Then it takes the next position and version, chained on the
        // imported head
        assert_eq!(result.first_position, next_position);
        assert_eq!(result.next_version, last.version + 2);
        let appended = log
            .read_stream(stream, last.version + 1, Direction::Forward, 10)
            .await
            .unwrap();
        assert_eq!(appended.len(), 1);
        assert_eq!(appended[0].prev_hash, last.hash);
        assert_eq!(appended[0].position, next_position);
    }
    assert_eq!(log.head().await.unwrap(), head + 4);
    let report = log.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");

    // And the imported prefix is untouched
    let all = pg_all(&log).await;
    assert_eq!(all[..sled.len()], sled[..]);
}

/// Throughput of importing 50,000 envelopes in chunks of 5,000 (run with
/// `cargo test -p sijil-store --test pg_import -- --ignored --nocapture`;
/// a debug build measures far less than a release build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; prints events/s"]
async fn import_throughput() {
    const TOTAL: usize = 50_000;
    const CHUNK: usize = 5_000;
    let (_dir, store) = temp_store();
    let streams = 100;
    let per_append = TOTAL / streams / 10;
    for round in 0..10 {
        let appends: Vec<BulkAppend> = (0..streams)
            .map(|s| BulkAppend {
                stream: format!("customer-{s}"),
                expected: if round == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact((round * per_append) as u64)
                },
                events: events("Noted", per_append),
            })
            .collect();
        store
            .append_bulk(&appends, RecordedAt::StoreClock)
            .expect("fill the sled store");
    }
    let sled = store.read_all_raw(1, usize::MAX, None).expect("read");
    assert_eq!(sled.len(), TOTAL);

    let server = PgServer::start();
    let log = fresh(&server, "t").await;
    let started = Instant::now();
    let written = import_in_chunks(&log, &sled, CHUNK).await;
    let elapsed = started.elapsed();
    assert_eq!(written, TOTAL as u64);
    println!(
        "imported {TOTAL} events in chunks of {CHUNK} in {:.2?}: {:.0} events/s",
        elapsed,
        TOTAL as f64 / elapsed.as_secs_f64()
    );

    let started = Instant::now();
    assert_eq!(import_in_chunks(&log, &sled, CHUNK).await, 0);
    let elapsed = started.elapsed();
    println!(
        "re-import of the same {TOTAL} (all already held) in {:.2?}: {:.0} events/s",
        elapsed,
        TOTAL as f64 / elapsed.as_secs_f64()
    );
    let started = Instant::now();
    let report = log.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    println!("verify of {TOTAL} in {:.2?}", started.elapsed());
    assert_eq!(pg_all(&log).await, sled);
}
