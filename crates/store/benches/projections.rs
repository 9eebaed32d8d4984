//! Projection benchmark (a plain binary, `harness = false`): builds a store with a realistic
//! log, then measures rebuild speed (events/s) and peak RSS per projection, and timeline page
//! latency (50 entries, p50/p99) for customers with 10, 10k and `N` entries.
//!
//! Size knob: `SIJIL_BENCH_EVENTS` (default 1,000,000) is `N`, the entries of the largest
//! customer; the log also holds about `N / 2` events of a background population (customers
//! with interactions, cases and surveys) plus the 10k-entry customer, so the full run reads
//! about 1.5 M events. A quick run: `SIJIL_BENCH_EVENTS=20000 cargo bench -p sijil-store
//! --bench projections`. `SIJIL_BENCH_DIR` puts the store somewhere other than the temp dir;
//! `SIJIL_BENCH_ONLY=timeline,escalation` rebuilds only the projections named;
//! `SIJIL_BENCH_CACHE_MB=2048` sets sled's page cache (default: the store's 256 MiB).
//!
//! Peak RSS is `VmHWM` from `/proc/self/status`, reset (`clear_refs` = 5) before each rebuild,
//! so it is the high-water mark of that rebuild (plus what the process already held).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sijil_domain::events::*;
use sijil_domain::{
    AgentId, CaseId, Channel, ContactKind, ContactPoint, CustomerId, Direction, DomainEvent,
    FeedbackSubject, Handler, InteractionId, NoteId, NoteTarget, Priority, Score, SlaPolicy,
    SurveyId, Timestamp, WorkspaceId,
};
use sijil_store::projections::timeline::{self, TimelineQuery};
use sijil_store::projections::{
    default_projections, encode_event, EventMeta, Overlay, Projection, ProjectionError,
    ProjectionHandle, RebuildStats,
};
use sijil_store::{ExpectedVersion, NewEvent, Store, StoreConfig};
use tokio::task::JoinSet;
use uuid::Uuid;

/// The allocator the `sijil` binary runs with, so rebuilds here cost what they cost there
/// (with the system allocator, malloc/free were a third of this bench's profile).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BASE_MS: i64 = 1_704_067_200_000;
const IN_FLIGHT: usize = 128;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn id<T: TryFrom<Uuid>>() -> T {
    match T::try_from(Uuid::now_v7()) {
        Ok(id) => id,
        Err(_) => unreachable!("now_v7 makes v7 UUIDs"),
    }
}

fn envelope(ws: WorkspaceId, event: &DomainEvent) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        workspace_id: ws.as_uuid(),
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        occurred_at: event.occurred_at().millis(),
        actor: "agent:bench".to_owned(),
        on_behalf_of: None,
        correlation_id: None,
        causation_id: None,
        payload: encode_event(event),
    }
}

async fn append(store: &Store, ws: WorkspaceId, events: &[DomainEvent]) -> Result<u64, BoxError> {
    let stream = events[0].stream().stream_id();
    let batch = events.iter().map(|e| envelope(ws, e)).collect();
    Ok(store
        .append(&stream, ExpectedVersion::Any, batch)
        .await?
        .last_position)
}

fn register(customer: CustomerId, n: u64, at: i64) -> DomainEvent {
    CustomerRegistered {
        customer_id: customer,
        reference: format!("C-{n:08}"),
        display_name: format!("Customer{n} Al-Harbi"),
        language: "ar".into(),
        time_zone: "Asia/Riyadh".into(),
        contact_points: vec![ContactPoint {
            kind: ContactKind::Email,
            value: format!("customer{n}@example.com"),
        }],
        at: Timestamp(at),
    }
    .into()
}

fn interaction(customer: CustomerId, agent: AgentId, n: u64, at: i64) -> DomainEvent {
    InteractionRecorded {
        interaction_id: id::<InteractionId>(),
        customer_id: customer,
        channel: Channel::ALL[(n % 10) as usize],
        direction: Direction::Inbound,
        handled_by: Handler::Agent(agent),
        language: "ar".into(),
        summary: format!("Customer asked about invoice {n} and the late fee on it"),
        duration_seconds: 240,
        case_id: None,
        recording_ref: None,
        at: Timestamp(at),
    }
    .into()
}

/// A whole case's life on its stream: open, assign, respond, note, resolve, close.
fn case_life(customer: CustomerId, agent: AgentId, at: i64) -> Vec<DomainEvent> {
    let case_id = id::<CaseId>();
    let t = |m: i64| Timestamp(at + m * 60_000);
    vec![
        CaseOpened {
            case_id,
            customer_id: customer,
            subject: "Charged twice for the same order".into(),
            category: "billing".into(),
            priority: Priority::Normal,
            channel: Channel::Email,
            sla: SlaPolicy {
                first_response_minutes: 60,
                resolution_minutes: 1440,
            },
            top_level: 3,
            at: t(0),
        }
        .into(),
        CaseAssigned {
            case_id,
            agent: Some(agent),
            team: None,
            at: t(1),
        }
        .into(),
        FirstResponseGiven {
            case_id,
            agent: Some(agent),
            channel: Channel::Email,
            at: t(20),
        }
        .into(),
        NoteAdded {
            note_id: id::<NoteId>(),
            target: NoteTarget::Case(case_id),
            customer_id: customer,
            author: Some(agent),
            text: "Checked the payment provider; second charge is pending".into(),
            at: t(25),
        }
        .into(),
        CaseResolved {
            case_id,
            resolution: "Second charge voided".into(),
            root_cause: "duplicate capture".into(),
            first_contact_resolution: true,
            agent: Some(agent),
            at: t(30),
        }
        .into(),
        CaseClosed { case_id, at: t(60) }.into(),
    ]
}

