//! The workspace master key at startup: `sijil master-key` makes one, `serve` seals personal
//! data with it, and a store that seals personal data refuses to start without its key, with
//! a wrong key or with a malformed one, saying which, instead of serving ciphertext. A new
//! store started without a key gets one in a key file beside its data directory, and every
//! store seals. `export --keys` / `import --keys` move the data keys with the log.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

fn write_key(dir: &Path, name: &str, hex: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{hex}\n")).expect("write key file");
    path.to_string_lossy().into_owned()
}

/// Serves one request, so the server's shutdown handler is surely installed, then stops it.
fn stop(mut server: Server) {
    let address = server
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("an address")
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    std::io::Write::write_all(
        &mut stream,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("request");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1"), "{answer}");
    server.terminate();
    assert!(server.wait(Duration::from_secs(30)));
}

fn serve_fails(data: &Path, key_env: Option<&str>, extra: &[&str]) -> String {
    let mut command = sijil(data);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra);
    if let Some(hex) = key_env {
        command.env("SIJIL_MASTER_KEY", hex);
    }
    let output = command.output().expect("the sijil binary runs");
    assert!(
        !output.status.success(),
        "serve started: {}",
        stdout(&output)
    );
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    stderr(&output)
}

#[test]
fn a_sealed_store_refuses_to_start_without_its_master_key() {
    // Given a master key from `sijil master-key` and a store served once with it,
    let keys = tempfile::tempdir().expect("temp dir");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let hex = ok(&data, &["master-key"]).trim().to_owned();
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    let key_file = write_key(keys.path(), "master.key", &hex);
    stop(Server::start(&data, &["--master-key-file", &key_file]));
    assert!(data.join("vault.kek").exists());

    // when it is started without a key, then it refuses and says what is missing,
    let missing = serve_fails(&data, None, &[]);
    assert!(missing.contains("no master key configured"), "{missing}");
    assert!(missing.contains("MASTER_KEY_MISSING"), "{missing}");
    // with another key, it refuses as a wrong key,
    let other = ok(&data, &["master-key"]).trim().to_owned();
    assert_ne!(other, hex);
    let wrong = serve_fails(&data, Some(&other), &[]);
    assert!(wrong.contains("wrong master key"), "{wrong}");
    assert!(wrong.contains("MASTER_KEY_WRONG"), "{wrong}");
    // with a malformed key, it says so without echoing it,
    let malformed = serve_fails(&data, Some("not-a-key-0123"), &[]);
    assert!(malformed.contains("invalid master key"), "{malformed}");
    assert!(!malformed.contains("not-a-key-0123"), "{malformed}");
    // with both forms at once, it asks for one,
    let both = serve_fails(&data, Some(&hex), &["--master-key-file", &key_file]);
    assert!(both.contains("not both"), "{both}");
    // and with its key in the environment it starts again.
    let mut command = sijil(&data);
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SIJIL_MASTER_KEY", &hex)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let out = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
    let listening = lines.any(|l| l.is_ok_and(|l| l.starts_with("sijil listening on ")));
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "serve with the right key did not listen");
}

/// The key file sijil creates beside a new data directory.
fn default_key(data: &Path) -> std::path::PathBuf {
    let mut name = data.as_os_str().to_owned();
    name.push(".master-key");
    std::path::PathBuf::from(name)
}

