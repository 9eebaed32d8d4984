//! Case work, interactions, notes, surveys, follow-ups, agents, escalation queues and metrics,
//! end to end over HTTP.

mod common;

use common::*;
use serde_json::{json, Value};
use sijil_gateway::time::format_rfc3339;
use sijil_gateway::Role;

const OPEN: &str = "mutation($i: OpenCaseInput!) { openCase(input: $i) {
    version case { id status level topLevel priority channel version
      sla { target dueAt breached } } } }";

const CASE: &str = "query($id: ID!) { case(id: $id) { id status level assignedAgentId
    assignedTeamId firstResponseAt resolvedAt closedAt reopens escalations version
    customer { id }
    sla { target dueAt metAt breached }
    escalation { level escalationCount nextTarget nextDueAt overdue timeAtLevel { level millis } }
    history { version eventType actor payload } } }";

async fn open_case(server: &TestServer, token: &str, customer: &str) -> String {
    let data = server
        .ok(
            token,
            OPEN,
            json!({ "i": { "customerId": customer, "subject": "Refund not received",
                           "category": "billing", "priority": "HIGH", "channel": "EMAIL" } }),
        )
        .await;
    data["openCase"]["case"]["id"].as_str().unwrap().to_owned()
}

fn uuid() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn midnight(offset_days: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    format_rfc3339(now - now.rem_euclid(86_400_000) + offset_days * 86_400_000)
}

async fn case_op(
    server: &TestServer,
    token: &str,
    name: &str,
    input_type: &str,
    input: Value,
) -> Value {
    let q = format!(
        "mutation($i: {input_type}!) {{ {name}(input: $i) {{ version case {{ status level
           assignedAgentId assignedTeamId firstResponseAt reopens }} }} }}"
    );
    server.ok(token, &q, json!({ "i": input })).await[name].clone()
}

#[tokio::test]
async fn a_case_goes_through_its_whole_life() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let customer = register(&server, &agent, "C-1").await;
    // Given an opened case
    let data = server
        .ok(
            &agent,
            OPEN,
            json!({ "i": { "customerId": customer, "subject": "Refund", "category": "billing",
                           "priority": "URGENT", "channel": "PHONE",
                           "sla": { "firstResponseMinutes": 30, "resolutionMinutes": 600 } } }),
        )
        .await;
    let case = &data["openCase"]["case"];
    assert_eq!(case["status"], "OPEN");
    assert_eq!(case["level"], 1);
    assert_eq!(case["topLevel"], 3);
    assert_eq!(case["sla"][0]["target"], "FIRST_RESPONSE");
    let id = case["id"].as_str().unwrap().to_owned();
    let (agent_id, team) = (uuid(), uuid());

    // When it is worked
    let r = case_op(
        &server,
        &agent,
        "assignCase",
        "AssignCaseInput",
        json!({ "caseId": id, "agentId": agent_id, "teamId": team, "expectedVersion": 1 }),
    )
    .await;
    assert_eq!(r["case"]["assignedAgentId"], agent_id.as_str());
    assert_eq!(r["case"]["assignedTeamId"], team.as_str());
    let r = case_op(
        &server,
        &agent,
        "respondToCase",
        "RespondToCaseInput",
        json!({ "caseId": id, "agentId": agent_id, "channel": "EMAIL" }),
    )
    .await;
    assert!(r["case"]["firstResponseAt"].is_string());
    let r = case_op(
        &server,
        &agent,
        "escalateCase",
        "ChangeLevelInput",
        json!({ "caseId": id, "reason": "needs billing specialist" }),
    )
    .await;
    assert_eq!(r["case"]["level"], 2);
    let r = case_op(
        &server,
        &agent,
        "deescalateCase",
        "ChangeLevelInput",
        json!({ "caseId": id, "reason": "handled" }),
    )
    .await;
    assert_eq!(r["case"]["level"], 1);
    let r = case_op(
        &server,
        &agent,
        "resolveCase",
        "ResolveCaseInput",
        json!({ "caseId": id, "resolution": "refunded", "rootCause": "bank delay" }),
    )
    .await;
    assert_eq!(r["case"]["status"], "RESOLVED");
    let r = case_op(
        &server,
        &agent,
        "reopenCase",
        "ReopenCaseInput",
        json!({ "caseId": id, "reason": "refund bounced" }),
    )
    .await;
    assert_eq!(r["case"]["status"], "OPEN");
    assert_eq!(r["case"]["reopens"], 1);
    case_op(
        &server,
        &agent,
        "resolveCase",
        "ResolveCaseInput",
        json!({ "caseId": id, "resolution": "refunded again", "rootCause": "bank delay" }),
    )
    .await;
    let r = case_op(
        &server,
        &agent,
        "closeCase",
        "CloseCaseInput",
        json!({ "caseId": id }),
    )
    .await;
    assert_eq!(r["case"]["status"], "CLOSED");
    assert_eq!(r["version"], 9);

    // Then the case query shows state, SLA, escalation state and the full history
    let data = server.ok(&agent, CASE, json!({ "id": id })).await;
    let c = &data["case"];
    assert_eq!(c["customer"]["id"], customer.as_str());
    assert!(c["closedAt"].is_string());
    assert_eq!(c["sla"][0]["breached"], false);
    assert!(c["sla"][0]["metAt"].is_string());
    let history = c["history"].as_array().unwrap();
    let types: Vec<&str> = history
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "CaseOpened",
            "CaseAssigned",
            "FirstResponseGiven",
            "CaseEscalated",
            "CaseDeescalated",
            "CaseResolved",
            "CaseReopened",
            "CaseResolved",
            "CaseClosed"
        ]
    );
    assert!(history[0]["actor"].as_str().unwrap().starts_with("token:"));
    assert_eq!(history[3]["payload"]["reason"], "needs billing specialist");
    assert_eq!(c["escalation"]["escalationCount"], 1);

    // And a rule the domain enforces comes back typed
    let body = server
        .gql(
            &agent,
            "mutation($i: ReopenCaseInput!) { reopenCase(input: $i) { version } }",
            json!({ "i": { "caseId": id, "reason": "again" } }),
        )
        .await;
    assert_eq!(code(&body), "VALIDATION");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "CASE_CLOSED");
}

