//! End-to-end: sijil on PostgreSQL (`serve --store postgres://…`). Two `sijil serve` nodes on
//! one database, each with its own data directory, see each other's writes over HTTP:
//! read-your-writes across nodes with `x-sijil-min-position`, personal data sealed on one node
//! and read on the other (keys shared through PostgreSQL), concurrent writes to one customer
//! through both nodes, tokens made and revoked with `sijil token --store`, a forget on one
//! node erasing the customer on the other, a node with another master key refused, `serve
//! --demo` filling an empty database, and `verify`/`export`/`import` against PostgreSQL.
//! The test starts its own throw-away PostgreSQL (see `pg_support`).

mod common;
#[path = "../crates/store/tests/pg_support/mod.rs"]
mod pg_support;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{graphql, run, stderr, stdout, Server};
use pg_support::PgServer;
use serde_json::{json, Value};

const REGISTER: &str = "mutation($i: RegisterCustomerInput!) { registerCustomer(input: $i) \
    { position version customer { id } } }";
const RECORD: &str = "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) \
    { position version } }";
const CUSTOMER: &str = "query($id: ID!) { customer(id: $id) { displayName version \
    contactPoints { value } timeline(first: 100) { totalCount edges { node { kind summary } } } } }";
const UPDATE: &str =
    "mutation($i: UpdateCustomerProfileInput!) { updateCustomerProfile(input: $i) \
    { position } }";
const EVENTS: &str = "query($s: String!) { events(streamId: $s) { events { eventType payload } } }";
const FORGET: &str = "mutation($i: ForgetCustomerInput!) { forgetCustomer(input: $i) { version } }";

