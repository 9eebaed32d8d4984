//! Shared log scans for several projections: rebuilding together and catching up together
//! give exactly the rows each projection builds alone (checkpoint included), a projection
//! that fails in a shared chunk stops at the failing event with the events before it
//! committed while the others go on, lanes that start at different checkpoints each resume
//! from their own, the runner's `rebuild_all` swaps every projection to an equal new
//! generation, and upcast events reach projections at their current schema version. A chunk
//! big enough to be read by several reader threads in alternate spans applies every event
//! once and in order; a hole in the log inside such a chunk commits nothing.

mod projection_support;
mod segment_files;

use std::sync::Arc;
use std::time::Duration;

use projection_support::{append, append_blocking, contact_value, dump, World, KINDS};
use sijil_domain::aggregates::case::Command as CaseCmd;
use sijil_domain::events::AgentRegistered;
use sijil_domain::{Channel, DomainEvent, Score, Timestamp};
use sijil_store::projections::catchup::{apply_chunk_shared, Lane};
use sijil_store::projections::overlay::{checkpoint, Overlay};
use sijil_store::projections::{
    default_projections, encode_event, CatchUpOptions, EventMeta, Projection, ProjectionError,
    ProjectionHandle, ProjectionState, Projections,
};
use sijil_store::{ExpectedVersion, NewEvent, Store, StoreConfig, Upcasters};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Two workspaces with customers, interactions, cases (some resolved and surveyed), a
/// merge, an erasure and a rename.
fn history() -> Result<Vec<World>, Box<dyn std::error::Error>> {
    history_of(40)
}

