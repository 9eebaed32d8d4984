//! Errors and limits: typed conflicts, safe retries, depth / complexity / body / page limits,
//! malformed input of every kind (each with its code, each leaving the store unchanged), the
//! rate limit, introspection, GET rules and the operational endpoints.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sijil_gateway::{GatewayConfig, Role};

const UPDATE: &str =
    "mutation($i: UpdateCustomerProfileInput!) { updateCustomerProfile(input: $i) {
    version customer { displayName } } }";

#[tokio::test]
async fn a_stale_expected_version_is_a_typed_conflict_and_writes_nothing() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let id = register(&server, &agent, "V-1").await;
    let ok = server
        .ok(
            &agent,
            UPDATE,
            json!({ "i": { "customerId": id, "expectedVersion": 1, "displayName": "B" } }),
        )
        .await;
    assert_eq!(ok["updateCustomerProfile"]["version"], 2);
    let before = server.head();
    // Given a client still at version 1
    let body = server
        .gql(
            &agent,
            UPDATE,
            json!({ "i": { "customerId": id, "expectedVersion": 1, "displayName": "C" } }),
        )
        .await;
    // Then the write is refused with both versions
    assert_eq!(code(&body), "CONFLICT");
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["expected"], 1);
    assert_eq!(ext["actual"], 2);
    assert_eq!(ext["stream"], format!("customer-{id}"));
    assert_eq!(server.head(), before);
}

#[tokio::test]
async fn retries_with_the_same_client_mutation_id_return_the_same_result_once() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let input = json!({ "input": { "clientMutationId": "retry-1", "reference": "RT-1",
        "displayName": "Retry Me", "language": "en", "timeZone": "UTC" } });
    let first = server.ok(&agent, REGISTER, input.clone()).await;
    let head = server.head();
    let second = server.ok(&agent, REGISTER, input.clone()).await;
    assert_eq!(server.head(), head, "the retry wrote nothing");
    assert_eq!(
        first["registerCustomer"]["customer"]["id"],
        second["registerCustomer"]["customer"]["id"]
    );
    assert_eq!(
        first["registerCustomer"]["position"],
        second["registerCustomer"]["position"]
    );
    assert_eq!(first["registerCustomer"]["replayed"], false);
    assert_eq!(second["registerCustomer"]["replayed"], true);

    // One set of events: the log holds exactly one registration.
    let auditor = server.token(ws, Role::Auditor);
    let data = server
        .ok(
            &auditor,
            "{ allEvents(first: 50, types: [\"CustomerRegistered\"]) { events { eventId } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["allEvents"]["events"].as_array().unwrap().len(), 1);

    // The same id with a different request is refused and writes nothing.
    let mut changed = input.clone();
    changed["input"]["displayName"] = json!("Someone Else");
    let body = server.gql(&agent, REGISTER, changed).await;
    assert_eq!(code(&body), "VALIDATION");
    assert_eq!(
        body["errors"][0]["extensions"]["reason"],
        "CLIENT_MUTATION_ID_REUSED"
    );
    assert_eq!(server.head(), head);

    // Another token's id space is its own.
    let other = server.token(ws, Role::Agent);
    let third = server.ok(&other, REGISTER, input).await;
    assert_ne!(
        third["registerCustomer"]["customer"]["id"],
        first["registerCustomer"]["customer"]["id"]
    );
}

#[tokio::test]
async fn a_refused_command_leaves_no_retry_record_behind() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let bad = json!({ "input": { "clientMutationId": "fix-me", "reference": "has space",
        "displayName": "X", "language": "en", "timeZone": "UTC" } });
    let head = server.head();
    let body = server.gql(&agent, REGISTER, bad).await;
    assert_eq!(code(&body), "VALIDATION");
    assert_eq!(
        body["errors"][0]["extensions"]["reason"],
        "INVALID_REFERENCE"
    );
    assert_eq!(server.head(), head);
    // The client fixes its input and retries with the same id: accepted.
    let fixed = json!({ "input": { "clientMutationId": "fix-me", "reference": "NO-SPACE",
        "displayName": "X", "language": "en", "timeZone": "UTC" } });
    let data = server.ok(&agent, REGISTER, fixed).await;
    assert_eq!(
        data["registerCustomer"]["customer"]["reference"],
        "NO-SPACE"
    );
}

