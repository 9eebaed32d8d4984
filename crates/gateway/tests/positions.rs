//! Positions are local to a workspace: with two workspaces writing interleaved, each one's
//! `allEvents` positions are exactly 1..=n, paging with `fromPosition` returns every event
//! once, `eventAppended` delivers the same positions gap-free, mutation results, timeline
//! entries, timeline cursors and `customerAsOf` speak the same numbers, everything an
//! auditor of one workspace can read is the same whatever the other workspace writes, and
//! the as-of limit counts only the caller's own events.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sijil_gateway::Role;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const REGISTER_AT: &str = "mutation($i: RegisterCustomerInput!) { registerCustomer(input: $i) {
    position customer { id } } }";
const UPDATE_AT: &str =
    "mutation($i: UpdateCustomerProfileInput!) { updateCustomerProfile(input: $i) {
    position } }";
const ALL: &str = "query($from: Int, $first: Int, $types: [String!]) {
    allEvents(fromPosition: $from, first: $first, types: $types) {
      next hasMore events { position eventId eventType streamId } } }";

/// Registers a customer in the token's workspace; returns (id, position of the write).
async fn register_at(server: &TestServer, token: &str, reference: &str) -> (String, u64) {
    let data = server
        .ok(
            token,
            REGISTER_AT,
            json!({ "i": { "reference": reference, "displayName": "Rana Saleh",
                           "language": "ar", "timeZone": "Asia/Riyadh" } }),
        )
        .await;
    let id = data["registerCustomer"]["customer"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let position = data["registerCustomer"]["position"]
        .as_u64()
        .expect("position");
    (id, position)
}

async fn rename(server: &TestServer, token: &str, id: &str, name: &str) -> u64 {
    let data = server
        .ok(
            token,
            UPDATE_AT,
            json!({ "i": { "customerId": id, "displayName": name } }),
        )
        .await;
    data["updateCustomerProfile"]["position"]
        .as_u64()
        .expect("position")
}

/// Workspace A writes 3 events per round for `rounds` rounds; workspace B writes
/// `b_per_round` events between each of A's writes. Returns A's mutation positions and
/// A's first customer.
async fn interleave(
    server: &TestServer,
    a: &str,
    b: &str,
    rounds: usize,
    b_per_round: usize,
) -> (Vec<u64>, String) {
    let mut positions = Vec::new();
    let mut first = None;
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (b_customer, _) = register_at(server, b, &format!("B-{tag}")).await;
    for round in 0..rounds {
        let (id, p) = register_at(server, a, &format!("A-{round}-{tag}")).await;
        positions.push(p);
        for k in 0..b_per_round {
            rename(server, b, &b_customer, &format!("B {round} {k}")).await;
        }
        positions.push(rename(server, a, &id, &format!("A {round}")).await);
        positions.push(rename(server, a, &id, &format!("A {round} again")).await);
        first.get_or_insert(id);
    }
    (positions, first.unwrap_or_default())
}

/// Every event of the token's workspace, paging `page` at a time from position 1.
async fn all_paged(server: &TestServer, auditor: &str, page: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut from = 1u64;
    loop {
        let data = server
            .ok(auditor, ALL, json!({ "from": from, "first": page }))
            .await;
        let events = data["allEvents"]["events"].as_array().unwrap().clone();
        assert!(events.len() <= page);
        out.extend(events);
        let next = data["allEvents"]["next"].as_u64().unwrap();
        if data["allEvents"]["hasMore"] != true {
            break;
        }
        assert!(next > from, "paging advances");
        from = next;
    }
    out
}

fn positions(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect()
}

/// What an auditor of a workspace can read that carries a position or a count.
async fn observable(server: &TestServer, auditor: &str, customer: &str) -> Value {
    let all = server.ok(auditor, ALL, json!({ "first": 200 })).await;
    let renames = server
        .ok(
            auditor,
            ALL,
            json!({ "first": 200, "types": ["CustomerProfileUpdated"] }),
        )
        .await;
    let stream = format!("customer-{customer}");
    let events = server
        .ok(
            auditor,
            "query($s: String!) { events(streamId: $s) { next hasMore events { position version } } }",
            json!({ "s": stream }),
        )
        .await;
    let verify = server
        .ok(
            auditor,
            "query($s: String!) { verifyStream(streamId: $s) { ok eventsChecked durablePosition } }",
            json!({ "s": stream }),
        )
        .await;
    let timeline = server
        .ok(
            auditor,
            "query($id: ID!) { customer(id: $id) { timeline(first: 50) { totalCount edges { node { position } } } } }",
            json!({ "id": customer }),
        )
        .await;
    let as_of = server
        .ok(
            auditor,
            "query($id: ID!) { customerAsOf(id: $id, position: 2) { position customer { version
                timeline { totalCount edges { node { position } } } } } }",
            json!({ "id": customer }),
        )
        .await;
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(events) = v["allEvents"]["events"].as_array_mut() {
            for e in events {
                // Ids differ from run to run; positions, types and streams' shape do not.
                e["eventId"] = Value::Null;
                e["streamId"] = Value::Null;
            }
        }
        v
    };
    json!({
        "all": strip(&all),
        "renames": strip(&renames),
        "events": events,
        "verify": verify,
        "timeline": timeline,
        "asOf": as_of,
    })
}

