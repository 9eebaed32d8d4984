//! One contract for every [`EventLog`] backend: the same test bodies run
//! against the sled [`Store`] and the PostgreSQL [`PgLog`], through the
//! backend-neutral traits only. Each body gets a fresh, empty log.

mod common;
mod pg_support;

use std::future::Future;
use std::time::Duration;

use common::{event, events, Note};
use pg_support::PgServer;
use sijil_store::canonical::compute_hash;
use sijil_store::pg::{PgConfig, PgLog};
use sijil_store::{
    Direction, EventLog, EventSubscription, ExpectedVersion, Store, StoreConfig, StoreError,
    Upcasters,
};

/// `Noted` v1 payloads `{n}` are read at v2 as `{n, upcast: true}`.
fn upcasters() -> Upcasters {
    let mut upcasters = Upcasters::new();
    upcasters.register("Noted", 1, |value| {
        let rmpv::Value::Map(mut fields) = value else {
            return Err("expected a map".into());
        };
        fields.push((rmpv::Value::from("upcast"), rmpv::Value::from(true)));
        Ok(rmpv::Value::Map(fields))
    });
    upcasters
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct NoteV2 {
    n: u64,
    upcast: bool,
}

async fn round_trip<L: EventLog>(log: L) {
    // Given an empty log
    assert_eq!(log.head().await.unwrap(), 0);
    // When two streams are written
    let a = log
        .append("a", ExpectedVersion::NoStream, events("Noted", 3))
        .await
        .unwrap();
    let b = log
        .append("b", ExpectedVersion::Exact(0), events("Other", 2))
        .await
        .unwrap();
    // Then the results, reads and heads agree
    assert_eq!(
        (a.first_position, a.last_position, a.next_version),
        (1, 3, 4)
    );
    assert_eq!(
        (b.first_position, b.last_position, b.next_version),
        (4, 5, 3)
    );
    assert_eq!(log.head().await.unwrap(), 5);
    assert_eq!(log.stream_version("a").await.unwrap(), Some(3));
    assert_eq!(log.stream_version("none").await.unwrap(), None);
    let all = log.read_all(1, 100, None).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let mut prev = [0u8; 32];
    for e in all.iter().filter(|e| e.stream_id == "a") {
        assert_eq!(e.prev_hash, prev);
        prev = e.hash;
    }
    let back = log
        .read_stream("a", 2, Direction::Backward, 10)
        .await
        .unwrap();
    assert_eq!(back.iter().map(|e| e.version).collect::<Vec<_>>(), [2, 1]);
    let limited = log.read_all(2, 2, None).await.unwrap();
    assert_eq!(
        limited.iter().map(|e| e.position).collect::<Vec<_>>(),
        [2, 3]
    );
    let typed = log.read_all(1, 100, Some(&["Other".into()])).await.unwrap();
    assert_eq!(typed.iter().map(|e| e.position).collect::<Vec<_>>(), [4, 5]);
    assert!(log
        .read_stream("a", 0, Direction::Backward, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(log
        .read_stream("a", 1, Direction::Forward, 0)
        .await
        .unwrap()
        .is_empty());
    // And invalid input is refused
    let err = log
        .append("a b", ExpectedVersion::Any, events("X", 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "VALIDATION");
    let err = log
        .append("a", ExpectedVersion::Any, Vec::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "VALIDATION");
}

async fn conflicts<L: EventLog>(log: L) {
    log.append("s", ExpectedVersion::Any, events("Noted", 2))
        .await
        .unwrap();
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(0),
        ExpectedVersion::Exact(1),
        ExpectedVersion::Exact(3),
    ] {
        let err = log
            .append("s", expected, events("Noted", 1))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::Conflict {
                stream: "s".into(),
                expected,
                actual: Some(2)
            }
        );
    }
    // 16 racers at version 2: one wins.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append("s", ExpectedVersion::Exact(2), events("Noted", 1))
                .await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => winners += 1,
            Err(e) => assert_eq!(e.code(), "CONFLICT"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(log.head().await.unwrap(), 3);
}

async fn idempotency<L: EventLog>(log: L) {
    let batch = events("Noted", 2);
    let first = log
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    let again = log
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(first, again);
    let mut changed = batch.clone();
    changed[0].actor = "system:other".into();
    let err = log
        .append("s", ExpectedVersion::Any, changed)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::IdempotencyMismatch {
            event_id: batch[0].event_id
        }
    );
    let err = log
        .append("t", ExpectedVersion::Any, batch)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "IDEMPOTENCY_MISMATCH");
    assert_eq!(log.head().await.unwrap(), 2);
}

async fn gap_free_under_concurrency<L: EventLog>(log: L) {
    let mut tasks = Vec::new();
    for w in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..5 {
                let batch = events("Burst", 2);
                let r = log
                    .append(&format!("w-{w}"), ExpectedVersion::Any, batch.clone())
                    .await
                    .unwrap();
                ids.push((r.first_position, batch[0].event_id));
                ids.push((r.last_position, batch[1].event_id));
            }
            ids
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    acked.sort();
    let all = log.read_all(1, 1000, None).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|e| (e.position, e.event_id))
            .collect::<Vec<_>>(),
        acked
    );
    assert_eq!(all.len(), 160);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, i as u64 + 1);
        assert_eq!(e.hash, compute_hash(e));
    }
}

