//! Auditor queries: raw events of a stream and of the workspace, as-of state rebuilt from the
//! log, and hash-chain checks.

mod common;

use common::*;
use serde_json::json;
use sijil_gateway::Role;

const UPDATE: &str =
    "mutation($i: UpdateCustomerProfileInput!) { updateCustomerProfile(input: $i) {
    position } }";

#[tokio::test]
async fn events_and_all_events_return_full_envelopes_of_the_workspace_only() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let auditor = server.token(ws, Role::Auditor);
    let other = server.token(workspace(), Role::Agent);
    let id = register(&server, &agent, "E-1").await;
    register(&server, &other, "E-OTHER").await;
    server
        .ok(
            &agent,
            UPDATE,
            json!({ "i": { "customerId": id, "displayName": "Renamed" } }),
        )
        .await;

    let data = server
        .ok(
            &auditor,
            "query($s: String!) { events(streamId: $s, first: 1) {
                next hasMore events { position streamId version eventId eventType schemaVersion
                  occurredAt recordedAt actor correlationId prevHash hash payload } } }",
            json!({ "s": format!("customer-{id}") }),
        )
        .await;
    let page = &data["events"];
    assert_eq!(page["hasMore"], true);
    assert_eq!(page["next"], 2);
    let e = &page["events"][0];
    assert_eq!(e["version"], 1);
    assert_eq!(e["eventType"], "CustomerRegistered");
    assert_eq!(e["prevHash"], "0".repeat(64));
    assert_eq!(e["hash"].as_str().unwrap().len(), 64);
    assert!(e["actor"].as_str().unwrap().starts_with("token:"));
    assert_eq!(e["payload"]["customer_id"], id.as_str());
    assert_eq!(e["payload"]["reference"], "E-1");
    let data = server
        .ok(&auditor, "query($s: String!) { events(streamId: $s, fromVersion: 2) { hasMore events { version prevHash } } }",
            json!({ "s": format!("customer-{id}") }))
        .await;
    assert_eq!(data["events"]["hasMore"], false);
    assert_eq!(data["events"]["events"][0]["prevHash"], e["hash"]);

    let data = server
        .ok(
            &auditor,
            "{ allEvents(first: 100) { next hasMore events { position eventType streamId } } }",
            json!({}),
        )
        .await;
    let events = data["allEvents"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "only this workspace's events: {events:?}");
    assert!(events
        .iter()
        .all(|e| e["streamId"] == format!("customer-{id}")));
    assert_eq!(data["allEvents"]["hasMore"], false);
    let data = server
        .ok(
            &auditor,
            "{ allEvents(types: [\"CustomerProfileUpdated\"]) { events { eventType } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["allEvents"]["events"],
        json!([{ "eventType": "CustomerProfileUpdated" }])
    );
    let body = server
        .gql(
            &auditor,
            "{ allEvents(types: [\"NoSuchEvent\"]) { events { eventType } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "VALIDATION");
    let body = server
        .gql(
            &auditor,
            "{ events(streamId: \"nonsense\") { next } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "VALIDATION");
}

#[tokio::test]
async fn customer_as_of_rebuilds_the_past_from_the_log() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let auditor = server.token(ws, Role::Auditor);
    let id = register(&server, &agent, "ASOF-1").await;
    let registered_at = server.head();
    let record =
        "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { position } }";
    server
        .ok(&agent, record, json!({ "i": { "customerId": id, "channel": "PHONE", "direction": "INBOUND",
                                           "bot": "ivr", "language": "en", "summary": "first call" } }))
        .await;
    server
        .ok(
            &agent,
            UPDATE,
            json!({ "i": { "customerId": id, "displayName": "Later Name" } }),
        )
        .await;
    let q = "query($id: ID!, $p: Int, $at: DateTime) { customerAsOf(id: $id, position: $p, at: $at) {
        position customer { displayName version timeline { totalCount edges { node { kind } } } } } }";
    // As of the registration: the old name, one timeline entry
    let data = server
        .ok(&auditor, q, json!({ "id": id, "p": registered_at }))
        .await;
    let c = &data["customerAsOf"]["customer"];
    assert_eq!(data["customerAsOf"]["position"], registered_at);
    assert_eq!(c["displayName"], "Amina Haddad");
    assert_eq!(c["version"], 1);
    assert_eq!(c["timeline"]["totalCount"], 1);
    // Now: the new name and both entries
    let data = server
        .ok(&auditor, q, json!({ "id": id, "p": server.head() }))
        .await;
    let c = &data["customerAsOf"]["customer"];
    assert_eq!(c["displayName"], "Later Name");
    assert_eq!(c["timeline"]["totalCount"], 2);
    // By time: far in the past the customer did not exist; far ahead is now
    let body = server
        .gql(
            &auditor,
            q,
            json!({ "id": id, "at": "2001-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND");
    let data = server
        .ok(
            &auditor,
            q,
            json!({ "id": id, "at": "2999-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(
        data["customerAsOf"]["customer"]["displayName"],
        "Later Name"
    );
    // Exactly one of position and time
    let body = server.gql(&auditor, q, json!({ "id": id })).await;
    assert_eq!(code(&body), "VALIDATION");
    // Agents may not ask
    let body = server.gql(&agent, q, json!({ "id": id, "p": 1 })).await;
    assert_eq!(code(&body), "FORBIDDEN");
}

#[tokio::test]
async fn verify_stream_reports_an_intact_chain() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let auditor = server.token(ws, Role::Auditor);
    let id = register(&server, &agent, "VS-1").await;
    server
        .ok(
            &agent,
            UPDATE,
            json!({ "i": { "customerId": id, "displayName": "Again" } }),
        )
        .await;
    let data = server
        .ok(&auditor, "query($s: String!) { verifyStream(streamId: $s) { streamId ok eventsChecked problem { kind } } }",
            json!({ "s": format!("customer-{id}") }))
        .await;
    let v = &data["verifyStream"];
    assert_eq!(v["ok"], true);
    assert_eq!(v["eventsChecked"], 2);
    assert_eq!(v["problem"], serde_json::Value::Null);
}

#[tokio::test]
async fn forgetting_a_customer_erases_their_text_from_raw_events_and_cases() {
    let server = TestServer::start().await;
    let ws = workspace();
    let admin = server.token(ws, Role::Admin);
    let auditor = server.token(ws, Role::Auditor);
    let id = register(&server, &admin, "GDPR-1").await;
    let data = server
        .ok(
            &admin,
            "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }",
            json!({ "i": { "customerId": id, "subject": "Amina's refund", "category": "billing",
                           "channel": "PHONE" } }),
        )
        .await;
    let case = data["openCase"]["case"]["id"].as_str().unwrap().to_owned();
    server
        .ok(
            &admin,
            "mutation($i: ChangeLevelInput!) { escalateCase(input: $i) { version } }",
            json!({ "i": { "caseId": case, "reason": "she is upset about her divorce" } }),
        )
        .await;
    // Before: readable
    let q = "query($s: String!) { events(streamId: $s) { events { eventType payload } } }";
    let data = server
        .ok(&auditor, q, json!({ "s": format!("case-{case}") }))
        .await;
    assert_eq!(
        data["events"]["events"][0]["payload"]["subject"],
        "Amina's refund"
    );

    server
        .ok(
            &admin,
            "mutation($i: ForgetCustomerInput!) { forgetCustomer(input: $i) { version } }",
            json!({ "i": { "customerId": id, "requestReference": "ERASE-7" } }),
        )
        .await;
    // After: erased, the facts stay
    let data = server
        .ok(&auditor, q, json!({ "s": format!("case-{case}") }))
        .await;
    let events = data["events"]["events"].as_array().unwrap();
    assert_eq!(events[0]["payload"]["subject"], "[erased]");
    assert_eq!(events[0]["payload"]["customer_id"], id.as_str());
    assert_eq!(events[1]["payload"]["reason"], "[erased]");
    assert_eq!(events[1]["payload"]["to_level"], 2);
    let data = server
        .ok(&auditor, q, json!({ "s": format!("customer-{id}") }))
        .await;
    let registered = &data["events"]["events"][0]["payload"];
    assert_eq!(registered["display_name"], "[erased]");
    assert_eq!(registered["contact_points"], json!([]));
    let data = server
        .ok(
            &auditor,
            "query($id: ID!) { case(id: $id) { subject history { payload } } }",
            json!({ "id": case }),
        )
        .await;
    assert_eq!(data["case"]["subject"], "[erased]");
    assert_eq!(data["case"]["history"][0]["payload"]["subject"], "[erased]");
    // The past rebuilt from the log does not bring the text back.
    let data = server
        .ok(&auditor, "query($id: ID!) { customerAsOf(id: $id, position: 1) {
                customer { displayName contactPoints { value } timeline { edges { node { summary } } } } } }",
            json!({ "id": id }))
        .await;
    let c = &data["customerAsOf"]["customer"];
    assert_eq!(c["displayName"], "");
    assert_eq!(c["contactPoints"], json!([]));
    assert_eq!(c["timeline"]["edges"][0]["node"]["summary"], "[erased]");
}

#[tokio::test]
async fn every_event_records_the_token_that_caused_it() {
    let server = TestServer::start().await;
    let ws = workspace();
    let (record, secret) = server
        .gateway
        .tokens()
        .create(ws, Role::Admin, "night shift", vec![], 0)
        .unwrap();
    let id = register(&server, &secret, "ACT-1").await;
    server
        .ok(
            &secret,
            UPDATE,
            json!({ "i": { "customerId": id, "displayName": "Other" } }),
        )
        .await;
    let data = server
        .ok(&secret, "{ allEvents { events { actor } } }", json!({}))
        .await;
    let actors: Vec<&str> = data["allEvents"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    let expected = format!("token:{}", record.id);
    assert_eq!(actors, vec![expected.as_str(), expected.as_str()]);
}