#[tokio::test]
async fn each_workspace_sees_its_events_numbered_one_to_n() {
    // Given two workspaces writing interleaved, B writing more
    let server = TestServer::start().await;
    let (ws_a, ws_b) = (workspace(), workspace());
    let (agent_a, agent_b) = (
        server.token(ws_a, Role::Supervisor),
        server.token(ws_b, Role::Supervisor),
    );
    let (auditor_a, auditor_b) = (
        server.token(ws_a, Role::Auditor),
        server.token(ws_b, Role::Auditor),
    );
    let (written, first) = interleave(&server, &agent_a, &agent_b, 5, 2).await;

    // Then A's mutations answered with A's own positions 1..=15
    assert_eq!(written, (1..=15).collect::<Vec<u64>>());
    // And allEvents numbers each workspace's events 1..=n with no gaps
    let a_all = server.ok(&auditor_a, ALL, json!({ "first": 200 })).await;
    let a_events = a_all["allEvents"]["events"].as_array().unwrap().clone();
    assert_eq!(positions(&a_events), (1..=15).collect::<Vec<u64>>());
    assert_eq!(a_all["allEvents"]["next"], 16);
    assert_eq!(a_all["allEvents"]["hasMore"], false);
    let b_events = all_paged(&server, &auditor_b, 200).await;
    assert_eq!(positions(&b_events), (1..=11).collect::<Vec<u64>>());
    // The global log holds both, interleaved.
    assert_eq!(server.head(), 26);

    // And paging with fromPosition returns every event exactly once, in order
    for page in [1, 2, 4, 7] {
        let paged = all_paged(&server, &auditor_a, page).await;
        let ids: Vec<&Value> = paged.iter().map(|e| &e["eventId"]).collect();
        let expected: Vec<&Value> = a_events.iter().map(|e| &e["eventId"]).collect();
        assert_eq!(ids, expected, "page size {page}");
    }
    // A filtered read keeps the positions of the unfiltered one.
    let registrations = server
        .ok(
            &auditor_a,
            ALL,
            json!({ "from": 4, "types": ["CustomerRegistered"] }),
        )
        .await;
    assert_eq!(
        positions(registrations["allEvents"]["events"].as_array().unwrap()),
        vec![4, 7, 10, 13]
    );
    // Past the end is an empty last page.
    let past = server.ok(&auditor_a, ALL, json!({ "from": 99 })).await;
    assert_eq!(past["allEvents"]["events"], json!([]));
    assert_eq!(past["allEvents"]["hasMore"], false);

    // And the stream read, case-free timeline and as-of state use the same numbers
    let stream = server
        .ok(
            &auditor_a,
            "query($s: String!) { events(streamId: $s) { events { position eventId } } }",
            json!({ "s": format!("customer-{first}") }),
        )
        .await;
    let stream_events = stream["events"]["events"].as_array().unwrap();
    assert_eq!(positions(stream_events), vec![1, 2, 3]);
    assert_eq!(stream_events[1]["eventId"], a_events[1]["eventId"]);
    let as_of = server
        .ok(
            &auditor_a,
            "query($id: ID!) { customerAsOf(id: $id, position: 2) { position customer { version displayName } } }",
            json!({ "id": first }),
        )
        .await;
    assert_eq!(as_of["customerAsOf"]["position"], 2);
    assert_eq!(as_of["customerAsOf"]["customer"]["version"], 2);
    assert_eq!(as_of["customerAsOf"]["customer"]["displayName"], "A 0");
    // Timeline cursors carry workspace-local positions too, and page as before
    let tl = "query($id: ID!, $after: String) { customer(id: $id) {
        timeline(first: 1, after: $after) { edges { cursor node { position } }
          pageInfo { endCursor hasNextPage } } } }";
    let mut after = Value::Null;
    let mut walked = Vec::new();
    loop {
        let data = server
            .ok(&auditor_a, tl, json!({ "id": first, "after": after }))
            .await;
        let t = &data["customer"]["timeline"];
        for edge in t["edges"].as_array().unwrap() {
            let cursor = decode_cursor(edge["cursor"].as_str().unwrap());
            assert_eq!(cursor.len(), 16);
            let position = u64::from_be_bytes(cursor[8..].try_into().unwrap());
            assert_eq!(Some(position), edge["node"]["position"].as_u64());
            walked.push(position);
        }
        if t["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = t["pageInfo"]["endCursor"].clone();
    }
    assert!(!walked.is_empty());
    assert!(walked.windows(2).all(|w| w[0] < w[1]), "{walked:?}");
    assert!(walked.iter().all(|p| (1..=3).contains(p)), "{walked:?}");
    // A cursor naming a position the workspace does not have is refused.
    let mut forged = vec![0u8; 8];
    forged.extend_from_slice(&999u64.to_be_bytes());
    let body = server
        .gql(
            &auditor_a,
            tl,
            json!({ "id": first, "after": encode_cursor(&forged) }),
        )
        .await;
    assert_eq!(code(&body), "VALIDATION", "{body}");

    // A position only B reached globally is clamped to A's own count.
    let late = server
        .ok(
            &auditor_a,
            "query($id: ID!) { customerAsOf(id: $id, position: 26) { position } }",
            json!({ "id": first }),
        )
        .await;
    assert_eq!(late["customerAsOf"]["position"], 15);
}