#[tokio::test]
async fn bad_input_of_every_kind_gets_its_code_and_changes_nothing() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let customer = register(&server, &agent, "BAD-1").await;
    let head = server.head();

    // Malformed JSON
    let resp = server
        .http
        .post(format!("{}/graphql", server.url))
        .bearer_auth(&agent)
        .header("content-type", "application/json")
        .body("{\"query\": \"{ customers { edges { cursor } } }\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "VALIDATION");

    // A syntax error, an unknown field, a wrong type
    for (query, vars) in [
        ("{ customers { edges { cursor } ", json!({})),
        ("{ customers { nope } }", json!({})),
        (
            REGISTER,
            json!({ "input": { "reference": "R", "displayName": 5, "language": "en", "timeZone": "UTC" } }),
        ),
        (
            "query($id: ID!) { customer(id: $id) { id } }",
            json!({ "id": 42.5 }),
        ),
    ] {
        let body = server.gql(&agent, query, vars).await;
        assert_eq!(code(&body), "VALIDATION", "{query}: {body}");
    }

    // Invalid ids: not a UUID, a UUID that is not v7, a stream id of the wrong form
    for id in ["not-an-id", "0f8fad5b-d9cb-469f-a165-70867728950e"] {
        let body = server
            .gql(
                &agent,
                "query($id: ID!) { customer(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(code(&body), "VALIDATION");
        assert_eq!(body["errors"][0]["extensions"]["reason"], "INVALID_ID");
        let body = server
            .gql(
                &agent,
                UPDATE,
                json!({ "i": { "customerId": id, "displayName": "Z" } }),
            )
            .await;
        assert_eq!(code(&body), "VALIDATION");
    }

    // Out-of-range scores, on every scale and beyond a byte
    let survey = "mutation($i: AnswerSurveyInput!) { answerSurvey(input: $i) { version } }";
    let case = uuid::Uuid::now_v7().to_string();
    for (scale, score) in [
        ("CSAT", 0),
        ("CSAT", 6),
        ("NPS", 11),
        ("CES", 8),
        ("NPS", -1),
        ("CSAT", 1000),
    ] {
        let body = server
            .gql(
                &agent,
                survey,
                json!({ "i": { "customerId": customer, "caseId": case,
                                               "scale": scale, "score": score } }),
            )
            .await;
        assert_eq!(code(&body), "VALIDATION", "{scale} {score}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["reason"],
            "SCORE_OUT_OF_RANGE"
        );
    }
    // A score beyond 32 bits is a type error
    let body = server
        .gql(
            &agent,
            survey,
            json!({ "i": { "customerId": customer, "caseId": case,
                                           "scale": "NPS", "score": 10_000_000_000u64 } }),
        )
        .await;
    assert_eq!(code(&body), "VALIDATION");

    // Domain validation: bad language, time zone, email
    for (field, value, reason) in [
        ("language", "english!!", "INVALID_LANGUAGE"),
        ("timeZone", "Mars/Olympus", "INVALID_TIME_ZONE"),
    ] {
        let mut input =
            json!({ "reference": "OK-1", "displayName": "X", "language": "en", "timeZone": "UTC" });
        input[field] = json!(value);
        let body = server
            .gql(&agent, REGISTER, json!({ "input": input }))
            .await;
        assert_eq!(code(&body), "VALIDATION");
        assert_eq!(body["errors"][0]["extensions"]["reason"], reason);
    }
    let body = server
        .gql(&agent, "mutation($i: ContactPointChangeInput!) { addContactPoint(input: $i) { version } }",
             json!({ "i": { "customerId": customer, "contactPoint": { "kind": "EMAIL", "value": "no-at-sign" } } }))
        .await;
    assert_eq!(code(&body), "VALIDATION");

    // Page sizes over the cap, negative sizes
    for first in [100_000, -1] {
        let body = server
            .gql(
                &agent,
                "query($f: Int) { customers(first: $f) { edges { cursor } } }",
                json!({ "f": first }),
            )
            .await;
        assert_eq!(code(&body), "VALIDATION");
    }

    assert_eq!(server.head(), head, "no bad input changed the store");
}

#[tokio::test]
async fn depth_complexity_and_body_limits_are_enforced() {
    let config = GatewayConfig {
        max_depth: 4,
        max_complexity: 300,
        max_body_bytes: 2_000,
        ..GatewayConfig::default()
    };
    let server = TestServer::start_with(config).await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let ok = server
        .gql(
            &agent,
            "{ customers(first: 5) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert!(ok.get("errors").is_none(), "{ok}");

    let deep = "{ customers(first: 1) { edges { node { timeline(first: 1) { edges { node { kind } } } } } } }";
    let body = server.gql(&agent, deep, json!({})).await;
    assert_eq!(code(&body), "VALIDATION");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "QUERY_TOO_DEEP");

    let costly = "{ customers(first: 200) { edges { cursor node { id reference } } } }";
    let body = server.gql(&agent, costly, json!({})).await;
    assert_eq!(code(&body), "VALIDATION");
    assert_eq!(
        body["errors"][0]["extensions"]["reason"],
        "QUERY_TOO_COMPLEX"
    );

    let padding = " ".repeat(3_000);
    let (status, body) = server
        .post(
            Some(&agent),
            json!({ "query": format!("{{ customers {{ edges {{ cursor }} }} }}{padding}") }),
        )
        .await;
    assert_eq!(status, 413);
    assert_eq!(code(&body), "VALIDATION");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "BODY_TOO_LARGE");
}

