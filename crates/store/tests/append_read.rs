//! Append and read round trips through the public API: ordering, limits,
//! filters, expected-version semantics, validation and reopening.

mod common;

use common::{event, events, msgpack, temp_store, Note};
use sijil_store::{
    Direction, EventLog, ExpectedVersion, RecordedEvent, Store, StoreError, RESERVED_TREES,
};
use uuid::Uuid;

#[tokio::test]
async fn append_then_read_back_every_field() {
    let (_dir, store) = temp_store();
    let mut batch = events("NoteTaken", 3);
    batch[1].on_behalf_of = Some("agent:0190".into());
    batch[1].correlation_id = Some(Uuid::now_v7());
    batch[1].causation_id = Some(Uuid::now_v7());
    batch[2].schema_version = 4;
    let result = store
        .append("customer-1", ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("append");
    assert_eq!(
        (
            result.first_position,
            result.last_position,
            result.next_version
        ),
        (1, 3, 4)
    );
    assert_eq!(store.head_position(), 3);
    assert_eq!(*store.watch_head().borrow(), 3);

    let read = store
        .read_stream("customer-1", 1, Direction::Forward, 100)
        .expect("read");
    assert_eq!(read.len(), 3);
    for (i, (stored, new)) in read.iter().zip(&batch).enumerate() {
        assert_eq!(stored.position, i as u64 + 1);
        assert_eq!(stored.version, i as u64 + 1);
        assert_eq!(stored.stream_id, "customer-1");
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
        assert!(stored.recorded_at > 1_600_000_000_000);
        assert_eq!(
            store.event_position(new.event_id).expect("index"),
            Some(stored.position)
        );
    }
    assert_eq!(read[0].prev_hash, [0; 32]);
    assert_eq!(read[1].prev_hash, read[0].hash);
    assert_eq!(read[2].prev_hash, read[1].hash);
    assert_eq!(store.read_all(1, 10, None).expect("read all"), read);
    assert_eq!(
        store.stream_version("customer-1").expect("version"),
        Some(3)
    );
    assert_eq!(store.stream_version("customer-2").expect("version"), None);
    assert_eq!(store.event_position(Uuid::now_v7()).expect("index"), None);
}

#[tokio::test]
async fn forward_backward_and_limits() {
    let (_dir, store) = temp_store();
    store
        .append("case-1", ExpectedVersion::Any, events("Step", 10))
        .await
        .expect("append");
    let versions =
        |events: Vec<RecordedEvent>| events.iter().map(|e| e.version).collect::<Vec<_>>();
    let read = |from, dir, limit| store.read_stream("case-1", from, dir, limit).expect("read");
    assert_eq!(versions(read(4, Direction::Forward, 3)), vec![4, 5, 6]);
    assert_eq!(versions(read(0, Direction::Forward, 2)), vec![1, 2]);
    assert_eq!(versions(read(9, Direction::Forward, 100)), vec![9, 10]);
    assert_eq!(
        versions(read(11, Direction::Forward, 100)),
        Vec::<u64>::new()
    );
    assert_eq!(
        versions(read(u64::MAX, Direction::Backward, 3)),
        vec![10, 9, 8]
    );
    assert_eq!(
        versions(read(5, Direction::Backward, 100)),
        vec![5, 4, 3, 2, 1]
    );
    assert_eq!(
        versions(read(0, Direction::Backward, 100)),
        Vec::<u64>::new()
    );
    assert_eq!(versions(read(1, Direction::Forward, 0)), Vec::<u64>::new());
    assert!(store
        .read_stream("case-2", 1, Direction::Forward, 10)
        .expect("read missing stream")
        .is_empty());
    // A stream whose name extends another's does not leak into it.
    store
        .append("case-10", ExpectedVersion::Any, events("Step", 2))
        .await
        .expect("append");
    assert_eq!(versions(read(1, Direction::Forward, 100)).len(), 10);
}

#[tokio::test]
async fn read_all_positions_limits_and_type_filters() {
    let (_dir, store) = temp_store();
    for i in 0..6u64 {
        let (stream, kind) = if i % 2 == 0 {
            ("a", "Even")
        } else {
            ("b", "Odd")
        };
        store
            .append(
                stream,
                ExpectedVersion::Any,
                vec![event(kind, &Note { n: i })],
            )
            .await
            .expect("append");
    }
    let positions =
        |events: Vec<RecordedEvent>| events.iter().map(|e| e.position).collect::<Vec<_>>();
    assert_eq!(
        positions(store.read_all(1, 100, None).expect("read")),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        positions(store.read_all(0, 2, None).expect("read")),
        vec![1, 2]
    );
    assert_eq!(
        positions(store.read_all(4, 100, None).expect("read")),
        vec![4, 5, 6]
    );
    assert_eq!(
        positions(store.read_all(7, 100, None).expect("read")),
        Vec::<u64>::new()
    );
    let odd = vec!["Odd".to_string()];
    assert_eq!(
        positions(store.read_all(1, 100, Some(&odd)).expect("read")),
        vec![2, 4, 6]
    );
    assert_eq!(
        positions(store.read_all(3, 1, Some(&odd)).expect("read")),
        vec![4]
    );
    let both = vec!["Odd".to_string(), "Even".to_string()];
    assert_eq!(
        positions(store.read_all(1, 100, Some(&both)).expect("read")).len(),
        6
    );
    let none: Vec<String> = vec!["Nope".into()];
    assert!(store
        .read_all(1, 100, Some(&none))
        .expect("read")
        .is_empty());
}

fn assert_conflict(
    result: Result<sijil_store::AppendResult, StoreError>,
    expected: ExpectedVersion,
    actual: Option<u64>,
) {
    match result {
        Err(StoreError::Conflict {
            stream,
            expected: e,
            actual: a,
        }) => {
            assert_eq!(stream, "s");
            assert_eq!(e, expected);
            assert_eq!(a, actual);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn expected_version_semantics() {
    let (_dir, store) = temp_store();
    let one = || events("E", 1);
    assert_conflict(
        store.append("s", ExpectedVersion::Exact(1), one()).await,
        ExpectedVersion::Exact(1),
        None,
    );
    let r = store
        .append("s", ExpectedVersion::Exact(0), one())
        .await
        .expect("Exact(0) on an empty stream");
    assert_eq!(r.next_version, 2);
    assert_conflict(
        store.append("s", ExpectedVersion::NoStream, one()).await,
        ExpectedVersion::NoStream,
        Some(1),
    );
    assert_conflict(
        store.append("s", ExpectedVersion::Exact(0), one()).await,
        ExpectedVersion::Exact(0),
        Some(1),
    );
    assert_conflict(
        store.append("s", ExpectedVersion::Exact(2), one()).await,
        ExpectedVersion::Exact(2),
        Some(1),
    );
    let r = store
        .append("s", ExpectedVersion::Exact(1), events("E", 2))
        .await
        .expect("exact");
    assert_eq!(
        (r.first_position, r.last_position, r.next_version),
        (2, 3, 4)
    );
    let r = store
        .append("s", ExpectedVersion::Any, one())
        .await
        .expect("any");
    assert_eq!(r.next_version, 5);
    let r = store
        .append("t", ExpectedVersion::NoStream, one())
        .await
        .expect("no stream");
    assert_eq!((r.first_position, r.next_version), (5, 2));
    // Conflicts wrote nothing.
    assert_eq!(store.head_position(), 5);
    assert_eq!(store.stream_version("s").expect("version"), Some(4));
    let err = store
        .append("s", ExpectedVersion::Exact(9), one())
        .await
        .expect_err("conflict");
    assert_eq!(err.code(), "CONFLICT");
    assert!(err.to_string().contains("version 4"), "{err}");
    assert!(store.verify().expect("verify").is_ok());
}

#[tokio::test]
async fn invalid_input_is_rejected_without_writing() {
    let (_dir, store) = temp_store();
    let too_long = "x".repeat(201);
    let mut cases: Vec<(&str, Vec<sijil_store::NewEvent>)> = vec![
        ("s", Vec::new()),
        ("", events("E", 1)),
        ("bad stream", events("E", 1)),
        ("bad/stream", events("E", 1)),
        (&too_long, events("E", 1)),
        ("s", events("E", 1001)),
    ];
    let mut long_type = events("E", 1);
    long_type[0].event_type = "T".repeat(101);
    cases.push(("s", long_type));
    let mut empty_type = events("E", 1);
    empty_type[0].event_type.clear();
    cases.push(("s", empty_type));
    let mut big = events("E", 1);
    big[0].payload = msgpack(&serde_bytes_like(1024 * 1024));
    cases.push(("s", big));
    let mut garbage = events("E", 1);
    garbage[0].payload = vec![0xc1];
    cases.push(("s", garbage));
    let mut trailing = events("E", 1);
    trailing[0].payload.push(0xc0);
    cases.push(("s", trailing));
    let mut no_actor = events("E", 1);
    no_actor[0].actor.clear();
    cases.push(("s", no_actor));
    let mut twice = events("E", 2);
    twice[1].event_id = twice[0].event_id;
    cases.push(("s", twice));
    for (i, (stream, batch)) in cases.into_iter().enumerate() {
        let err = store
            .append(stream, ExpectedVersion::Any, batch)
            .await
            .expect_err(&format!("invalid input {i} must be rejected"));
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert_eq!(err.code(), "VALIDATION");
    }
    assert_eq!(store.head_position(), 0);
    assert!(store
        .read_stream("bad stream", 1, Direction::Forward, 1)
        .is_err());
    // The limits themselves are accepted.
    let mut at_limit = events("E", 1);
    at_limit[0].event_type = "T".repeat(100);
    // A MessagePack bin32 of exactly 1 MiB in total.
    let body = sijil_store::validate::MAX_PAYLOAD_LEN - 5;
    at_limit[0].payload = vec![0xc6];
    at_limit[0]
        .payload
        .extend_from_slice(&(body as u32).to_be_bytes());
    at_limit[0]
        .payload
        .resize(sijil_store::validate::MAX_PAYLOAD_LEN, 7);
    store
        .append(&"x".repeat(200), ExpectedVersion::Any, at_limit)
        .await
        .expect("at the limits");
    store
        .append("s", ExpectedVersion::Any, events("E", 1000))
        .await
        .expect("1000 events");
}

/// A MessagePack-able value just over `len` bytes once encoded.
fn serde_bytes_like(len: usize) -> String {
    "x".repeat(len)
}

#[tokio::test]
async fn data_survives_reopen_and_positions_continue() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = Store::open(dir.path()).expect("open");
        store
            .append("a", ExpectedVersion::NoStream, events("E", 3))
            .await
            .expect("append");
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.head_position(), 3);
    assert_eq!(store.stream_version("a").expect("version"), Some(3));
    let r = store
        .append("a", ExpectedVersion::Exact(3), events("E", 1))
        .await
        .expect("append");
    assert_eq!((r.first_position, r.next_version), (4, 5));
    assert!(store.verify().expect("verify").is_ok());
}

/// Written against the trait only, as other crates will.
async fn append_and_count<L: EventLog>(log: &L) -> usize {
    log.append("trait-stream", ExpectedVersion::Any, events("E", 2))
        .await
        .expect("append");
    let head = log.head().await.expect("head");
    assert_eq!(
        log.stream_version("trait-stream").await.expect("version"),
        Some(2)
    );
    let backward = log
        .read_stream("trait-stream", u64::MAX, Direction::Backward, 1)
        .await
        .expect("read");
    assert_eq!(backward[0].version, 2);
    log.read_all(1, 100, None).await.expect("read").len() + head as usize
}

#[tokio::test]
async fn event_log_trait_and_shared_db() {
    let (_dir, store) = temp_store();
    assert_eq!(append_and_count(&store).await, 4);
    // Projections can keep their own trees in the same database.
    let projection = store.db().open_tree("projection:test").expect("tree");
    projection
        .insert("checkpoint", &2u64.to_be_bytes())
        .expect("insert");
    assert!(!RESERVED_TREES.contains(&"projection:test"));
    assert!(store.verify().expect("verify").is_ok());
}