#[tokio::test]
async fn an_auditor_cannot_learn_how_much_another_workspace_writes() {
    // Given the same history of workspace A, once beside a quiet and once beside a busy B
    let mut seen = Vec::new();
    for b_per_round in [0, 6] {
        let server = TestServer::start().await;
        let (ws_a, ws_b) = (workspace(), workspace());
        let agent_a = server.token(ws_a, Role::Supervisor);
        let agent_b = server.token(ws_b, Role::Supervisor);
        let auditor_a = server.token(ws_a, Role::Auditor);
        let (written, first) = interleave(&server, &agent_a, &agent_b, 4, b_per_round).await;
        // When A's auditor reads everything that carries a position
        let view = observable(&server, &auditor_a, &first).await;
        seen.push((written, view, server.head()));
    }
    // Then every number A can see is the same, although the global logs differ
    assert_ne!(seen[0].2, seen[1].2, "B's volume differs globally");
    assert_eq!(seen[0].0, seen[1].0, "mutation positions");
    assert_eq!(seen[0].1, seen[1].1, "auditor's view");
}

#[tokio::test]
async fn event_appended_delivers_workspace_positions_gap_free() {
    let server = TestServer::start().await;
    let (ws_a, ws_b) = (workspace(), workspace());
    let agent_a = server.token(ws_a, Role::Supervisor);
    let agent_b = server.token(ws_b, Role::Supervisor);
    let auditor_a = server.token(ws_a, Role::Auditor);
    // Some history before the subscription starts.
    interleave(&server, &agent_a, &agent_b, 1, 3).await;

    let url = server.url.replace("http://", "ws://") + "/graphql/ws";
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |v: Value| Message::Text(v.to_string().into());
    socket
        .send(send(json!({ "type": "connection_init",
                           "payload": { "Authorization": format!("Bearer {auditor_a}") } })))
        .await
        .unwrap();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an ack within 10 s")
            .expect("open socket")
            .expect("a frame");
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            assert_eq!(v["type"], "connection_ack", "{v}");
            break;
        }
    }
    socket
        .send(send(json!({ "id": "t", "type": "subscribe", "payload": {
            "query": "subscription { eventAppended(fromPosition: 2) { position eventType } }" } })))
        .await
        .unwrap();
    // Live writes of both workspaces, interleaved.
    interleave(&server, &agent_a, &agent_b, 2, 3).await;

    // Then A's positions 2..=9 arrive in order, none missing, none of B's
    let mut got = Vec::new();
    while got.len() < 8 {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an event within 10 s")
            .expect("open socket")
            .expect("a frame");
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        match v["type"].as_str() {
            Some("connection_ack") | Some("ping") => continue,
            Some("next") => got.push(
                v["payload"]["data"]["eventAppended"]["position"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{v}")),
            ),
            _ => panic!("unexpected message {v}"),
        }
    }
    assert_eq!(got, (2..=9).collect::<Vec<u64>>());
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url, as the server writes cursors.
fn decode_cursor(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64url") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

fn encode_cursor(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut bits = 0u32;
    let mut n = 0;
    for b in bytes {
        bits = (bits << 8) | u32::from(*b);
        n += 8;
        while n >= 6 {
            n -= 6;
            out.push(char::from(ALPHABET[((bits >> n) & 63) as usize]));
        }
        bits &= (1 << n) - 1;
    }
    if n > 0 {
        out.push(char::from(ALPHABET[((bits << (6 - n)) & 63) as usize]));
    }
    out
}

#[tokio::test]
async fn the_as_of_limit_counts_only_the_callers_workspace() {
    // Given an as-of limit of 5 events and a workspace B far busier than that
    let server = TestServer::start_with(sijil_gateway::GatewayConfig {
        as_of_max_events: 5,
        ..sijil_gateway::GatewayConfig::default()
    })
    .await;
    let (ws_a, ws_b) = (workspace(), workspace());
    let agent_a = server.token(ws_a, Role::Supervisor);
    let agent_b = server.token(ws_b, Role::Supervisor);
    let auditor_a = server.token(ws_a, Role::Auditor);
    let (_, first) = interleave(&server, &agent_a, &agent_b, 1, 20).await;
    assert!(server.head() > 20);
    let as_of = "query($id: ID!, $p: Int!) { customerAsOf(id: $id, position: $p) {
        position customer { displayName timeline { totalCount } } } }";
    // When A rebuilds its customer at its last position
    let data = server
        .ok(&auditor_a, as_of, json!({ "id": first, "p": 3 }))
        .await;
    // Then B's volume neither limits nor shows
    assert_eq!(data["customerAsOf"]["position"], 3);
    assert_eq!(data["customerAsOf"]["customer"]["displayName"], "A 0 again");
    // And past A's own limit the rebuild is refused with a typed error
    interleave(&server, &agent_a, &agent_b, 1, 0).await;
    let data = server
        .ok(&auditor_a, as_of, json!({ "id": first, "p": 5 }))
        .await;
    assert_eq!(data["customerAsOf"]["position"], 5);
    let body = server
        .gql(&auditor_a, as_of, json!({ "id": first, "p": 6 }))
        .await;
    assert_eq!(code(&body), "VALIDATION", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "AS_OF_TOO_FAR");
}

