//! `sijil-load`: drives a running `sijil serve` over real HTTP and WebSocket
//! with N concurrent clients for a set time or request count, and reports
//! throughput, p50/p90/p99/p99.9 latency, errors by code and the server's RSS
//! at the end, as a table and as JSON.
//!
//! Scenarios: `timeline` (page through random customers' timelines), `write`
//! (record interactions and work cases, retrying conflicts), `mixed` (agents'
//! 90/10 read/write), `audit` (tail `allEvents` from 0), `subscribe` (M live
//! subscribers to `eventAppended` while N clients write, or with `--subscriber-load
//! mixed` while N clients run the `mixed` workload; reports delivery lag; with
//! `--subscribe-to timeline` each subscriber follows one customer's `timelineUpdated`, with
//! `--subscribe-to escalation` the workspace's `escalationChanged`).

mod client;
mod ops;
mod scenarios;
mod stats;
mod ws;

use std::path::PathBuf;

/// mimalloc instead of the system allocator: the load tool parses every answer into a JSON
/// tree, and glibc's malloc and free were a third of its CPU, CPU the measured server shares
/// on one machine.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};

use crate::client::Client;
use crate::scenarios::Shared;
use crate::stats::{Recorder, Report};

/// The workload beside the subscribers of the `subscribe` scenario.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum SubscriberLoad {
    /// Every client writes (scenario `write`).
    Write,
    /// Agents' 90/10 read/write (scenario `mixed`).
    Mixed,
}

/// What the subscribers of the `subscribe` scenario follow.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum SubscribeTo {
    /// The workspace's log (`eventAppended`).
    Events,
    /// One customer's timeline each (`timelineUpdated`), customers taken in turn from the
    /// sampled directory.
    Timeline,
    /// The workspace's case changes (`escalationChanged`, a supervisor's queue screen).
    Escalation,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scenario {
    Timeline,
    Write,
    Mixed,
    Audit,
    Subscribe,
}

/// Load generator for a running `sijil serve`.
#[derive(Parser, Debug)]
#[command(name = "sijil-load", version)]
struct Args {
    /// Base URL of the server; several, comma-separated, to spread the requests over nodes
    /// sharing one PostgreSQL log (subscriptions use the first).
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        env = "SIJIL_URL",
        value_delimiter = ','
    )]
    url: Vec<String>,
    /// Bearer token (a supervisor or admin token of the workspace to load).
    #[arg(long, env = "SIJIL_TOKEN")]
    token: String,
    /// The workload.
    #[arg(long, value_enum, default_value = "mixed")]
    scenario: Scenario,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Stop after this many requests instead (still bounded by --duration).
    #[arg(long)]
    requests: Option<u64>,
    /// Live subscribers (scenario `subscribe`).
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// What the clients do while the subscribers listen (scenario `subscribe`).
    #[arg(long, value_enum, default_value_t = SubscriberLoad::Write)]
    subscriber_load: SubscriberLoad,
    /// What the subscribers follow (scenario `subscribe`).
    #[arg(long, value_enum, default_value_t = SubscribeTo::Events)]
    subscribe_to: SubscribeTo,
    /// How many customers to sample from the directory.
    #[arg(long, default_value_t = 5000)]
    customers: usize,
    /// The server's process id, to report its resident memory at the end.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seed of the clients' random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads the load tool runs its clients on (default: one per core). On a machine it
    /// shares with the server, fewer threads take less of the server's CPU time from it.
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let mut runtime = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.url, &args.token)?;
    let needs_customers = !matches!(args.scenario, Scenario::Audit);
    let customers = if needs_customers {
        let ids = scenarios::discover_customers(&client, args.customers)
            .await
            .context("reading the customer directory (is the server up, the token right, the store filled with `sijil demo`?)")?;
        if ids.is_empty() {
            bail!("the workspace has no customers; fill it first (sijil serve --demo)");
        }
        ids
    } else {
        Vec::new()
    };
    let agents = if needs_customers {
        scenarios::discover_agents(&client).await
    } else {
        Vec::new()
    };
    let duration = Duration::from_secs(args.duration.max(1));
    let start = Instant::now();
    let shared = Arc::new(Shared {
        client,
        customers,
        agents,
        deadline: start + duration,
        budget: args.requests.map(AtomicU64::new),
        seq: AtomicU64::new(0),
    });
    let events_read = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    if let Scenario::Subscribe = args.scenario {
        for i in 0..args.subscribers {
            let follow = match args.subscribe_to {
                SubscribeTo::Events => scenarios::Follow::Events,
                SubscribeTo::Escalation => scenarios::Follow::Escalation,
                SubscribeTo::Timeline => scenarios::Follow::Timeline(
                    shared.customers[i % shared.customers.len()].clone(),
                ),
            };
            tasks.push(tokio::spawn(scenarios::subscriber(
                args.url[0].clone(),
                args.token.clone(),
                follow,
                start + duration,
            )));
        }
        // Let the subscriptions start before the writes flow.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for i in 0..args.clients {
        let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let shared = Arc::clone(&shared);
        tasks.push(match args.scenario {
            Scenario::Timeline => tokio::spawn(scenarios::timeline(shared, seed)),
            Scenario::Write => tokio::spawn(scenarios::write(shared, seed)),
            Scenario::Subscribe => match args.subscriber_load {
                SubscriberLoad::Write => tokio::spawn(scenarios::write(shared, seed)),
                SubscriberLoad::Mixed => tokio::spawn(scenarios::mixed(shared, seed)),
            },
            Scenario::Mixed => tokio::spawn(scenarios::mixed(shared, seed)),
            Scenario::Audit => tokio::spawn(scenarios::audit(shared, Arc::clone(&events_read))),
        });
    }
    let mut all = Recorder::default();
    for task in tasks {
        all.merge(task.await.context("a client task failed")?);
    }
    let elapsed = start.elapsed();
    let mut notes = Vec::new();
    if let Scenario::Audit = args.scenario {
        let n = events_read.load(std::sync::atomic::Ordering::Relaxed);
        notes.push(format!(
            "events read: {n} ({:.0} events/s)",
            n as f64 / elapsed.as_secs_f64()
        ));
    }
    let report = Report {
        scenario: format!("{:?}", args.scenario).to_lowercase(),
        clients: args.clients,
        seconds: elapsed.as_secs_f64(),
        errors: all.errors(),
        ops: all.report(elapsed),
        server_rss_kib: args.server_pid.and_then(stats::rss_kib),
        notes,
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
