//! Measures what a projection rebuild does to writers in the same process: a durable
//! single-event append every 2 ms, first for `quiet-secs` with nothing else running, then
//! while the timeline projection is rebuilt from the whole log on another thread. Prints
//! p50/p99/max of each phase and the rebuild's speed. (sled runs every `apply_batch` under
//! a database-wide write lock, so the size of the projection's batches shows up here.)
//!
//! Usage: `cargo run --release -p sijil-store --example append_during_rebuild -- <store-dir>
//! [quiet-secs]` on a copy of a filled store (it appends probe events to it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sijil_store::projections::timeline::TimelineProjection;
use sijil_store::projections::ProjectionHandle;
use sijil_store::{ExpectedVersion, NewEvent, Store};
use uuid::Uuid;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn probe() -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        workspace_id: Uuid::nil(),
        event_type: "LatencyProbe".into(),
        schema_version: 1,
        occurred_at: 1_700_000_000_000,
        actor: "system:probe".into(),
        on_behalf_of: None,
        correlation_id: None,
        causation_id: None,
        payload: vec![0x80],
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn report(phase: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{phase:<16} {:>6} appends  p50 {:>7.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
}

/// Appends one probe event every 2 ms until `done` says stop; returns the latencies.
async fn appends(store: &Store, done: impl Fn() -> bool) -> Result<Vec<Duration>, BoxError> {
    let mut latencies = Vec::new();
    while !done() {
        let started = Instant::now();
        store
            .append("latency-probe", ExpectedVersion::Any, vec![probe()])
            .await?;
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(latencies)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: append_during_rebuild <store-dir> [quiet-secs]")?;
    let quiet: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let store = Store::open(&dir)?;
    println!("store: {} events", store.head_position());

    let until = Instant::now() + Duration::from_secs(quiet);
    report("quiet", appends(&store, || Instant::now() >= until).await?);

    let handle = ProjectionHandle::open(store.db(), Arc::new(TimelineProjection))?;
    let rebuilding = {
        let store = store.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let stats = handle.rebuild(&store);
            (stats, started.elapsed())
        })
    };
    let during = appends(&store, || rebuilding.is_finished()).await?;
    let (stats, took) = rebuilding
        .join()
        .map_err(|_| "the rebuild thread panicked")?;
    let stats = stats?;
    report("during rebuild", during);
    println!(
        "timeline rebuild: {} events in {:.2} s ({:.0} events/s)",
        stats.events,
        took.as_secs_f64(),
        stats.events as f64 / took.as_secs_f64()
    );
    Ok(())
}