/// POSTs `query` with `x-sijil-min-position: value`.
async fn post_at(server: &TestServer, token: &str, value: &str, query: &str) -> (u16, Value) {
    let resp = server
        .http
        .post(format!("{}/graphql", server.url))
        .bearer_auth(token)
        .header("x-sijil-min-position", value)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_read_can_ask_for_a_position_it_saw_elsewhere() {
    let server = TestServer::start_with(sijil_gateway::GatewayConfig {
        read_your_writes_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let auditor = server.token(ws, Role::Auditor);
    register(&server, &agent, "MINPOS-1").await;
    let count = "{ allEvents(first: 10) { events { position } } }";
    // Given a position the workspace has reached, the read is answered at once
    let (status, body) = post_at(&server, &auditor, "1", count).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["allEvents"]["events"][0]["position"], 1);
    // A position the node has not reached is refused after the bounded wait, retryably
    let started = std::time::Instant::now();
    let (status, body) = post_at(&server, &auditor, "999", count).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(code(&body), "VALIDATION");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "NOT_CAUGHT_UP");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // And a malformed position is a clear client error
    for bad in ["abc", "-1", "1.5"] {
        let (status, body) = post_at(&server, &auditor, bad, count).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["reason"],
            "BAD_MIN_POSITION"
        );
    }
    // Positions are the caller's workspace's own: another workspace's count does not help
    let other = server.token(workspace(), Role::Auditor);
    let (status, body) = post_at(&server, &other, "1", count).await;
    assert_eq!(status, 503, "{body}");
}
