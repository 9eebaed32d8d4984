//! Crypto-shredding through the gateway: personal data is sealed with the customer's key
//! before it reaches the log, auditors read it back in plaintext, and `forgetCustomer`
//! destroys the key so every read from the log shows `[erased]` while types, times, ids,
//! levels and hash chains stay as they were.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use serde_json::{json, Value};
use sijil_domain::customer::{Command, CustomerAggregate};
use sijil_domain::{CustomerId, StreamRef, Timestamp, WorkspaceId};
use sijil_gateway::bus::{Actor, CommandBus};
use sijil_gateway::{Gateway, GatewayConfig, Role};
use sijil_store::vault::MasterKey;
use sijil_store::Direction;

const EVENTS: &str =
    "query($s: String!) { events(streamId: $s) { events { eventType hash payload } } }";
const FORGET: &str = "mutation($i: ForgetCustomerInput!) { forgetCustomer(input: $i) {
    version position } }";
const VERIFY: &str = "query($s: String!) { verifyStream(streamId: $s) { ok eventsChecked } }";

async fn register_person(
    server: &TestServer,
    token: &str,
    reference: &str,
    name: &str,
    email: &str,
    phone: &str,
) -> String {
    let data = server
        .ok(
            token,
            REGISTER,
            json!({ "input": {
                "reference": reference,
                "displayName": name,
                "language": "ar",
                "timeZone": "Asia/Riyadh",
                "contactPoints": [
                    { "kind": "EMAIL", "value": email },
                    { "kind": "PHONE", "value": phone }
                ]
            }}),
        )
        .await;
    data["registerCustomer"]["customer"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// A sealing server, an admin of a fresh workspace, and one person that admin registered
/// (reference, name, email, phone): `(server, workspace, admin token, customer id)`.
async fn sealed_with_person(person: [&str; 4]) -> (TestServer, uuid::Uuid, String, String) {
    let server = TestServer::start_sealed(&MasterKey::generate().expect("key"), None).await;
    let ws = workspace();
    let admin = server.token(ws, Role::Admin);
    let [reference, name, email, phone] = person;
    let id = register_person(&server, &admin, reference, name, email, phone).await;
    (server, ws, admin, id)
}

async fn events(server: &TestServer, auditor: &str, stream: &str) -> Vec<Value> {
    server.ok(auditor, EVENTS, json!({ "s": stream })).await["events"]["events"]
        .as_array()
        .expect("events")
        .clone()
}

/// Every file under `dir`, concatenated.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                todo.push(entry.expect("entry").path());
            }
        } else {
            out.extend(std::fs::read(&path).expect("read file"));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.to_lowercase();
    let needle = needle.as_bytes();
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[tokio::test]
async fn forgetting_shreds_the_key_and_every_log_read_shows_erased() {
    // Given a sealing gateway with two customers, a case with an escalation and an interaction,
    let server = TestServer::start_sealed(&MasterKey::generate().expect("key"), None).await;
    let ws = workspace();
    let admin = server.token(ws, Role::Admin);
    let auditor = server.token(ws, Role::Auditor);
    let amina = register_person(
        &server,
        &admin,
        "GDPR-1",
        "Amina Haddad",
        "amina.haddad@example.com",
        "+966501234567",
    )
    .await;
    let badr = register_person(
        &server,
        &admin,
        "GDPR-2",
        "Badr Saleh",
        "badr.saleh@example.com",
        "+966507654321",
    )
    .await;
    let case = server
        .ok(
            &admin,
            "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }",
            json!({ "i": { "customerId": amina, "subject": "Refund for Amina Haddad",
                           "category": "billing", "channel": "PHONE" } }),
        )
        .await["openCase"]["case"]["id"]
        .as_str()
        .expect("case id")
        .to_owned();
    let escalate = "mutation($i: ChangeLevelInput!) { escalateCase(input: $i) { version } }";
    server
        .ok(
            &admin,
            escalate,
            json!({ "i": { "caseId": case, "reason": "upset about the divorce" } }),
        )
        .await;
    server
        .ok(
            &admin,
            "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { position } }",
            json!({ "i": { "customerId": amina, "channel": "PHONE", "direction": "INBOUND",
                           "bot": "ivr", "language": "ar", "summary": "called about divorce papers" } }),
        )
        .await;
    // and a contact point added and removed again (the bus opens sealed events to match it).
    let change = |op: &str| {
        format!("mutation($i: ContactPointChangeInput!) {{ {op}(input: $i) {{ version }} }}")
    };
    let second = json!({ "i": { "customerId": amina,
                                "contactPoint": { "kind": "EMAIL", "value": "second@example.org" } } });
    server
        .ok(&admin, &change("addContactPoint"), second.clone())
        .await;
    let again = server
        .gql(&admin, &change("addContactPoint"), second.clone())
        .await;
    assert_eq!(
        again["errors"][0]["extensions"]["reason"],
        "DUPLICATE_CONTACT_POINT"
    );
    server
        .ok(&admin, &change("removeContactPoint"), second.clone())
        .await;

    // then auditors read plaintext, while the log itself holds only ciphertext,
    let customer_stream = format!("customer-{amina}");
    let case_stream = format!("case-{case}");
    let before = events(&server, &auditor, &customer_stream).await;
    assert_eq!(before[0]["payload"]["display_name"], "Amina Haddad");
    assert_eq!(
        before[0]["payload"]["contact_points"][0]["value"],
        "amina.haddad@example.com"
    );
    let case_before = events(&server, &auditor, &case_stream).await;
    assert_eq!(
        case_before[1]["payload"]["reason"],
        "upset about the divorce"
    );
    for stream in [&customer_stream, &case_stream] {
        for stored in server
            .store
            .read_stream(stream, 1, Direction::Forward, 100)
            .expect("read")
        {
            assert!(
                !contains(&stored.payload, "Amina"),
                "{stream} holds plaintext"
            );
            assert!(
                !contains(&stored.payload, "divorce"),
                "{stream} holds plaintext"
            );
        }
    }

    // when Amina is forgotten (twice: the second time is harmless),
    let first = server
        .ok(
            &admin,
            FORGET,
            json!({ "i": { "customerId": amina, "requestReference": "ERASE-1" } }),
        )
        .await;
    let repeat = server
        .ok(
            &admin,
            FORGET,
            json!({ "i": { "customerId": amina, "requestReference": "ERASE-1" } }),
        )
        .await;
    assert_eq!(
        repeat["forgetCustomer"]["version"],
        first["forgetCustomer"]["version"]
    );
    let vault = server.vault.as_ref().expect("sealed server");
    let ws_id = WorkspaceId::new(ws).expect("v7");
    let amina_id = CustomerId::parse(&amina).expect("id");
    assert!(vault.is_forgotten(ws_id, amina_id).expect("vault"));

    // then every personal field in the log reads erased, and the facts and hashes stay,
    let after = events(&server, &auditor, &customer_stream).await;
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(
        after.last().expect("event")["eventType"],
        "CustomerForgotten"
    );
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old["hash"], new["hash"]);
        assert_eq!(old["eventType"], new["eventType"]);
    }
    let registered = &after[0]["payload"];
    assert_eq!(registered["display_name"], "[erased]");
    assert_eq!(registered["reference"], "[erased]");
    assert_eq!(registered["customer_id"], amina.as_str());
    for point in registered["contact_points"].as_array().expect("points") {
        assert_eq!(point["value"], "[erased]");
    }
    let case_after = events(&server, &auditor, &case_stream).await;
    assert_eq!(case_after[0]["payload"]["subject"], "[erased]");
    assert_eq!(case_after[1]["payload"]["reason"], "[erased]");
    assert_eq!(case_after[1]["payload"]["to_level"], 2);
    let all = server
        .ok(
            &auditor,
            "{ allEvents(first: 100, types: [\"InteractionRecorded\"]) { events { payload } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        all["allEvents"]["events"][0]["payload"]["summary"],
        "[erased]"
    );
    for stream in [&customer_stream, &case_stream] {
        let v = server.ok(&auditor, VERIFY, json!({ "s": stream })).await;
        assert_eq!(v["verifyStream"]["ok"], true, "{stream}");
    }
    // the past rebuilt from the log does not bring the text back,
    let as_of = server
        .ok(
            &auditor,
            "query($id: ID!) { customerAsOf(id: $id, position: 1) {
                customer { displayName contactPoints { value } } } }",
            json!({ "id": amina }),
        )
        .await;
    assert_ne!(
        as_of["customerAsOf"]["customer"]["displayName"],
        "Amina Haddad"
    );
    // no new personal data can be recorded for her,
    let refused = server
        .gql(
            &admin,
            "mutation($i: ChangeLevelInput!) { deescalateCase(input: $i) { version } }",
            json!({ "i": { "caseId": case, "reason": "calmer now" } }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["reason"],
        "CUSTOMER_FORGOTTEN"
    );
    // Badr is untouched,
    let badr_events = events(&server, &auditor, &format!("customer-{badr}")).await;
    assert_eq!(badr_events[0]["payload"]["display_name"], "Badr Saleh");

    // and a byte scan of the whole flushed data directory finds none of her personal data.
    vault.flush().expect("flush vault");
    server.store.db().flush().expect("flush store");
    let bytes = all_bytes(server.dir());
    // (the scan does see what is stored in clear: the case category and the request reference)
    assert!(contains(&bytes, "billing") && contains(&bytes, "ERASE-1"));
    for needle in [
        "Amina",
        "Haddad",
        "amina.haddad@example.com",
        "+966501234567",
        "966501234567",
        "divorce",
    ] {
        assert!(
            !contains(&bytes, needle),
            "the data directory holds `{needle}`"
        );
    }
}

