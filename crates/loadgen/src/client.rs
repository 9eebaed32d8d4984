//! Owns talking GraphQL over HTTP to the server: one POST per operation with
//! the bearer token, and the error code of a failed answer.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::{json, Value};

/// A GraphQL-over-HTTP client for one token and one or more servers (nodes sharing a
/// PostgreSQL log), which it takes turns sending requests to.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    urls: Arc<[String]>,
    next: Arc<AtomicUsize>,
    /// With several nodes: the highest position a write returned, sent as
    /// `x-sijil-min-position` so a request on another node sees every acknowledged write.
    seen: Arc<AtomicU64>,
    token: String,
}

/// Why an operation failed: its `extensions.code`, `HTTP_<status>` or
/// `TRANSPORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl Client {
    /// A client for `bases` (e.g. `http://127.0.0.1:8080`; several: one request each in
    /// turn).
    pub fn new(bases: &[String], token: &str) -> anyhow::Result<Client> {
        anyhow::ensure!(!bases.is_empty(), "--url needs at least one address");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Client {
            http,
            urls: bases
                .iter()
                .map(|base| format!("{}/graphql", base.trim_end_matches('/')))
                .collect(),
            next: Arc::new(AtomicUsize::new(0)),
            seen: Arc::new(AtomicU64::new(0)),
            token: token.to_string(),
        })
    }

    /// Runs `query` with `variables`; returns `data` and how long it took.
    pub async fn run(&self, query: &str, variables: Value) -> (Result<Value, Failure>, Duration) {
        let (result, took) = self.run_as::<Value>(query, variables).await;
        if let (Ok(data), true) = (&result, self.urls.len() > 1) {
            if let Some(position) = written_position(data) {
                self.seen.fetch_max(position, Ordering::AcqRel);
            }
        }
        (result, took)
    }

    /// Runs `query` with `variables` and reads `data` straight into `T` (no `Value` tree:
    /// fields `T` does not name are skipped without being kept, which makes a page of 50
    /// timeline entries several times cheaper to read than as a `Value`; the load tool shares
    /// the cores with the server it measures). Failures as [`read`] gives them.
    pub async fn run_as<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
    ) -> (Result<T, Failure>, Duration) {
        let start = Instant::now();
        let mut request = self
            .http
            .post(&self.urls[self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len()])
            .bearer_auth(&self.token);
        let seen = self.seen.load(Ordering::Acquire);
        if self.urls.len() > 1 && seen > 0 {
            request = request.header("x-sijil-min-position", seen.to_string());
        }
        let sent = request
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await;
        let result = match sent {
            Err(_) => Err(Failure("TRANSPORT".into())),
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Err(_) => Err(Failure("TRANSPORT".into())),
                    Ok(body) => read(status, &body),
                }
            }
        };
        (result, start.elapsed())
    }
}

/// A GraphQL answer: `data` read as `T`, and the error codes.
#[derive(Deserialize)]
struct Answer<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<AnswerError>,
}

#[derive(Deserialize)]
struct AnswerError {
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct Extensions {
    code: Option<String>,
}

/// The `position` a mutation's payload returned (`data.<mutation>.position`), if any.
fn written_position(data: &Value) -> Option<u64> {
    data.as_object()?
        .values()
        .filter_map(|payload| payload.get("position").and_then(Value::as_u64))
        .max()
}

/// `data` of an answer as `T`, or the code of its first error (also when `data` is not of
/// the shape `T` describes, as a failed field can leave it).
fn read<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, Failure> {
    match serde_json::from_slice::<Answer<T>>(body) {
        Ok(answer) => outcome(status, answer),
        Err(_) => Err(serde_json::from_slice::<Answer<IgnoredAny>>(body)
            .ok()
            .and_then(|answer| first_error(status, answer.errors))
            .unwrap_or_else(|| Failure(format!("HTTP_{status}")))),
    }
}

/// `data` of a successful answer, or the code of its first error.
fn outcome<T>(status: u16, answer: Answer<T>) -> Result<T, Failure> {
    if let Some(failure) = first_error(status, answer.errors) {
        return Err(failure);
    }
    answer.data.ok_or_else(|| Failure(format!("HTTP_{status}")))
}

/// The first error's `extensions.code` (`HTTP_<status>` when it has none), if there are errors.
fn first_error(status: u16, errors: Vec<AnswerError>) -> Option<Failure> {
    let first = errors.into_iter().next()?;
    Some(Failure(
        first
            .extensions
            .and_then(|e| e.code)
            .unwrap_or_else(|| format!("HTTP_{status}")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mutation_payload_gives_its_position() {
        assert_eq!(
            written_position(&json!({"recordInteraction": {"position": 42}})),
            Some(42)
        );
        assert_eq!(written_position(&json!({"customer": {"id": "x"}})), None);
        assert_eq!(written_position(&json!([1, 2])), None);
    }

    fn answer<T: DeserializeOwned>(body: Value) -> Answer<T> {
        serde_json::from_value(body).expect("an answer")
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Strict {
        a: u64,
    }

    #[test]
    fn an_answer_is_read_into_the_shape_asked_for_or_gives_its_code() {
        let read_strict = |status, body: Value| read::<Strict>(status, body.to_string().as_bytes());
        assert_eq!(
            read_strict(200, json!({"data": {"a": 7, "b": [1]}})),
            Ok(Strict { a: 7 })
        );
        // data of another shape: the error's code when there is one, else the status
        let failed_field = json!({"errors": [{"message": "x", "extensions": {"code": "NOT_FOUND"}}], "data": {"a": null}});
        assert_eq!(
            read_strict(200, failed_field),
            Err(Failure("NOT_FOUND".into()))
        );
        assert_eq!(
            read_strict(200, json!({"data": {"a": "seven"}})),
            Err(Failure("HTTP_200".into()))
        );
        assert_eq!(
            read::<Strict>(502, b"<html>bad gateway</html>"),
            Err(Failure("HTTP_502".into()))
        );
    }

    #[test]
    fn first_error_code_wins_and_data_is_returned() {
        let body = json!({"errors": [{"message": "x", "extensions": {"code": "CONFLICT"}}, {"message": "y", "extensions": {"code": "NOT_FOUND"}}], "data": null});
        assert_eq!(
            outcome(200, answer::<Value>(body)),
            Err(Failure("CONFLICT".into()))
        );
        let body = json!({"errors": [{"message": "no code"}], "data": {"a": 1}});
        assert_eq!(
            outcome(400, answer::<Value>(body)),
            Err(Failure("HTTP_400".into()))
        );
        let body = json!({"data": {"a": 1}});
        assert_eq!(outcome(200, answer::<Value>(body)), Ok(json!({"a": 1})));
        assert_eq!(
            outcome(413, answer::<Value>(json!({}))),
            Err(Failure("HTTP_413".into()))
        );
        assert_eq!(
            outcome(200, answer::<Value>(json!({"data": null}))),
            Err(Failure("HTTP_200".into()))
        );
    }
}
