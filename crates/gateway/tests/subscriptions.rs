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
    // Other customers' entries wake the subscription but send nothing; the next update is
    // this customer's next entry, alone.
    let other = register(&server, &agent, "S-1-OTHER").await;
    let record =
        "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { version } }";
    for (who, summary) in [
        (&other, "elsewhere"),
        (&other, "elsewhere again"),
        (&customer, "called"),
    ] {
        server
            .ok(
                &agent,
                record,
                json!({ "i": { "customerId": who, "channel": "PHONE", "direction": "INBOUND",
                               "bot": "ivr", "language": "en", "summary": summary } }),
            )
            .await;
    }
    let msg = next(&mut ws).await.unwrap();
    let update = &msg["payload"]["data"]["timelineUpdated"];
    assert_eq!(update["customerId"], customer.as_str(), "{msg}");
    assert_eq!(update["totalCount"], 3, "{msg}");
    assert_eq!(update["entries"].as_array().map(Vec::len), Some(1), "{msg}");
    assert_eq!(
        update["entries"][0]["summary"], "Inbound phone (bot ivr): called",
        "{msg}"
    );
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
    // Catch-up from position 1 skips the other workspace's event, and positions are local
    // to the workspace (the other workspace wrote first, globally).
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(msg["type"], "data", "{msg}");
    let event = &msg["payload"]["data"]["eventAppended"];
    assert_eq!(event["streamId"], format!("customer-{mine}"));
    assert_eq!(event["position"], 1);
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

/// Starts subscription `id` on an initialised graphql-transport-ws connection.
async fn start(ws: &mut Ws, id: &str, query: &str) {
    send(
        ws,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query } }),
    )
    .await;
}