#[tokio::test]
async fn the_rate_limit_refuses_with_a_retry_hint() {
    let config = GatewayConfig {
        rate_per_second: 1,
        rate_burst: 2,
        ..GatewayConfig::default()
    };
    let server = TestServer::start_with(config).await;
    let agent = server.token(workspace(), Role::Agent);
    let q = json!({ "query": "{ customers { edges { cursor } } }" });
    assert_eq!(server.post(Some(&agent), q.clone()).await.0, 200);
    assert_eq!(server.post(Some(&agent), q.clone()).await.0, 200);
    let (status, body) = server.post(Some(&agent), q.clone()).await;
    assert_eq!(status, 429);
    assert_eq!(code(&body), "RATE_LIMITED");
    assert!(
        body["errors"][0]["extensions"]["retryAfterMs"]
            .as_u64()
            .unwrap()
            > 0
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(server.post(Some(&agent), q).await.0, 200);
}

#[tokio::test]
async fn introspection_can_be_turned_off() {
    let on = TestServer::start().await;
    let token = on.token(workspace(), Role::Agent);
    let body = on
        .gql(&token, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    let off = TestServer::start_with(GatewayConfig {
        introspection: false,
        ..GatewayConfig::default()
    })
    .await;
    let token = off.token(workspace(), Role::Agent);
    let body = off
        .gql(&token, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert!(
        body.get("errors").is_some() || body["data"]["__schema"].is_null(),
        "{body}"
    );
}

#[tokio::test]
async fn get_reads_refuses_mutations_and_serves_graphiql() {
    let server = TestServer::start().await;
    let agent = server.token(workspace(), Role::Agent);
    let resp = server
        .http
        .get(format!("{}/graphql", server.url))
        .query(&[("query", "{ customers { edges { cursor } } }")])
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["customers"]["edges"], json!([]));

    let head = server.head();
    let resp = server
        .http
        .get(format!("{}/graphql", server.url))
        .query(&[("query", "mutation { registerCustomer(input: {reference: \"G\", displayName: \"G\", language: \"en\", timeZone: \"UTC\"}) { version } }")])
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "VALIDATION");
    assert_eq!(server.head(), head);

    let resp = server
        .http
        .get(format!("{}/graphql", server.url))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp
        .text()
        .await
        .unwrap()
        .to_lowercase()
        .contains("graphiql"));
}