#[tokio::test]
async fn escalation_queue_orders_and_filters_open_cases() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let supervisor = server.token(ws, Role::Supervisor);
    let customer = register(&server, &agent, "Q-1").await;
    let team = uuid();
    let a = open_case(&server, &agent, &customer).await;
    let b = open_case(&server, &agent, &customer).await;
    case_op(
        &server,
        &agent,
        "assignCase",
        "AssignCaseInput",
        json!({ "caseId": b, "teamId": team }),
    )
    .await;
    case_op(
        &server,
        &agent,
        "escalateCase",
        "ChangeLevelInput",
        json!({ "caseId": b, "reason": "tier 2", "teamId": team }),
    )
    .await;
    let q = "query($team: ID, $min: Int, $within: Int, $breached: Boolean) {
        escalationQueue(team: $team, minLevel: $min, dueWithinMinutes: $within,
                        breachedOnly: $breached, first: 10) {
          entries { caseId level teamId nextTarget dueAt case { id } }
          pageInfo { hasNextPage } } }";
    let data = server
        .ok(&supervisor, q, json!({ "breached": false }))
        .await;
    let ids: Vec<&str> = data["escalationQueue"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["caseId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str(), b.as_str()]);
    let data = server
        .ok(&supervisor, q, json!({ "team": team, "breached": false }))
        .await;
    let entries = data["escalationQueue"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["caseId"], b.as_str());
    assert_eq!(entries[0]["level"], 2);
    assert_eq!(entries[0]["nextTarget"], "FIRST_RESPONSE");
    assert_eq!(entries[0]["case"]["id"], b.as_str());
    let data = server
        .ok(&supervisor, q, json!({ "min": 2, "breached": false }))
        .await;
    assert_eq!(
        data["escalationQueue"]["entries"].as_array().unwrap().len(),
        1
    );
    let data = server
        .ok(&supervisor, q, json!({ "within": 1, "breached": false }))
        .await;
    assert_eq!(data["escalationQueue"]["entries"], json!([]));
    let data = server.ok(&supervisor, q, json!({ "breached": true })).await;
    assert_eq!(data["escalationQueue"]["entries"], json!([]));
}

#[tokio::test]
async fn interactions_notes_surveys_and_follow_ups() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let customer = register(&server, &agent, "I-1").await;
    let case = open_case(&server, &agent, &customer).await;
    let agent_id = uuid();
    let data = server
        .ok(
            &agent,
            "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) {
                interaction { id channel direction agentId bot summary caseId durationSeconds
                              customer { id } } } }",
            json!({ "i": { "customerId": customer, "channel": "LIVE_CHAT", "direction": "INBOUND",
                           "bot": "faq-bot", "language": "ar", "summary": "asked about refund",
                           "durationSeconds": 90, "caseId": case } }),
        )
        .await;
    let interaction = &data["recordInteraction"]["interaction"];
    assert_eq!(interaction["bot"], "faq-bot");
    assert_eq!(interaction["agentId"], Value::Null);
    assert_eq!(interaction["caseId"], case.as_str());
    assert_eq!(interaction["customer"]["id"], customer.as_str());
    let interaction_id = interaction["id"].as_str().unwrap().to_owned();

    let note = "mutation($i: AddNoteInput!) { addNote(input: $i) { version
        target { case { id } interaction { id noteCount } } } }";
    let data = server
        .ok(
            &agent,
            note,
            json!({ "i": { "on": "INTERACTION", "targetId": interaction_id,
                                         "authorId": agent_id, "text": "customer was calm" } }),
        )
        .await;
    assert_eq!(data["addNote"]["target"]["interaction"]["noteCount"], 1);
    let data = server
        .ok(
            &agent,
            note,
            json!({ "i": { "on": "CASE", "targetId": case, "text": "check bank" } }),
        )
        .await;
    assert_eq!(data["addNote"]["target"]["case"]["id"], case.as_str());

    let survey = "mutation($i: AnswerSurveyInput!) { answerSurvey(input: $i) {
        survey { id scale score comment caseId interactionId } } }";
    let data = server
        .ok(
            &agent,
            survey,
            json!({ "i": { "customerId": customer, "caseId": case,
                                           "scale": "NPS", "score": 9, "comment": "great" } }),
        )
        .await;
    let s = &data["answerSurvey"]["survey"];
    assert_eq!(
        (s["scale"].clone(), s["score"].clone()),
        (json!("NPS"), json!(9))
    );
    assert_eq!(s["caseId"], case.as_str());

    let schedule = "mutation($i: ScheduleFollowUpInput!) { scheduleFollowUp(input: $i) {
        followUp { id status reason dueAt } } }";
    let data = server
        .ok(&agent, schedule, json!({ "i": { "customerId": customer, "reason": "CHECK_AFTER_FIX",
                                             "relatedCaseId": case, "dueAt": "2030-01-01T09:00:00Z" } }))
        .await;
    let f = &data["scheduleFollowUp"]["followUp"];
    assert_eq!(f["status"], "PENDING");
    assert_eq!(f["dueAt"], "2030-01-01T09:00:00.000Z");
    let follow_up = f["id"].as_str().unwrap().to_owned();
    let data = server
        .ok(
            &agent,
            "mutation($i: CompleteFollowUpInput!) { completeFollowUp(input: $i) {
                followUp { status endedAt } } }",
            json!({ "i": { "followUpId": follow_up, "outcome": "refund confirmed" } }),
        )
        .await;
    assert_eq!(data["completeFollowUp"]["followUp"]["status"], "COMPLETED");
    let data = server
        .ok(
            &agent,
            schedule,
            json!({ "i": { "customerId": customer, "reason": "PROACTIVE_OUTREACH",
                                             "dueAt": "2030-02-01T09:00:00Z" } }),
        )
        .await;
    let second = data["scheduleFollowUp"]["followUp"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = server
        .ok(
            &agent,
            "mutation($i: CancelFollowUpInput!) { cancelFollowUp(input: $i) {
                followUp { status } } }",
            json!({ "i": { "followUpId": second, "reason": "customer moved" } }),
        )
        .await;
    assert_eq!(data["cancelFollowUp"]["followUp"]["status"], "CANCELLED");

    // The timeline holds all of it.
    let data = server
        .ok(
            &agent,
            "query($id: ID!) { customer(id: $id) { timeline(first: 50) {
                edges { node { kind } } } } }",
            json!({ "id": customer }),
        )
        .await;
    let kinds: Vec<&str> = data["customer"]["timeline"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "INTERACTION",
        "NOTE",
        "SURVEY_ANSWERED",
        "FOLLOW_UP_SCHEDULED",
        "FOLLOW_UP_COMPLETED",
        "FOLLOW_UP_CANCELLED",
        "CASE_OPENED",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn agents_recognition_metrics_and_leaderboard() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let supervisor = server.token(ws, Role::Supervisor);
    let register_agent = "mutation($i: RegisterAgentInput!) { registerAgent(input: $i) {
        agent { id displayName teamIds points recognitions } } }";
    let team = uuid();
    let data = server
        .ok(
            &supervisor,
            register_agent,
            json!({ "i": { "displayName": "Layla", "teamIds": [team] } }),
        )
        .await;
    let layla = data["registerAgent"]["agent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(data["registerAgent"]["agent"]["teamIds"], json!([team]));
    let data = server
        .ok(
            &supervisor,
            register_agent,
            json!({ "i": { "displayName": "Omar" } }),
        )
        .await;
    let omar = data["registerAgent"]["agent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let customer = register(&server, &agent, "M-1").await;
    let case = open_case(&server, &agent, &customer).await;
    case_op(
        &server,
        &agent,
        "assignCase",
        "AssignCaseInput",
        json!({ "caseId": case, "agentId": layla, "teamId": team }),
    )
    .await;
    case_op(
        &server,
        &agent,
        "respondToCase",
        "RespondToCaseInput",
        json!({ "caseId": case, "agentId": layla, "channel": "EMAIL" }),
    )
    .await;
    case_op(
        &server,
        &agent,
        "resolveCase",
        "ResolveCaseInput",
        json!({ "caseId": case, "resolution": "fixed", "rootCause": "config",
                "firstContactResolution": true, "agentId": layla }),
    )
    .await;
    let survey = "mutation($i: AnswerSurveyInput!) { answerSurvey(input: $i) { survey { id } } }";
    for (scale, score) in [
        ("CSAT", 5),
        ("CSAT", 4),
        ("NPS", 10),
        ("NPS", 3),
        ("CES", 6),
    ] {
        server
            .ok(
                &agent,
                survey,
                json!({ "i": { "customerId": customer, "caseId": case,
                                               "scale": scale, "score": score } }),
            )
            .await;
    }
    let data = server
        .ok(
            &supervisor,
            "mutation($i: RecogniseAgentInput!) { recogniseAgent(input: $i) {
                agent { points recognitions } } }",
            json!({ "i": { "agentId": layla, "byAgentId": omar, "reason": "great save",
                           "reward": { "kind": "POINTS", "points": 50 }, "caseId": case } }),
        )
        .await;
    assert_eq!(data["recogniseAgent"]["agent"]["points"], 50);
    assert_eq!(data["recogniseAgent"]["agent"]["recognitions"], 1);

    let metrics = "query($scope: MetricsScope!, $id: ID, $from: DateTime!, $to: DateTime!) {
        metrics(scope: $scope, id: $id, from: $from, to: $to) {
          csatAverage csatSatisfiedPct csatCount nps npsPromoters npsDetractors npsCount
          cesAverage cesCount fcrPct firstResponseAvgMs resolutionAvgMs casesOpened
          casesResolved recognitions } }";
    let (from, to) = (midnight(0), midnight(1));
    let data = server
        .ok(
            &supervisor,
            metrics,
            json!({ "scope": "WORKSPACE", "from": from, "to": to }),
        )
        .await;
    let m = &data["metrics"];
    assert_eq!(m["csatCount"], 2);
    assert_eq!(m["csatAverage"], 4.5);
    assert_eq!(m["csatSatisfiedPct"], 100.0);
    assert_eq!(m["npsCount"], 2);
    assert_eq!(m["nps"], 0.0);
    assert_eq!(m["cesAverage"], 6.0);
    assert_eq!(m["casesOpened"], 1);
    assert_eq!(m["casesResolved"], 1);
    assert_eq!(m["fcrPct"], 100.0);
    assert!(m["firstResponseAvgMs"].as_f64().unwrap() >= 0.0);
    let data = server
        .ok(
            &supervisor,
            metrics,
            json!({ "scope": "AGENT", "id": layla, "from": from, "to": to }),
        )
        .await;
    assert_eq!(data["metrics"]["recognitions"], 1);
    let data = server
        .ok(
            &supervisor,
            metrics,
            json!({ "scope": "CHANNEL", "id": "EMAIL", "from": from, "to": to }),
        )
        .await;
    assert_eq!(data["metrics"]["casesOpened"], 1);
    let data = server
        .ok(
            &supervisor,
            metrics,
            json!({ "scope": "TEAM", "id": team, "from": from, "to": to }),
        )
        .await;
    assert_eq!(data["metrics"]["casesResolved"], 1);
    let body = server
        .gql(
            &supervisor,
            metrics,
            json!({ "scope": "AGENT", "from": from, "to": to }),
        )
        .await;
    assert_eq!(code(&body), "VALIDATION");
    let body = server
        .gql(
            &supervisor,
            metrics,
            json!({ "scope": "WORKSPACE", "from": "2024-01-01T10:00:00Z", "to": to }),
        )
        .await;
    assert_eq!(code(&body), "VALIDATION");

    let data = server
        .ok(
            &supervisor,
            "query($from: DateTime!, $to: DateTime!) {
                leaderboard(from: $from, to: $to, first: 5) { rank agentId name score
                  metrics { csatCount } } }",
            json!({ "from": from, "to": to }),
        )
        .await;
    let board = data["leaderboard"].as_array().unwrap();
    assert_eq!(board[0]["rank"], 1);
    assert_eq!(board[0]["agentId"], layla.as_str());
    assert_eq!(board[0]["name"], "Layla");
}
