//! Idempotent appends: resubmitting stored event ids returns the original
//! result and writes nothing; reusing an id for different content fails.

mod common;

use common::{event, events, temp_store, Note};
use sijil_store::{ExpectedVersion, StoreError};

#[tokio::test]
async fn resubmitting_a_batch_returns_the_original_result() {
    let (_dir, store) = temp_store();
    store
        .append("other", ExpectedVersion::Any, events("E", 2))
        .await
        .expect("append");
    let batch = events("E", 3);
    let first = store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("append");
    store
        .append("other", ExpectedVersion::Any, events("E", 1))
        .await
        .expect("append");
    // Even with an expectation that would now conflict.
    let again = store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("retry");
    assert_eq!(again, first);
    let again = store
        .append("s", ExpectedVersion::Exact(42), batch)
        .await
        .expect("retry");
    assert_eq!(again, first);
    assert_eq!(store.head_position(), 6);
    assert_eq!(store.stream_version("s").expect("version"), Some(3));
}

#[tokio::test]
async fn concurrent_duplicates_write_once() {
    let (_dir, store) = temp_store();
    let batch = events("E", 2);
    let (a, b) = tokio::join!(
        store.append("s", ExpectedVersion::Any, batch.clone()),
        store.append("s", ExpectedVersion::Any, batch.clone()),
    );
    assert_eq!(a.expect("first"), b.expect("second"));
    assert_eq!(store.head_position(), 2);
    assert!(store.verify().expect("verify").is_ok());
}

fn assert_mismatch(result: Result<sijil_store::AppendResult, StoreError>, id: uuid::Uuid) {
    match result {
        Err(StoreError::IdempotencyMismatch { event_id }) => assert_eq!(event_id, id),
        other => panic!("expected an idempotency mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn reusing_an_id_for_anything_else_fails_and_writes_nothing() {
    let (_dir, store) = temp_store();
    let original = event("E", &Note { n: 1 });
    let id = original.event_id;
    store
        .append("s", ExpectedVersion::Any, vec![original.clone()])
        .await
        .expect("append");

    let mut other_payload = original.clone();
    other_payload.payload = common::msgpack(&Note { n: 2 });
    assert_mismatch(
        store
            .append("s", ExpectedVersion::Any, vec![other_payload])
            .await,
        id,
    );

    assert_mismatch(
        store
            .append("t", ExpectedVersion::Any, vec![original.clone()])
            .await,
        id,
    );

    let mut other_type = original.clone();
    other_type.event_type = "F".into();
    assert_mismatch(
        store
            .append("s", ExpectedVersion::Any, vec![other_type])
            .await,
        id,
    );

    let mut other_actor = original.clone();
    other_actor.actor = "agent:x".into();
    assert_mismatch(
        store
            .append("s", ExpectedVersion::Any, vec![other_actor])
            .await,
        id,
    );

    // Partly stored batch: the stored id is reported, the new one not written.
    let fresh = event("E", &Note { n: 3 });
    assert_mismatch(
        store
            .append(
                "s",
                ExpectedVersion::Any,
                vec![fresh.clone(), original.clone()],
            )
            .await,
        id,
    );
    assert_eq!(store.event_position(fresh.event_id).expect("index"), None);

    // Stored ids in another order than appended.
    let pair = events("E", 2);
    store
        .append("p", ExpectedVersion::Any, pair.clone())
        .await
        .expect("append");
    let swapped = vec![pair[1].clone(), pair[0].clone()];
    let err = store
        .append("p", ExpectedVersion::Any, swapped)
        .await
        .expect_err("reordered");
    assert_eq!(err.code(), "IDEMPOTENCY_MISMATCH");

    assert_eq!(store.head_position(), 3);
    assert!(store.verify().expect("verify").is_ok());
}