#[tokio::test]
async fn health_readiness_and_metrics_endpoints() {
    let server = TestServer::start().await;
    let agent = server.token(workspace(), Role::Agent);
    register(&server, &agent, "H-1").await;
    let get = |path: &str| server.http.get(format!("{}{path}", server.url)).send();
    assert_eq!(get("/healthz").await.unwrap().status().as_u16(), 200);
    assert_eq!(get("/readyz").await.unwrap().status().as_u16(), 200);
    server.gateway.set_ready(false);
    assert_eq!(get("/readyz").await.unwrap().status().as_u16(), 503);
    server.gateway.set_ready(true);
    let text = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        text.contains("sijil_requests_total{kind=\"mutation\",outcome=\"ok\"} 1"),
        "{text}"
    );
    assert!(text.contains("sijil_request_duration_seconds_count"));
    assert!(text.contains("sijil_log_head_position 1"));
    assert!(text.contains("sijil_projection_lag_events{projection=\"timeline\"}"));
    assert!(text.contains("sijil_append_duration_seconds_count"));
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_stopped() {
    let server = TestServer::start_with(GatewayConfig {
        request_timeout: Duration::from_millis(1),
        ..GatewayConfig::default()
    })
    .await;
    let ws = workspace();
    let admin = server.token(ws, Role::Admin);
    // Given a customer, registered in-process (the HTTP deadline would stop the write)
    let principal = server.gateway.tokens().authenticate(&admin).unwrap();
    let request = async_graphql::Request::new(REGISTER)
        .variables(async_graphql::Variables::from_json(json!({ "input": {
            "reference": "SLOW-1", "displayName": "Slow", "language": "en", "timeZone": "UTC" } })))
        .data(principal);
    let response = server.gateway.schema().execute(request).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let data = response.data.into_json().unwrap();
    let id = data["registerCustomer"]["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // and a log long enough that rebuilding a timeline from it takes many milliseconds
    let appends = (0..2_000).map(|i| {
        let agent = sijil_domain::AgentId::new(uuid::Uuid::now_v7()).unwrap();
        let event = sijil_domain::DomainEvent::from(sijil_domain::events::AgentRegistered {
            agent_id: agent,
            display_name: format!("Agent {i}"),
            teams: vec![],
            at: sijil_domain::Timestamp(1_700_000_000_000),
        });
        let new = sijil_store::NewEvent {
            event_id: uuid::Uuid::now_v7(),
            workspace_id: ws,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            occurred_at: 1_700_000_000_000,
            actor: "test".to_owned(),
            on_behalf_of: None,
            correlation_id: None,
            causation_id: None,
            payload: sijil_store::projections::encode_event(&event),
        };
        let store = server.store.clone();
        async move {
            store
                .append(
                    &sijil_domain::StreamRef::Agent(agent).stream_id(),
                    sijil_store::ExpectedVersion::NoStream,
                    vec![new],
                )
                .await
        }
    });
    for result in futures_util::future::join_all(appends).await {
        result.unwrap();
    }
    let head = server.head();
    // (the workspace log index the rebuild reads is a projection: let it reach the head, or
    // the rebuild would read only the events it had indexed so far)
    server
        .projections
        .wait_for(head, Duration::from_secs(30))
        .await
        .unwrap();
    // When an as-of rebuild (which waits on the blocking pool) runs past the deadline
    let (status, body) = server
        .post(
            Some(&admin),
            json!({ "query": "query($id: ID!, $p: Int!) { customerAsOf(id: $id, position: $p) { position } }",
                    "variables": { "id": id, "p": head } }),
        )
        .await;
    // Then it is stopped with a typed error
    assert_eq!(status, 503, "{body}");
    assert_eq!(code(&body), "VALIDATION");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "TIMEOUT");
}

#[tokio::test]
async fn a_query_text_sent_again_is_answered_afresh_from_the_parse_cache() {
    // Parsed documents are kept by query text (`query_cache`): a repeated text must still be
    // answered for its own variables and caller, a broken text must fail the same way every
    // time, and a mutation text seen over POST must still be refused over GET.
    let server = TestServer::start().await;
    let agent = server.token(workspace(), Role::Agent);
    let a = register(&server, &agent, "PC-A").await;
    let b = register(&server, &agent, "PC-B").await;
    let read = "query($id: ID!) { customer(id: $id) { reference } }";
    for _ in 0..3 {
        for (id, reference) in [(&a, "PC-A"), (&b, "PC-B")] {
            let data = server.ok(&agent, read, json!({ "id": id })).await;
            assert_eq!(data["customer"]["reference"], reference);
        }
    }
    // Another workspace sending the same text learns nothing about these customers.
    let stranger = server.token(workspace(), Role::Agent);
    let body = server.gql(&stranger, read, json!({ "id": a })).await;
    assert_eq!(code(&body), "NOT_FOUND");
    // A text that does not parse fails alike, twice.
    let broken = "query($id: ID!) { customer(id: $id) { reference }";
    let first = server.gql(&agent, broken, json!({ "id": a })).await;
    let again = server.gql(&agent, broken, json!({ "id": a })).await;
    assert!(first["errors"][0]["message"].is_string(), "{first}");
    assert_eq!(first["errors"], again["errors"]);
    // A mutation text, first over POST (parsed and kept), then over GET: still refused.
    let register = "mutation { registerCustomer(input: {reference: \"PC-G\", displayName: \"G\", language: \"en\", timeZone: \"UTC\"}) { version } }";
    let posted = server.ok(&agent, register, json!({})).await;
    assert_eq!(posted["registerCustomer"]["version"], 1);
    let head = server.head();
    let resp = server
        .http
        .get(format!("{}/graphql", server.url))
        .query(&[("query", register)])
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(server.head(), head);
}
