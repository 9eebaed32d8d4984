//! Subscriptions over WebSocket, with both protocols: timeline updates, escalation changes and
//! the raw log for auditors; authentication at connection_init; role refusals.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sijil_gateway::Role;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(server: &TestServer, protocol: &str) -> Ws {
    let url = server.url.replace("http://", "ws://") + "/graphql/ws";
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message (pings skipped); `None` when the server closed the socket.
async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")?;
        match msg.ok()? {
            Message::Text(text) => {
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                if v["type"] == "ping" || v["type"] == "ka" {
                    continue;
                }
                return Some(v);
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// The code of an error message (`error`, or `next` carrying errors).
fn error_code(msg: &Value) -> String {
    let errors = if msg["type"] == "error" {
        &msg["payload"]
    } else {
        &msg["payload"]["errors"]
    };
    errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<no code>")
        .to_owned()
}

/// Connects with graphql-transport-ws, authenticates and subscribes.
async fn subscribe(server: &TestServer, token: &str, query: &str, variables: Value) -> Ws {
    let mut ws = connect(server, "graphql-transport-ws").await;
    send(
        &mut ws,
        json!({ "type": "connection_init",
                          "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "connection_ack");
    send(
        &mut ws,
        json!({ "id": "1", "type": "subscribe",
                          "payload": { "query": query, "variables": variables } }),
    )
    .await;
    // Let the server set the stream up before the test writes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws
}

#[tokio::test]
async fn timeline_updated_yields_new_entries() {
    let server = TestServer::start().await;
    let ws_id = workspace();
    let agent = server.token(ws_id, Role::Agent);
    let customer = register(&server, &agent, "S-1").await;
    let mut ws = subscribe(
        &server,
        &agent,
        "subscription($id: ID!) { timelineUpdated(customerId: $id) {
            customerId totalCount entries { kind summary channel } } }",
        json!({ "id": customer }),
    )
    .await;
    server
        .ok(
            &agent,
            "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { version } }",
            json!({ "i": { "customerId": customer, "channel": "SOCIAL", "direction": "INBOUND",
                           "bot": "social-bot", "language": "en", "summary": "tweeted" } }),
        )
        .await;
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(msg["type"], "next", "{msg}");
    let update = &msg["payload"]["data"]["timelineUpdated"];
    assert_eq!(update["customerId"], customer.as_str());
    assert_eq!(update["totalCount"], 2);
    assert_eq!(update["entries"][0]["kind"], "INTERACTION");
    assert_eq!(update["entries"][0]["channel"], "SOCIAL");
}

#[tokio::test]
async fn escalation_changed_follows_a_teams_cases() {
    let server = TestServer::start().await;
    let ws_id = workspace();
    let agent = server.token(ws_id, Role::Agent);
    let supervisor = server.token(ws_id, Role::Supervisor);
    let customer = register(&server, &agent, "S-2").await;
    let team = uuid::Uuid::now_v7().to_string();
    let mut ws = subscribe(
        &server,
        &supervisor,
        "subscription($team: ID) { escalationChanged(team: $team) {
            position eventType case { id level assignedTeamId } } }",
        json!({ "team": team }),
    )
    .await;
    let data = server
        .ok(&agent, "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }",
            json!({ "i": { "customerId": customer, "subject": "s", "category": "c", "channel": "PHONE" } }))
        .await;
    let case = data["openCase"]["case"]["id"].as_str().unwrap().to_owned();
    server
        .ok(
            &agent,
            "mutation($i: ChangeLevelInput!) { escalateCase(input: $i) { version } }",
            json!({ "i": { "caseId": case, "reason": "tier 2", "teamId": team } }),
        )
        .await;
    // The opening (no team yet) is not the team's; the escalation to the team is.
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(msg["type"], "next", "{msg}");
    let change = &msg["payload"]["data"]["escalationChanged"];
    assert_eq!(change["eventType"], "CaseEscalated");
    assert_eq!(change["case"]["id"], case.as_str());
    assert_eq!(change["case"]["level"], 2);
    assert_eq!(change["case"]["assignedTeamId"], team.as_str());
}

#[tokio::test]
async fn event_appended_tails_the_workspaces_log_with_the_legacy_protocol() {
    let server = TestServer::start().await;
    let ws_id = workspace();
    let agent = server.token(ws_id, Role::Agent);
    let auditor = server.token(ws_id, Role::Auditor);
    let stranger = server.token(workspace(), Role::Agent);
    register(&server, &stranger, "OTHER").await;
    let mine = register(&server, &agent, "MINE").await;

    let mut ws = connect(&server, "graphql-ws").await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "token": auditor } }),
    )
    .await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "connection_ack");
    send(&mut ws, json!({ "id": "a", "type": "start", "payload": {
        "query": "subscription { eventAppended(fromPosition: 1) { position streamId eventType hash } }" } }))
        .await;
    // Catch-up from position 1 skips the other workspace's event.
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(msg["type"], "data", "{msg}");
    let event = &msg["payload"]["data"]["eventAppended"];
    assert_eq!(event["streamId"], format!("customer-{mine}"));
    assert_eq!(event["position"], 2);
    // Then live appends.
    server
        .ok(&agent, "mutation($i: UpdateCustomerProfileInput!) { updateCustomerProfile(input: $i) { version } }",
            json!({ "i": { "customerId": mine, "displayName": "Live" } }))
        .await;
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(
        msg["payload"]["data"]["eventAppended"]["eventType"],
        "CustomerProfileUpdated"
    );
}

#[tokio::test]
async fn subscriptions_authenticate_and_check_roles() {
    let server = TestServer::start().await;
    let ws_id = workspace();
    let agent = server.token(ws_id, Role::Agent);

    // A bad token never gets an ack.
    let mut ws = connect(&server, "graphql-transport-ws").await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer sjl_bad" } }),
    )
    .await;
    let reply = next(&mut ws).await;
    assert!(
        reply.is_none() || reply.as_ref().unwrap()["type"] != "connection_ack",
        "{reply:?}"
    );

    // An agent may not tail raw events.
    let mut ws = subscribe(
        &server,
        &agent,
        "subscription { eventAppended { position } }",
        json!({}),
    )
    .await;
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(error_code(&msg), "FORBIDDEN", "{msg}");

    // Malformed subscriptions get VALIDATION over WebSocket too.
    let mut ws = subscribe(&server, &agent, "subscription { noSuchField }", json!({})).await;
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(error_code(&msg), "VALIDATION", "{msg}");

    // Another workspace's customer is not found.
    let other = server.token(workspace(), Role::Agent);
    let theirs = register(&server, &other, "THEIRS").await;
    let mut ws = subscribe(
        &server,
        &agent,
        "subscription($id: ID!) { timelineUpdated(customerId: $id) { totalCount } }",
        json!({ "id": theirs }),
    )
    .await;
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(error_code(&msg), "NOT_FOUND", "{msg}");
}
