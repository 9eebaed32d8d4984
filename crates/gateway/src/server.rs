//! The HTTP surface: `POST/GET /graphql` (GraphQL over HTTP, JSON), GraphiQL on a browser's
//! GET, graphql-ws and graphql-transport-ws at `/graphql/ws`, `/healthz`, `/readyz` and
//! Prometheus `/metrics`. Authenticates every GraphQL request, applies the body limit, the
//! per-token rate limit and the request timeout, and gives every error a typed code.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::http::graphiql_source;
use async_graphql::{Data, ErrorExtensions};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tracing::Instrument;

use crate::auth::{AuthError, Principal, TokenStore};
use crate::error::{ApiError, ErrorCode};
use crate::executor::ServedSchema;
use crate::limits::{GatewayConfig, RateLimiter};
use crate::subscription_limits::ConnectionSubscriptions;
use crate::telemetry::Telemetry;

/// Everything the HTTP layer needs.
#[derive(Clone)]
pub struct HttpState {
    pub schema: ServedSchema,
    pub tokens: TokenStore,
    pub telemetry: Telemetry,
    pub limiter: Arc<RateLimiter>,
    pub config: GatewayConfig,
    /// Whether the read models have caught up with the log (for `/readyz`).
    pub ready: Arc<dyn Fn() -> bool + Send + Sync>,
    /// The handles requests run against (for waiting on `x-sijil-min-position`).
    pub shared: Arc<crate::context::Shared>,
    /// Documents parsed before, by query text.
    pub queries: Arc<crate::query_cache::QueryCache>,
}

/// Request header: answer only once this node's read models hold the caller's workspace up
/// to this (workspace-local) position, e.g. the `position` a mutation on another node
/// returned. Waits at most the read-your-writes timeout, then refuses with `NOT_CAUGHT_UP`
/// (HTTP 503, safe to retry).
pub const MIN_POSITION_HEADER: &str = "x-sijil-min-position";

/// The `x-sijil-min-position` of a request: `Ok(None)` when absent.
fn min_position(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(MIN_POSITION_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::validation(
                format!("{MIN_POSITION_HEADER} must be a workspace-local position (0 or more)"),
                "BAD_MIN_POSITION",
            )
        })
}

/// Waits for `x-sijil-min-position`, if sent; the refusal to send otherwise.
async fn await_min_position(
    state: &HttpState,
    headers: &HeaderMap,
    principal: &Principal,
    started: Instant,
) -> Result<(), Response> {
    let wanted = match min_position(headers) {
        Ok(None) => return Ok(()),
        Ok(Some(p)) => p,
        Err(e) => return Err(refuse(state, started, StatusCode::BAD_REQUEST, e)),
    };
    let Ok(ws) = sijil_domain::WorkspaceId::new(principal.workspace_id) else {
        return Ok(());
    };
    let timeout = state.config.read_your_writes_timeout;
    match crate::schema::positions::caught_up_to(&state.shared, ws, wanted, timeout).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(refuse(
            state,
            started,
            StatusCode::SERVICE_UNAVAILABLE,
            ApiError::validation(
                format!(
                    "this node has not caught up with position {wanted} within {} ms; retry",
                    timeout.as_millis()
                ),
                "NOT_CAUGHT_UP",
            ),
        )),
        Err(e) => Err(refuse(
            state,
            started,
            StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::internal(e.message),
        )),
    }
}

/// Builds the router.
pub fn router(state: HttpState) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn readyz(State(state): State<HttpState>) -> Response {
    if (state.ready)() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "catching up").into_response()
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.telemetry.render(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
}

async fn graphql_get(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if params.query.is_none() && wants_html {
        return Html(graphiql_source("/graphql", Some("/graphql/ws"))).into_response();
    }
    let started = Instant::now();
    let principal = match admit(&state, &headers, started) {
        Ok(p) => p,
        Err(response) => return response,
    };
    if let Err(response) = await_min_position(&state, &headers, &principal, started).await {
        return response;
    }
    let Some(query) = params.query else {
        return refuse(
            &state,
            started,
            StatusCode::BAD_REQUEST,
            ApiError::validation("a GET request needs a `query` parameter", "MISSING_QUERY"),
        );
    };
    let mut request = async_graphql::Request::new(query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(vars) = params.variables.filter(|v| !v.trim().is_empty()) {
        match serde_json::from_str::<serde_json::Value>(&vars) {
            Ok(value) => {
                request = request.variables(async_graphql::Variables::from_json(value));
            }
            Err(e) => {
                return refuse(
                    &state,
                    started,
                    StatusCode::BAD_REQUEST,
                    ApiError::validation(format!("`variables` is not JSON: {e}"), "BAD_JSON"),
                )
            }
        }
    }
    // GET may only read: mutations are refused before execution.
    execute(state, principal, request, true, started).await
}

async fn graphql_post(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let principal = match admit(&state, &headers, started) {
        Ok(p) => p,
        Err(response) => return response,
    };
    if let Err(response) = await_min_position(&state, &headers, &principal, started).await {
        return response;
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
            let (status, err) = if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ApiError::validation(
                        format!(
                            "the request body is larger than {} bytes",
                            state.config.max_body_bytes
                        ),
                        "BODY_TOO_LARGE",
                    ),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    ApiError::validation("the request body could not be read", "BAD_BODY"),
                )
            };
            return refuse(&state, started, status, err);
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                &state,
                started,
                StatusCode::BAD_REQUEST,
                ApiError::validation(
                    format!("the body is not a GraphQL JSON request: {e}"),
                    "BAD_JSON",
                ),
            )
        }
    };
    execute(state, principal, request, false, started).await
}

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn authenticate(tokens: &TokenStore, secret: Option<&str>) -> Result<Principal, ApiError> {
    match tokens.authenticate(secret.unwrap_or("")) {
        Ok(p) => Ok(p),
        Err(AuthError::Missing | AuthError::Invalid) => Err(ApiError::Unauthenticated),
        Err(other) => Err(ApiError::internal(other)),
    }
}

