//! End-to-end: mistakes give clear messages and exit codes, never panics — bad flags, missing
//! or unusable data directories, a bad configuration file — and settings resolve flags over
//! `SIJIL_*` variables over the TOML file. Tokens are created, listed and revoked.

mod common;

use std::process::Output;

use common::{ok, run, sijil, stderr, stdout};

fn no_panic(output: &Output) {
    assert!(!stderr(output).contains("panicked"), "{}", stderr(output));
}

#[test]
fn given_a_bad_flag_when_run_then_usage_is_printed_with_status_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(dir.path(), &["serve", "--listen", "not-an-address"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--listen"), "{}", stderr(&output));
    let output = run(dir.path(), &["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    let output = run(dir.path(), &["export", "--format", "xml"]);
    assert_eq!(output.status.code(), Some(2));
    no_panic(&output);
}

#[test]
fn given_unusable_data_directories_when_run_then_the_message_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    let output = run(&missing, &["verify"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("does not exist"),
        "{}",
        stderr(&output)
    );
    no_panic(&output);

    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a store").expect("write");
    for args in [
        &["verify"][..],
        &["serve"][..],
        &["demo", "--customers", "2"][..],
    ] {
        let output = run(&file, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains("not a directory"),
            "{}",
            stderr(&output)
        );
        no_panic(&output);
    }

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let output = run(&empty, &["export"]);
    assert!(
        stderr(&output).contains("no sijil store"),
        "{}",
        stderr(&output)
    );

    let output = run(dir.path(), &["import", "/nonexistent/backup.jsonl"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("backup.jsonl"),
        "{}",
        stderr(&output)
    );
    no_panic(&output);
}

#[test]
fn given_a_store_in_use_when_another_command_opens_it_then_it_is_told_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = common::Server::start(&data, &[]);
    let output = run(&data, &["token", "list"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("in use"), "{}", stderr(&output));
    no_panic(&output);
    drop(server);
}

#[test]
fn given_a_config_file_when_serving_then_flags_beat_variables_beat_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sijil.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:1\"\nlog = \"warn\"\n").expect("write");
    let data = dir.path().join("data");
    let config = config.to_str().expect("utf-8");

    // Given the file's listen address (port 1, which a test cannot use) and SIJIL_LISTEN, the
    // variable wins; given --data and SIJIL_DATA, the flag wins.
    let mut child = sijil(&data)
        .args(["--config", config, "serve"])
        .env("SIJIL_LISTEN", "127.0.0.1:0")
        .env("SIJIL_DATA", dir.path().join("ignored"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = child.stdout.take().expect("stdout");
    let mut reader = std::io::BufReader::new(out);
    let mut line = String::new();
    let listening = loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut reader, &mut line).expect("read");
        if n == 0 {
            break None;
        }
        if line.starts_with("sijil listening on ") {
            break Some(line.clone());
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let listening = listening.expect("serve listens");
    assert!(
        listening.starts_with("sijil listening on http://127.0.0.1:"),
        "{listening}"
    );
    assert!(!listening.contains("127.0.0.1:1/"), "{listening}");
    assert!(data.join("db").exists());
    assert!(!dir.path().join("ignored").exists());

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "lisen = \"x\"\n").expect("write");
    let output = run(&data, &["--config", bad.to_str().expect("utf-8"), "verify"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("bad.toml"), "{}", stderr(&output));
}

#[test]
fn serve_help_documents_every_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let help = ok(dir.path(), &["serve", "--help"]);
    for setting in [
        "SIJIL_DATA",
        "SIJIL_CONFIG",
        "SIJIL_LOG",
        "SIJIL_LISTEN",
        "SIJIL_DEMO",
        "SIJIL_DEMO_CUSTOMERS",
        "SIJIL_MAX_DEPTH",
        "SIJIL_MAX_COMPLEXITY",
        "SIJIL_MAX_PAGE",
        "SIJIL_MAX_BODY_BYTES",
        "SIJIL_REQUEST_TIMEOUT_MS",
        "SIJIL_INTROSPECTION",
        "SIJIL_RATE_PER_SECOND",
        "SIJIL_RATE_BURST",
        "SIJIL_SLA_INTERVAL_MS",
        "SIJIL_CACHE_MB",
        "SIJIL_WORKSPACE",
        "SIJIL_MASTER_KEY_FILE",
        ".master-key",
    ] {
        assert!(
            help.contains(setting),
            "serve --help lacks {setting}:\n{help}"
        );
    }
}

#[test]
fn given_tokens_when_created_listed_and_revoked_then_each_step_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let workspace = "01924fad-2400-7e14-b9cd-fa74ba37dac5";
    let created = ok(
        &data,
        &[
            "token",
            "create",
            "--workspace",
            workspace,
            "--role",
            "supervisor",
            "--name",
            "night lead",
        ],
    );
    assert!(created.contains("secret:    sjl_"), "{created}");
    let id = created
        .lines()
        .find_map(|l| l.strip_prefix("token id:"))
        .map(|s| s.trim().to_owned())
        .expect("token id");
    let listed = ok(&data, &["token", "list"]);
    assert!(listed.contains(&id) && listed.contains("night lead") && listed.contains("active"));
    assert!(!listed.contains("sjl_"), "secrets are never listed");
    ok(&data, &["token", "revoke", &id]);
    assert!(ok(&data, &["token", "list"]).contains("revoked"));

    let bad_role = run(
        &data,
        &[
            "token",
            "create",
            "--workspace",
            workspace,
            "--role",
            "boss",
        ],
    );
    assert_eq!(bad_role.status.code(), Some(1));
    assert!(stderr(&bad_role).contains("not a role"));
    let not_v7 = run(
        &data,
        &[
            "token",
            "create",
            "--workspace",
            "00000000-0000-4000-8000-000000000000",
            "--role",
            "agent",
        ],
    );
    assert!(stderr(&not_v7).contains("UUID v7"), "{}", stderr(&not_v7));
    let app = run(
        &data,
        &["token", "create", "--workspace", workspace, "--role", "app"],
    );
    assert!(stderr(&app).contains("--scopes"));
    let scoped = ok(
        &data,
        &[
            "token",
            "create",
            "--workspace",
            workspace,
            "--role",
            "app",
            "--scopes",
            "READ_CUSTOMERS,record_interactions",
        ],
    );
    assert!(scoped.contains("scopes:"), "{scoped}");
    assert!(stdout(&run(
        &data,
        &["token", "revoke", "01924fad-2400-7e14-b9cd-fa74ba37dac6"]
    ))
    .is_empty());
}
