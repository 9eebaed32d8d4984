//! The workspace log index: two workspaces writing interleaved each see their events numbered
//! 1..=n with no gaps, in global order; lookups both ways agree; paging from any sequence
//! returns the rest exactly once; and a rebuild (or a build in small chunks) equals the
//! incremental build row for row.

mod projection_support;

use std::sync::Arc;

use projection_support::{append_blocking, dump, World};
use sijil_domain::Channel;
use sijil_store::projections::workspace_log::{self, WorkspaceLogProjection};
use sijil_store::projections::{catch_up_blocking, CatchUpOptions, ProjectionHandle};
use sijil_store::Store;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Two worlds whose events are appended alternately, a few at a time.
fn interleaved() -> Result<(tempfile::TempDir, Store, World, World), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let mut a = World::new(71);
    let mut b = World::new(72);
    let mut appended = (0usize, 0usize);
    for i in 0..12u64 {
        let ca = a.register(&format!("A{i}"), &format!("RA-{i}"), &[])?;
        a.interaction(ca, Channel::Email, "hello", None, None)?;
        let cb = b.register(&format!("B{i}"), &format!("RB-{i}"), &[])?;
        // B writes three times as much as A.
        for _ in 0..3 {
            b.interaction(cb, Channel::Phone, "hi", None, None)?;
        }
        append_blocking(&store, a.ws, &a.log[appended.0..]);
        appended.0 = a.log.len();
        append_blocking(&store, b.ws, &b.log[appended.1..]);
        appended.1 = b.log.len();
    }
    Ok((dir, store, a, b))
}

#[test]
fn each_workspace_is_numbered_gap_free_in_log_order() -> TestResult {
    // Given two workspaces writing interleaved
    let (_dir, store, a, b) = interleaved()?;
    // When the index catches up
    let handle = catch_up_blocking(&store, Arc::new(WorkspaceLogProjection))?;
    // Then each workspace's events are numbered 1..=n, in global order, with their types
    let all = store.read_all(1, 10_000, None)?;
    for world in [&a, &b] {
        let ws = world.ws;
        let mine: Vec<_> = all
            .iter()
            .filter(|e| e.workspace_id == ws.as_uuid())
            .collect();
        assert_eq!(mine.len(), world.log.len());
        let count = handle.read(|t| workspace_log::count(t, ws))?;
        assert_eq!(count, mine.len() as u64);
        let entries = handle.read(|t| workspace_log::entries(t, ws, 1, 10_000))?;
        let sequences: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
        assert_eq!(sequences, (1..=count).collect::<Vec<_>>());
        for (entry, event) in entries.iter().zip(&mine) {
            assert_eq!(entry.position, event.position);
            assert_eq!(entry.event_type, event.event_type);
            let back = handle.read(|t| workspace_log::sequence_of(t, ws, event.position))?;
            assert_eq!(back, Some(entry.sequence));
            let forth = handle.read(|t| workspace_log::position_of(t, ws, entry.sequence))?;
            assert_eq!(forth, Some(event.position));
        }
        // Paging from any sequence gives the rest exactly once.
        let mut seen = Vec::new();
        let mut from = 1;
        loop {
            let page = handle.read(|t| workspace_log::entries(t, ws, from, 7))?;
            let Some(last) = page.last() else { break };
            from = last.sequence + 1;
            seen.extend(page.iter().map(|e| e.sequence));
        }
        assert_eq!(seen, (1..=count).collect::<Vec<_>>());
    }
    // And another workspace's global positions are unknown to this one
    let b_first = all
        .iter()
        .find(|e| e.workspace_id == b.ws.as_uuid())
        .map(|e| e.position)
        .ok_or("b wrote nothing")?;
    assert_eq!(
        handle.read(|t| workspace_log::sequence_of(t, a.ws, b_first))?,
        None
    );
    Ok(())
}

#[test]
fn last_at_or_before_maps_a_global_position_into_the_workspace() -> TestResult {
    let (_dir, store, a, b) = interleaved()?;
    let handle = catch_up_blocking(&store, Arc::new(WorkspaceLogProjection))?;
    let all = store.read_all(1, 10_000, None)?;
    // The first event is A's (A appends first in every round).
    assert_eq!(all[0].workspace_id, a.ws.as_uuid());
    assert_eq!(
        handle.read(|t| workspace_log::last_at_or_before(t, a.ws, 0))?,
        None
    );
    assert_eq!(
        handle.read(|t| workspace_log::last_at_or_before(t, b.ws, 1))?,
        None
    );
    let mut expected_a = None;
    let mut n = 0;
    for event in &all {
        if event.workspace_id == a.ws.as_uuid() {
            n += 1;
            expected_a = Some((n, event.position));
        }
        assert_eq!(
            handle.read(|t| workspace_log::last_at_or_before(t, a.ws, event.position))?,
            expected_a
        );
    }
    assert_eq!(
        handle.read(|t| workspace_log::last_at_or_before(t, a.ws, u64::MAX))?,
        expected_a
    );
    Ok(())
}

#[test]
fn rebuild_and_small_chunks_equal_the_incremental_build() -> TestResult {
    // Given an index built incrementally, a few events at a time
    let (_dir, store, _a, _b) = interleaved()?;
    let handle = ProjectionHandle::open(store.db(), Arc::new(WorkspaceLogProjection))?;
    handle.catch_up_with(
        &store,
        CatchUpOptions {
            chunk_events: 3,
            upto: None,
        },
    )?;
    let incremental = handle.read(dump);
    // When it is checked against a from-scratch build and then rebuilt
    let report = handle.check(&store)?;
    assert!(report.is_consistent(), "{report:?}");
    handle.rebuild(&store)?;
    // Then the rebuilt rows are the same
    assert_eq!(handle.read(dump), incremental);
    Ok(())
}