/// Authenticates the caller and takes one request from their rate-limit bucket.
#[allow(clippy::result_large_err)]
fn admit(state: &HttpState, headers: &HeaderMap, started: Instant) -> Result<Principal, Response> {
    let principal = match authenticate(&state.tokens, bearer(headers)) {
        Ok(p) => p,
        Err(e) => return Err(refuse(state, started, status_for(e.code()), e)),
    };
    if let Err(wait) = state.limiter.check(principal.token_id) {
        let e = ApiError::RateLimited {
            retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        };
        return Err(refuse(state, started, StatusCode::TOO_MANY_REQUESTS, e));
    }
    Ok(principal)
}

fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Validation => StatusCode::BAD_REQUEST,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    }
}

/// Answers a request refused before execution, counting it.
fn refuse(state: &HttpState, started: Instant, status: StatusCode, err: ApiError) -> Response {
    let code = err.code().as_str();
    state.telemetry.record("http", code, started.elapsed());
    tracing::info!(outcome = code, status = status.as_u16(), "request refused");
    error_response(status, err)
}

fn error_response(status: StatusCode, err: ApiError) -> Response {
    let gql = err.extend();
    let body = serde_json::json!({
        "data": null,
        "errors": [{ "message": gql.message, "extensions": gql.extensions }],
    });
    (status, axum::Json(body)).into_response()
}

async fn execute(
    state: HttpState,
    principal: Principal,
    mut request: async_graphql::Request,
    read_only: bool,
    started: Instant,
) -> Response {
    state.queries.prepare(&mut request);
    let kind = match request.parsed_query() {
        Ok(doc) => {
            let mutation = doc
                .operations
                .iter()
                .any(|(_, op)| op.node.ty == async_graphql::parser::types::OperationType::Mutation);
            if mutation && read_only {
                let e =
                    ApiError::validation("mutations must be sent with POST", "MUTATION_OVER_GET");
                return refuse(&state, started, StatusCode::METHOD_NOT_ALLOWED, e);
            }
            if mutation {
                "mutation"
            } else {
                "query"
            }
        }
        Err(_) => "query",
    };
    if !state.config.introspection {
        request = request.disable_introspection();
    }
    let request_id = uuid::Uuid::now_v7();
    let span = tracing::info_span!(
        "graphql",
        %request_id,
        token = %principal.token_id,
        workspace = %principal.workspace_id,
        kind
    );
    let request = request.data(principal);
    let timeout = state.config.request_timeout;
    let schema = state.schema.clone();
    let run = async move { tokio::time::timeout(timeout, schema.execute(request)).await }
        .instrument(span.clone());
    let response = match run.await {
        Ok(r) => r,
        Err(_) => {
            let e = ApiError::validation(
                format!(
                    "the request ran longer than {} ms and was stopped",
                    timeout.as_millis()
                ),
                "TIMEOUT",
            );
            state.telemetry.record(kind, "TIMEOUT", started.elapsed());
            return error_response(StatusCode::SERVICE_UNAVAILABLE, e);
        }
    };
    let outcome = response
        .errors
        .first()
        .and_then(|e| e.extensions.as_ref())
        .and_then(|x| x.get("code"))
        .map(|v| v.to_string().trim_matches('"').to_owned())
        .unwrap_or_else(|| "ok".to_owned());
    state.telemetry.record(kind, &outcome, started.elapsed());
    span.in_scope(|| {
        tracing::info!(
            elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            %outcome,
            "request"
        );
    });
    let mut http = axum::Json(response).into_response();
    if let Ok(value) = header::HeaderValue::from_str(&request_id.to_string()) {
        http.headers_mut().insert("x-request-id", value);
    }
    http
}

/// Read buffer of a WebSocket connection. tungstenite zero-fills the free part of this buffer
/// on every read of the socket, and a subscription connection's socket is read each time the
/// connection task wakes (for every message it sends); at the default 128 KiB that memset was
/// ~11 % of the server's CPU under the `subscribe` load. Clients send only small messages
/// (`connection_init`, `subscribe`, `ping`); a larger frame still arrives whole, the buffer
/// grows for it.
const WS_READ_BUFFER: usize = 8 * 1024;

async fn graphql_ws(
    State(state): State<HttpState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = crate::websocket::protocol(&headers) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let header_token = bearer(&headers).map(str::to_owned);
    let tokens = state.tokens.clone();
    let schema = state.schema.clone();
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(WS_READ_BUFFER)
        .on_upgrade(move |socket| async move {
            crate::websocket::serve(socket, schema, protocol, move |payload| async move {
                let from_payload = payload
                    .get("authorization")
                    .or_else(|| payload.get("Authorization"))
                    .and_then(|v| v.as_str())
                    .map(|s| {
                        s.trim_start_matches("Bearer ")
                            .trim_start_matches("bearer ")
                            .to_owned()
                    })
                    .or_else(|| {
                        payload
                            .get("token")
                            .and_then(|v| v.as_str())
                            .map(str::to_owned)
                    });
                let secret = from_payload.or(header_token);
                let principal = authenticate(&tokens, secret.as_deref()).map_err(|e| e.extend())?;
                let mut data = Data::default();
                data.insert(principal);
                data.insert(ConnectionSubscriptions::new());
                Ok(data)
            })
            .await
        })
}