#[tokio::test]
async fn forgetting_a_survivor_also_shreds_the_customers_merged_into_it() {
    // Given a duplicate identity merged into a survivor,
    let server = TestServer::start_sealed(&MasterKey::generate().expect("key"), None).await;
    let ws = workspace();
    let admin = server.token(ws, Role::Admin);
    let auditor = server.token(ws, Role::Auditor);
    let survivor = register_person(
        &server,
        &admin,
        "M-1",
        "Karim Nasser",
        "karim@example.com",
        "+966501112223",
    )
    .await;
    let duplicate = register_person(
        &server,
        &admin,
        "M-2",
        "Kareem Nasser",
        "kareem@example.com",
        "+966501112224",
    )
    .await;
    server
        .ok(
            &admin,
            "mutation($i: MergeCustomersInput!) { mergeCustomers(input: $i) { version } }",
            json!({ "i": { "sourceId": duplicate, "intoId": survivor } }),
        )
        .await;
    // (read once, so the gateway has folded the duplicate with its key)
    let read = "query($id: ID!) { customer(id: $id) { displayName contactPoints { value } } }";
    let before = server.ok(&admin, read, json!({ "id": duplicate })).await;
    assert_eq!(before["customer"]["displayName"], "Kareem Nasser");
    // when the survivor is forgotten,
    server
        .ok(
            &admin,
            FORGET,
            json!({ "i": { "customerId": survivor, "requestReference": "ERASE-2" } }),
        )
        .await;
    // then the duplicate no longer reads in plaintext (its own stream did not move),
    let after = server.ok(&admin, read, json!({ "id": duplicate })).await;
    assert_eq!(after["customer"]["displayName"], "[erased]", "{after}");
    assert!(!after.to_string().contains("kareem@"), "{after}");
    // then the merged identity's key is gone too and its events read erased.
    let vault = server.vault.as_ref().expect("sealed server");
    let ws_id = WorkspaceId::new(ws).expect("v7");
    let dup_id = CustomerId::parse(&duplicate).expect("id");
    assert!(vault.is_forgotten(ws_id, dup_id).expect("vault"));
    let dup_events = events(&server, &auditor, &format!("customer-{duplicate}")).await;
    assert_eq!(dup_events[0]["payload"]["display_name"], "[erased]");
    assert_eq!(dup_events[0]["payload"]["customer_id"], duplicate.as_str());
}

