//! Integrity: verify on a clean store, detection of a flipped payload byte,
//! corrupt and truncated envelopes, tampered indexes, and format versions.

mod common;
mod segment_files;

use std::path::Path;

use common::{event, events, Note};
use segment_files::edit_record;
use sijil_store::layout::{
    HEADS_TREE, LOG_TREE, META_FORMAT_VERSION, META_LAST_POSITION, META_TREE, STREAMS_TREE,
};
use sijil_store::{Direction, ExpectedVersion, ProblemKind, Store, StoreError};

/// Fills a store at `dir` with 10 events over two streams, the fifth (in
/// stream `b`) carrying a recognisable payload. Returns that payload.
async fn fill(dir: &Path) -> Vec<u8> {
    let store = Store::open(dir).expect("open");
    store
        .append("a", ExpectedVersion::Any, events("E", 4))
        .await
        .expect("append");
    let marked = event("Marked", &"MARKER-PAYLOAD-0123456789");
    let payload = marked.payload.clone();
    store
        .append("b", ExpectedVersion::Any, vec![marked])
        .await
        .expect("append");
    store
        .append("b", ExpectedVersion::Any, events("E", 2))
        .await
        .expect("append");
    store
        .append("a", ExpectedVersion::Any, events("E", 3))
        .await
        .expect("append");
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
    assert_eq!((report.events_checked, report.streams_checked), (10, 2));
    payload
}

#[tokio::test]
async fn flipped_payload_byte_is_pinpointed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let payload = fill(dir.path()).await;
    edit_record(dir.path(), 5, true, |value| {
        let at = value
            .windows(payload.len())
            .position(|w| w == payload.as_slice())
            .expect("payload inside the envelope");
        value[at + payload.len() - 1] ^= 0x01;
    });
    let store = Store::open(dir.path()).expect("reopen");
    let report = store.verify().expect("verify");
    let problem = report.problem.expect("a problem");
    assert_eq!(problem.position, 5);
    assert_eq!(problem.kind, ProblemKind::HashMismatch);
    assert_eq!(problem.stream_id.as_deref(), Some("b"));
    assert_eq!(report.events_checked, 4);
    let stream_report = store.verify_stream("b").expect("verify stream");
    assert_eq!(
        stream_report.problem.map(|p| (p.position, p.kind)),
        Some((5, ProblemKind::HashMismatch))
    );
    assert!(store.verify_stream("a").expect("verify stream").is_ok());
}

#[tokio::test]
async fn garbage_and_truncated_envelopes_are_corrupt_not_panics() {
    let dir = tempfile::tempdir().expect("temp dir");
    fill(dir.path()).await;
    edit_record(dir.path(), 3, true, |value| {
        *value = b"\xffnot an envelope".to_vec()
    });
    edit_record(dir.path(), 6, true, |value| value.truncate(value.len() / 2));
    let store = Store::open(dir.path()).expect("reopen");
    let is_corrupt_at = |r: Result<Vec<sijil_store::RecordedEvent>, StoreError>, at: u64| match r {
        Err(StoreError::Corrupt { position, .. }) => assert_eq!(position, at),
        other => panic!("expected corruption at {at}, got {other:?}"),
    };
    is_corrupt_at(store.read_all(1, 100, None), 3);
    is_corrupt_at(store.read_stream("a", 1, Direction::Forward, 100), 3);
    is_corrupt_at(store.read_all(4, 100, None), 6);
    is_corrupt_at(
        store.read_stream("b", u64::MAX, Direction::Backward, 100),
        6,
    );
    assert_eq!(
        store.read_all(1, 2, None).expect("before the damage").len(),
        2
    );
    let err = store.read_all(3, 1, None).expect_err("corrupt");
    assert_eq!(err.code(), "CORRUPT");
    let problem = store.verify().expect("verify").problem.expect("a problem");
    assert_eq!(
        (problem.position, problem.kind),
        (3, ProblemKind::Undecodable)
    );
    let mut sub = store.subscribe_all(1);
    for _ in 0..2 {
        sub.next().await.expect("event").expect("ok");
    }
    assert!(matches!(
        sub.next().await,
        Some(Err(StoreError::Corrupt { position: 3, .. }))
    ));
    // Appending still works and the damage stays where it is.
    store
        .append("c", ExpectedVersion::Any, events("E", 1))
        .await
        .expect("append");
}

