//! Test harness: a real gateway over a temporary store, served on 127.0.0.1:0, and a small
//! GraphQL-over-HTTP client.

#![allow(dead_code)]

use std::sync::Arc;

use serde_json::{json, Value};
use sijil_gateway::{Gateway, GatewayConfig, Permission, Role};
use sijil_store::projections::Projections;
use sijil_store::vault::{MasterKey, Vault};
use sijil_store::Store;
use uuid::Uuid;

pub struct TestServer {
    pub url: String,
    pub gateway: Gateway,
    pub store: Store,
    pub projections: Arc<Projections>,
    pub http: reqwest::Client,
    /// The vault sealing personal data, for servers started with one.
    pub vault: Option<Vault>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(GatewayConfig::default()).await
    }

    pub async fn start_with(config: GatewayConfig) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open store");
        TestServer::serve(dir, store, config, None).await
    }

    /// A server whose gateway seals personal data with a vault under `master`, in `dir`
    /// (a new temporary directory when `None`).
    pub async fn start_sealed(master: &MasterKey, dir: Option<tempfile::TempDir>) -> TestServer {
        let dir = dir.unwrap_or_else(|| tempfile::tempdir().expect("temp dir"));
        let store = Store::open(dir.path()).expect("open store");
        let vault = Vault::unlock(store.db(), dir.path().join("vault.kek"), master.clone())
            .expect("unlock vault");
        TestServer::serve(dir, store, GatewayConfig::default(), Some(vault)).await
    }

    async fn serve(
        dir: tempfile::TempDir,
        store: Store,
        config: GatewayConfig,
        vault: Option<Vault>,
    ) -> TestServer {
        let projections = Arc::new(
            Projections::start_with_vault(store.clone(), vault.clone()).expect("projections"),
        );
        let gateway = match &vault {
            Some(vault) => Gateway::with_vault(
                store.clone(),
                Arc::clone(&projections),
                config,
                vault.clone(),
            ),
            None => Gateway::new(store.clone(), Arc::clone(&projections), config),
        }
        .expect("gateway");
        gateway.set_ready(true);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = gateway.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        TestServer {
            url: format!("http://{addr}"),
            gateway,
            store,
            projections,
            http: reqwest::Client::new(),
            vault,
            _dir: dir,
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A new token of `role` in workspace `ws`.
    pub fn token(&self, ws: Uuid, role: Role) -> String {
        self.gateway
            .tokens()
            .create(ws, role, "test", Vec::new(), 0)
            .expect("create token")
            .1
    }

    /// A new app token with exactly `scopes`.
    pub fn app_token(&self, ws: Uuid, scopes: Vec<Permission>) -> String {
        self.gateway
            .tokens()
            .create(ws, Role::App, "app", scopes, 0)
            .expect("create token")
            .1
    }

    /// Posts a GraphQL request and returns (HTTP status, JSON body).
    pub async fn post(&self, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}/graphql", self.url)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Runs a query and returns the whole response body.
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        self.post(
            Some(token),
            json!({ "query": query, "variables": variables }),
        )
        .await
        .1
    }

    /// Runs a query that must succeed and returns `data`.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(
            body.get("errors").is_none(),
            "unexpected errors: {body:#}\nquery: {query}"
        );
        body["data"].clone()
    }

    /// The log's durable head.
    pub fn head(&self) -> u64 {
        self.store.head_position()
    }
}

/// The `extensions.code` of the first error.
pub fn code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<no code>")
        .to_owned()
}

/// A fresh workspace id.
pub fn workspace() -> Uuid {
    Uuid::now_v7()
}

pub const REGISTER: &str = r#"
mutation($input: RegisterCustomerInput!) {
  registerCustomer(input: $input) {
    clientMutationId version position replayed
    customer { id reference displayName language timeZone version
               contactPoints { kind value } timeline { totalCount } }
  }
}"#;

/// Registers a customer and returns their id.
pub async fn register(server: &TestServer, token: &str, reference: &str) -> String {
    let data = server
        .ok(
            token,
            REGISTER,
            json!({ "input": {
                "reference": reference,
                "displayName": "Amina Haddad",
                "language": "ar",
                "timeZone": "Asia/Riyadh",
                "contactPoints": [{ "kind": "EMAIL", "value": "Amina@Example.com" }]
            }}),
        )
        .await;
    data["registerCustomer"]["customer"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}
