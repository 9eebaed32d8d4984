//! Customers end to end over HTTP: register, read back, update, contact points, preferences,
//! merge, forget, and the timeline connection.

mod common;

use common::*;
use serde_json::json;
use sijil_gateway::Role;

#[tokio::test]
async fn registered_customer_reads_back_with_timeline() {
    // Given an agent of one workspace
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    // When they register a customer
    let data = server
        .ok(
            &agent,
            REGISTER,
            json!({ "input": {
                "clientMutationId": "r-1",
                "reference": "CUST-1",
                "displayName": "Amina Haddad",
                "language": "ar",
                "timeZone": "Asia/Riyadh",
                "contactPoints": [{ "kind": "EMAIL", "value": "Amina@Example.com" }]
            }}),
        )
        .await;
    let payload = &data["registerCustomer"];
    // Then the payload carries the normalised customer at version 1
    assert_eq!(payload["clientMutationId"], "r-1");
    assert_eq!(payload["version"], 1);
    assert_eq!(payload["customer"]["reference"], "CUST-1");
    // Read-your-writes: the timeline projection already holds the registration.
    assert_eq!(payload["customer"]["timeline"]["totalCount"], 1);
    assert_eq!(
        payload["customer"]["contactPoints"][0]["value"],
        "amina@example.com"
    );
    let id = payload["customer"]["id"].as_str().unwrap().to_owned();
    // And the customer and their timeline read back
    let data = server
        .ok(
            &agent,
            "query($id: ID!) { customer(id: $id) { id displayName state
                timeline(first: 10) { totalCount edges { cursor node { kind summary actor } }
                  pageInfo { hasNextPage hasPreviousPage } } } }",
            json!({ "id": id }),
        )
        .await;
    let customer = &data["customer"];
    assert_eq!(customer["displayName"], "Amina Haddad");
    assert_eq!(customer["state"], "ACTIVE");
    assert_eq!(customer["timeline"]["totalCount"], 1);
    assert_eq!(
        customer["timeline"]["edges"][0]["node"]["kind"],
        "REGISTERED"
    );
    assert!(customer["timeline"]["edges"][0]["node"]["actor"]
        .as_str()
        .unwrap()
        .starts_with("token:"));
}

const CUSTOMER: &str = "query($id: ID!) { customer(id: $id) { id reference displayName timeZone
    language preferredChannel consentToContact state mergedInto forgotten version
    contactPoints { kind value } } }";

#[tokio::test]
async fn profile_contact_points_and_preferences_change_and_read_back() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let id = register(&server, &agent, "CUST-2").await;

    let data = server
        .ok(
            &agent,
            "mutation($i: UpdateCustomerProfileInput!) { updateCustomerProfile(input: $i) {
                version customer { displayName timeZone } } }",
            json!({ "i": { "customerId": id, "expectedVersion": 1,
                           "displayName": "Amina H.", "timeZone": "Europe/Paris" } }),
        )
        .await;
    assert_eq!(data["updateCustomerProfile"]["version"], 2);
    assert_eq!(
        data["updateCustomerProfile"]["customer"]["displayName"],
        "Amina H."
    );
    assert_eq!(
        data["updateCustomerProfile"]["customer"]["timeZone"],
        "Europe/Paris"
    );

    let add = "mutation($i: ContactPointChangeInput!) { addContactPoint(input: $i) {
        customer { contactPoints { kind value } } } }";
    let data = server
        .ok(
            &agent,
            add,
            json!({ "i": { "customerId": id,
                           "contactPoint": { "kind": "PHONE", "value": "+966 50 123 4567" } } }),
        )
        .await;
    let points = &data["addContactPoint"]["customer"]["contactPoints"];
    assert_eq!(points.as_array().unwrap().len(), 2);
    assert_eq!(points[1]["value"], "+966501234567");

    let data = server
        .ok(
            &agent,
            "mutation($i: ContactPointChangeInput!) { removeContactPoint(input: $i) {
                customer { contactPoints { value } } } }",
            json!({ "i": { "customerId": id,
                           "contactPoint": { "kind": "EMAIL", "value": "amina@example.com" } } }),
        )
        .await;
    assert_eq!(
        data["removeContactPoint"]["customer"]["contactPoints"],
        json!([{ "value": "+966501234567" }])
    );

    let data = server
        .ok(
            &agent,
            "mutation($i: ChangeCustomerPreferencesInput!) { changeCustomerPreferences(input: $i) {
                customer { language preferredChannel consentToContact } } }",
            json!({ "i": { "customerId": id, "language": "en-GB",
                           "preferredChannel": "LIVE_CHAT", "consentToContact": true } }),
        )
        .await;
    let c = &data["changeCustomerPreferences"]["customer"];
    assert_eq!(c["language"], "en-GB");
    assert_eq!(c["preferredChannel"], "LIVE_CHAT");
    assert_eq!(c["consentToContact"], true);

    let data = server.ok(&agent, CUSTOMER, json!({ "id": id })).await;
    assert_eq!(data["customer"]["version"], 5);
}

