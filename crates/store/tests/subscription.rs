//! Subscriptions: catch-up from disk, hand-over to live appends with
//! concurrent writers (no gap, no duplicate), filters and batches.

mod common;

use std::time::Duration;

use common::{event, events, temp_store, Note};
use sijil_store::{EventLog, EventSubscription, ExpectedVersion, Subscription};
use tokio::time::timeout;

const PATIENCE: Duration = Duration::from_secs(20);

async fn next_position(sub: &mut Subscription) -> u64 {
    timeout(PATIENCE, sub.next())
        .await
        .expect("subscription stalled")
        .expect("subscription ended")
        .expect("subscription error")
        .position
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catch_up_then_live_with_concurrent_writers() {
    const BEFORE: u64 = 300;
    const WRITERS: u64 = 8;
    const PER_WRITER: u64 = 60;
    let (_dir, store) = temp_store();
    for _ in 0..(BEFORE / 10) {
        store
            .append("before", ExpectedVersion::Any, events("E", 10))
            .await
            .expect("prefill");
    }
    let mut sub = store.subscribe_all(1).with_batch_size(64);
    // Start reading the backlog before the writers begin.
    assert_eq!(next_position(&mut sub).await, 1);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..PER_WRITER {
                let batch = events("Live", 1 + (i as usize % 2));
                store
                    .append(&format!("live-{w}"), ExpectedVersion::Any, batch)
                    .await
                    .expect("append");
            }
        }));
    }
    // Batches alternate 1 and 2 events, so the total is known up front.
    let written = BEFORE + WRITERS * (PER_WRITER + PER_WRITER / 2);
    for expected in 2..=written {
        let position = next_position(&mut sub).await;
        assert_eq!(position, expected, "gap or duplicate in the subscription");
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    assert_eq!(store.head_position(), written);
    assert_eq!(sub.position(), written + 1);
    // Nothing more is pending.
    assert!(timeout(Duration::from_millis(100), sub.next())
        .await
        .is_err());
}

#[tokio::test]
async fn waits_for_the_first_event_and_follows() {
    let (_dir, store) = temp_store();
    let mut sub = store.subscribe_all(0);
    let writer = store.clone();
    let handle = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        for i in 0..5 {
            writer
                .append(
                    "late",
                    ExpectedVersion::Any,
                    vec![event("E", &Note { n: i })],
                )
                .await
                .expect("append");
        }
    });
    for expected in 1..=5 {
        assert_eq!(next_position(&mut sub).await, expected);
    }
    handle.await.expect("writer");
}

#[tokio::test]
async fn starts_mid_log_filters_types_and_batches() {
    let (_dir, store) = temp_store();
    for i in 0..20u64 {
        let kind = if i % 4 == 0 { "Rare" } else { "Common" };
        store
            .append(
                "mixed",
                ExpectedVersion::Any,
                vec![event(kind, &Note { n: i })],
            )
            .await
            .expect("append");
    }
    let mut from_middle = store.subscribe_all(15);
    assert_eq!(next_position(&mut from_middle).await, 15);

    let mut rare = store
        .subscribe_all(1)
        .with_types(vec!["Rare".into()])
        .with_batch_size(3);
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next_position(&mut rare).await);
    }
    assert_eq!(seen, vec![1, 5, 9, 13, 17]);
    // Batches of 3 scanned 16..=18 to find 17, so 18 is already filtered out.
    assert_eq!(rare.position(), 19);

    let mut batches = store.subscribe_all(1).with_batch_size(8);
    let batch = timeout(PATIENCE, batches.next_batch())
        .await
        .expect("stalled")
        .expect("ended")
        .expect("ok");
    assert_eq!(
        batch.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );

    // Through the backend-neutral trait.
    let mut via_trait = EventLog::subscribe(&store, 2, Some(vec!["Rare".into()]));
    let event = timeout(PATIENCE, EventSubscription::next(&mut via_trait))
        .await
        .expect("stalled")
        .expect("ended")
        .expect("ok");
    assert_eq!(event.position, 5);
}