/// A master key file shared by the nodes of a cluster.
fn key_file(dir: &Path, name: &str) -> String {
    let out = run(dir, &["master-key"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.join(name);
    std::fs::write(&path, stdout(&out)).expect("write key file");
    path.display().to_string()
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    min_position: Option<u64>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let mut request = client.post(url).bearer_auth(token);
    if let Some(p) = min_position {
        request = request.header("x-sijil-min-position", p.to_string());
    }
    let response = request
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("the node answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

fn data(answer: &Value) -> &Value {
    assert!(answer["errors"].is_null(), "errors: {answer}");
    &answer["data"]
}

/// Polls `check` until it holds or `limit` passes.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_postgresql_log_serve_each_others_writes() {
    let pg = PgServer::start();
    let url = pg.create_database("cluster");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path(), "cluster.key");
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let cluster = ["--store", url.as_str(), "--master-key-file", key.as_str()];

    // Given two nodes on one database with the same master key
    let a = Server::start(&data_a, &cluster);
    let admin = a
        .token
        .clone()
        .expect("the first node makes the admin token");
    let b = Server::start(&data_b, &cluster);
    assert!(
        b.token.is_none(),
        "only one node makes the first admin token: {:?}",
        b.printed
    );
    let client = reqwest::Client::new();

    // When a customer is registered through A (personal data sealed with a key made on A)
    let (_, answer) = post(
        &client,
        &a.url,
        &admin,
        None,
        REGISTER,
        json!({ "i": {
        "reference": "CL-1", "displayName": "Layla Odeh", "language": "ar",
        "timeZone": "Asia/Amman",
        "contactPoints": [{ "kind": "EMAIL", "value": "layla@example.com" }] } }),
    )
    .await;
    let registered = data(&answer)["registerCustomer"].clone();
    let id = registered["customer"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let position = registered["position"].as_u64().expect("position");

    // Then B, asked to read at least that position, answers with it, names in clear
    let (status, answer) = post(
        &client,
        &b.url,
        &admin,
        Some(position),
        CUSTOMER,
        json!({ "id": id }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let customer = &data(&answer)["customer"];
    assert_eq!(customer["displayName"], "Layla Odeh", "{answer}");
    assert_eq!(customer["contactPoints"][0]["value"], "layla@example.com");

    // And each node reports how far its copy lags behind PostgreSQL
    let metrics = client
        .get(b.url.replace("/graphql", "/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("sijil_log_copy_lag_events"), "{metrics}");

    // When both nodes write to that customer at once (no pinned version: the bus retries)
    let mut writers = Vec::new();
    for (n, node) in [a.url.clone(), b.url.clone()].into_iter().enumerate() {
        for w in 0..3 {
            let (client, node, admin, id) =
                (client.clone(), node.clone(), admin.clone(), id.clone());
            writers.push(tokio::spawn(async move {
                let mut last = 0;
                for i in 0..5 {
                    let (_, answer) = post(
                        &client,
                        &node,
                        &admin,
                        None,
                        RECORD,
                        json!({ "i": {
                        "customerId": id, "channel": "PHONE", "direction": "INBOUND",
                        "bot": "ivr", "language": "ar",
                        "summary": format!("call {n}-{w}-{i}") } }),
                    )
                    .await;
                    last = data(&answer)["recordInteraction"]["position"]
                        .as_u64()
                        .expect("position");
                    // The customer's own stream: both nodes race for its next version.
                    let (_, answer) = post(
                        &client,
                        &node,
                        &admin,
                        None,
                        UPDATE,
                        json!({ "i": {
                        "customerId": id, "displayName": format!("Layla Odeh {n}-{w}-{i}") } }),
                    )
                    .await;
                    last = last.max(
                        data(&answer)["updateCustomerProfile"]["position"]
                            .as_u64()
                            .expect("position"),
                    );
                }
                last
            }));
        }
    }
    let mut highest = 0;
    for w in writers {
        highest = highest.max(w.await.expect("writer"));
    }
    // Then every write landed once, in one order both nodes agree on
    let mut seen = Vec::new();
    for node in [&a.url, &b.url] {
        let (_, answer) = post(
            &client,
            node,
            &admin,
            Some(highest),
            CUSTOMER,
            json!({ "id": id }),
        )
        .await;
        let customer = data(&answer)["customer"].clone();
        assert_eq!(
            customer["version"], 31,
            "1 registration + 30 profile updates: {customer}"
        );
        let interactions = customer["timeline"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .filter(|e| e["node"]["kind"] == "INTERACTION")
            .count();
        assert_eq!(interactions, 30, "{customer}");
        seen.push(customer["timeline"].clone());
    }
    assert_eq!(seen[0], seen[1], "both nodes show the same timeline");

    // When a token is made with the CLI against PostgreSQL
    let out = run(
        &dir.path().join("cli"),
        &[
            "--store",
            &url,
            "token",
            "create",
            "--workspace",
            &workspace_of(&a.printed),
            "--role",
            "auditor",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let secret = printed
        .lines()
        .find_map(|l| l.strip_prefix("secret:"))
        .map(|s| s.trim().to_owned())
        .expect("a secret");
    let token_id = printed
        .lines()
        .find_map(|l| l.strip_prefix("token id:"))
        .map(|s| s.trim().to_owned())
        .expect("an id");
    // Then both nodes accept it within a couple of seconds
    for node in [&a.url, &b.url] {
        assert!(
            eventually(Duration::from_secs(5), async || {
                let answer = graphql(&client, node, &secret, "{ __typename }", json!({}))
                    .await
                    .expect("answer");
                answer["errors"].is_null()
            })
            .await,
            "the new token works on {node}"
        );
    }
    // And after `token revoke`, both refuse it
    let out = run(
        &dir.path().join("cli"),
        &["--store", &url, "token", "revoke", &token_id],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for node in [&a.url, &b.url] {
        assert!(
            eventually(Duration::from_secs(5), async || {
                let answer = graphql(&client, node, &secret, "{ __typename }", json!({}))
                    .await
                    .expect("answer");
                answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            })
            .await,
            "the revoked token is refused on {node}"
        );
    }

    // When the customer is forgotten through B
    let (_, answer) = post(
        &client,
        &b.url,
        &admin,
        None,
        FORGET,
        json!({ "i": {
        "customerId": id, "requestReference": "GDPR-77" } }),
    )
    .await;
    let version = data(&answer)["forgetCustomer"]["version"]
        .as_u64()
        .expect("version");
    assert_eq!(version, 32);
    // Then A, once it holds the forget, shows the personal data erased
    assert!(
        eventually(Duration::from_secs(10), async || {
            let (_, answer) =
                post(&client, &a.url, &admin, None, CUSTOMER, json!({ "id": id })).await;
            // The directory empties the name at once; the stored registration, opened with
            // A's own copy of the key, reads erased only once A destroyed that copy.
            let (_, events) = post(
                &client,
                &a.url,
                &admin,
                None,
                EVENTS,
                json!({ "s": format!("customer-{id}") }),
            )
            .await;
            let registered = &data(&events)["events"]["events"][0]["payload"];
            data(&answer)["customer"]["displayName"] == ""
                && registered["display_name"] == "[erased]"
        })
        .await,
        "A erases the customer B forgot"
    );

    // And a node with another master key is refused
    let other_key = key_file(dir.path(), "other.key");
    let out = run(
        &dir.path().join("c"),
        &[
            "--store",
            &url,
            "--master-key-file",
            &other_key,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("MASTER_KEY_WRONG"),
        "{}",
        stderr(&out)
    );

    // And the log in PostgreSQL verifies, and each node's copy of it too once stopped
    let out = run(&dir.path().join("none"), &["--store", &url, "verify"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    drop(b);
    let out = run(
        &data_b,
        &["--store", &url, "--master-key-file", &key, "verify"],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("verify: OK"), "{}", stdout(&out));
    drop(a);
}

/// The workspace of the admin token a node printed.
fn workspace_of(printed: &[String]) -> String {
    printed
        .iter()
        .find_map(|l| l.strip_prefix("admin token for workspace "))
        .and_then(|rest| rest.split(':').next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("an admin token line in {printed:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_node_fills_an_empty_database_and_export_import_move_the_log_with_its_keys() {
    let pg = PgServer::start();
    let url = pg.create_database("demo");
    let copy = pg.create_database("copy");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path(), "cluster.key");
    let cluster = ["--store", url.as_str(), "--master-key-file", key.as_str()];

    // Given a node started with --demo on an empty database
    let a = Server::start(
        &dir.path().join("a"),
        &[&cluster[..], &["--demo", "--demo-customers", "6"]].concat(),
    );
    let admin = a.token.clone().expect("admin token");
    assert!(
        a.printed
            .iter()
            .any(|l| l.starts_with("sent ") && l.contains("events")),
        "the demo is sent to PostgreSQL: {:?}",
        a.printed
    );
    // Then a second node copies it and reads the demo customers' names
    let b = Server::start(&dir.path().join("b"), &cluster);
    let client = reqwest::Client::new();
    let list = "{ customers(first: 6) { edges { node { id displayName timeline(first: 1) { totalCount } } } } }";
    let from_a = graphql(&client, &a.url, &admin, list, json!({}))
        .await
        .expect("a");
    let from_b = graphql(&client, &b.url, &admin, list, json!({}))
        .await
        .expect("b");
    assert_eq!(data(&from_a), data(&from_b));
    let names: Vec<&str> = data(&from_b)["customers"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["displayName"].as_str())
        .collect();
    assert!(names.len() >= 5, "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| !n.starts_with("sjl1:") && *n != "[erased]"),
        "names read in clear on B: {names:?}"
    );
    drop(b);

    // When the log is exported from PostgreSQL with its keys and imported into another database
    let file = dir.path().join("log.jsonl");
    let bundle = dir.path().join("keys.bundle");
    let none = dir.path().join("none");
    let out = run(
        &none,
        &[
            "--store",
            &url,
            "--master-key-file",
            &key,
            "export",
            "--out",
            &file.display().to_string(),
            "--keys",
            &bundle.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        &none,
        &[
            "--store",
            &copy,
            "--master-key-file",
            &key,
            "import",
            &file.display().to_string(),
            "--keys",
            &bundle.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Importing again writes nothing
    let again = run(
        &none,
        &[
            "--store",
            &copy,
            "--master-key-file",
            &key,
            "import",
            &file.display().to_string(),
        ],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("imported 0 new events"),
        "{}",
        stdout(&again)
    );
    // Then a node on the copy serves the same customers, readable
    let c = Server::start(
        &dir.path().join("c"),
        &["--store", &copy, "--master-key-file", &key],
    );
    let admin_c = c
        .token
        .clone()
        .expect("the copy has no tokens yet, so it gets an admin");
    let answer = graphql(&client, &c.url, &admin_c, list, json!({}))
        .await
        .expect("c");
    // (the copy's admin token is bound to the demo workspace: the first event's)
    assert_eq!(data(&answer), data(&from_a));
    let out = run(&none, &["--store", &copy, "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