#[tokio::test]
async fn merge_moves_history_to_the_survivor_and_forget_erases() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let supervisor = server.token(ws, Role::Supervisor);
    let admin = server.token(ws, Role::Admin);
    let survivor = register(&server, &agent, "CUST-A").await;
    let duplicate = register(&server, &agent, "CUST-B").await;

    let merge = "mutation($i: MergeCustomersInput!) { mergeCustomers(input: $i) {
        customer { id timeline { totalCount } } } }";
    let data = server
        .ok(
            &supervisor,
            merge,
            json!({ "i": { "sourceId": duplicate, "intoId": survivor } }),
        )
        .await;
    assert_eq!(data["mergeCustomers"]["customer"]["id"], survivor.as_str());
    // Survivor: its registration, the duplicate's registration, and the merge marker.
    let total = data["mergeCustomers"]["customer"]["timeline"]["totalCount"]
        .as_u64()
        .unwrap();
    assert!(
        total >= 2,
        "survivor timeline holds both histories: {total}"
    );
    let data = server
        .ok(&agent, CUSTOMER, json!({ "id": duplicate }))
        .await;
    assert_eq!(data["customer"]["state"], "MERGED");
    assert_eq!(data["customer"]["mergedInto"], survivor.as_str());

    // A reference of the merged-away customer answers with the survivor.
    let data = server
        .ok(
            &agent,
            "{ customerByReference(reference: \"cust-b\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(data["customerByReference"]["id"], survivor.as_str());

    let forget = "mutation($i: ForgetCustomerInput!) { forgetCustomer(input: $i) {
        customer { displayName forgotten state contactPoints { value } } } }";
    let data = server
        .ok(
            &admin,
            forget,
            json!({ "i": { "customerId": survivor, "requestReference": "GDPR-1" } }),
        )
        .await;
    let c = &data["forgetCustomer"]["customer"];
    assert_eq!(c["forgotten"], true);
    assert_eq!(c["state"], "FORGOTTEN");
    assert_eq!(c["displayName"], "");
    assert_eq!(c["contactPoints"], json!([]));
}