#[tokio::test]
async fn a_customer_whose_key_is_destroyed_without_an_event_here_reads_erased() {
    // Given a customer read once through the gateway (folded with their key),
    let (server, ws, admin, id) =
        sealed_with_person(["K-1", "Layla Saeed", "layla@example.com", "+966501112225"]).await;
    let read = "query($id: ID!) { customer(id: $id) { displayName contactPoints { value } } }";
    let before = server.ok(&admin, read, json!({ "id": id })).await;
    assert_eq!(before["customer"]["displayName"], "Layla Saeed");
    let again = server.ok(&admin, read, json!({ "id": id })).await;
    assert_eq!(again, before);
    // when their key is destroyed with no new event on their stream (as another node's
    // forget reaches this one, or a restart finishes an interrupted forget),
    let vault = server.vault.as_ref().expect("sealed server");
    let customer = CustomerId::parse(&id).expect("id");
    vault
        .forget(WorkspaceId::new(ws).expect("v7"), customer)
        .expect("forget");
    // then the next read shows their personal data erased, not what was read before.
    let after = server.ok(&admin, read, json!({ "id": id })).await;
    assert_eq!(after["customer"]["displayName"], "[erased]", "{after}");
    assert!(!after.to_string().contains("layla@"), "{after}");
}

#[tokio::test]
async fn a_forget_interrupted_before_the_key_was_destroyed_is_finished_at_startup() {
    // Given a customer whose `CustomerForgotten` event was written but whose key survived
    // (the process stopped between the two steps),
    let (server, ws, _, id) =
        sealed_with_person(["R-1", "Layla Omar", "layla@example.com", "+966509998887"]).await;
    let auditor = server.token(ws, Role::Auditor);
    let vault = server.vault.clone().expect("sealed server");
    let bus = CommandBus::with_vault(server.store.clone(), Some(vault.clone())).expect("bus");
    let customer = CustomerId::parse(&id).expect("id");
    let actor = Actor {
        workspace_id: ws,
        actor: "test".into(),
        on_behalf_of: None,
        correlation_id: None,
    };
    let outcome = bus
        .execute::<CustomerAggregate>(
            &actor,
            StreamRef::Customer(customer),
            Command::Forget {
                request_reference: "ERASE-3".into(),
                at: Timestamp(1_700_000_000_000),
            },
            None,
            None,
            None,
        )
        .await
        .expect("forget event");
    assert!(outcome.last_position.is_some());
    let ws_id = WorkspaceId::new(ws).expect("v7");
    assert!(!vault.is_forgotten(ws_id, customer).expect("vault"));
    // when a gateway starts over that store,
    Gateway::with_vault(
        server.store.clone(),
        Arc::clone(&server.projections),
        GatewayConfig::default(),
        vault.clone(),
    )
    .expect("gateway");
    // then the erasure is finished before anything is served.
    assert!(vault.is_forgotten(ws_id, customer).expect("vault"));
    let after = events(&server, &auditor, &format!("customer-{id}")).await;
    assert_eq!(after[0]["payload"]["display_name"], "[erased]");
}

