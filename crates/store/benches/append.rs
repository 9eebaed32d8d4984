//! Criterion benchmarks of the event store: durable appends at 1, 8 and 64
//! concurrent writers with 1- and 10-event batches (events/s), and
//! `read_all` throughput over a pre-filled store.
//!
//! The pre-filled store holds `SIJIL_BENCH_READ_EVENTS` events (default
//! 1,000,000).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sijil_store::{ExpectedVersion, NewEvent, Store};
use uuid::Uuid;

/// A small, realistic payload: a MessagePack map of a few fields.
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
    rmpv::encode::write_value(&mut out, &value).expect("encode payload");
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn appends(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    let counter = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for batch_size in [1usize, 10] {
        for writers in [1usize, 8, 64] {
            group.throughput(Throughput::Elements((writers * batch_size) as u64));
            let id = BenchmarkId::new(format!("batch_{batch_size}"), format!("{writers}_writers"));
            group.bench_function(id, |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let store = store.clone();
                    let counter = Arc::clone(&counter);
                    async move {
                        let start = Instant::now();
                        let mut tasks = Vec::with_capacity(writers);
                        for w in 0..writers {
                            let store = store.clone();
                            let counter = Arc::clone(&counter);
                            tasks.push(tokio::spawn(async move {
                                let stream = format!("bench-{w}");
                                for _ in 0..iters {
                                    let n = counter.fetch_add(batch_size as u64, Ordering::Relaxed);
                                    store
                                        .append(&stream, ExpectedVersion::Any, batch(batch_size, n))
                                        .await
                                        .expect("append");
                                }
                            }));
                        }
                        for task in tasks {
                            task.await.expect("writer task");
                        }
                        start.elapsed()
                    }
                });
            });
        }
    }
    group.finish();
}

fn read_all(c: &mut Criterion) {
    let events: u64 = std::env::var("SIJIL_BENCH_READ_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    let fill_start = Instant::now();
    rt.block_on(async {
        let mut n = 0;
        while n < events {
            let size = (events - n).min(1000) as usize;
            let stream = format!("fill-{}", n / 1000 % 100);
            store
                .append(&stream, ExpectedVersion::Any, batch(size, n))
                .await
                .expect("fill");
            n += size as u64;
        }
    });
    eprintln!("filled {events} events in {:?}", fill_start.elapsed());
    let mut group = c.benchmark_group("read_all");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    const PAGE: usize = 1000;
    group.throughput(Throughput::Elements(PAGE as u64));
    let mut cursor = 1u64;
    group.bench_function(BenchmarkId::new("page_1000", events), |b| {
        b.iter(|| {
            let page = store.read_all(cursor, PAGE, None).expect("read");
            cursor = match page.last() {
                Some(last) if last.position < events => last.position + 1,
                _ => 1,
            };
            page.len()
        });
    });
    let types = vec!["NoSuchType".to_string()];
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("full_scan_filtered_out", events), |b| {
        b.iter(|| store.read_all(1, 1, Some(&types)).expect("scan").len());
    });
    group.finish();
}

criterion_group!(benches, appends, read_all);
criterion_main!(benches);