#[tokio::test]
async fn directory_lists_and_searches_with_cursors() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    for (i, name) in ["Amina Haddad", "Bilal Haddad", "Chen Wei"]
        .iter()
        .enumerate()
    {
        server
            .ok(
                &agent,
                REGISTER,
                json!({ "input": { "reference": format!("R-{i}"), "displayName": name,
                                   "language": "en", "timeZone": "UTC" } }),
            )
            .await;
    }
    let list = "query($after: String) { customers(first: 2, after: $after) {
        edges { cursor node { displayName } } pageInfo { hasNextPage endCursor } } }";
    let page1 = server.ok(&agent, list, json!({})).await;
    assert_eq!(page1["customers"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(page1["customers"]["pageInfo"]["hasNextPage"], true);
    let after = page1["customers"]["pageInfo"]["endCursor"].clone();
    let page2 = server.ok(&agent, list, json!({ "after": after })).await;
    assert_eq!(
        page2["customers"]["edges"][0]["node"]["displayName"],
        "Chen Wei"
    );
    assert_eq!(page2["customers"]["pageInfo"]["hasNextPage"], false);

    let data = server
        .ok(
            &agent,
            "{ customers(search: \"hadd\") { edges { node { displayName } } } }",
            json!({}),
        )
        .await;
    let mut names: Vec<String> = data["customers"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["displayName"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["Amina Haddad", "Bilal Haddad"]);

    let body = server
        .gql(
            &agent,
            "{ customerByReference(reference: \"NOPE\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn timeline_pages_both_ways_and_filters() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let id = register(&server, &agent, "T-1").await;
    let agent_id = uuid::Uuid::now_v7().to_string();
    let record = "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) {
        interaction { id channel } } }";
    for (channel, summary) in [
        ("PHONE", "called about bill"),
        ("EMAIL", "sent invoice"),
        ("PHONE", "follow up call"),
    ] {
        server
            .ok(
                &agent,
                record,
                json!({ "i": { "customerId": id, "channel": channel, "direction": "INBOUND",
                               "agentId": agent_id, "language": "en", "summary": summary,
                               "durationSeconds": 60 } }),
            )
            .await;
    }
    let q = "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String,
                   $newest: Boolean, $channels: [Channel!], $kinds: [TimelineEntryKind!]) {
        customer(id: $id) { timeline(first: $first, after: $after, last: $last, before: $before,
            newestFirst: $newest, channels: $channels, kinds: $kinds) {
          totalCount edges { cursor node { kind channel summary } }
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }";
    // 4 entries: registration then three interactions.
    let page = server.ok(&agent, q, json!({ "id": id, "first": 2 })).await;
    let t = &page["customer"]["timeline"];
    assert_eq!(t["totalCount"], 4);
    assert_eq!(t["edges"][0]["node"]["kind"], "REGISTERED");
    assert_eq!(t["pageInfo"]["hasNextPage"], true);
    // The count is read only when `totalCount` is selected; it is found under an alias, an
    // inline fragment and a named fragment, and beside a selection without it.
    let counted = server
        .ok(
            &agent,
            "query($id: ID!) { customer(id: $id) {
                a: timeline(first: 1) { n: totalCount }
                b: timeline(first: 1) { ... on TimelineConnection { totalCount } }
                c: timeline(first: 1) { ...Count }
                d: timeline(first: 1) { edges { cursor } } } }
             fragment Count on TimelineConnection { totalCount }",
            json!({ "id": id }),
        )
        .await;
    let c = &counted["customer"];
    assert_eq!(c["a"]["n"], 4, "{counted}");
    assert_eq!(c["b"]["totalCount"], 4, "{counted}");
    assert_eq!(c["c"]["totalCount"], 4, "{counted}");
    assert_eq!(
        c["d"]["edges"].as_array().map(Vec::len),
        Some(1),
        "{counted}"
    );
    let after = t["pageInfo"]["endCursor"].clone();
    let page = server
        .ok(&agent, q, json!({ "id": id, "first": 2, "after": after }))
        .await;
    let t = &page["customer"]["timeline"];
    assert_eq!(t["edges"].as_array().unwrap().len(), 2);
    assert!(t["edges"][1]["node"]["summary"]
        .as_str()
        .unwrap()
        .contains("follow up call"));
    assert_eq!(t["pageInfo"]["hasNextPage"], false);
    assert_eq!(t["pageInfo"]["hasPreviousPage"], true);

    // Newest first, and backwards with last/before.
    let page = server
        .ok(&agent, q, json!({ "id": id, "first": 1, "newest": true }))
        .await;
    assert!(page["customer"]["timeline"]["edges"][0]["node"]["summary"]
        .as_str()
        .unwrap()
        .contains("follow up call"));
    let page = server.ok(&agent, q, json!({ "id": id, "last": 1 })).await;
    let t = &page["customer"]["timeline"];
    assert!(t["edges"][0]["node"]["summary"]
        .as_str()
        .unwrap()
        .contains("follow up call"));
    assert_eq!(t["pageInfo"]["hasPreviousPage"], true);
    let before = t["pageInfo"]["startCursor"].clone();
    let page = server
        .ok(&agent, q, json!({ "id": id, "last": 1, "before": before }))
        .await;
    assert!(page["customer"]["timeline"]["edges"][0]["node"]["summary"]
        .as_str()
        .unwrap()
        .contains("sent invoice"));

    // Filters.
    let page = server
        .ok(&agent, q, json!({ "id": id, "channels": ["PHONE"] }))
        .await;
    assert_eq!(
        page["customer"]["timeline"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let page = server
        .ok(&agent, q, json!({ "id": id, "kinds": ["REGISTERED"] }))
        .await;
    assert_eq!(
        page["customer"]["timeline"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let body = server
        .gql(&agent, q, json!({ "id": id, "first": 1, "last": 1 }))
        .await;
    assert_eq!(code(&body), "VALIDATION");
    let body = server
        .gql(&agent, q, json!({ "id": id, "after": "not-a-cursor" }))
        .await;
    assert_eq!(code(&body), "VALIDATION");
}

#[tokio::test]
async fn timeline_time_window_filters_entries() {
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let id = register(&server, &agent, "W-1").await;
    let q = "query($id: ID!, $from: DateTime, $to: DateTime) { customer(id: $id) {
        timeline(from: $from, to: $to) { edges { node { kind at } } } } }";
    let data = server
        .ok(
            &agent,
            q,
            json!({ "id": id, "from": "2000-01-01T00:00:00Z", "to": "2001-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(data["customer"]["timeline"]["edges"], json!([]));
    let data = server
        .ok(
            &agent,
            q,
            json!({ "id": id, "from": "2000-01-01T00:00:00+03:00" }),
        )
        .await;
    assert_eq!(
        data["customer"]["timeline"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let body = server
        .gql(&agent, q, json!({ "id": id, "from": "yesterday" }))
        .await;
    assert_eq!(code(&body), "VALIDATION");
}

#[tokio::test]
async fn the_readme_query_runs_within_the_default_limits() {
    let server = TestServer::start().await;
    let admin = server.token(workspace(), Role::Admin);
    register(&server, &admin, "README-1").await;
    let data = server
        .ok(
            &admin,
            "{ customers(first: 3) { edges { node { id reference displayName language
                timeline(first: 5, newestFirst: true) { edges { node { at kind channel summary } } } } } } }",
            json!({}),
        )
        .await;
    let node = &data["customers"]["edges"][0]["node"];
    assert_eq!(node["reference"], "README-1");
    assert_eq!(node["timeline"]["edges"][0]["node"]["kind"], "REGISTERED");
    assert!(node["timeline"]["edges"][0]["node"]["at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
}

#[tokio::test]
async fn timeline_edges_read_the_same_whichever_way_the_selection_is_written() {
    // Given a customer whose timeline holds a registration, an interaction with an agent, a
    // case and the history of a customer merged into them (so every id field has a value
    // somewhere)
    let server = TestServer::start().await;
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let supervisor = server.token(ws, Role::Supervisor);
    let id = register(&server, &agent, "SAME-1").await;
    let other = register(&server, &agent, "SAME-2").await;
    let agent_id = uuid::Uuid::now_v7().to_string();
    server
        .ok(
            &agent,
            "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { interaction { id } } }",
            json!({ "i": { "customerId": other, "channel": "LIVE_CHAT", "direction": "INBOUND",
                           "agentId": agent_id, "language": "en", "summary": "asked about a refund",
                           "durationSeconds": 30 } }),
        )
        .await;
    server
        .ok(
            &agent,
            "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }",
            json!({ "i": { "customerId": id, "subject": "Refund not received",
                           "category": "billing", "priority": "HIGH", "channel": "EMAIL" } }),
        )
        .await;
    server
        .ok(
            &supervisor,
            "mutation($i: MergeCustomersInput!) { mergeCustomers(input: $i) { customer { id } } }",
            json!({ "i": { "sourceId": other, "intoId": id } }),
        )
        .await;
    // When the page is asked for with plain fields (written in one pass), and again through
    // fragments, an inline fragment and directives (resolved field by field)
    let all = "position at kind channel actor summary caseId interactionId surveyId followUpId
        agentId originCustomerId";
    let plain = format!(
        "query($id: ID!) {{ customer(id: $id) {{ timeline(first: 20) {{
            edges {{ node {{ {all} when: at }} c: cursor }} }} }} }}"
    );
    let fragments = format!(
        "query($id: ID!) {{ customer(id: $id) {{ timeline(first: 20) {{
            edges {{ ...E c: cursor @include(if: true) }} }} }} }}
         fragment E on TimelineEdge {{ node {{ ... on TimelineEntry {{ {all} }} when: at }} }}"
    );
    let fast = server.ok(&agent, &plain, json!({ "id": id })).await;
    let slow = server.ok(&agent, &fragments, json!({ "id": id })).await;
    // Then both answers are the same, key order included
    assert_eq!(
        serde_json::to_string(&fast).unwrap(),
        serde_json::to_string(&slow).unwrap()
    );
    let edges = fast["customer"]["timeline"]["edges"].as_array().unwrap();
    assert!(edges.len() >= 5, "{fast}");
    for field in [
        "caseId",
        "interactionId",
        "agentId",
        "originCustomerId",
        "channel",
    ] {
        assert!(
            edges.iter().any(|e| !e["node"][field].is_null()),
            "some entry has {field}: {fast}"
        );
    }
    assert!(edges.iter().all(|e| e["node"]["position"].is_u64()));
}