/// Gives one customer `entries` timeline entries: registration, a case, then notes on that
/// case in batches of 1000 (one stream, so large appends).
async fn big_customer(
    store: &Store,
    ws: WorkspaceId,
    agent: AgentId,
    n: u64,
    entries: u64,
) -> Result<CustomerId, BoxError> {
    let customer = id::<CustomerId>();
    append(store, ws, &[register(customer, n, BASE_MS)]).await?;
    let life = case_life(customer, agent, BASE_MS + 1000);
    let case_id = match &life[0] {
        DomainEvent::CaseOpened(e) => e.case_id,
        _ => unreachable!("case_life starts with the opening"),
    };
    append(store, ws, &life[..1]).await?;
    let mut done = 2u64;
    while done < entries {
        let batch: Vec<DomainEvent> = (done..(done + 1000).min(entries))
            .map(|i| {
                NoteAdded {
                    note_id: id::<NoteId>(),
                    target: NoteTarget::Case(case_id),
                    customer_id: customer,
                    author: Some(agent),
                    text: format!("Call {i}: customer confirmed the refund arrived"),
                    at: Timestamp(BASE_MS + 10_000 + i as i64 * 1000),
                }
                .into()
            })
            .collect();
        done += batch.len() as u64;
        append(store, ws, &batch).await?;
    }
    Ok(customer)
}

