//! End-to-end failover: a `sijil serve` node on a PostgreSQL primary with a synchronous
//! standby, given both in one connection string (`host=primary,standby …
//! target_session_attrs=read-write`). In the middle of a burst of GraphQL writes the primary
//! is killed with `kill -9` and the standby promoted. The node keeps running: writes fail
//! while no primary exists and succeed again on the promoted standby; every write the node
//! acknowledged is in the promoted database and readable through the node; `sijil verify`
//! passes on the promoted database and on the node's local copy.

mod common;
#[path = "../crates/store/tests/pg_support/mod.rs"]
mod pg_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{assert_customers_read_back, run, stderr, stdout, Server};
use pg_support::PgReplicaPair;
use serde_json::{json, Value};

const REGISTER: &str = "mutation($i: RegisterCustomerInput!) { registerCustomer(input: $i) \
    { position customer { id } } }";

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Option<Value> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(30))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9_of_the_primary_and_the_node_carries_on() {
    let pair = PgReplicaPair::start_sync();
    pair.create_database("crm");
    let both = format!(
        "host={},{} port={},{} user=sijil dbname=crm target_session_attrs=read-write connect_timeout=2",
        pair.primary().socket_dir().display(),
        pair.standby().socket_dir().display(),
        pair.primary().port(),
        pair.standby().port(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("cluster.key");
    let out = run(dir.path(), &["master-key"]);
    std::fs::write(&key, stdout(&out)).expect("key file");
    let key = key.display().to_string();
    let data = dir.path().join("node");

    // Given a node writing through the primary
    let node = Server::start(&data, &["--store", &both, "--master-key-file", &key]);
    let admin = node.token.clone().expect("admin token");
    let client = reqwest::Client::new();
    let acknowledged: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let after_failover = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let codes: Arc<Mutex<std::collections::BTreeSet<String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8 {
        let (client, url, admin) = (client.clone(), node.url.clone(), admin.clone());
        let codes = Arc::clone(&codes);
        let (acknowledged, killed, after_failover, failures, stop) = (
            Arc::clone(&acknowledged),
            Arc::clone(&killed),
            Arc::clone(&after_failover),
            Arc::clone(&failures),
            Arc::clone(&stop),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Acquire) {
                n += 1;
                let reference = format!("FO-{w}-{n}");
                let answer = post(
                    &client,
                    &url,
                    &admin,
                    REGISTER,
                    json!({ "i": {
                    "reference": reference, "displayName": format!("Failover {w}/{n}"),
                    "language": "en", "timeZone": "Europe/Paris" } }),
                )
                .await;
                let id = answer
                    .as_ref()
                    .and_then(|a| a["data"]["registerCustomer"]["customer"]["id"].as_str());
                match id {
                    Some(id) => {
                        acknowledged
                            .lock()
                            .expect("lock")
                            .insert(id.to_owned(), reference);
                        if killed.load(Ordering::Acquire) {
                            after_failover.fetch_add(1, Ordering::AcqRel);
                        }
                    }
                    None => {
                        let code = answer
                            .as_ref()
                            .map(|a| a["errors"][0]["extensions"]["code"].to_string())
                            .unwrap_or_else(|| "no answer".to_owned());
                        codes.lock().expect("lock").insert(code);
                        failures.fetch_add(1, Ordering::AcqRel);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while acknowledged.lock().expect("lock").len() < 200 {
        assert!(
            Instant::now() < deadline,
            "the burst acknowledged too little"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // When the primary is killed mid-burst and the standby promoted
    let before_kill = acknowledged.lock().expect("lock").len();
    killed.store(true, Ordering::Release);
    pair.kill_primary_hard();
    let failures_at_kill = failures.load(Ordering::Acquire);
    tokio::time::sleep(Duration::from_millis(500)).await;
    pair.promote_standby();

    // Then the node writes again, on the promoted standby, without a restart
    let deadline = Instant::now() + Duration::from_secs(60);
    while after_failover.load(Ordering::Acquire) < 100 {
        assert!(
            Instant::now() < deadline,
            "writes did not resume after the failover ({} since the kill)",
            after_failover.load(Ordering::Acquire)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Release);
    for w in writers {
        w.await.expect("writer");
    }
    assert!(
        failures.load(Ordering::Acquire) > failures_at_kill,
        "writes failed while there was no primary (the kill hit a live burst)"
    );
    // A write refused for want of a primary says so with a retryable code
    let codes = codes.lock().expect("lock").clone();
    assert!(
        codes.iter().all(|c| c == "\"UNAVAILABLE\""),
        "failed writes answer UNAVAILABLE: {codes:?}"
    );
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() > before_kill + 100);

    // And every acknowledged customer is there, readable through the node
    assert_customers_read_back(&client, &node.url, &admin, &acknowledged).await;
    // And the promoted database verifies, with at least every acknowledged registration
    let promoted = pair.standby_url("crm");
    let none = dir.path().join("none");
    let out = run(&none, &["--store", &promoted, "verify"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let events: u64 = pair
        .standby()
        .psql(
            "crm",
            "SELECT count(*) FROM sijil_events WHERE event_type = 'CustomerRegistered'",
        )
        .parse()
        .expect("a count");
    assert!(
        events >= acknowledged.len() as u64,
        "{events} < {}",
        acknowledged.len()
    );
    // And the node's local copy matches the promoted log
    drop(node);
    let out = run(
        &data,
        &["--store", &promoted, "--master-key-file", &key, "verify"],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
}