#[tokio::test]
async fn a_damaged_record_fails_its_checksum_where_it_is_and_the_rest_stays_readable() {
    // Given a byte of position 5's envelope flipped on disk, its checksum left as it was
    let dir = tempfile::tempdir().expect("temp dir");
    let payload = fill(dir.path()).await;
    edit_record(dir.path(), 5, false, |value| {
        let at = value
            .windows(payload.len())
            .position(|w| w == payload.as_slice())
            .expect("payload inside the envelope");
        value[at] ^= 0x01;
    });
    // When the store is opened
    let store = Store::open(dir.path()).expect("reopen");
    // Then reading it fails as corruption at 5, what is around it reads, and
    // verify pinpoints it
    match store.read_all(1, 100, None) {
        Err(StoreError::Corrupt { position, detail }) => {
            assert_eq!(position, 5);
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected corruption at 5, got {other:?}"),
    }
    assert_eq!(store.read_all(1, 4, None).expect("before").len(), 4);
    assert_eq!(store.read_all(6, 100, None).expect("after").len(), 5);
    assert_eq!(store.head_position(), 10);
    let problem = store.verify().expect("verify").problem.expect("a problem");
    assert_eq!(
        (problem.position, problem.kind),
        (5, ProblemKind::Undecodable)
    );
}

#[tokio::test]
async fn tampered_indexes_are_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    fill(dir.path()).await;
    {
        let store = Store::open(dir.path()).expect("open");
        let streams = store.db().open_tree(STREAMS_TREE).expect("tree");
        let mut key = b"a\0".to_vec();
        key.extend_from_slice(&3u64.to_be_bytes());
        streams.insert(key, &9u64.to_be_bytes()).expect("insert");
        let problem = store.verify().expect("verify").problem.expect("a problem");
        assert_eq!(
            (problem.position, problem.kind),
            (3, ProblemKind::StreamIndexMismatch)
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    fill(dir.path()).await;
    let store = Store::open(dir.path()).expect("open");
    let heads = store.db().open_tree(HEADS_TREE).expect("tree");
    heads.remove("b").expect("remove");
    let problem = store.verify().expect("verify").problem.expect("a problem");
    assert_eq!(problem.kind, ProblemKind::HeadMismatch);
    assert_eq!(problem.stream_id.as_deref(), Some("b"));
    assert_eq!(problem.position, 7);
    let problem = store
        .verify_stream("b")
        .expect("verify")
        .problem
        .expect("a problem");
    assert_eq!(problem.kind, ProblemKind::HeadMismatch);
}

#[tokio::test]
async fn newer_format_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = Store::open(dir.path()).expect("open");
        store
            .append("a", ExpectedVersion::Any, vec![event("E", &Note { n: 1 })])
            .await
            .expect("append");
        let meta = store.db().open_tree(META_TREE).expect("meta");
        meta.insert(META_FORMAT_VERSION, &99u32.to_be_bytes())
            .expect("insert");
        store.db().flush().expect("flush");
    }
    let err = Store::open(dir.path()).expect_err("newer format");
    assert_eq!(
        err,
        StoreError::IncompatibleFormat {
            found: 99,
            supported: sijil_store::format::CURRENT_FORMAT
        }
    );
    assert_eq!(err.code(), "INCOMPATIBLE_FORMAT");
    assert!(err.to_string().contains("upgrade sijil"), "{err}");
}

#[tokio::test]
async fn current_format_reopens_and_is_stamped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open");
    let meta = store.db().open_tree(META_TREE).expect("meta");
    let stamped = meta
        .get(META_FORMAT_VERSION)
        .expect("get")
        .expect("stamped");
    assert_eq!(
        stamped.as_ref(),
        sijil_store::format::CURRENT_FORMAT.to_be_bytes()
    );
    drop(meta);
    drop(store);
    Store::open(dir.path()).expect("reopen");
}