/// [`history`] with `customers` customers per workspace.
fn history_of(people: u64) -> Result<Vec<World>, Box<dyn std::error::Error>> {
    let mut worlds = Vec::new();
    for n in 0..2u64 {
        let mut w = World::new(300 + n);
        let agent = w.register_agent("Agent")?;
        let mut customers = Vec::new();
        for i in 0..people {
            let kind = KINDS[(i % 4) as usize];
            let c = w.register(
                &format!("عميل {i} Customer{i}"),
                &format!("R-{i}"),
                &[(kind, &contact_value(kind, i))],
            )?;
            customers.push(c);
            w.interaction(c, Channel::ALL[(i % 10) as usize], "hi", None, Some(agent))?;
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
                w.survey(c, case, Score::Csat(5), Some("great"))?;
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

/// `projection` built alone, in small chunks, in a store of its own holding the same log.
fn built_alone(worlds: &[World], projection: Arc<dyn Projection>) -> Rows {
    let (_dir, store) = store_with(worlds);
    let handle = ProjectionHandle::open(store.db(), projection).expect("open");
    handle
        .catch_up_with(
            &store,
            CatchUpOptions {
                chunk_events: 11,
                upto: None,
            },
        )
        .expect("catch up");
    handle.read(dump)
}

/// Records every event it sees; refuses the event at `fail_at`.
struct Recorder {
    fail_at: Option<u64>,
}

impl Projection for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn version(&self) -> u32 {
        1
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
        // A write before the refusal: it must never reach the tree.
        ov.insert(meta.position.to_be_bytes().to_vec(), b"partial".to_vec());
        if self.fail_at == Some(meta.position) {
            return Err(ProjectionError::InvalidQuery("refusing on purpose".into()));
        }
        ov.insert(
            meta.position.to_be_bytes().to_vec(),
            event.event_type().as_bytes().to_vec(),
        );
        Ok(())
    }
}

#[test]
fn rebuilding_together_equals_building_each_alone() -> TestResult {
    let worlds = history()?;
    // Given the four standard projections, live on a store
    let (_dir, store) = store_with(&worlds);
    let handles: Vec<ProjectionHandle> = default_projections()
        .into_iter()
        .map(|p| ProjectionHandle::open(store.db(), p))
        .collect::<Result<_, _>>()?;
    for handle in &handles {
        handle.catch_up(&store)?;
    }
    // When they are rebuilt together
    let refs: Vec<&ProjectionHandle> = handles.iter().collect();
    let outcomes = ProjectionHandle::rebuild_together(&store, &refs);
    // Then each has a new generation at the head holding exactly what it builds alone
    for (handle, outcome) in handles.iter().zip(outcomes) {
        let stats = outcome?;
        assert_eq!(stats.position, store.head_position());
        assert_eq!(stats.generation, 2);
        let expected = built_alone(&worlds, default_projections_named(handle.name())?);
        assert!(
            handle.read(dump) == expected,
            "{} differs from a build alone",
            handle.name()
        );
        assert!(handle.check(&store)?.is_consistent());
    }
    Ok(())
}

fn default_projections_named(name: &str) -> Result<Arc<dyn Projection>, String> {
    default_projections()
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| format!("no projection {name}"))
}

#[test]
fn a_lane_failing_in_a_shared_chunk_stops_there_and_the_others_go_on() -> TestResult {
    let worlds = history()?;
    let (_dir, store) = store_with(&worlds);
    let head = store.head_position();
    let fail_at = head / 2;
    let timeline = default_projections_named("timeline")?;
    let recorder = Recorder {
        fail_at: Some(fail_at),
    };
    // Given both lanes sharing one chunk covering the whole log, when the recorder refuses
    // the event at `fail_at`
    let (outcomes, timeline_tree, recorder_tree) =
        whole_log_beside_the_timeline(&store, timeline.as_ref(), &recorder)?;
    // Then the timeline reached the head, equal to a build alone
    assert!(matches!(outcomes[0], Ok(Some(p)) if p == head));
    let timeline_rows: Rows = dump(&timeline_tree);
    assert!(timeline_rows == built_alone(&worlds, timeline));
    // and the recorder failed exactly there, with every earlier event committed once
    match &outcomes[1] {
        Err(failure) => {
            assert_eq!(failure.position, fail_at);
            assert_eq!(failure.error.code(), "VALIDATION");
        }
        other => return Err(format!("expected a failure, got {other:?}").into()),
    }
    assert_eq!(checkpoint(&recorder_tree)?, fail_at - 1);
    let rows = dump(&recorder_tree);
    // every applied position plus the checkpoint key
    assert_eq!(rows.len() as u64, fail_at - 1 + 1);
    assert!(rows.iter().all(|(_, v)| v != b"partial"));
    Ok(())
}

/// Applies one chunk covering the whole log to `timeline` and `other`, in trees of their
/// own: each lane's outcome, then the two trees.
fn whole_log_beside_the_timeline(
    store: &Store,
    timeline: &dyn Projection,
    other: &dyn Projection,
) -> Result<(Vec<ChunkOutcome>, sled::Tree, sled::Tree), Box<dyn std::error::Error>> {
    let timeline_tree = store.db().open_tree("test/timeline")?;
    let other_tree = store.db().open_tree("test/other")?;
    let mut lanes = vec![
        Lane::open(timeline, &timeline_tree).map_err(|f| f.error)?,
        Lane::open(other, &other_tree).map_err(|f| f.error)?,
    ];
    let outcomes = apply_chunk_shared(store, &mut lanes, usize::MAX, None);
    drop(lanes);
    Ok((outcomes, timeline_tree, other_tree))
}

/// What [`apply_chunk_shared`] says of one lane.
type ChunkOutcome = Result<Option<u64>, sijil_store::projections::catchup::ChunkFailure>;

/// A history of several thousand events: a whole-log chunk is read in several spans of
/// 1,024 positions by alternating reader threads.
fn long_history() -> Result<Vec<World>, Box<dyn std::error::Error>> {
    history_of(500)
}

#[test]
fn a_chunk_read_in_spans_by_several_readers_applies_every_event_once_in_order() -> TestResult {
    let worlds = long_history()?;
    let (_dir, store) = store_with(&worlds);
    let head = store.head_position();
    assert!(head > 4 * 1024, "several spans per reader: {head} events");
    let timeline = default_projections_named("timeline")?;
    let recorder = Order::default();
    // Given two lanes sharing one chunk covering the whole log, when it is applied
    let (outcomes, timeline_tree, _) =
        whole_log_beside_the_timeline(&store, timeline.as_ref(), &recorder)?;
    // Then each lane saw every position once, in log order
    assert!(matches!(outcomes[0], Ok(Some(p)) if p == head));
    assert!(matches!(outcomes[1], Ok(Some(p)) if p == head));
    let seen = recorder.seen.lock().map_err(|_| "poisoned")?.clone();
    assert_eq!(seen, (1..=head).collect::<Vec<u64>>());
    // and the timeline equals one built alone in small chunks applied inline
    assert!(dump(&timeline_tree) == built_alone(&worlds, timeline));
    Ok(())
}

#[test]
fn a_damaged_record_inside_a_big_chunk_commits_nothing_and_is_reported() -> TestResult {
    let worlds = long_history()?;
    let (dir, store) = store_with(&worlds);
    let head = store.head_position();
    let hole = head / 2 + 7;
    // Given one record in the middle of the chunk damaged on disk (it fails its checksum)
    segment_files::edit_record(dir.path(), hole, false, |envelope| envelope[1] ^= 0x20);
    let tree = store.db().open_tree("test/recorder")?;
    let recorder = Order::default();
    let mut lanes = vec![Lane::open(&recorder, &tree).map_err(|f| f.error)?];
    // When a whole-log chunk is applied
    let outcomes = apply_chunk_shared(&store, &mut lanes, usize::MAX, None);
    drop(lanes);
    // Then the scan fails as corruption at the hole and the tree is untouched
    match &outcomes[0] {
        Err(failure) => {
            assert_eq!(failure.error.code(), "CORRUPT", "{:?}", failure.error);
            assert!(
                failure.error.to_string().contains(&hole.to_string()),
                "{}",
                failure.error
            );
        }
        other => return Err(format!("expected a failure, got {other:?}").into()),
    }
    assert_eq!(checkpoint(&tree)?, 0);
    assert_eq!(dump(&tree).len(), 0);
    Ok(())
}

/// Records the order in which it is given positions (and one row per event).
#[derive(Default)]
struct Order {
    seen: std::sync::Mutex<Vec<u64>>,
}

impl Projection for Order {
    fn name(&self) -> &'static str {
        "order"
    }
    fn version(&self) -> u32 {
        1
    }
    fn event_types(&self) -> &'static [&'static str] {
        sijil_domain::events::EVENT_TYPES
    }
    fn apply(
        &self,
        ov: &mut Overlay<'_>,
        meta: &EventMeta<'_>,
        _event: &DomainEvent,
    ) -> Result<(), ProjectionError> {
        self.seen
            .lock()
            .map_err(|_| ProjectionError::Task("poisoned".into()))?
            .push(meta.position);
        ov.insert(meta.position.to_be_bytes().to_vec(), Vec::new());
        Ok(())
    }
}

