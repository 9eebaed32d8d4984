//! Drives the real `sijil serve` (demo data, random port) with `sijil-load` in every scenario
//! and checks the JSON reports: each scenario did real work and met no unexpected error.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `sijil` binary next to `sijil-load`, built on demand when this package is tested alone.
fn sijil_binary() -> PathBuf {
    let load = PathBuf::from(env!("CARGO_BIN_EXE_sijil-load"));
    let sijil = load.with_file_name(format!("sijil{}", std::env::consts::EXE_SUFFIX));
    if !sijil.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "sijil", "--bin", "sijil"])
            .status()
            .expect("run cargo build -p sijil");
        assert!(status.success(), "cargo build -p sijil failed");
    }
    assert!(sijil.exists(), "no sijil binary at {}", sijil.display());
    sijil
}

struct Server {
    child: Child,
    url: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path) -> Server {
    let mut child = Command::new(sijil_binary())
        .args([
            "serve",
            "--demo",
            "--demo-customers",
            "40",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--log", "warn", "--data"])
        .arg(data)
        .env("SIJIL_MASTER_KEY", "5a".repeat(32))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sijil serve");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut url, mut token) = (None, None);
    while url.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = receiver
            .recv_timeout(left)
            .expect("serve printed its address in time");
        if let Some(at) = line.find("sjl_") {
            token = Some(
                line[at..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            );
        }
        if let Some(at) = line.find("listening on http://") {
            let rest = &line[at + "listening on ".len()..];
            let address = rest.split_whitespace().next().unwrap_or("");
            url = Some(address.trim_end_matches("/graphql").to_string());
        }
    }
    Server {
        child,
        url: url.expect("url"),
        token: token.expect("a new store prints an admin token"),
    }
}

fn load(server: &Server, scenario: &str, out: &Path, extra: &[&str]) -> Value {
    let status = Command::new(env!("CARGO_BIN_EXE_sijil-load"))
        .args([
            "--url",
            &server.url,
            "--token",
            &server.token,
            "--scenario",
            scenario,
        ])
        .args(["--clients", "4", "--duration", "2", "--server-pid"])
        .arg(server.child.id().to_string())
        .arg("--json")
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .status()
        .expect("run sijil-load");
    assert!(status.success(), "sijil-load {scenario} failed");
    serde_json::from_slice(&std::fs::read(out).expect("json report")).expect("valid json")
}

fn count(report: &Value, op: &str) -> u64 {
    report["ops"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["op"] == op)
        .and_then(|o| o["count"].as_u64())
        .unwrap_or(0)
}

fn unexpected_errors(report: &Value) -> Vec<String> {
    report["errors"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(code, _)| code.as_str() != "CONFLICT (retried)")
        .map(|(code, n)| format!("{code}={n}"))
        .collect()
}

#[test]
fn every_scenario_runs_against_a_real_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = serve(&dir.path().join("data"));
    let out = dir.path().join("report.json");

    let timeline = load(&server, "timeline", &out, &[]);
    assert!(count(&timeline, "timeline page") > 0, "{timeline}");
    assert_eq!(unexpected_errors(&timeline), Vec::<String>::new());
    assert!(timeline["server_rss_kib"].as_u64().unwrap_or(0) > 0);
    // The clients on one thread (the runtime is then a current-thread one).
    let one_thread = load(&server, "timeline", &out, &["--threads", "1"]);
    assert!(count(&one_thread, "timeline page") > 0, "{one_thread}");
    assert_eq!(unexpected_errors(&one_thread), Vec::<String>::new());

    let write = load(&server, "write", &out, &[]);
    assert!(count(&write, "record interaction") > 0, "{write}");
    assert!(count(&write, "open case") > 0, "{write}");
    assert_eq!(count(&write, "open case"), count(&write, "resolve case"));
    assert_eq!(unexpected_errors(&write), Vec::<String>::new());

    let mixed = load(&server, "mixed", &out, &[]);
    assert!(count(&mixed, "timeline page") > count(&mixed, "record interaction"));
    assert_eq!(unexpected_errors(&mixed), Vec::<String>::new());

    let audit = load(&server, "audit", &out, &[]);
    assert!(count(&audit, "allEvents page") > 0, "{audit}");
    assert_eq!(unexpected_errors(&audit), Vec::<String>::new());

    // Subscribers, each setting with the operations that must flow beside the deliveries:
    // - to the log while clients write;
    // - under the agents' mixed load (the lag target's setting): reads and writes both flow,
    //   and the writes reach the subscribers;
    // - to customers' timelines, one for each of the demo's 40 customers, so the writes' new
    //   entries reach them;
    // - supervisors' queue screens: the writers open, answer and resolve cases.
    let settings: [(&[&str], &[&str]); 4] = [
        (&[], &[]),
        (
            &["--subscriber-load", "mixed"],
            &["timeline page", "record interaction"],
        ),
        (
            &["--subscribers", "40", "--subscribe-to", "timeline"],
            &["record interaction"],
        ),
        (&["--subscribe-to", "escalation"], &["open case"]),
    ];
    for (args, beside) in settings {
        let five: &[&str] = if args.contains(&"--subscribers") {
            &[]
        } else {
            &["--subscribers", "5"]
        };
        let args: Vec<&str> = five.iter().chain(args).copied().collect();
        let report = load(&server, "subscribe", &out, &args);
        for op in ["delivery lag"].iter().chain(beside) {
            assert!(count(&report, op) > 0, "{op} with {args:?}: {report}");
        }
        assert_eq!(unexpected_errors(&report), Vec::<String>::new(), "{args:?}");
    }
}
