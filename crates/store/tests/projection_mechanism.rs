//! The projection framework's guarantees: rows and checkpoint commit together (an
//! interrupted catch-up resumes without losing or repeating anything), a version change
//! rebuilds from position 0, rebuilds swap generations while the old one keeps answering,
//! `check` finds tampering, `wait_for` waits or times out with a typed error, and (property
//! test) an incremental build chunked at random points equals a rebuild on random valid
//! domain histories.

mod projection_support;
mod segment_files;

use std::sync::Arc;
use std::time::Duration;

use projection_support::{append, append_blocking, contact_value, dump, World, KINDS};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sijil_domain::aggregates::case::Command as CaseCmd;
use sijil_domain::aggregates::follow_up::Command as FollowUpCmd;
use sijil_domain::{Channel, DomainEvent, Score, SlaTarget};
use sijil_store::projections::directory::DirectoryProjection;
use sijil_store::projections::escalation::EscalationProjection;
use sijil_store::projections::metrics::MetricsProjection;
use sijil_store::projections::overlay::{checkpoint, Overlay};
use sijil_store::projections::timeline::TimelineProjection;
use sijil_store::projections::workspace_log::WorkspaceLogProjection;
use sijil_store::projections::{
    CatchUpOptions, EventMeta, Projection, ProjectionError, ProjectionHandle, ProjectionState,
    Projections, RebuildOptions,
};
use sijil_store::Store;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// A small, realistic history of two workspaces.
fn history() -> Result<Vec<World>, Box<dyn std::error::Error>> {
    let mut worlds = Vec::new();
    for n in 0..2u64 {
        let mut w = World::new(100 + n);
        let agent = w.register_agent("Agent")?;
        let mut customers = Vec::new();
        for i in 0..30u64 {
            let c = w.register(
                &format!("عميل {i} Customer{i}"),
                &format!("R-{i}"),
                &[(
                    KINDS[(i % 4) as usize],
                    &contact_value(KINDS[(i % 4) as usize], i),
                )],
            )?;
            customers.push(c);
            w.interaction(
                c,
                Channel::ALL[(i % 10) as usize],
                "hello",
                None,
                Some(agent),
            )?;
            let case = w.open_case(c, "subject", Channel::Email)?;
            w.case_note(case, "a note")?;
            if i % 3 == 0 {
                let at = w.at();
                w.case(
                    case,
                    CaseCmd::Resolve {
                        resolution: "done".into(),
                        root_cause: "x".into(),
                        first_contact_resolution: true,
                        agent: Some(agent),
                        at,
                    },
                )?;
                w.survey(c, case, Score::Csat(4), Some("fine"))?;
            }
        }
        w.merge(customers[1], customers[0])?;
        w.forget(customers[2])?;
        w.rename(customers[3], "Renamed Person")?;
        worlds.push(w);
    }
    Ok(worlds)
}

fn store_with(worlds: &[World]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    for w in worlds {
        append_blocking(&store, w.ws, &w.log);
    }
    (dir, store)
}

/// [`store_with`] for async tests.
async fn store_with_async(worlds: &[World]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    for w in worlds {
        append(&store, w.ws, &w.log).await;
    }
    (dir, store)
}

fn standard() -> Vec<Arc<dyn Projection>> {
    vec![Arc::new(TimelineProjection), Arc::new(DirectoryProjection)]
}

/// Every projection the server runs (the directory in its plaintext form).
fn every() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(TimelineProjection),
        Arc::new(DirectoryProjection),
        Arc::new(MetricsProjection),
        Arc::new(EscalationProjection),
        Arc::new(WorkspaceLogProjection),
    ]
}

/// The contents of `projection` rebuilt from scratch in a separate store holding the same
/// log (so the reference shares nothing with the model under test).
fn reference_rows(worlds: &[World], projection: Arc<dyn Projection>) -> Rows {
    let (_dir, store) = store_with(worlds);
    let handle = ProjectionHandle::open(store.db(), projection).expect("open");
    handle.catch_up(&store).expect("catch up");
    handle.read(dump)
}

