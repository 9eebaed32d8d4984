//! Criterion benchmarks of the gateway's hot paths, in process (no HTTP): resolving one
//! 50-entry timeline page of a customer with a long history, and one `recordInteraction`
//! mutation end to end (validation, decide, durable append with fsync, read-your-writes wait
//! for the projections, read back). `SIJIL_BENCH_HISTORY` sets the history length (default 2000).

use std::sync::Arc;

use async_graphql::{Request, Variables};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use sijil_gateway::{Gateway, GatewayConfig, Principal, Role};
use sijil_store::projections::Projections;
use sijil_store::Store;

const REGISTER: &str =
    "mutation($i: RegisterCustomerInput!) { registerCustomer(input: $i) { customer { id } } }";
const RECORD: &str = "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { position interaction { id } } }";
const PAGE: &str = "query($id: ID!) { customer(id: $id) { timeline(first: 50, newestFirst: true) {
    edges { cursor node { kind at channel summary actor } } pageInfo { hasNextPage endCursor } } } }";

struct Bench {
    gateway: Gateway,
    principal: Principal,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn run(&self, query: &str, variables: Value) -> Value {
        let request = Request::new(query)
            .variables(Variables::from_json(variables))
            .data(self.principal.clone());
        let response = self.gateway.schema().execute(request).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        response.data.into_json().expect("json data")
    }
}

async fn setup(history: usize) -> (Bench, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let projections = Arc::new(Projections::start(store.clone()).expect("projections"));
    let gateway = Gateway::new(store, projections, GatewayConfig::default()).expect("gateway");
    let (_, secret) = gateway
        .tokens()
        .create(
            uuid::Uuid::now_v7(),
            Role::Supervisor,
            "bench",
            Vec::new(),
            0,
        )
        .expect("token");
    let principal = gateway.tokens().authenticate(&secret).expect("principal");
    let bench = Bench {
        gateway,
        principal,
        _dir: dir,
    };
    let data = bench
        .run(
            REGISTER,
            json!({"i": {"reference": "BENCH-1", "displayName": "Amina Haddad", "language": "ar",
                         "timeZone": "Asia/Riyadh", "contactPoints": []}}),
        )
        .await;
    let id = data["registerCustomer"]["customer"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for n in 0..history {
        bench.run(RECORD, interaction(&id, n)).await;
    }
    (bench, id)
}

fn interaction(customer: &str, n: usize) -> Value {
    let channels = ["PHONE", "EMAIL", "LIVE_CHAT", "SOCIAL", "MESSAGING"];
    json!({"i": {"customerId": customer, "channel": channels[n % channels.len()],
                 "direction": "INBOUND", "language": "en", "bot": "sijil-bench",
                 "summary": format!("asked about invoice {n}"), "durationSeconds": 60}})
}

fn graphql(c: &mut Criterion) {
    let history = std::env::var("SIJIL_BENCH_HISTORY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (bench, id) = runtime.block_on(setup(history));
    let mut group = c.benchmark_group("graphql");
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("timeline page of 50 ({history} entries)"), |b| {
        b.to_async(&runtime)
            .iter(|| bench.run(PAGE, json!({"id": id})))
    });
    let mut n = history;
    group.bench_function("recordInteraction (durable, read-your-writes)", |b| {
        b.to_async(&runtime).iter(|| {
            n += 1;
            bench.run(RECORD, interaction(&id, n))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = graphql
}
criterion_main!(benches);
