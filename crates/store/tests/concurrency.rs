//! Concurrent appends: optimistic concurrency under contention and gap-free
//! positions under group commit.

mod common;

use std::collections::BTreeSet;

use common::{events, temp_store};
use sijil_store::{Direction, ExpectedVersion, StoreError};

const WRITERS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_winner_per_version_under_contention() {
    const TARGET: u64 = 200;
    let (_dir, store) = temp_store();
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            let mut conflicts = 0u64;
            loop {
                let version = store
                    .stream_version("contended")
                    .expect("version")
                    .unwrap_or(0);
                if version >= TARGET {
                    return (wins, conflicts);
                }
                match store
                    .append(
                        "contended",
                        ExpectedVersion::Exact(version),
                        events("Bump", 1),
                    )
                    .await
                {
                    Ok(result) => {
                        assert_eq!(result.next_version, version + 2);
                        assert_eq!(result.first_position, result.last_position);
                        wins.push((version + 1, result.first_position));
                    }
                    Err(StoreError::Conflict { actual, .. }) => {
                        assert_ne!(actual, Some(version).filter(|v| *v > 0));
                        conflicts += 1;
                    }
                    Err(other) => panic!("unexpected error: {other}"),
                }
            }
        }));
    }
    let mut versions = BTreeSet::new();
    let mut positions = BTreeSet::new();
    let mut total_conflicts = 0;
    for task in tasks {
        let (wins, conflicts) = task.await.expect("task");
        total_conflicts += conflicts;
        for (version, position) in wins {
            assert!(versions.insert(version), "version {version} won twice");
            assert!(positions.insert(position), "position {position} used twice");
        }
    }
    assert_eq!(versions, (1..=TARGET).collect());
    assert_eq!(positions, (1..=TARGET).collect());
    assert!(
        total_conflicts > 0,
        "64 writers should have collided at least once"
    );
    let stored = store
        .read_stream("contended", 1, Direction::Forward, usize::MAX)
        .expect("read");
    assert_eq!(
        stored.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=TARGET).collect::<Vec<_>>()
    );
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events_checked, TARGET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_streams_get_gap_free_positions() {
    const PER_WRITER: u64 = 15;
    let (_dir, store) = temp_store();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("writer-{w}");
            let mut last = None;
            for i in 0..PER_WRITER {
                let batch = events("Tick", 1 + (i as usize % 3));
                let n = batch.len() as u64;
                let r = store
                    .append(&stream, ExpectedVersion::Any, batch)
                    .await
                    .expect("append");
                assert_eq!(r.last_position - r.first_position + 1, n);
                if let Some(previous) = last {
                    assert!(r.first_position > previous);
                }
                last = Some(r.last_position);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let all = store.read_all(1, usize::MAX, None).expect("read all");
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=all.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(store.head_position(), all.len() as u64);
    for w in 0..WRITERS {
        let stream = format!("writer-{w}");
        let versions: Vec<u64> = store
            .read_stream(&stream, 1, Direction::Forward, usize::MAX)
            .expect("read")
            .iter()
            .map(|e| e.version)
            .collect();
        assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    }
    assert!(store.verify().expect("verify").is_ok());
}
