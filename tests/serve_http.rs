//! End-to-end: `sijil serve` over HTTP — a demo store answers a timeline query with the printed
//! admin token, and neither SIGTERM nor SIGKILL in the middle of a burst of writes loses an
//! acknowledged event or the key its personal data is sealed with.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_customers_read_back, graphql, ok, Server};
use serde_json::json;

const TIMELINE: &str = "{ customers(first: 3) { edges { node { id reference displayName language \
    timeline(first: 5, newestFirst: true) { edges { node { at kind channel summary } } } } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_demo_store_when_served_then_a_customer_timeline_is_queryable_with_the_admin_token()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &["--demo", "--demo-customers", "12"]);
    let token = server
        .token
        .clone()
        .expect("a new store prints an admin token");
    let client = reqwest::Client::new();

    let answer = graphql(&client, &server.url, &token, TIMELINE, json!({}))
        .await
        .expect("the query is answered");
    let edges = answer["data"]["customers"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("customers in {answer}"));
    assert_eq!(edges.len(), 3, "{answer}");
    let entries = edges
        .iter()
        .map(|e| {
            e["node"]["timeline"]["edges"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum::<usize>();
    assert!(entries > 0, "the demo customers have timelines: {answer}");

    let refused = graphql(&client, &server.url, "sjl_not-a-token", TIMELINE, json!({}))
        .await
        .expect("an answer");
    assert!(
        refused["data"].is_null() || refused["errors"].is_array(),
        "{refused}"
    );
    assert!(
        refused["errors"].is_array(),
        "a bad token is refused: {refused}"
    );

    server.terminate();
    assert!(
        server.wait(Duration::from_secs(30)),
        "serve exits cleanly on SIGTERM"
    );
    let said: Vec<String> = server.lines.try_iter().collect();
    assert!(
        said.iter().any(|l| l.starts_with("sijil stopped")),
        "{said:?}"
    );
}

const REGISTER: &str =
    "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) \
    { position customer { id reference } } }";

/// Customers acknowledged by a burst: id → reference.
type Acknowledged = Arc<Mutex<BTreeMap<String, String>>>;

/// The log: a request's line is written while the server runs (by the log's writer thread,
/// which writes whatever is queued whenever the queue runs dry), and the lines of a clean
/// shutdown are all there once the process has exited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_served_store_when_requests_are_answered_then_their_log_lines_are_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut server = Server::start_logging_to(
        &data,
        &["--demo", "--demo-customers", "4", "--log", "info"],
        std::process::Stdio::from(log),
    );
    let token = server.token.clone().expect("an admin token");
    let client = reqwest::Client::new();
    for _ in 0..3 {
        graphql(&client, &server.url, &token, TIMELINE, json!({}))
            .await
            .expect("the query is answered");
    }
    let requests = |text: &str| {
        text.lines()
            .filter(|l| l.contains(" request ") && l.contains("outcome=ok"))
            .count()
    };
    let mut written = String::new();
    for _ in 0..100 {
        written = std::fs::read_to_string(&log_path).expect("read the log");
        if requests(&written) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        requests(&written),
        3,
        "one line per request while serving:\n{written}"
    );

    server.terminate();
    assert!(
        server.wait(Duration::from_secs(30)),
        "serve exits on SIGTERM"
    );
    let written = std::fs::read_to_string(&log_path).expect("read the log");
    assert!(
        written.contains("shutting down"),
        "the shutdown is logged before the process exits:\n{written}"
    );
    assert_eq!(requests(&written), 3, "{written}");
}