#[test]
fn interrupted_catch_up_resumes_without_loss_or_duplicates() -> TestResult {
    let worlds = history()?;
    let dir = tempfile::tempdir()?;
    {
        let store = Store::open(dir.path())?;
        for w in &worlds {
            append_blocking(&store, w.ws, &w.log);
        }
    }
    let head;
    {
        // Given a catch-up that stopped a third of the way, in odd-sized chunks
        let store = Store::open(dir.path())?;
        head = store.head_position();
        for projection in standard() {
            let handle = ProjectionHandle::open(store.db(), projection)?;
            let reached = handle.catch_up_with(
                &store,
                CatchUpOptions {
                    chunk_events: 7,
                    upto: Some(head / 3),
                },
            )?;
            assert_eq!(reached, head / 3);
            // and a chunk that was being applied when the process died: its writes were
            // only in the overlay and never reach the tree
            let tree = handle.read(Clone::clone);
            let mut ov = Overlay::new(&tree);
            ov.insert(b"zz-uncommitted".to_vec(), b"x".to_vec());
            drop(ov);
        }
        // everything is dropped here, as in a crash
    }
    // When the database is reopened and catch-up finishes
    let store = Store::open(dir.path())?;
    for projection in standard() {
        let expected = reference_rows(&worlds, Arc::clone(&projection));
        let handle = ProjectionHandle::open(store.db(), Arc::clone(&projection))?;
        assert_eq!(handle.applied_position(), head / 3);
        handle.catch_up_with(
            &store,
            CatchUpOptions {
                chunk_events: 13,
                upto: None,
            },
        )?;
        // Then the model equals a one-shot build, key for key (checkpoint included)
        let rows = handle.read(dump);
        assert_eq!(rows.len(), expected.len(), "{}", projection.name());
        assert!(
            rows == expected,
            "{} differs from a one-shot build",
            projection.name()
        );
        assert_eq!(handle.read(checkpoint)?, head);
        let report = handle.check(&store)?;
        assert!(report.is_consistent(), "{report:?}");
    }
    Ok(())
}

/// A projection that records each event it sees; `version` 2 changes the row layout.
struct Recorder {
    version: u32,
    delay: Option<Duration>,
    fail_at: Option<u64>,
}

impl Projection for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn event_types(&self) -> &'static [&'static str] {
        sijil_domain::EVENT_TYPES
    }
    fn apply(
        &self,
        ov: &mut Overlay<'_>,
        meta: &EventMeta<'_>,
        event: &DomainEvent,
    ) -> Result<(), ProjectionError> {
        if let Some(delay) = self.delay {
            std::thread::sleep(delay);
        }
        if self.fail_at == Some(meta.position) {
            return Err(ProjectionError::InvalidQuery("refusing on purpose".into()));
        }
        let mut key = vec![b'v', self.version as u8];
        key.extend_from_slice(&meta.position.to_be_bytes());
        ov.insert(key, event.event_type().as_bytes().to_vec());
        Ok(())
    }
}

fn recorder(version: u32) -> Arc<dyn Projection> {
    Arc::new(Recorder {
        version,
        delay: None,
        fail_at: None,
    })
}

#[test]
fn a_projection_that_applied_nothing_is_filled_like_a_rebuild_when_the_log_is_big() -> TestResult {
    let worlds = history()?;
    let (_dir, store) = store_with(&worlds);
    let head = store.head_position();
    for projection in standard() {
        // Given a projection that has applied nothing, over a log at least the threshold long
        let handle = ProjectionHandle::open(store.db(), Arc::clone(&projection))?;
        assert_eq!(handle.applied_position(), 0);
        // When it catches up
        handle.catch_up_filling_from(&store, head)?;
        // Then it was filled into a new generation, swapped in at the head, and holds the
        // rows the chunk-by-chunk catch-up builds
        let status = handle.status();
        assert_eq!(status.generation, 2, "{}", projection.name());
        assert_eq!(handle.applied_position(), head);
        assert_eq!(handle.state(), ProjectionState::Live);
        let (_other_dir, other) = store_with(&worlds);
        let incremental = ProjectionHandle::open(other.db(), Arc::clone(&projection))?;
        incremental.catch_up_with(
            &other,
            CatchUpOptions {
                chunk_events: 13,
                upto: None,
            },
        )?;
        assert!(
            handle.read(dump) == incremental.read(dump),
            "{} differs",
            projection.name()
        );
        // and a log below the threshold is caught up in place (generation 1)
        let (_small_dir, small) = store_with(&worlds);
        let in_place = ProjectionHandle::open(small.db(), Arc::clone(&projection))?;
        in_place.catch_up_filling_from(&small, head + 1)?;
        assert_eq!(in_place.status().generation, 1);
        assert!(in_place.read(dump) == incremental.read(dump));
    }
    Ok(())
}

