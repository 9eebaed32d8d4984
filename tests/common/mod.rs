//! Helpers shared by the end-to-end tests: running the built `sijil` binary, reading what it
//! prints, and a running `sijil serve` that is stopped when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The built binary, with logging kept quiet unless a test asks otherwise.
pub fn sijil(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sijil"));
    command.arg("--data").arg(data).env("SIJIL_LOG", "warn");
    for (key, _) in std::env::vars() {
        if key.starts_with("SIJIL_") && key != "SIJIL_LOG" {
            command.env_remove(key);
        }
    }
    command
}

/// Runs the binary to completion.
pub fn run(data: &Path, args: &[&str]) -> Output {
    sijil(data)
        .args(args)
        .output()
        .expect("the sijil binary runs")
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs the binary and insists on success.
pub fn ok(data: &Path, args: &[&str]) -> String {
    let output = run(data, args);
    assert!(
        output.status.success(),
        "sijil {args:?} failed: {}\n{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// The `log hash: <hex> (head N)` line's hash.
pub fn log_hash(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("log hash: "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no log hash in:\n{text}"))
}

/// A running `sijil serve`, killed when dropped if still running.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub token: Option<String>,
    /// The lines printed before the `sijil listening on` line.
    pub printed: Vec<String>,
    pub lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `sijil serve` on a free port with `extra` arguments and waits until it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Server::start_logging_to(data, extra, Stdio::inherit())
    }

    /// [`Server::start`] with the server's stderr (its log) sent to `stderr`.
    pub fn start_logging_to(data: &Path, extra: &[&str], stderr: Stdio) -> Server {
        let mut child = sijil(data)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("serve starts");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut token = None;
        let mut printed = Vec::new();
        let url = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("serve prints its address; it printed {printed:?}"));
            if let Some(at) = line.find("sjl_") {
                token = line[at..].split_whitespace().next().map(str::to_owned);
            }
            if let Some(rest) = line.strip_prefix("sijil listening on ") {
                break rest
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .to_owned();
            }
            printed.push(line);
        };
        Server {
            child,
            url,
            token,
            printed,
            lines,
        }
    }

    /// Sends SIGTERM to the server process.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `limit`) and returns whether it succeeded.
    pub fn wait(&mut self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                return status.success();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "serve did not stop in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Posts a GraphQL query with the bearer token and returns the JSON answer.
pub async fn graphql(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: serde_json::Value,
) -> Result<serde_json::Value, reqwest::Error> {
    client
        .post(url)
        .bearer_auth(token)
        .json(&serde_json::json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await
}

/// Asserts that every customer of `acknowledged` (id → reference) reads back through `url`
/// with its reference.
pub async fn assert_customers_read_back(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    acknowledged: &std::collections::BTreeMap<String, String>,
) {
    const CUSTOMER: &str = "query($id: ID!) { customer(id: $id) { reference } }";
    for (id, reference) in acknowledged {
        let answer = graphql(
            client,
            url,
            token,
            CUSTOMER,
            serde_json::json!({ "id": id }),
        )
        .await
        .expect("an answer");
        assert_eq!(
            answer["data"]["customer"]["reference"],
            reference.as_str(),
            "{answer}"
        );
    }
}