#[tokio::test]
async fn a_format_1_store_is_upgraded_to_segment_files() {
    // Given a store as format 1 kept it: the envelopes in the `log` tree, and
    // past `meta`'s end an uncommitted event (position 11, the first of stream
    // `c`) with its index entries but no head
    let dir = tempfile::tempdir().expect("temp dir");
    fill(dir.path()).await;
    let (before, late_id) = {
        let store = Store::open(dir.path()).expect("open");
        let late = event("Late", &Note { n: 11 });
        let late_id = late.event_id;
        store
            .append("c", ExpectedVersion::NoStream, vec![late])
            .await
            .expect("append");
        (store.read_all(1, 100, None).expect("read"), late_id)
    };
    let records = segment_files::envelopes(dir.path());
    assert_eq!(records.len(), 11);
    {
        let db = sled::open(dir.path()).expect("sled");
        let log = db.open_tree(LOG_TREE).expect("log");
        for (position, envelope) in &records {
            log.insert(position.to_be_bytes(), envelope.as_slice())
                .expect("insert");
        }
        let meta = db.open_tree(META_TREE).expect("meta");
        meta.insert(META_FORMAT_VERSION, &1u32.to_be_bytes())
            .expect("format");
        meta.insert(META_LAST_POSITION, &10u64.to_be_bytes())
            .expect("end");
        db.open_tree(HEADS_TREE)
            .expect("heads")
            .remove("c")
            .expect("head");
        db.flush().expect("flush");
    }
    std::fs::remove_dir_all(dir.path().join("segments")).expect("remove segments");
    // When this build opens it
    let store = Store::open(dir.path()).expect("upgrade");
    // Then it is format 2, the committed events are in segment files exactly
    // as they were, the uncommitted one is gone with its index entries, and
    // the old tree is empty
    let meta = store.db().open_tree(META_TREE).expect("meta");
    assert_eq!(
        meta.get(META_FORMAT_VERSION).expect("get").as_deref(),
        Some(&2u32.to_be_bytes()[..])
    );
    assert_eq!(store.head_position(), 10);
    assert_eq!(store.read_all(1, 100, None).expect("read"), before[..10]);
    assert_eq!(segment_files::envelopes(dir.path()), records[..10]);
    assert_eq!(store.event_position(late_id).expect("lookup"), None);
    assert!(store.db().open_tree(LOG_TREE).expect("log").is_empty());
    assert!(store.verify().expect("verify").is_ok());
    // And it goes on from there, and opens again as it is
    store
        .append("c", ExpectedVersion::NoStream, events("E", 1))
        .await
        .expect("append");
    drop(meta);
    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.head_position(), 11);
    assert!(store.verify().expect("verify").is_ok());
}

#[test]
fn a_store_opens_once_the_handle_holding_its_lock_lets_go_and_not_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Given a store whose handle is dropped a moment later on another thread
    let held = Store::open(dir.path()).expect("open");
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
    });
    // When it is opened again meanwhile
    let reopened = Store::open(dir.path());
    releaser.join().expect("releaser");
    // Then the open waits for the lock instead of failing
    let reopened = reopened.expect("reopen after the lock was released");
    // And a lock that is never released still fails, with the storage error
    let err = Store::open(dir.path()).expect_err("the store is open");
    assert_eq!(err.code(), "IO");
    assert!(err.is_store_in_use(), "{err}");
    drop(reopened);
}

#[test]
fn error_codes_are_stable() {
    let cases = [
        (StoreError::Invalid("x".into()), "VALIDATION"),
        (StoreError::Closed, "CLOSED"),
        (
            StoreError::Io {
                operation: "flush",
                detail: "disk full".into(),
            },
            "IO",
        ),
        (
            StoreError::IdempotencyMismatch {
                event_id: uuid::Uuid::nil(),
            },
            "IDEMPOTENCY_MISMATCH",
        ),
    ];
    for (err, code) in cases {
        assert_eq!(err.code(), code);
        assert!(!err.to_string().is_empty());
    }
}