#[test]
fn lanes_at_different_checkpoints_each_resume_from_their_own() -> TestResult {
    let worlds = history()?;
    let (_dir, store) = store_with(&worlds);
    let head = store.head_position();
    let handles: Vec<ProjectionHandle> = default_projections()
        .into_iter()
        .map(|p| ProjectionHandle::open(store.db(), p))
        .collect::<Result<_, _>>()?;
    // Given projections caught up to different points
    for (n, handle) in handles.iter().enumerate() {
        handle.catch_up_with(
            &store,
            CatchUpOptions {
                chunk_events: 17,
                upto: Some(head * n as u64 / 4),
            },
        )?;
    }
    // When they catch up together
    let refs: Vec<&ProjectionHandle> = handles.iter().collect();
    let outcomes = ProjectionHandle::catch_up_together(&store, &refs);
    // Then each is at the head, live, and equal to a build alone
    for (handle, outcome) in handles.iter().zip(outcomes) {
        assert_eq!(outcome?, head);
        assert_eq!(handle.state(), ProjectionState::Live);
        let expected = built_alone(&worlds, default_projections_named(handle.name())?);
        assert!(handle.read(dump) == expected, "{}", handle.name());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_follows_and_rebuilds_all_with_one_shared_scan() -> TestResult {
    let worlds = history()?;
    // Each projection built alone (on a plain thread: it runs its own runtime).
    let expected: Vec<(&'static str, Rows)> = std::thread::scope(|s| {
        s.spawn(|| {
            default_projections()
                .into_iter()
                .map(|p| (p.name(), built_alone(&worlds, p)))
                .collect()
        })
        .join()
    })
    .map_err(|_| "building alone panicked")?;
    let expected_of = |name: &str| {
        expected
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, rows)| rows.clone())
            .ok_or_else(|| format!("no projection {name}"))
    };
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let mut last = 0;
    for w in &worlds[..1] {
        last = append(&store, w.ws, &w.log).await;
    }
    // Given a runner started on an existing log
    let projections = Projections::start(store.clone())?;
    projections.wait_for(last, Duration::from_secs(30)).await?;
    // When more events arrive after start-up
    let last = append(&store, worlds[1].ws, &worlds[1].log).await;
    projections.wait_for(last, Duration::from_secs(30)).await?;
    // Then every model equals a build alone of the whole log
    for status in projections.status() {
        let expected = expected_of(status.name)?;
        let rows = projections.read(status.name, dump)?;
        assert!(rows == expected, "{}", status.name);
    }
    // and a shared rebuild swaps every projection to a new, equal generation
    for (name, outcome) in projections.rebuild_all().await? {
        assert_eq!(outcome?.generation, 2, "{name}");
        let expected = expected_of(name)?;
        assert!(projections.read(name, dump)? == expected, "{name}");
    }
    Ok(())
}