/// A graphql-transport-ws connection authenticated with `token`.
async fn connected(server: &TestServer, token: &str) -> Ws {
    let mut ws = connect(server, "graphql-transport-ws").await;
    send(
        &mut ws,
        json!({ "type": "connection_init",
                "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "connection_ack");
    ws
}

/// The value of the `sijil_subscriptions_active` gauge once it equals `want` (or after 5 s).
async fn active_subscriptions(server: &TestServer, want: u64) -> u64 {
    gauge(server, "sijil_subscriptions_active", want).await
}

const TAIL: &str = "subscription { eventAppended { position eventType } }";

#[tokio::test]
async fn concurrent_subscriptions_are_capped_per_connection_and_per_token() {
    // Given caps of 2 per connection and 3 per token
    let server = TestServer::start_with(sijil_gateway::GatewayConfig {
        max_subscriptions_per_connection: 2,
        max_subscriptions_per_token: 3,
        ..sijil_gateway::GatewayConfig::default()
    })
    .await;
    let ws_id = workspace();
    let auditor = server.token(ws_id, Role::Auditor);
    let agent = server.token(ws_id, Role::Agent);
    let customer = register(&server, &agent, "CAP-1").await;

    // When one connection starts three subscriptions
    let mut first = connected(&server, &auditor).await;
    start(&mut first, "1", TAIL).await;
    start(&mut first, "2", TAIL).await;
    start(&mut first, "3", TAIL).await;
    // Then the third is refused with RATE_LIMITED and ended; two run
    let msg = next(&mut first).await.unwrap();
    assert_eq!(msg["id"], "3", "{msg}");
    assert_eq!(error_code(&msg), "RATE_LIMITED", "{msg}");
    let ext = &msg["payload"]["errors"][0]["extensions"];
    assert_eq!(ext["reason"], "TOO_MANY_SUBSCRIPTIONS");
    assert_eq!(ext["per"], "connection");
    assert_eq!(ext["limit"], 2);
    let done = next(&mut first).await.unwrap();
    assert_eq!(
        (done["type"].as_str(), done["id"].as_str()),
        (Some("complete"), Some("3"))
    );
    assert_eq!(active_subscriptions(&server, 2).await, 2);

    // When the same token opens a second connection
    let mut second = connected(&server, &auditor).await;
    start(&mut second, "a", TAIL).await;
    start(&mut second, "b", TAIL).await;
    // Then only one more fits under the token's cap
    let msg = next(&mut second).await.unwrap();
    assert_eq!(msg["id"], "b", "{msg}");
    assert_eq!(error_code(&msg), "RATE_LIMITED", "{msg}");
    assert_eq!(msg["payload"]["errors"][0]["extensions"]["per"], "token");
    assert_eq!(next(&mut second).await.unwrap()["type"], "complete");
    assert_eq!(active_subscriptions(&server, 3).await, 3);

    // When a subscription is stopped, its place is free again
    send(&mut first, json!({ "id": "1", "type": "complete" })).await;
    assert_eq!(active_subscriptions(&server, 2).await, 2);
    start(&mut first, "4", TAIL).await;
    assert_eq!(active_subscriptions(&server, 3).await, 3);
    // And the admitted subscriptions deliver
    server
        .ok(&agent, "mutation($i: UpdateCustomerProfileInput!) { updateCustomerProfile(input: $i) { version } }",
            json!({ "i": { "customerId": customer, "displayName": "Capped" } }))
        .await;
    let mut ids = Vec::new();
    while ids.len() < 2 {
        let msg = next(&mut first).await.unwrap();
        if msg["type"] == "complete" && msg["id"] == "1" {
            continue; // the server confirms the stop
        }
        assert_eq!(msg["type"], "next", "{msg}");
        assert_eq!(msg["payload"]["data"]["eventAppended"]["position"], 2);
        ids.push(msg["id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    assert_eq!(ids, vec!["2", "4"]);

    // And closing a connection frees all of its places
    drop(first);
    assert_eq!(active_subscriptions(&server, 1).await, 1);
}

#[tokio::test]
async fn subscription_starts_draw_from_the_tokens_rate_limit() {
    // Given a token allowed bursts of 3 requests
    let server = TestServer::start_with(sijil_gateway::GatewayConfig {
        rate_per_second: 1,
        rate_burst: 3,
        ..sijil_gateway::GatewayConfig::default()
    })
    .await;
    let auditor = server.token(workspace(), Role::Auditor);
    // When it starts two subscriptions and makes one HTTP request
    let mut ws = connected(&server, &auditor).await;
    start(&mut ws, "1", TAIL).await;
    start(&mut ws, "2", TAIL).await;
    assert_eq!(active_subscriptions(&server, 2).await, 2);
    let body = server
        .gql(&auditor, "{ allEvents { hasMore } }", json!({}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    // Then the next subscription start is refused with a retry hint
    start(&mut ws, "3", TAIL).await;
    let msg = next(&mut ws).await.unwrap();
    assert_eq!(msg["id"], "3", "{msg}");
    assert_eq!(error_code(&msg), "RATE_LIMITED", "{msg}");
    assert!(msg["payload"]["errors"][0]["extensions"]["retryAfterMs"]
        .as_u64()
        .is_some());
    // And so is the next HTTP request: they share the bucket
    let (status, body) = server
        .post(
            Some(&auditor),
            json!({ "query": "{ allEvents { hasMore } }" }),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(code(&body), "RATE_LIMITED");
    assert_eq!(active_subscriptions(&server, 2).await, 2);
}

/// The value of a gauge on `/metrics` once it equals `want` (or after 5 s).
async fn gauge(server: &TestServer, name: &str, want: u64) -> u64 {
    let prefix = format!("{name} ");
    let mut seen = u64::MAX;
    for _ in 0..50 {
        let text = server
            .http
            .get(format!("{}/metrics", server.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        seen = text
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(u64::MAX, |v| v as u64);
        if seen == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

/// Workspace positions delivered to `ws` (an `eventAppended { position }` subscription with
/// id "1") until `last` arrives.
async fn positions_until(ws: &mut Ws, last: u64) -> Vec<u64> {
    let mut got = Vec::new();
    while got.last() != Some(&last) {
        let msg = next(ws).await.expect("the subscription stays open");
        assert_eq!(msg["type"], "next", "{msg}");
        let position = msg["payload"]["data"]["eventAppended"]["position"]
            .as_u64()
            .unwrap_or_else(|| panic!("{msg}"));
        assert!(position <= last, "{position} is past the last event {last}");
        got.push(position);
    }
    got
}

/// Renames `customer` `times` times, `at_once` mutations in flight at a time.
async fn renames(server: &TestServer, token: &str, customer: &str, times: usize, at_once: usize) {
    let query = "mutation($i: UpdateCustomerProfileInput!) { updateCustomerProfile(input: $i) { version } }";
    for wave in 0..times.div_ceil(at_once) {
        let calls = (0..at_once.min(times - wave * at_once)).map(|k| {
            server.ok(
                token,
                query,
                json!({ "i": { "customerId": customer, "displayName": format!("Name {wave} {k}") } }),
            )
        });
        futures_util::future::join_all(calls).await;
    }
}

/// Subscribers starting live, from the start and from the middle of the log, and a slow
/// reader of a one-event tail buffer: each gets every event of its workspace once, in order.
async fn every_subscriber_gets_every_event_once(tail_buffer: usize) {
    let server = TestServer::start_with(sijil_gateway::GatewayConfig {
        tail_buffer,
        ..Default::default()
    })
    .await;
    let (ws_a, ws_b) = (workspace(), workspace());
    let agent = server.token(ws_a, Role::Agent);
    let auditor = server.token(ws_a, Role::Auditor);
    let agent_b = server.token(ws_b, Role::Agent);
    let auditor_b = server.token(ws_b, Role::Auditor);
    // Given a history of 1 registration and 4 renames
    let customer = register(&server, &agent, "TAIL").await;
    renames(&server, &agent, &customer, 4, 1).await;
    let other = register(&server, &agent_b, "OTHER").await;
    let query = "subscription($from: Int) { eventAppended(fromPosition: $from) { position } }";
    // When four subscribers follow A's log from different places, and one follows B's
    let mut subscribers = Vec::new();
    for from in [None, Some(1), Some(3), None] {
        subscribers.push((
            from,
            subscribe(&server, &auditor, query, json!({ "from": from })).await,
        ));
    }
    let mut in_b = subscribe(&server, &auditor_b, query, json!({})).await;
    assert_eq!(active_subscriptions(&server, 5).await, 5);
    // Then the workspaces share nothing: one tail each
    assert_eq!(gauge(&server, "sijil_log_tails_running", 2).await, 2);
    // And while 40 renames land, 8 at a time (B writes too)
    let writes = renames(&server, &agent, &customer, 40, 8);
    let other_writes = renames(&server, &agent_b, &other, 3, 1);
    tokio::join!(writes, other_writes);
    // Each gets 5 + 40 events from where it started, none twice, none missing
    let last = 45;
    for (from, ws) in &mut subscribers {
        let first = from.unwrap_or(6);
        assert_eq!(
            positions_until(ws, last).await,
            (first..=last).collect::<Vec<u64>>(),
            "subscriber from {from:?}"
        );
    }
    assert_eq!(positions_until(&mut in_b, 4).await, vec![2, 3, 4]);
    // And once every subscriber has gone, the tails stop
    for (_, ws) in subscribers {
        drop(ws);
    }
    drop(in_b);
    assert_eq!(active_subscriptions(&server, 0).await, 0);
    assert_eq!(gauge(&server, "sijil_log_tails_running", 0).await, 0);
    // And a new subscriber starts a new one that delivers
    let mut again = subscribe(&server, &auditor, query, json!({ "from": 45 })).await;
    assert_eq!(positions_until(&mut again, 45).await, vec![45]);
    assert_eq!(gauge(&server, "sijil_log_tails_running", 1).await, 1);
    renames(&server, &agent, &customer, 1, 1).await;
    assert_eq!(positions_until(&mut again, 46).await, vec![46]);
}

#[tokio::test]
async fn event_appended_subscribers_share_a_tail_and_each_gets_every_event_once() {
    every_subscriber_gets_every_event_once(512).await;
}

#[tokio::test]
async fn event_appended_subscribers_that_fall_behind_the_tail_catch_up_from_the_index() {
    every_subscriber_gets_every_event_once(1).await;
}

/// `escalationChanged` messages on `ws` until `done` says the changes seen are all there:
/// (local position, event type, case id) each.
async fn case_changes(
    ws: &mut Ws,
    done: impl Fn(&[(u64, String, String)]) -> bool,
) -> Vec<(u64, String, String)> {
    let mut seen = Vec::new();
    while !done(&seen) {
        let msg = next(ws).await.expect("the subscription stays open");
        assert_eq!(msg["type"], "next", "{msg}");
        let change = &msg["payload"]["data"]["escalationChanged"];
        seen.push((
            change["position"]
                .as_u64()
                .unwrap_or_else(|| panic!("{msg}")),
            change["eventType"].as_str().unwrap_or_default().to_owned(),
            change["case"]["id"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    seen
}

/// Supervisors watching every case and one team's cases, while cases open and escalate
/// concurrently (and another workspace works too): each gets every change it should, once, in
/// log order; with a one-change buffer they fall behind the shared feed and catch up.
async fn every_supervisor_gets_every_case_change(tail_buffer: usize) {
    let server = TestServer::start_with(sijil_gateway::GatewayConfig {
        tail_buffer,
        ..Default::default()
    })
    .await;
    let ws_id = workspace();
    let agent = server.token(ws_id, Role::Agent);
    let supervisor = server.token(ws_id, Role::Supervisor);
    let agent_b = server.token(workspace(), Role::Agent);
    let customer = register(&server, &agent, "Q-1").await;
    let customer_b = register(&server, &agent_b, "Q-B").await;
    let team = uuid::Uuid::now_v7().to_string();
    let query = "subscription($team: ID) { escalationChanged(team: $team) {
        position eventType case { id } } }";
    let mut everything = Vec::new();
    for _ in 0..2 {
        everything.push(subscribe(&server, &supervisor, query, json!({ "team": null })).await);
    }
    let mut of_team = subscribe(&server, &supervisor, query, json!({ "team": team })).await;
    assert_eq!(active_subscriptions(&server, 3).await, 3);

    let open = "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }";
    let open_case = |token: String, customer: String| {
        let server = &server;
        async move {
            let input = json!({ "i": { "customerId": customer, "subject": "s", "category": "c",
                                       "channel": "PHONE" } });
            server.ok(&token, open, input).await
        }
    };
    let opened =
        futures_util::future::join_all((0..6).map(|_| open_case(agent.clone(), customer.clone())))
            .await;
    let cases: Vec<String> = opened
        .iter()
        .map(|d| d["openCase"]["case"]["id"].as_str().unwrap().to_owned())
        .collect();
    let escalate = "mutation($i: ChangeLevelInput!) { escalateCase(input: $i) { version } }";
    let escalations = cases.iter().map(|case| {
        server.ok(
            &agent,
            escalate,
            json!({ "i": { "caseId": case, "reason": "tier 2", "teamId": team } }),
        )
    });
    let (_, _) = tokio::join!(
        futures_util::future::join_all(escalations),
        open_case(agent_b.clone(), customer_b.clone())
    );

    let mut expected: Vec<(String, String)> = cases
        .iter()
        .flat_map(|c| {
            [
                ("CaseOpened".to_owned(), c.clone()),
                ("CaseEscalated".to_owned(), c.clone()),
            ]
        })
        .collect();
    expected.sort();
    for ws in &mut everything {
        let seen = case_changes(ws, |seen| seen.len() == 12).await;
        assert!(
            seen.windows(2).all(|w| w[0].0 < w[1].0),
            "in log order, none twice: {seen:?}"
        );
        let mut kinds: Vec<(String, String)> = seen.into_iter().map(|(_, t, c)| (t, c)).collect();
        kinds.sort();
        assert_eq!(kinds, expected);
    }
    // The team's screen gets every escalation to it (an opening may show too when the case was
    // already with the team by the time it was read), and nothing of other cases.
    let seen = case_changes(&mut of_team, |seen| {
        seen.iter().filter(|(_, t, _)| t == "CaseEscalated").count() == 6
    })
    .await;
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
    assert!(seen.iter().all(|(_, _, c)| cases.contains(c)), "{seen:?}");
    let mut escalated: Vec<&String> = seen
        .iter()
        .filter(|(_, t, _)| t == "CaseEscalated")
        .map(|(_, _, c)| c)
        .collect();
    escalated.sort();
    let mut all_cases: Vec<&String> = cases.iter().collect();
    all_cases.sort();
    assert_eq!(escalated, all_cases);
}

#[tokio::test]
async fn escalation_changed_subscribers_share_a_feed_and_each_gets_every_change() {
    every_supervisor_gets_every_case_change(512).await;
}

#[tokio::test]
async fn escalation_changed_subscribers_that_fall_behind_the_feed_catch_up_from_the_log() {
    every_supervisor_gets_every_case_change(1).await;
}

#[tokio::test]
async fn a_websocket_without_a_graphql_subprotocol_is_refused() {
    let server = TestServer::start().await;
    let url = server.url.replace("http://", "ws://") + "/graphql/ws";
    for asked in [Some("chat, mqtt"), None] {
        let mut request = url.as_str().into_client_request().unwrap();
        if let Some(protocols) = asked {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{asked:?}");
            }
            other => panic!("{asked:?}: expected HTTP 400, got {other:?}"),
        }
    }
    // Either protocol, listed after one sijil does not speak, is accepted.
    let mut ws = connect(&server, "chat, graphql-transport-ws").await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"token": server.token(uuid::Uuid::now_v7(), Role::Admin)}}),
    )
    .await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "connection_ack");
}