#[test]
fn a_version_change_rebuilds_from_zero() -> TestResult {
    let worlds = history()?;
    let (_dir, store) = store_with(&worlds);
    let head = store.head_position();
    // Given a model built by version 1
    {
        let v1 = ProjectionHandle::open(store.db(), recorder(1))?;
        v1.catch_up(&store)?;
        assert_eq!(v1.status().model_version, 1);
        assert_eq!(v1.read(|t| t.len()), head as usize + 1);
    }
    // When version 2 of the code opens it
    let v2 = ProjectionHandle::open(store.db(), recorder(2))?;
    assert!(v2.is_stale());
    assert_eq!(v2.status().model_version, 1);
    assert_eq!(v2.applied_position(), 0, "nothing applied by version 2 yet");
    v2.catch_up(&store)?;
    // Then it was rebuilt from position 0 into a new generation with only v2 rows
    let status = v2.status();
    assert_eq!((status.version, status.model_version), (2, 2));
    assert_eq!(status.generation, 2);
    assert!(!v2.is_stale());
    let rows = v2.read(dump);
    assert_eq!(rows.len(), head as usize + 1);
    assert!(rows
        .iter()
        .filter(|(k, _)| k[0] == b'v')
        .all(|(k, _)| k[1] == 2));
    // The first row after the checkpoint is position 1: the model started from 0
    assert_eq!(rows[1].0[2..], 1u64.to_be_bytes());
    let names: Vec<String> = store
        .db()
        .tree_names()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .filter(|n| n.starts_with("proj/recorder/"))
        .collect();
    assert_eq!(names, vec!["proj/recorder/v2/g2".to_owned()]);
    Ok(())
}