/// Starts 8 writers registering customers on `server` until it stops answering; returns
/// their tasks and what they have had acknowledged so far.
fn burst(server: &Server, token: &str) -> (Vec<tokio::task::JoinHandle<()>>, Acknowledged) {
    let client = reqwest::Client::new();
    let acknowledged: Acknowledged = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..8 {
        let (client, url, token, acknowledged) = (
            client.clone(),
            server.url.clone(),
            token.to_owned(),
            Arc::clone(&acknowledged),
        );
        writers.push(tokio::spawn(async move {
            for n in 0..100_000u32 {
                let reference = format!("BURST-{writer}-{n}");
                let input = json!({ "input": {
                    "reference": reference,
                    "displayName": format!("Burst {writer}/{n}"),
                    "language": "en",
                    "timeZone": "Europe/London",
                }});
                match graphql(&client, &url, &token, REGISTER, input).await {
                    Ok(answer) if answer["data"]["registerCustomer"]["position"].is_u64() => {
                        // The id, not the reference: personal data is sealed in the log.
                        let id = answer["data"]["registerCustomer"]["customer"]["id"]
                            .as_str()
                            .expect("an id")
                            .to_owned();
                        acknowledged.lock().expect("lock").insert(id, reference);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }));
    }
    (writers, acknowledged)
}

/// Waits until `acknowledged` holds at least `n` customers.
async fn until_acknowledged(acknowledged: &Acknowledged, n: usize) {
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if acknowledged.lock().expect("lock").len() >= n {
            return;
        }
    }
}

/// Waits for the writers of a burst to stop (the server is gone).
async fn writers_stop(writers: Vec<tokio::task::JoinHandle<()>>) {
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(60), writer)
            .await
            .expect("writers stop once the server is gone")
            .expect("writer task");
    }
}

/// Asserts that every acknowledged registration is in the log of `data` (through `export`)
/// and that `verify` passes: it rebuilds every projection, so the directory opens every
/// sealed reference with its customer's key.
fn assert_kept_and_verified(
    dir: &std::path::Path,
    data: &std::path::Path,
    acknowledged: &Acknowledged,
) {
    let export = dir.join("log.jsonl");
    ok(
        data,
        &["export", "--out", export.to_str().expect("utf-8 path")],
    );
    let text = std::fs::read_to_string(&export).expect("export written");
    let stored: BTreeSet<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event_type"] == "CustomerRegistered")
        .filter_map(|v| v["payload"]["customer_id"].as_str().map(str::to_owned))
        .collect();
    let acknowledged = acknowledged.lock().expect("lock").clone();
    let lost: Vec<&String> = acknowledged
        .keys()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(acknowledged.len() >= 150);
    let verified = ok(data, &["verify"]);
    assert!(verified.contains("verify: OK"), "{verified}");
}

/// A new store served, and a burst of registrations on it that has had 150 acknowledged.
struct Burst {
    dir: tempfile::TempDir,
    data: std::path::PathBuf,
    server: Server,
    token: String,
    writers: Vec<tokio::task::JoinHandle<()>>,
    acknowledged: Acknowledged,
}

async fn burst_under_way() -> Burst {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let token = server
        .token
        .clone()
        .expect("a new store prints an admin token");
    let (writers, acknowledged) = burst(&server, &token);
    until_acknowledged(&acknowledged, 150).await;
    Burst {
        dir,
        data,
        server,
        token,
        writers,
        acknowledged,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_write_burst_when_sigterm_arrives_then_every_acknowledged_event_is_on_disk() {
    // Given a burst under way, when SIGTERM arrives mid-burst...
    let Burst {
        dir,
        data,
        mut server,
        writers,
        acknowledged,
        ..
    } = burst_under_way().await;
    server.terminate();
    writers_stop(writers).await;
    assert!(server.wait(Duration::from_secs(30)), "serve exits cleanly");
    // ...then every acknowledged registration is in the log after reopening.
    assert_kept_and_verified(dir.path(), &data, &acknowledged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_write_burst_when_the_server_is_killed_then_every_acknowledged_customer_reads_back()
{
    // Given a burst under way, when the server is killed (SIGKILL) mid-burst...
    let Burst {
        dir,
        data,
        mut server,
        token,
        writers,
        acknowledged,
    } = burst_under_way().await;
    server.child.kill().expect("kill -9");
    writers_stop(writers).await;
    server.child.wait().expect("reaped");
    // ...then every acknowledged registration is in the log, its customer's data key with it
    assert_kept_and_verified(dir.path(), &data, &acknowledged);
    // and, served again, every acknowledged customer reads back with its reference.
    let server = Server::start(&data, &[]);
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert_customers_read_back(&reqwest::Client::new(), &server.url, &token, &acknowledged).await;
}