/// Every customer's display name as the server shows it: (customer id, name).
async fn served_names(server: &Server) -> Vec<(String, String)> {
    let token = server.token.clone().expect("an admin token on first start");
    let data = graphql(
        &reqwest::Client::new(),
        &server.url,
        &token,
        "{ allEvents(first: 200, types: [\"CustomerRegistered\"]) { events { payload } } }",
        serde_json::json!({}),
    )
    .await
    .expect("query");
    data["data"]["allEvents"]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events: {data}"))
        .iter()
        .map(|event| {
            let payload = &event["payload"];
            (
                payload["customer_id"].as_str().expect("id").to_owned(),
                payload["display_name"].as_str().expect("name").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_store_gets_a_key_file_beside_it_seals_and_needs_that_file_from_then_on() {
    // Given a new data directory and no master key configured anywhere,
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let key = default_key(&data);
    // when `serve --demo` starts on it,
    let server = Server::start(&data, &["--demo", "--demo-customers", "8"]);
    // then it announces a new key file beside (not inside) the data directory, owner-only,
    let announced: Vec<&String> = server
        .printed
        .iter()
        .filter(|l| l.starts_with("master key created in "))
        .collect();
    assert_eq!(announced.len(), 1, "{:?}", server.printed);
    assert!(
        announced[0].contains(&key.display().to_string()),
        "{}",
        announced[0]
    );
    assert!(
        announced[0].contains("apart from backups"),
        "{}",
        announced[0]
    );
    let hex = std::fs::read_to_string(&key).expect("the key file exists");
    assert_eq!(hex.trim().len(), 64);
    assert!(hex.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(data.join("vault.kek").exists(), "the store seals");
    // and serves the customers' names in clear to the API,
    let names = served_names(&server).await;
    assert!(names.len() >= 8);
    stop(server);
    // while the data directory (flushed, sled files included) holds none of them.
    let bytes = all_bytes(&data);
    for (_, name) in names.iter().filter(|(_, name)| name != "[erased]") {
        assert!(!holds(&bytes, name), "`{name}` is on disk");
    }
    // A second start finds the key file by itself, announces nothing and reads the names.
    let server = Server::start(&data, &[]);
    assert!(
        !server
            .printed
            .iter()
            .any(|l| l.starts_with("master key created")),
        "{:?}",
        server.printed
    );
    stop(server);
    let verified = ok(&data, &["verify"]);
    assert!(
        verified.contains("projection directory: matches"),
        "{verified}"
    );
    // Without the key file, every command that needs it refuses, naming the file, and no new
    // key is made.
    let moved = dir.path().join("elsewhere.key");
    std::fs::rename(&key, &moved).expect("move the key away");
    let refused = serve_fails(&data, None, &[]);
    assert!(refused.contains("no master key configured"), "{refused}");
    assert!(refused.contains("MASTER_KEY_MISSING"), "{refused}");
    assert!(refused.contains(&key.display().to_string()), "{refused}");
    assert!(!key.exists(), "no new key replaces a lost one");
    for args in [&["demo", "--customers", "2"][..], &["rebuild"][..]] {
        let output = run(&data, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(stderr(&output).contains("MASTER_KEY_MISSING"), "{args:?}");
    }
    assert!(!key.exists());
    // A key file holding another key is refused as the wrong key,
    std::fs::write(&key, format!("{}\n", ok(&data, &["master-key"]).trim())).expect("write");
    let wrong = serve_fails(&data, None, &[]);
    assert!(wrong.contains("MASTER_KEY_WRONG"), "{wrong}");
    assert!(wrong.contains("default key file"), "{wrong}");
    // and the right one, named explicitly, works.
    std::fs::remove_file(&key).expect("remove");
    let moved = moved.to_str().expect("utf-8").to_owned();
    stop(Server::start(&data, &["--master-key-file", &moved]));
}

#[test]
fn only_an_explicit_unsealed_demo_writes_personal_data_in_clear() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let said = ok(&data, &["demo", "--customers", "3", "--unsealed"]);
    assert!(said.contains("--unsealed"), "{said}");
    assert!(!data.join("vault.kek").exists());
    assert!(!default_key(&data).exists());
    // A sealing store refuses it.
    let sealed = dir.path().join("sealed");
    ok(&sealed, &["demo", "--customers", "3"]);
    let output = run(&sealed, &["demo", "--customers", "3", "--unsealed"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--unsealed needs"),
        "{}",
        stderr(&output)
    );
}

/// A registration in an export: customer id, display name, contact values.
type Person = (String, String, Vec<String>);

/// Every registration in an export, and the ids of forgotten customers.
fn people(export: &str) -> (Vec<Person>, Vec<String>) {
    let mut registered = Vec::new();
    let mut forgotten = Vec::new();
    for line in export.lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("an export line");
        let payload = &event["payload"];
        let id = payload["customer_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match event["event_type"].as_str() {
            Some("CustomerRegistered") => registered.push((
                id,
                payload["display_name"].as_str().expect("name").to_owned(),
                payload["contact_points"]
                    .as_array()
                    .expect("points")
                    .iter()
                    .map(|p| p["value"].as_str().expect("value").to_owned())
                    .collect(),
            )),
            Some("CustomerForgotten") => forgotten.push(id),
            _ => {}
        }
    }
    (registered, forgotten)
}

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

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_demo_keeps_no_personal_text_on_disk_and_shreds_its_forgotten_customer() {
    // Given the same demo written once in clear (explicitly) and once with a master key,
    let dir = tempfile::tempdir().expect("temp dir");
    let (plain, sealed) = (dir.path().join("plain"), dir.path().join("sealed"));
    let key_file = write_key(dir.path(), "master.key", &ok(&plain, &["master-key"]));
    ok(&plain, &["demo", "--customers", "8", "--unsealed"]);
    ok(
        &sealed,
        &["demo", "--customers", "8", "--master-key-file", &key_file],
    );
    let (registered, forgotten) = people(&ok(&plain, &["export"]));
    assert_eq!(forgotten.len(), 1);
    assert!(registered.len() >= 8);
    // then the clear store holds the names, and the sealed one (sled files included) none of
    // any customer's name or contact values,
    let (plain_bytes, sealed_bytes) = (all_bytes(&plain), all_bytes(&sealed));
    let (_, first_name, _) = &registered[0];
    assert!(holds(&plain_bytes, first_name));
    for (_, name, points) in &registered {
        assert!(!holds(&sealed_bytes, name), "`{name}` is on disk");
        for value in points {
            assert!(!holds(&sealed_bytes, value), "`{value}` is on disk");
        }
    }
    // the sealed store verifies and exports,
    ok(&sealed, &["verify"]);
    let (sealed_registered, _) = people(&ok(&sealed, &["export"]));
    assert_eq!(sealed_registered.len(), registered.len());
    let before = dir.path().join("before.jsonl");
    ok(
        &sealed,
        &["export", "--out", before.to_str().expect("utf-8 path")],
    );
    // and served with its key, auditors read every customer but the forgotten one.
    let server = Server::start(&sealed, &["--master-key-file", &key_file]);
    let token = server.token.clone().expect("an admin token on first start");
    let data = graphql(
        &reqwest::Client::new(),
        &server.url,
        &token,
        "{ allEvents(first: 200, types: [\"CustomerRegistered\"]) { events { payload } } }",
        serde_json::json!({}),
    )
    .await
    .expect("query");
    let events = data["data"]["allEvents"]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events: {data}"));
    assert_eq!(events.len(), registered.len());
    for event in events {
        let payload = &event["payload"];
        let id = payload["customer_id"].as_str().expect("id");
        let (_, name, _) = registered
            .iter()
            .find(|(rid, _, _)| rid == id)
            .expect("the same customers");
        if forgotten.iter().any(|f| f == id) {
            assert_eq!(payload["display_name"], "[erased]");
        } else {
            assert_eq!(payload["display_name"].as_str(), Some(name.as_str()));
        }
    }
    // When one more customer is forgotten through the API,
    let (second, second_name, _) = registered
        .iter()
        .find(|(id, _, _)| !forgotten.contains(id))
        .expect("a customer not yet forgotten");
    let forget = graphql(
        &reqwest::Client::new(),
        &server.url,
        &token,
        "mutation($i: ForgetCustomerInput!) { forgetCustomer(input: $i) { version } }",
        serde_json::json!({ "i": { "customerId": second, "requestReference": "ERASE-9" } }),
    )
    .await
    .expect("forget");
    assert!(forget["errors"].is_null(), "{forget}");
    stop(server);
    // then the store still verifies, its name is nowhere, and exports from before and after
    // the forget both verify once imported into fresh stores.
    ok(&sealed, &["verify"]);
    assert!(!holds(&all_bytes(&sealed), second_name));
    let after = dir.path().join("after.jsonl");
    ok(
        &sealed,
        &["export", "--out", after.to_str().expect("utf-8 path")],
    );
    for (name, file) in [("from-before", &before), ("from-after", &after)] {
        let copy = dir.path().join(name);
        ok(&copy, &["import", file.to_str().expect("utf-8 path")]);
        ok(&copy, &["verify"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_exported_with_the_log_open_it_elsewhere_and_forgotten_customers_stay_erased() {
    // Given a sealed demo store (its key in the default key file; the demo forgets one
    // customer) and the same demo in clear to know the names,
    let dir = tempfile::tempdir().expect("temp dir");
    let (source, plain) = (dir.path().join("source"), dir.path().join("plain"));
    ok(&source, &["demo", "--customers", "8"]);
    ok(&plain, &["demo", "--customers", "8", "--unsealed"]);
    let (registered, forgotten) = people(&ok(&plain, &["export"]));
    assert_eq!(forgotten.len(), 1);
    let key = default_key(&source);
    let key = key.to_str().expect("utf-8");
    // when its log and keys are exported,
    let log = dir.path().join("log.jsonl");
    let bundle = dir.path().join("keys.bundle");
    let (log, bundle) = (
        log.to_str().expect("utf-8"),
        bundle.to_str().expect("utf-8"),
    );
    let output = run(&source, &["export", "--out", log, "--keys", bundle]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("customer keys"),
        "{}",
        stderr(&output)
    );
    let sealed_bundle = std::fs::read(bundle).expect("bundle");
    let hex = std::fs::read_to_string(key).expect("key");
    assert!(
        !holds(&sealed_bundle, hex.trim()),
        "the bundle does not hold the master key"
    );
    // then importing them into an empty directory with another master key is refused and
    // writes nothing,
    let target = dir.path().join("target");
    let other = write_key(dir.path(), "other.key", &ok(&source, &["master-key"]));
    let output = run(
        &target,
        &["--master-key-file", &other, "import", log, "--keys", bundle],
    );
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(said.contains("nothing was written"), "{said}");
    assert!(said.contains("KEY_BUNDLE_WRONG_MASTER_KEY"), "{said}");
    assert!(!target.exists(), "nothing was written");
    // as is importing them with no master key at all (none is made up for a bundle),
    let output = run(&target, &["import", log, "--keys", bundle]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("MASTER_KEY_MISSING"),
        "{}",
        stderr(&output)
    );
    assert!(!target.exists() && !default_key(&target).exists());
    // a plain import says the personal data will not be readable without the keys,
    let bare = dir.path().join("bare");
    let output = run(&bare, &["import", log]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("--keys"), "{}", stderr(&output));
    // such a store is refused rather than given a new key that could never open it, and
    // importing the keys afterwards (the events are already there) makes it whole.
    let refused = serve_fails(&bare, None, &[]);
    assert!(refused.contains("imported without them"), "{refused}");
    assert!(!default_key(&bare).exists());
    let keyed = ok(
        &bare,
        &["--master-key-file", key, "import", log, "--keys", bundle],
    );
    assert!(keyed.contains("imported keys:"), "{keyed}");
    assert!(keyed.contains("nothing to import"), "{keyed}");
    let verified = ok(&bare, &["--master-key-file", key, "verify"]);
    assert!(
        verified.contains("projection directory: matches"),
        "{verified}"
    );
    // and with the source's master key it is imported, and served there every customer's
    // name reads as it was, but the forgotten customer's, which stays erased.
    let imported = ok(
        &target,
        &["--master-key-file", key, "import", log, "--keys", bundle],
    );
    assert!(imported.contains("imported keys:"), "{imported}");
    let server = Server::start(&target, &["--master-key-file", key]);
    let names = served_names(&server).await;
    stop(server);
    assert_eq!(names.len(), registered.len());
    let mut readable = 0;
    for (id, shown) in &names {
        let (_, name, _) = registered
            .iter()
            .find(|(rid, _, _)| rid == id)
            .expect("the same customers");
        if forgotten.contains(id) {
            assert_eq!(shown, "[erased]");
        } else {
            assert_eq!(shown, name);
            readable += 1;
        }
    }
    assert!(readable >= 7, "{names:?}");
    let verified = ok(&target, &["--master-key-file", key, "verify"]);
    assert!(verified.contains("verify: OK"), "{verified}");
    // The imported store holds none of the names on disk either.
    let bytes = all_bytes(&target);
    for (_, name, _) in &registered {
        assert!(!holds(&bytes, name), "`{name}` is on disk");
    }
}