async fn subscription<L: EventLog>(log: L) {
    log.append("s", ExpectedVersion::Any, events("Noted", 3))
        .await
        .unwrap();
    log.append("t", ExpectedVersion::Any, events("Other", 1))
        .await
        .unwrap();
    let mut sub = log.subscribe(2, Some(vec!["Noted".into()]));
    assert_eq!(next_of::<L>(&mut sub).await.position, 2);
    assert_eq!(next_of::<L>(&mut sub).await.position, 3);
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            log.append("t", ExpectedVersion::Any, events("Other", 1))
                .await
                .unwrap();
            log.append(
                "s",
                ExpectedVersion::Any,
                vec![event("Noted", &Note { n: 7 })],
            )
            .await
            .unwrap();
        })
    };
    let live = next_of::<L>(&mut sub).await;
    assert_eq!((live.position, live.stream_id.as_str()), (6, "s"));
    writer.await.unwrap();
}

async fn next_of<L: EventLog>(sub: &mut L::Subscription) -> sijil_store::RecordedEvent {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("subscription stalled")
        .expect("subscription ended")
        .expect("subscription failed")
}

async fn upcasting<L: EventLog>(log: L) {
    log.append(
        "s",
        ExpectedVersion::Any,
        vec![event("Noted", &Note { n: 5 })],
    )
    .await
    .unwrap();
    let read = log
        .read_stream("s", 1, Direction::Forward, 1)
        .await
        .unwrap();
    assert_eq!(read[0].schema_version, 2);
    let payload: NoteV2 = rmp_serde::from_slice(&read[0].payload).unwrap();
    assert_eq!(payload, NoteV2 { n: 5, upcast: true });
    let mut sub = log.subscribe(1, None);
    let e = sub.next().await.unwrap().unwrap();
    assert_eq!(e.schema_version, 2);
    assert_eq!(e.payload, read[0].payload);
}

/// Runs every body, each on a log from `open(name, upcasters)`.
async fn contract<L, F, Fut>(open: F)
where
    L: EventLog,
    F: Fn(&'static str, Upcasters) -> Fut,
    Fut: Future<Output = L>,
{
    round_trip(open("round_trip", Upcasters::new()).await).await;
    conflicts(open("conflicts", Upcasters::new()).await).await;
    idempotency(open("idempotency", Upcasters::new()).await).await;
    gap_free_under_concurrency(open("gap_free", Upcasters::new()).await).await;
    subscription(open("subscription", Upcasters::new()).await).await;
    upcasting(open("upcasting", upcasters()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    contract(|name, upcasters| {
        let path = root.join(name);
        async move { Store::open_with(StoreConfig::new(path).with_upcasters(upcasters)).unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_log_meets_the_contract() {
    let server = PgServer::start();
    let server = &server;
    contract(|name, upcasters| async move {
        let config = PgConfig {
            upcasters,
            ..PgConfig::new(server.create_database(name))
        };
        PgLog::connect_with(config).await.unwrap()
    })
    .await;
}