/// Reads agent names (as the timeline does) into `name ‖ position` rows.
struct Names;

impl Projection for Names {
    fn name(&self) -> &'static str {
        "names"
    }
    fn version(&self) -> u32 {
        1
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["AgentRegistered"]
    }
    fn apply(
        &self,
        ov: &mut Overlay<'_>,
        meta: &EventMeta<'_>,
        event: &DomainEvent,
    ) -> Result<(), ProjectionError> {
        if let DomainEvent::AgentRegistered(e) = event {
            ov.insert(
                meta.position.to_be_bytes().to_vec(),
                e.display_name.as_bytes().to_vec(),
            );
        }
        Ok(())
    }
}

/// v0 of `AgentRegistered` called the display name `name`.
fn agent_v0_to_v1(value: rmpv::Value) -> Result<rmpv::Value, String> {
    let rmpv::Value::Map(entries) = value else {
        return Err("not a map".into());
    };
    Ok(rmpv::Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| {
                if k.as_str() == Some("name") {
                    (rmpv::Value::from("display_name"), v)
                } else {
                    (k, v)
                }
            })
            .collect(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upcast_events_reach_projections_at_their_current_version() -> TestResult {
    let w = World::new(9);
    let agent = AgentRegistered {
        agent_id: sijil_domain::AgentId::new(uuid::Uuid::now_v7())?,
        display_name: "Noura".into(),
        teams: vec![],
        at: Timestamp(1_000),
    };
    let current = encode_event(&DomainEvent::AgentRegistered(agent.clone()));
    // The same payload as old code wrote it: `name` instead of `display_name`, version 0.
    let mut value = rmpv::decode::read_value(&mut current.as_slice())?;
    if let rmpv::Value::Map(entries) = &mut value {
        for (k, _) in entries.iter_mut() {
            if k.as_str() == Some("display_name") {
                *k = rmpv::Value::from("name");
            }
        }
    }
    let mut old = Vec::new();
    rmpv::encode::write_value(&mut old, &value)?;
    let envelope = |schema_version: u16, payload: Vec<u8>| NewEvent {
        event_id: uuid::Uuid::now_v7(),
        workspace_id: w.ws.as_uuid(),
        event_type: "AgentRegistered".into(),
        schema_version,
        occurred_at: 1_000,
        actor: "agent:test".into(),
        on_behalf_of: None,
        correlation_id: None,
        causation_id: None,
        payload,
    };
    let dir = tempfile::tempdir()?;
    let mut upcasters = Upcasters::new();
    upcasters.register("AgentRegistered", 0, agent_v0_to_v1);
    let store = Store::open_with(StoreConfig::new(dir.path()).with_upcasters(upcasters))?;
    // Given an old event and a current one in the log
    store
        .append(
            "agent-x",
            ExpectedVersion::Any,
            vec![envelope(0, old), envelope(1, current)],
        )
        .await?;
    // When a projection consumes them
    let handle = ProjectionHandle::open(store.db(), Arc::new(Names))?;
    tokio::task::block_in_place(|| handle.catch_up(&store))?;
    // Then both arrive decoded, at the current version
    let rows = handle.read(dump);
    let names: Vec<&[u8]> = rows
        .iter()
        .filter(|(k, _)| k.len() == 8)
        .map(|(_, v)| v.as_slice())
        .collect();
    assert_eq!(names, vec![&b"Noura"[..], &b"Noura"[..]]);
    Ok(())
}