#[tokio::test]
async fn without_a_vault_nothing_is_sealed() {
    // Given a plaintext gateway (tools and tests), registration stores the name as given.
    let server = TestServer::start().await;
    let ws = workspace();
    let admin = server.token(ws, Role::Admin);
    let id = register(&server, &admin, "P-1").await;
    let stored = server
        .store
        .read_stream(&format!("customer-{id}"), 1, Direction::Forward, 1)
        .expect("read");
    assert!(contains(&stored[0].payload, "Amina Haddad"));
    assert!(server.vault.is_none());
}

#[tokio::test]
async fn read_models_keep_personal_text_sealed_and_the_gateway_opens_it_when_serving() {
    // Given a sealing gateway with a customer and an escalated case,
    let (server, _, admin, id) =
        sealed_with_person(["D-1", "Huda Karam", "huda@example.com", "+966503334445"]).await;
    let case = server
        .ok(
            &admin,
            "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }",
            json!({ "i": { "customerId": id, "subject": "Huda's router",
                           "category": "tech", "channel": "EMAIL" } }),
        )
        .await["openCase"]["case"]["id"]
        .as_str()
        .expect("case id")
        .to_owned();
    server
        .ok(
            &admin,
            "mutation($i: ChangeLevelInput!) { escalateCase(input: $i) { version } }",
            json!({ "i": { "caseId": case, "reason": "third outage" } }),
        )
        .await;
    let long = format!(
        "Huda called about the router {}",
        "again and again ".repeat(12)
    );
    server
        .ok(
            &admin,
            "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { position } }",
            json!({ "i": { "customerId": id, "channel": "PHONE", "direction": "INBOUND",
                           "bot": "ivr", "language": "ar", "summary": long } }),
        )
        .await;
    // then her timeline reads as plaintext, long texts shortened as usual,
    let timeline = "query($id: ID!) { customer(id: $id) { timeline(first: 50) {
                      edges { node { kind summary } } } } }";
    let summaries = |data: &Value| -> Vec<(String, String)> {
        data["customer"]["timeline"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| {
                (
                    e["node"]["kind"].as_str().expect("kind").to_owned(),
                    e["node"]["summary"].as_str().expect("summary").to_owned(),
                )
            })
            .collect()
    };
    let before = summaries(&server.ok(&admin, timeline, json!({ "id": id })).await);
    let find = |kind: &str| {
        before
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("no {kind} entry in {before:?}"))
    };
    assert_eq!(find("REGISTERED"), "Registered: Huda Karam");
    assert!(find("CASE_ESCALATED").ends_with(": third outage"));
    let interaction = find("INTERACTION");
    assert!(interaction.contains("Huda called about the router again"));
    assert!(interaction.ends_with('…'));
    assert!(!interaction.contains("sjl1:"));
    // the directory listing and the escalation queue read as plaintext,
    let list = "{ customers(first: 10) { edges { node { reference displayName
                   contactPoints { value } } } }
                 escalationQueue { entries { subject } } }";
    let data = server.ok(&admin, list, json!({})).await;
    let node = &data["customers"]["edges"][0]["node"];
    assert_eq!(node["displayName"], "Huda Karam");
    assert_eq!(node["reference"], "D-1");
    assert_eq!(node["contactPoints"][0]["value"], "huda@example.com");
    assert_eq!(
        data["escalationQueue"]["entries"][0]["subject"],
        "Huda's router"
    );
    // and once Huda is forgotten, they read erased.
    server
        .ok(
            &admin,
            FORGET,
            json!({ "i": { "customerId": id, "requestReference": "ERASE-4" } }),
        )
        .await;
    let after = summaries(&server.ok(&admin, timeline, json!({ "id": id })).await);
    assert!(!after.is_empty());
    for (_, summary) in &after {
        assert!(!summary.contains("Huda"), "{summary}");
        assert!(!summary.contains("sjl1:"), "{summary}");
    }
    let data = server.ok(&admin, list, json!({})).await;
    for edge in data["customers"]["edges"].as_array().expect("edges") {
        assert_ne!(edge["node"]["displayName"], "Huda Karam");
    }
    for entry in data["escalationQueue"]["entries"]
        .as_array()
        .expect("entries")
    {
        assert_ne!(entry["subject"], "Huda's router");
    }
}

