//! End-to-end: `sijil serve` over HTTP — a demo store answers a timeline query with the printed
//! admin token, and SIGTERM in the middle of a burst of writes loses no acknowledged event.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{graphql, ok, Server};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_write_burst_when_sigterm_arrives_then_every_acknowledged_event_is_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &[]);
    let token = server
        .token
        .clone()
        .expect("a new store prints an admin token");
    let client = reqwest::Client::new();
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));

    let mut writers = Vec::new();
    for writer in 0..8 {
        let (client, url, token, acknowledged) = (
            client.clone(),
            server.url.clone(),
            token.clone(),
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
                        acknowledged.lock().expect("lock").insert(id);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }));
    }
    // Given a burst under way, when SIGTERM arrives mid-burst...
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if acknowledged.lock().expect("lock").len() >= 150 {
            break;
        }
    }
    server.terminate();
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(60), writer)
            .await
            .expect("writers stop once the server is gone")
            .expect("writer task");
    }
    assert!(server.wait(Duration::from_secs(30)), "serve exits cleanly");

    // ...then every acknowledged registration is in the log after reopening.
    let export = dir.path().join("log.jsonl");
    ok(
        &data,
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
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(acknowledged.len() >= 150);
    let verified = ok(&data, &["verify"]);
    assert!(verified.contains("verify: OK"), "{verified}");
}
