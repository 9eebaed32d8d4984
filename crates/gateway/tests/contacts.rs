//! `customerByContact`: finding a customer by email, phone, social handle or messaging id,
//! in plaintext and sealed stores, within the caller's workspace only, with roles, merges,
//! erasure and bad input answered with the schema's usual codes.

mod common;

use common::*;
use serde_json::{json, Value};
use sijil_gateway::{Permission, Role};
use sijil_store::vault::MasterKey;

const BY_CONTACT: &str = "query($k: ContactKind!, $v: String!) {
    customerByContact(kind: $k, value: $v) { id reference state } }";

/// Registers a customer with an email, a phone and a social handle; returns the id.
async fn register_reachable(server: &TestServer, token: &str, reference: &str, n: u32) -> String {
    let data = server
        .ok(
            token,
            "mutation($i: RegisterCustomerInput!) { registerCustomer(input: $i) { customer { id } } }",
            json!({ "i": {
                "reference": reference,
                "displayName": "Layla Nasser",
                "language": "ar",
                "timeZone": "Asia/Riyadh",
                "contactPoints": [
                    { "kind": "EMAIL", "value": format!("Layla.{n}@Example.com") },
                    { "kind": "PHONE", "value": format!("+96650000{n:04}") },
                    { "kind": "SOCIAL", "value": format!("x:@layla{n}") }
                ]
            } }),
        )
        .await;
    data["registerCustomer"]["customer"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn lookup(server: &TestServer, token: &str, kind: &str, value: &str) -> Value {
    server
        .gql(token, BY_CONTACT, json!({ "k": kind, "v": value }))
        .await
}

fn found(body: &Value) -> &str {
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["customerByContact"]["id"]
        .as_str()
        .unwrap_or("<none>")
}

/// The lookups every store must answer the same way.
async fn exercise(server: &TestServer) {
    let ws = workspace();
    let agent = server.token(ws, Role::Agent);
    let supervisor = server.token(ws, Role::Supervisor);
    let other_ws = server.token(workspace(), Role::Agent);
    let layla = register_reachable(server, &agent, "CT-1", 1).await;
    let theirs = register_reachable(server, &other_ws, "CT-9", 9).await;

    // Given a customer's contact points, in any accepted spelling
    assert_eq!(
        found(&lookup(server, &agent, "EMAIL", "layla.1@example.COM").await),
        layla
    );
    assert_eq!(
        found(&lookup(server, &agent, "PHONE", "+966500000001").await),
        layla
    );
    assert_eq!(
        found(&lookup(server, &agent, "SOCIAL", "x:@layla1").await),
        layla
    );
    let body = lookup(server, &agent, "EMAIL", "Layla.1@Example.com").await;
    assert_eq!(body["data"]["customerByContact"]["reference"], "CT-1");
    assert_eq!(body["data"]["customerByContact"]["state"], "ACTIVE");

    // Another workspace's contact point is not found, exactly like an unknown one
    let foreign = lookup(server, &agent, "EMAIL", "layla.9@example.com").await;
    assert_eq!(code(&foreign), "NOT_FOUND", "{foreign}");
    let unknown = lookup(server, &agent, "EMAIL", "nobody@example.com").await;
    assert_eq!(code(&unknown), "NOT_FOUND");
    assert_eq!(
        foreign["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    assert_eq!(
        found(&lookup(server, &other_ws, "EMAIL", "layla.9@example.com").await),
        theirs
    );
    // Another kind's value under this kind is not a valid contact point.
    let wrong_kind = lookup(server, &agent, "PHONE", "x:@layla1").await;
    assert_eq!(code(&wrong_kind), "VALIDATION", "{wrong_kind}");

    // Malformed values and kinds get VALIDATION
    let bad = lookup(server, &agent, "EMAIL", "not an email").await;
    assert_eq!(code(&bad), "VALIDATION", "{bad}");
    let bad_kind = lookup(server, &agent, "FAX", "123").await;
    assert_eq!(code(&bad_kind), "VALIDATION", "{bad_kind}");

    // Roles: reading customers is needed
    let no_read = server.app_token(ws, vec![Permission::ReadCases]);
    let refused = lookup(server, &no_read, "EMAIL", "layla.1@example.com").await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let reader = server.app_token(ws, vec![Permission::ReadCustomers]);
    assert_eq!(
        found(&lookup(server, &reader, "EMAIL", "layla.1@example.com").await),
        layla
    );
    let anonymous = server
        .post(
            None,
            json!({ "query": BY_CONTACT, "variables": { "k": "EMAIL", "v": "x@y.com" } }),
        )
        .await;
    assert_eq!(code(&anonymous.1), "UNAUTHENTICATED");

    // A merged-away customer's contact point answers with the survivor
    let duplicate = register_reachable(server, &agent, "CT-2", 2).await;
    server
        .ok(
            &supervisor,
            "mutation($i: MergeCustomersInput!) { mergeCustomers(input: $i) { version } }",
            json!({ "i": { "sourceId": duplicate, "intoId": layla } }),
        )
        .await;
    assert_eq!(
        found(&lookup(server, &agent, "EMAIL", "layla.2@example.com").await),
        layla
    );

    // A forgotten customer is found no more
    let admin = server.token(ws, Role::Admin);
    server
        .ok(
            &admin,
            "mutation($i: ForgetCustomerInput!) { forgetCustomer(input: $i) { version } }",
            json!({ "i": { "customerId": layla, "requestReference": "DSR-7" } }),
        )
        .await;
    let gone = lookup(server, &agent, "EMAIL", "layla.1@example.com").await;
    assert_eq!(code(&gone), "NOT_FOUND", "{gone}");
}

#[tokio::test]
async fn customers_are_found_by_contact_point_in_a_plaintext_store() {
    exercise(&TestServer::start().await).await;
}

#[tokio::test]
async fn customers_are_found_by_contact_point_in_a_sealed_store() {
    let server = TestServer::start_sealed(&MasterKey::generate().expect("key"), None).await;
    exercise(&server).await;
}