#[tokio::test]
async fn a_sealed_store_finds_customers_by_name_prefix_and_reference() {
    // Given a sealing gateway with an Arabic-named and a Latin-named customer,
    let server = TestServer::start_sealed(&MasterKey::generate().expect("key"), None).await;
    let ws = workspace();
    let admin = server.token(ws, Role::Admin);
    let mona = register_person(
        &server,
        &admin,
        "SRCH-1",
        "مُنى العتيبي",
        "mona@example.com",
        "+966501112223",
    )
    .await;
    let zoe = register_person(
        &server,
        &admin,
        "SRCH-2",
        "Zoé Lefèvre",
        "zoe@example.com",
        "+966501112224",
    )
    .await;
    let search = "query($s: String!) { customers(search: $s, first: 10) {
                    edges { node { id displayName } } } }";
    let found = |data: &Value| -> Vec<(String, String)> {
        data["customers"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| {
                (
                    e["node"]["id"].as_str().expect("id").to_owned(),
                    e["node"]["displayName"].as_str().expect("name").to_owned(),
                )
            })
            .collect()
    };
    // when searching by name prefixes (tashkeel, case and diacritics ignored),
    for (text, id, name) in [
        ("منى", &mona, "مُنى العتيبي"),
        ("العت", &mona, "مُنى العتيبي"),
        ("zoe", &zoe, "Zoé Lefèvre"),
        ("LEF", &zoe, "Zoé Lefèvre"),
        ("zo lefe", &zoe, "Zoé Lefèvre"),
    ] {
        let data = server.ok(&admin, search, json!({ "s": text })).await;
        // then exactly that customer answers, in plaintext.
        assert_eq!(
            found(&data),
            vec![(id.clone(), name.to_owned())],
            "search {text}"
        );
    }
    let none = server.ok(&admin, search, json!({ "s": "xyz" })).await;
    assert!(found(&none).is_empty());
    // A reference lookup (any case) finds the customer too,
    let by_reference =
        "query($r: String!) { customerByReference(reference: $r) { id displayName } }";
    let data = server
        .ok(&admin, by_reference, json!({ "r": "srch-2" }))
        .await;
    assert_eq!(data["customerByReference"]["id"], zoe.as_str());
    assert_eq!(data["customerByReference"]["displayName"], "Zoé Lefèvre");
    // and no name is stored in clear anywhere in the data directory.
    let bytes = all_bytes(server.dir());
    for secret in ["Lefèvre", "lefevre", "mona@example", "SRCH-1"] {
        assert!(!contains(&bytes, secret), "{secret} is stored in clear");
    }
    // Once Zoé is forgotten, neither her name nor her reference finds her.
    server
        .ok(
            &admin,
            FORGET,
            json!({ "i": { "customerId": zoe, "requestReference": "ERASE-9" } }),
        )
        .await;
    let data = server.ok(&admin, search, json!({ "s": "zoe" })).await;
    assert!(found(&data).is_empty());
    let gone = server
        .gql(&admin, by_reference, json!({ "r": "SRCH-2" }))
        .await;
    assert_eq!(
        gone["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{gone}"
    );
    let data = server.ok(&admin, search, json!({ "s": "منى" })).await;
    assert_eq!(found(&data).len(), 1, "Mona stays");
}