#[test]
fn a_model_past_the_end_of_the_log_is_rebuilt_from_the_log() -> TestResult {
    let worlds = history()?;
    let (dir, store) = store_with(&worlds);
    let head = store.head_position();
    // Given a model caught up to the head
    {
        let handle = ProjectionHandle::open(store.db(), recorder(1))?;
        handle.catch_up(&store)?;
        assert_eq!(handle.applied_position(), head);
    }
    store.db().flush()?;
    drop(store);
    // and the log's last ten events lost (a power cut after sled flushed the model)
    segment_files::cut_after(dir.path(), head - 10);
    let store = Store::open(dir.path())?;
    assert_eq!(store.head_position(), head - 10);
    // When the projection catches up
    let handle = ProjectionHandle::open(store.db(), recorder(1))?;
    assert_eq!(handle.applied_position(), head);
    handle.catch_up(&store)?;
    // Then it was rebuilt from the log: one row per event the log holds, and the same rows
    // as a model built over that log from scratch
    assert_eq!(handle.applied_position(), head - 10);
    assert_eq!(handle.status().generation, 2);
    assert_eq!(handle.read(|t| t.len()), (head - 10) as usize + 1);
    assert!(handle.check(&store)?.is_consistent());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_rebuilds_a_stale_model_on_start() -> TestResult {
    let worlds = history()?;
    let (_dir, store) = store_with_async(&worlds).await;
    let head = store.head_position();
    {
        let v1 = ProjectionHandle::open(store.db(), recorder(1))?;
        v1.catch_up(&store)?;
    }
    let projections = Projections::start_with(store.clone(), vec![recorder(2)])?;
    projections.wait_for(head, Duration::from_secs(30)).await?;
    let status = &projections.status()[0];
    assert_eq!((status.model_version, status.generation), (2, 2));
    assert_eq!(status.applied_position, head);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_swaps_generations_while_the_old_one_answers() -> TestResult {
    let worlds = history()?;
    let (_dir, store) = store_with_async(&worlds).await;
    let head = store.head_position();
    // Given a live model (slow to build: 1 ms per event)
    let slow: Arc<dyn Projection> = Arc::new(Recorder {
        version: 1,
        delay: Some(Duration::from_millis(1)),
        fail_at: None,
    });
    let projections = Projections::start_with(store.clone(), vec![slow])?;
    projections.wait_for(head, Duration::from_secs(60)).await?;
    let before = projections.read("recorder", dump)?;
    assert_eq!(before.len(), head as usize + 1);
    // When a rebuild runs
    let rebuild = {
        let projections = projections.clone();
        tokio::spawn(async move { projections.rebuild("recorder").await })
    };
    let handle = Arc::clone(projections.handle("recorder")?);
    let mut seen_rebuilding = false;
    let mut queried = 0;
    for _ in 0..2000 {
        if rebuild.is_finished() {
            break;
        }
        let status = handle.status();
        if status.state == ProjectionState::Rebuilding {
            seen_rebuilding = true;
            // Then the old generation keeps answering with the full model
            assert_eq!(status.generation, 1);
            assert_eq!(projections.read("recorder", dump)?, before);
            queried += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stats = rebuild.await??;
    assert!(seen_rebuilding && queried > 0);
    // And afterwards the new generation serves the same rows and the old tree is gone
    assert_eq!(stats.generation, 2);
    assert_eq!(stats.position, head);
    assert!(stats.events_per_sec > 0.0);
    assert_eq!(handle.status().generation, 2);
    assert_eq!(projections.read("recorder", dump)?, before);
    let names: Vec<Vec<u8>> = store.db().tree_names().iter().map(|n| n.to_vec()).collect();
    assert!(!names.contains(&b"proj/recorder/v1/g1".to_vec()));
    assert!(names.contains(&b"proj/recorder/v1/g2".to_vec()));
    // New events still arrive in the new generation
    let mut w = World::new(999);
    w.register("After Rebuild", "AR-1", &[])?;
    let position = append(&store, w.ws, &w.log).await;
    projections
        .wait_for(position, Duration::from_secs(30))
        .await?;
    assert_eq!(
        projections.read("recorder", |t| t.len())?,
        position as usize + 1
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_tampering() -> TestResult {
    let worlds = history()?;
    let (_dir, store) = store_with_async(&worlds).await;
    let projections = Projections::start_with(store.clone(), standard())?;
    projections
        .wait_for(store.head_position(), Duration::from_secs(30))
        .await?;
    for name in ["timeline", "directory"] {
        // Given a healthy model / Then check reports no difference
        let report = projections.check(name).await?;
        assert!(report.is_consistent(), "{report:?}");
        assert!(report.live_keys > 0 && report.live_keys == report.rebuilt_keys);
        // When a row is changed and another added behind the projection's back
        let (key, _) = projections
            .read(name, |t| t.iter().nth(5))?
            .transpose()?
            .expect("a row");
        projections.read(name, |t| t.insert(&key, b"tampered".to_vec()))??;
        projections.read(name, |t| t.insert(b"\xfestray", b"x".to_vec()))??;
        // Then check reports both
        let report = projections.check(name).await?;
        assert!(!report.is_consistent());
        assert_eq!(
            (report.different, report.only_live, report.only_rebuilt),
            (1, 1, 0)
        );
        assert_eq!(report.examples.len(), 2);
        // And a rebuild repairs the model
        projections.rebuild(name).await?;
        assert!(projections.check(name).await?.is_consistent());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_returns_when_caught_up_and_times_out_otherwise() -> TestResult {
    let (_dir, store) = store_with_async(&[]).await;
    let projections = Projections::start_with(store.clone(), standard())?;
    // Given an append
    let mut w = World::new(200);
    w.register("Waiter", "W-1", &[])?;
    let position = append(&store, w.ws, &w.log).await;
    // Then waiting for its position returns once every projection applied it
    projections
        .wait_for(position, Duration::from_secs(30))
        .await?;
    for status in projections.status() {
        assert!(status.applied_position >= position);
        assert_eq!(status.state, ProjectionState::Live);
    }
    // And waiting for a position nobody wrote times out with a typed error
    let err = projections
        .wait_for(position + 10, Duration::from_millis(150))
        .await
        .expect_err("nothing at that position");
    assert_eq!(err.code(), "TIMEOUT");
    assert!(
        matches!(err, ProjectionError::Timeout { position: p, waited_ms: 150 } if p == position + 10)
    );
    Ok(())
}

#[test]
fn a_failing_fill_from_scratch_still_stops_exactly_at_the_bad_event() -> TestResult {
    let worlds = history()?;
    let (_dir, store) = store_with(&worlds);
    let failing: Arc<dyn Projection> = Arc::new(Recorder {
        version: 1,
        delay: None,
        fail_at: Some(10),
    });
    let handle = ProjectionHandle::open(store.db(), failing)?;
    // When a projection that applied nothing is filled like a rebuild and an event fails
    let err = handle
        .catch_up_filling_from(&store, 1)
        .expect_err("stops at 10");
    // Then it is recorded as stopped there, with events 1..=9 applied, as in a plain catch-up
    assert!(matches!(err, ProjectionError::InvalidQuery(_)), "{err}");
    assert_eq!(handle.applied_position(), 9);
    assert!(matches!(
        handle.state(),
        ProjectionState::Failed { position: 10, .. }
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_projection_stops_exactly_at_the_bad_event() -> TestResult {
    let worlds = history()?;
    let (_dir, store) = store_with_async(&worlds).await;
    let failing: Arc<dyn Projection> = Arc::new(Recorder {
        version: 1,
        delay: None,
        fail_at: Some(10),
    });
    let projections = Projections::start_with(store.clone(), vec![failing])?;
    let err = projections
        .wait_for(store.head_position(), Duration::from_secs(30))
        .await
        .expect_err("stops at 10");
    assert_eq!(err.code(), "PROJECTION_STOPPED");
    let handle = projections.handle("recorder")?;
    assert_eq!(handle.applied_position(), 9);
    assert_eq!(
        handle.read(|t| t.len()),
        10,
        "events 1..=9 and the checkpoint"
    );
    assert!(matches!(
        handle.state(),
        ProjectionState::Failed { position: 10, .. }
    ));
    Ok(())
}

// ---------------------------------------------------------------- property test

/// One random domain command (indices pick among existing entities, modulo their count).
#[derive(Clone, Debug)]
enum Op {
    Register(usize, Vec<(usize, u64)>),
    Rename(usize, usize),
    AddContact(usize, usize, u64),
    RemoveContact(usize, usize, u64),
    Merge(usize, usize),
    Forget(usize),
    Interaction(usize, usize, Option<usize>),
    OpenCase(usize, usize),
    CaseStep(usize, u8),
    Note(usize),
    Survey(usize, usize, u8),
    ScheduleFollowUp(usize),
    FinishFollowUp(usize, bool),
    Agent,
    Recognise(usize, usize, usize),
    Wait(u32),
}

const NAMES: [&str; 6] = [
    "Amina Al-Harbi",
    "مُحَمَّد عبد الله",
    "José Álvarez",
    "山田 太郎",
    "Ann Annabel",
    "إبراهيم",
];

fn op() -> impl Strategy<Value = Op> {
    let i = || 0usize..1000;
    prop_oneof![
        3 => (i(), proptest::collection::vec((0usize..4, 0u64..6), 0..3))
            .prop_map(|(n, c)| Op::Register(n, c)),
        1 => (i(), i()).prop_map(|(c, n)| Op::Rename(c, n)),
        1 => (i(), 0usize..4, 0u64..6).prop_map(|(c, k, v)| Op::AddContact(c, k, v)),
        1 => (i(), 0usize..4, 0u64..6).prop_map(|(c, k, v)| Op::RemoveContact(c, k, v)),
        1 => (i(), i()).prop_map(|(a, b)| Op::Merge(a, b)),
        1 => i().prop_map(Op::Forget),
        3 => (i(), i(), proptest::option::of(i())).prop_map(|(c, ch, k)| Op::Interaction(c, ch, k)),
        2 => (i(), i()).prop_map(|(c, ch)| Op::OpenCase(c, ch)),
        3 => (i(), 0u8..8).prop_map(|(k, s)| Op::CaseStep(k, s)),
        1 => i().prop_map(Op::Note),
        1 => (i(), i(), 0u8..11).prop_map(|(c, k, s)| Op::Survey(c, k, s)),
        1 => i().prop_map(Op::ScheduleFollowUp),
        1 => (i(), any::<bool>()).prop_map(|(f, done)| Op::FinishFollowUp(f, done)),
        1 => Just(Op::Agent),
        1 => (i(), i(), i()).prop_map(|(a, b, k)| Op::Recognise(a, b, k)),
        1 => (1u32..600).prop_map(Op::Wait),
    ]
}

fn pick<T: Copy>(items: &[T], i: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[i % items.len()])
}

/// Runs `ops` against the domain; refused commands are skipped, as a real client would see.
fn play(w: &mut World, ops: &[Op]) {
    for op in ops {
        let customers = w.customer_ids();
        let cases = w.case_ids();
        let agents = w.agent_ids();
        // Refusals are part of the game: only accepted commands record events.
        let _ = match op.clone() {
            Op::Register(n, contacts) => {
                let owned: Vec<(sijil_domain::ContactKind, String)> = contacts
                    .iter()
                    .map(|(k, v)| (KINDS[*k], contact_value(KINDS[*k], *v)))
                    .collect();
                let refs: Vec<(sijil_domain::ContactKind, &str)> =
                    owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let reference = format!("R-{}", customers.len());
                w.register(NAMES[n % NAMES.len()], &reference, &refs)
                    .map(|_| ())
            }
            Op::Rename(c, n) => match pick(&customers, c) {
                Some(c) => w.rename(c, NAMES[n % NAMES.len()]),
                None => Ok(()),
            },
            Op::AddContact(c, k, v) => match pick(&customers, c) {
                Some(c) => w.add_contact(c, KINDS[k], &contact_value(KINDS[k], v)),
                None => Ok(()),
            },
            Op::RemoveContact(c, k, v) => match pick(&customers, c) {
                Some(c) => w.remove_contact(c, KINDS[k], &contact_value(KINDS[k], v)),
                None => Ok(()),
            },
            Op::Merge(a, b) => match (pick(&customers, a), pick(&customers, b)) {
                (Some(a), Some(b)) => w.merge(a, b),
                _ => Ok(()),
            },
            Op::Forget(c) => match pick(&customers, c) {
                Some(c) => w.forget(c),
                None => Ok(()),
            },
            Op::Interaction(c, ch, k) => match pick(&customers, c) {
                Some(c) => {
                    let case = k.and_then(|k| pick(&cases, k));
                    let agent = pick(&agents, ch);
                    w.interaction(c, Channel::ALL[ch % 10], "talked", case, agent)
                        .map(|_| ())
                }
                None => Ok(()),
            },
            Op::OpenCase(c, ch) => match pick(&customers, c) {
                Some(c) => w.open_case(c, "problem", Channel::ALL[ch % 10]).map(|_| ()),
                None => Ok(()),
            },
            Op::CaseStep(k, step) => match pick(&cases, k) {
                Some(case) => {
                    let at = w.at();
                    let agent = pick(&agents, k);
                    let command = match step {
                        0 => CaseCmd::Assign {
                            agent,
                            team: None,
                            at,
                        },
                        1 => CaseCmd::GiveFirstResponse {
                            agent,
                            channel: Channel::Email,
                            at,
                        },
                        2 => CaseCmd::Escalate {
                            reason: "hard".into(),
                            team: None,
                            at,
                        },
                        3 => CaseCmd::Deescalate {
                            reason: "easier".into(),
                            team: None,
                            at,
                        },
                        4 => CaseCmd::BreachSla {
                            target: if k % 2 == 0 {
                                SlaTarget::Resolution
                            } else {
                                SlaTarget::FirstResponse
                            },
                            now: at,
                        },
                        5 => CaseCmd::Resolve {
                            resolution: "fixed".into(),
                            root_cause: "bug".into(),
                            first_contact_resolution: k % 2 == 0,
                            agent,
                            at,
                        },
                        6 => CaseCmd::Reopen {
                            reason: "again".into(),
                            at,
                        },
                        _ => CaseCmd::Close { at },
                    };
                    w.case(case, command)
                }
                None => Ok(()),
            },
            Op::Note(k) => match pick(&cases, k) {
                Some(case) => w.case_note(case, "noted"),
                None => Ok(()),
            },
            Op::Survey(c, k, s) => match (pick(&customers, c), pick(&cases, k)) {
                (Some(c), Some(case)) => w
                    .survey(c, case, Score::Nps(s), Some("comment"))
                    .map(|_| ()),
                _ => Ok(()),
            },
            Op::ScheduleFollowUp(c) => match pick(&customers, c) {
                Some(c) => w.schedule_follow_up(c, "call back").map(|_| ()),
                None => Ok(()),
            },
            Op::FinishFollowUp(f, done) => match pick(&w.follow_up_ids(), f) {
                Some(id) => {
                    let at = w.at();
                    let command = if done {
                        FollowUpCmd::Complete {
                            outcome: "ok".into(),
                            agent: None,
                            at,
                        }
                    } else {
                        FollowUpCmd::Cancel {
                            reason: "no need".into(),
                            at,
                        }
                    };
                    w.follow_up(id, command)
                }
                None => Ok(()),
            },
            Op::Agent => w.register_agent("Agent Smith").map(|_| ()),
            Op::Recognise(a, b, k) => match (pick(&agents, a), pick(&agents, b), pick(&cases, k)) {
                (Some(a), Some(b), Some(case)) => w.recognise(a, b, case, "well done"),
                _ => Ok(()),
            },
            Op::Wait(minutes) => {
                w.now += i64::from(minutes) * 60_000;
                Ok(())
            }
        };
    }
}

#[test]
fn incremental_build_equals_rebuild_on_random_histories() -> TestResult {
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    let strategy = (
        proptest::collection::vec(op(), 20..160),
        proptest::collection::vec(op(), 0..40),
        proptest::collection::vec((0u64..100, 1usize..40), 1..5),
        1usize..60,
    );
    runner.run(&strategy, |(ops, ops2, cuts, rebuild_chunk)| {
        let mut w = World::new(7);
        play(&mut w, &ops);
        let mut w2 = World::new(8);
        play(&mut w2, &ops2);
        let (_dir, store) = store_with(&[]);
        append_blocking(&store, w.ws, &w.log);
        append_blocking(&store, w2.ws, &w2.log);
        let head = store.head_position();
        let fail = |e: ProjectionError| TestCaseError::fail(e.to_string());
        for projection in every() {
            // Incremental: stop at random points in random chunk sizes, reopening each time
            let mut points: Vec<(u64, usize)> = cuts
                .iter()
                .map(|(pct, chunk)| (head * pct / 100, *chunk))
                .collect();
            points.sort();
            points.push((head, 17));
            for (upto, chunk) in points {
                let handle =
                    ProjectionHandle::open(store.db(), Arc::clone(&projection)).map_err(fail)?;
                handle
                    .catch_up_with(
                        &store,
                        CatchUpOptions {
                            chunk_events: chunk,
                            upto: Some(upto),
                        },
                    )
                    .map_err(fail)?;
            }
            let handle =
                ProjectionHandle::open(store.db(), Arc::clone(&projection)).map_err(fail)?;
            prop_assert_eq!(handle.applied_position(), head);
            let incremental = handle.read(dump);
            // Rebuild from 0 in one go into a new generation
            let stats = handle.rebuild(&store).map_err(fail)?;
            prop_assert_eq!(stats.position, head);
            let rebuilt = handle.read(dump);
            prop_assert_eq!(incremental.len(), rebuilt.len(), "{}", projection.name());
            prop_assert!(incremental == rebuilt, "{} differs", projection.name());
            // and again in small chunks: a fill keeps its state from chunk to chunk (open
            // blocks, counters, owners, and the merges and erasures it has seen); then with
            // nothing kept in memory over a commit: every commit of the fill is over budget,
            // so what is held is written there (and read back after)
            for carry_bytes in [RebuildOptions::default().carry_bytes, 0] {
                let options = RebuildOptions {
                    chunk_events: rebuild_chunk,
                    carry_bytes,
                };
                let stats = handle.rebuild_with(&store, options).map_err(fail)?;
                prop_assert_eq!(stats.position, head);
                let rebuilt = handle.read(dump);
                prop_assert!(
                    incremental == rebuilt,
                    "{} differs when rebuilt with {options:?}",
                    projection.name()
                );
            }
        }
        Ok(())
    })?;
    Ok(())
}

#[test]
fn random_histories_exercise_the_domain() -> TestResult {
    // Guards the generator: a long random history records every kind of event the
    // projections consume, so the property test above is not vacuous.
    let mut runner = TestRunner::deterministic();
    let ops = proptest::collection::vec(op(), 3000)
        .new_tree(&mut runner)
        .map_err(|e| e.to_string())?
        .current();
    let mut w = World::new(9);
    play(&mut w, &ops);
    let mut seen: Vec<&str> = w.log.iter().map(|e| e.event_type()).collect();
    seen.sort();
    seen.dedup();
    for wanted in [
        "CustomerRegistered",
        "CustomerProfileUpdated",
        "ContactPointAdded",
        "ContactPointRemoved",
        "CustomerMerged",
        "CustomerForgotten",
        "InteractionRecorded",
        "NoteAdded",
        "CaseOpened",
        "CaseAssigned",
        "FirstResponseGiven",
        "CaseEscalated",
        "SlaBreached",
        "CaseResolved",
        "CaseReopened",
        "CaseClosed",
        "SurveyAnswered",
        "FollowUpScheduled",
        "FollowUpCompleted",
        "AgentRecognised",
    ] {
        assert!(seen.contains(&wanted), "no {wanted} in {seen:?}");
    }
    Ok(())
}
