//! A small benchmark that prints what criterion does not: durable append
//! throughput with p50/p99/max latency at 1, 8 and 64 concurrent writers
//! (1- and 10-event batches), `read_all` throughput, and resident memory.
//!
//! Usage: `sijil-store-bench [appends-per-run] [read-events] [dir]`
//! (`SIJIL_BENCH_SYNC=no-fsync` skips the fdatasync, for comparison only;
//! `SIJIL_BENCH_ONLY=64x1` runs only that row, writers x events per append, for a profile)
//! (defaults: 20000, 200000, a fresh directory under the system temp dir,
//! removed afterwards). Run it in release mode.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sijil_store::{ExpectedVersion, NewEvent, Store, StoreConfig, SyncMode};
use uuid::Uuid;

/// The allocator the `sijil` binary runs with, so appends here cost what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| -> Result<u64, String> {
        match args.get(i) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| format!("argument {} must be a number, got {s:?}", i + 1)),
        }
    };
    let (appends, read_events) = match (number(0, 20_000), number(1, 200_000)) {
        (Ok(a), Ok(r)) => (a.max(1), r),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}\nusage: sijil-store-bench [appends-per-run] [read-events] [dir]");
            return ExitCode::from(2);
        }
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let base = args.get(2).map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("sijil-store-bench-{}-{nanos}", std::process::id()))
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(&base, appends, read_events));
    let _ = std::fs::remove_dir_all(&base);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `SIJIL_BENCH_SYNC=no-fsync` measures without the fdatasync (never the
/// store's default), to show what real durability costs.
fn sync_mode() -> SyncMode {
    match std::env::var("SIJIL_BENCH_SYNC").as_deref() {
        Ok("no-fsync") => SyncMode::NoFsync,
        _ => SyncMode::Fsync,
    }
}

fn payload(n: u64) -> Vec<u8> {
    let value = rmpv::Value::Map(vec![
        (
            "customer_id".into(),
            Uuid::from_u128(u128::from(n)).to_string().into(),
        ),
        ("name".into(), "Ada Lovelace".into()),
        ("email".into(), "ada@example.com".into()),
        ("n".into(), n.into()),
    ]);
    let mut out = Vec::new();
    let _ = rmpv::encode::write_value(&mut out, &value);
    out
}

fn batch(size: usize, n: u64) -> Vec<NewEvent> {
    (0..size)
        .map(|i| NewEvent {
            event_id: Uuid::now_v7(),
            workspace_id: Uuid::nil(),
            event_type: "CustomerUpdated".into(),
            schema_version: 1,
            occurred_at: 1_700_000_000_000,
            actor: "system:bench".into(),
            on_behalf_of: None,
            correlation_id: None,
            causation_id: None,
            payload: payload(n + i as u64),
        })
        .collect()
}

async fn run(base: &std::path::Path, appends: u64, read_events: u64) -> Result<(), String> {
    println!(
        "durable appends ({:?}), {appends} appends per run (group commit)",
        sync_mode()
    );
    println!(
        "{:>8} {:>6} {:>12} {:>12} {:>10} {:>10} {:>10}",
        "writers", "batch", "events/s", "appends/s", "p50", "p99", "max"
    );
    let only = std::env::var("SIJIL_BENCH_ONLY").ok();
    for batch_size in [1usize, 10] {
        for writers in [1u64, 8, 64] {
            if only
                .as_deref()
                .is_some_and(|row| row != format!("{writers}x{batch_size}"))
            {
                continue;
            }
            let dir = base.join(format!("append-{writers}-{batch_size}"));
            let store = Store::open_with(StoreConfig::new(&dir).with_sync_mode(sync_mode()))
                .map_err(|e| e.to_string())?;
            let per_writer = (appends / writers).max(1);
            let start = Instant::now();
            let mut tasks = Vec::new();
            for w in 0..writers {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let stream = format!("bench-{w}");
                    let mut latencies = Vec::with_capacity(per_writer as usize);
                    for i in 0..per_writer {
                        let events = batch(batch_size, i * batch_size as u64);
                        let t = Instant::now();
                        store
                            .append(&stream, ExpectedVersion::Any, events)
                            .await
                            .map_err(|e| e.to_string())?;
                        latencies.push(t.elapsed());
                    }
                    Ok::<_, String>(latencies)
                }));
            }
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await.map_err(|e| e.to_string())??);
            }
            let elapsed = start.elapsed().as_secs_f64();
            latencies.sort_unstable();
            let total_appends = latencies.len() as f64;
            println!(
                "{writers:>8} {batch_size:>6} {:>12.0} {:>12.0} {:>10} {:>10} {:>10}",
                total_appends * batch_size as f64 / elapsed,
                total_appends / elapsed,
                show(percentile(&latencies, 0.50)),
                show(percentile(&latencies, 0.99)),
                show(latencies.last().copied().unwrap_or_default()),
            );
            let report = store.verify().map_err(|e| e.to_string())?;
            if report.events_checked != total_appends as u64 * batch_size as u64 {
                return Err(format!(
                    "verify checked {} events, expected {}",
                    report.events_checked,
                    total_appends as u64 * batch_size as u64
                ));
            }
            if !report.is_ok() {
                return Err(format!("verify failed after the run: {report:?}"));
            }
        }
    }
    if read_events > 0 {
        read_throughput(&base.join("read"), read_events).await?;
    }
    Ok(())
}

async fn read_throughput(dir: &std::path::Path, events: u64) -> Result<(), String> {
    let store = Store::open(dir).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut n = 0;
    while n < events {
        let size = (events - n).min(1000) as usize;
        store
            .append(
                &format!("fill-{}", n / 1000 % 100),
                ExpectedVersion::Any,
                batch(size, n),
            )
            .await
            .map_err(|e| e.to_string())?;
        n += size as u64;
    }
    let fill = start.elapsed().as_secs_f64();
    println!(
        "\nfilled {events} events in 1000-event appends: {:.0} events/s",
        events as f64 / fill
    );
    for pass in 1..=2 {
        let start = Instant::now();
        let mut cursor = 1;
        let mut read = 0u64;
        loop {
            let page = store
                .read_all(cursor, 1000, None)
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            cursor = last.position + 1;
            read += page.len() as u64;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "read_all pass {pass}: {read} events in {secs:.2}s = {:.0} events/s",
            read as f64 / secs
        );
    }
    println!("memory: {}", memory());
    Ok(())
}

/// Current and peak resident memory of this process, from `/proc/self/status` (Linux).
fn memory() -> String {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return "unavailable".into();
    };
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    format!("RSS {} (peak {})", field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn show(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1000.0)
}