/// A population of customers with about `events` events in all, appended concurrently.
async fn population(
    store: &Store,
    ws: WorkspaceId,
    agent: AgentId,
    events: u64,
) -> Result<(), BoxError> {
    let mut tasks: JoinSet<Result<(), BoxError>> = JoinSet::new();
    let customers = events / 9 + 1;
    for n in 0..customers {
        if tasks.len() >= IN_FLIGHT {
            if let Some(done) = tasks.join_next().await {
                done??;
            }
        }
        let store = store.clone();
        tasks.spawn(async move {
            let customer = id::<CustomerId>();
            let at = BASE_MS + n as i64 * 10_000;
            append(&store, ws, &[register(customer, n + 1000, at)]).await?;
            append(&store, ws, &[interaction(customer, agent, n, at + 1000)]).await?;
            let life = case_life(customer, agent, at + 2000);
            let case_id = match &life[0] {
                DomainEvent::CaseOpened(e) => e.case_id,
                _ => unreachable!("case_life starts with the opening"),
            };
            append(&store, ws, &life).await?;
            let survey: DomainEvent = SurveyAnswered {
                survey_id: id::<SurveyId>(),
                customer_id: customer,
                subject: FeedbackSubject::Case(case_id),
                score: Score::Csat((n % 5 + 1) as u8),
                comment: Some("Quick and friendly".into()),
                at: Timestamp(at + 5_000_000),
            }
            .into();
            append(&store, ws, &[survey]).await?;
            Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// A projection that consumes nothing: its rebuild measures the framework's fixed cost
/// (reading and decoding the log, committing checkpoints).
struct Baseline;

impl Projection for Baseline {
    fn name(&self) -> &'static str {
        "bench_baseline"
    }
    fn version(&self) -> u32 {
        1
    }
    fn event_types(&self) -> &'static [&'static str] {
        &[]
    }
    fn apply(
        &self,
        _: &mut Overlay<'_>,
        _: &EventMeta<'_>,
        _: &DomainEvent,
    ) -> Result<(), ProjectionError> {
        Ok(())
    }
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time used by the process so far (user + system, all threads), from `/proc/self/stat`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Page latencies for one customer: first page oldest-first, first page newest-first, and a
/// page starting at a random time (a seek into the middle), `samples` of each.
fn page_latency(
    handle: &ProjectionHandle,
    ws: WorkspaceId,
    customer: CustomerId,
    span_ms: i64,
    samples: usize,
) -> Result<(Duration, Duration, usize), BoxError> {
    let mut times = Vec::with_capacity(samples * 3);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut got = 0;
    for i in 0..samples * 3 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let query = match i % 3 {
            0 => TimelineQuery {
                first: Some(50),
                ..TimelineQuery::default()
            },
            1 => TimelineQuery {
                first: Some(50),
                newest_first: true,
                ..TimelineQuery::default()
            },
            _ => TimelineQuery {
                first: Some(50),
                from: Some(Timestamp(BASE_MS + (seed % span_ms.max(1) as u64) as i64)),
                ..TimelineQuery::default()
            },
        };
        let started = Instant::now();
        let page = handle.read(|t| timeline::page(t, ws, customer, &query))?;
        times.push(started.elapsed());
        got = got.max(page.entries.len());
    }
    times.sort();
    Ok((percentile(&times, 0.5), percentile(&times, 0.99), got))
}

fn report(name: &str, stats: &RebuildStats, hwm: Option<u64>, cpu: Option<f64>) {
    println!(
        "rebuild {name:<11} {:>9} events in {:>7.2} s = {:>9.0} events/s, peak RSS {} MiB, CPU {} s",
        stats.events,
        stats.elapsed.as_secs_f64(),
        stats.events_per_sec,
        hwm.map_or("?".to_owned(), |k| (k / 1024).to_string()),
        cpu.map_or("?".to_owned(), |c| format!("{c:.2}")),
    );
}

async fn run() -> Result<(), BoxError> {
    let n: u64 = std::env::var("SIJIL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
        .max(100);
    let base = std::env::var("SIJIL_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let dir = tempfile::tempdir_in(base)?;
    // `SIJIL_BENCH_CACHE_MB`: sled's page cache (the store's default is 256 MiB).
    let mut config = StoreConfig::new(dir.path());
    if let Some(mb) = std::env::var("SIJIL_BENCH_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        config = config.with_cache_capacity_bytes(mb * 1024 * 1024);
    }
    let store = Store::open_with(config)?;
    let ws: WorkspaceId = id();
    let agent: AgentId = id();
    let agent_event: DomainEvent = sijil_domain::events::AgentRegistered {
        agent_id: agent,
        display_name: "Noura".into(),
        teams: vec![],
        at: Timestamp(BASE_MS),
    }
    .into();
    append(&store, ws, &[agent_event]).await?;

    let started = Instant::now();
    let small = big_customer(&store, ws, agent, 1, 10).await?;
    let medium = big_customer(&store, ws, agent, 2, 10_000.min(n)).await?;
    let large = big_customer(&store, ws, agent, 3, n).await?;
    population(&store, ws, agent, n / 2).await?;
    let head = store.head_position();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "log: {head} events appended in {secs:.1} s ({:.0} events/s)",
        head as f64 / secs
    );

    let started = Instant::now();
    let mut from = 1;
    loop {
        let events = store.read_all(from, 20_000, None)?;
        let Some(last) = events.last() else { break };
        from = last.position + 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "read_all alone: {head} events in {secs:.2} s = {:.0} events/s",
        head as f64 / secs
    );

    let mut timeline_handle = None;
    let mut handles = Vec::new();
    let mut projections = default_projections();
    projections.insert(0, Arc::new(Baseline));
    // `SIJIL_BENCH_ONLY=timeline,metrics` rebuilds just those (for profiling one of them).
    let only = std::env::var("SIJIL_BENCH_ONLY").ok();
    projections.retain(|p| {
        only.as_deref()
            .is_none_or(|only| only.split(',').any(|name| name == p.name()))
    });
    for projection in projections {
        let name = projection.name();
        let handle = ProjectionHandle::open(store.db(), projection)?;
        reset_hwm();
        let cpu_before = cpu_seconds();
        let stats = tokio::task::block_in_place(|| handle.rebuild(&store))?;
        let cpu = cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        report(name, &stats, vm_hwm_kib(), cpu);
        if name != "bench_baseline" {
            handles.push(handle);
        }
    }
    // The standard projections rebuilt together: one shared scan of the log.
    let refs: Vec<&ProjectionHandle> = handles.iter().collect();
    reset_hwm();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let outcomes =
        tokio::task::block_in_place(|| ProjectionHandle::rebuild_together(&store, &refs));
    let secs = started.elapsed().as_secs_f64();
    for outcome in outcomes {
        outcome?;
    }
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    println!(
        "rebuild all {} together {head:>9} events in {secs:>7.2} s = {:>9.0} events/s, peak RSS {} MiB, CPU {} s",
        refs.len(),
        head as f64 / secs,
        vm_hwm_kib().map_or("?".to_owned(), |k| (k / 1024).to_string()),
        cpu.map_or("?".to_owned(), |c| format!("{c:.2}")),
    );
    for handle in handles {
        if handle.name() == "timeline" {
            timeline_handle = Some(handle);
        }
    }
    let Some(handle) = timeline_handle else {
        return Ok(());
    };
    for (label, customer, entries) in [
        ("10", small, 10u64),
        ("10k", medium, 10_000.min(n)),
        ("N", large, n),
    ] {
        let count = handle.read(|t| timeline::count(t, ws, customer))?;
        let span = 10_000 + entries as i64 * 1000;
        let (p50, p99, got) = page_latency(&handle, ws, customer, span, 1000)?;
        println!(
            "timeline page (50) for the {label} customer ({count} entries, pages of up to {got}): \
             p50 {:.1} µs, p99 {:.1} µs",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
    Ok(())
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("projection bench failed: {e}");
        std::process::exit(1);
    }
}
