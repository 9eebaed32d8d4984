//! End-to-end: the offline data commands — `demo --unsealed` is deterministic, `export` then
//! `import` (with the keys) into an empty store gives the identical log and projections,
//! `import` is idempotent and refuses tampered or foreign logs, `verify` fails on a
//! damaged store, and `compact` shrinks the database and changes nothing it holds.

mod common;

use std::path::Path;

use common::{log_hash, ok, run, stderr, stdout, Server};

fn demo(data: &Path, customers: &str, seed: &str) -> String {
    ok(data, &["demo", "--customers", customers, "--seed", seed])
}

/// The demo with personal data in clear, the only way the same seed gives the same bytes.
fn unsealed_demo(data: &Path, customers: &str, seed: &str) -> String {
    ok(
        data,
        &[
            "demo",
            "--customers",
            customers,
            "--seed",
            seed,
            "--unsealed",
        ],
    )
}

/// The key file `demo` creates beside a new data directory.
fn key_file(data: &Path) -> String {
    let mut name = data.as_os_str().to_owned();
    name.push(".master-key");
    name.to_string_lossy().into_owned()
}

/// `verify` output without timings: log summary, projection key counts and the log hash.
fn verified(data: &Path) -> String {
    let text = ok(data, &["verify"]);
    assert!(text.contains("verify: OK"), "{text}");
    text
}

#[test]
fn given_the_same_seed_when_the_demo_runs_twice_then_the_logs_hash_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let first = log_hash(&unsealed_demo(&a, "25", "11"));
    let second = log_hash(&unsealed_demo(&b, "25", "11"));
    let other = log_hash(&unsealed_demo(&c, "25", "12"));
    assert_eq!(first, second);
    assert_ne!(first, other, "another seed gives another history");
    assert_eq!(log_hash(&verified(&a)), first);
    assert_eq!(verified(&a), verified(&b));
}

#[test]
fn given_the_demo_when_verified_then_every_part_of_the_story_is_in_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let said = demo(&data, "60", "7");
    assert!(said.contains("merged into CUST-000000"), "{said}");
    assert!(said.contains("forgotten"), "{said}");
    let export = dir.path().join("log.jsonl");
    ok(&data, &["export", "--out", export.to_str().expect("utf-8")]);
    let text = std::fs::read_to_string(&export).expect("export");
    for kind in [
        "CustomerRegistered",
        "InteractionRecorded",
        "NoteAdded",
        "CaseOpened",
        "CaseAssigned",
        "FirstResponseGiven",
        "CaseEscalated",
        "SlaBreached",
        "CaseResolved",
        "CaseClosed",
        "SurveyAnswered",
        "FollowUpScheduled",
        "AgentRegistered",
        "AgentRecognised",
        "CustomerMerged",
        "CustomerForgotten",
    ] {
        assert!(
            text.contains(&format!("\"event_type\":\"{kind}\"")),
            "the demo records {kind}"
        );
    }
    for language in [
        "\"language\":\"ar\"",
        "\"language\":\"ja\"",
        "\"language\":\"fr-FR\"",
    ] {
        assert!(text.contains(language), "customers speak {language}");
    }
    assert!(text.contains("Asia/Tokyo") || text.contains("Asia/Riyadh"));
}

#[test]
fn given_an_export_when_imported_into_an_empty_store_then_log_and_projections_are_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (source, copy, copy2) = (
        dir.path().join("s"),
        dir.path().join("c"),
        dir.path().join("m"),
    );
    demo(&source, "20", "5");
    let key = key_file(&source);
    for (format, target, file) in [("jsonl", &copy, "log.jsonl"), ("msgpack", &copy2, "log.mp")] {
        let path = dir.path().join(file);
        let path = path.to_str().expect("utf-8");
        let keys = dir.path().join(format!("{file}.keys"));
        let keys = keys.to_str().expect("utf-8");
        ok(
            &source,
            &["export", "--format", format, "--out", path, "--keys", keys],
        );
        let imported = ok(
            target,
            &["--master-key-file", &key, "import", path, "--keys", keys],
        );
        assert!(imported.contains("imported"), "{imported}");
        let verified_target = || {
            let text = ok(target, &["--master-key-file", &key, "verify"]);
            assert!(text.contains("verify: OK"), "{text}");
            text
        };
        // The same log, and the same projections (the directory's keyed hashes included,
        // which need the same master key and the moved data keys).
        assert_eq!(verified_target(), verified(&source), "{format}");

        // Importing the same files again changes nothing.
        let again = ok(
            target,
            &["--master-key-file", &key, "import", path, "--keys", keys],
        );
        assert!(again.contains("nothing to import"), "{again}");
        assert_eq!(verified_target(), verified(&source));
    }
}

#[test]
fn given_a_tampered_export_when_imported_then_it_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("s");
    demo(&source, "8", "2");
    let path = dir.path().join("log.jsonl");
    ok(&source, &["export", "--out", path.to_str().expect("utf-8")]);
    let text = std::fs::read_to_string(&path).expect("export");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Move the 10th event's time by one millisecond: one changed byte, a broken hash.
    let line = &mut lines[9];
    let at = line.find("\"occurred_at\":").expect("field") + "\"occurred_at\":".len();
    let digit = line.as_bytes()[at + 12];
    let flipped = if digit == b'9' {
        '8'
    } else {
        char::from(digit + 1)
    };
    line.replace_range(at + 12..at + 13, &flipped.to_string());
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, lines.join("\n") + "\n").expect("write");

    let target = dir.path().join("t");
    let output = run(&target, &["import", tampered.to_str().expect("utf-8")]);
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(said.contains("position 10"), "names the position: {said}");
    assert!(said.contains("nothing was written"), "{said}");
    let empty = run(&target, &["export"]);
    assert!(stdout(&empty).is_empty(), "nothing was imported");
}

#[test]
fn given_a_store_with_another_log_when_importing_then_it_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    demo(&a, "6", "1");
    let before = log_hash(&demo(&b, "6", "2"));
    let path = dir.path().join("a.jsonl");
    ok(&a, &["export", "--out", path.to_str().expect("utf-8")]);
    let output = run(&b, &["import", path.to_str().expect("utf-8")]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("DIFFERENT_LOG"),
        "{}",
        stderr(&output)
    );
    assert_eq!(log_hash(&verified(&b)), before);
}

#[test]
fn given_a_damaged_store_file_when_verified_then_it_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // In clear, so the reference can be found on disk.
    unsealed_demo(&data, "10", "4");
    // Change one character of a stored customer reference wherever it is on disk: the
    // sled file (projections) and the log's segment files.
    let mut files = vec![data.join("db")];
    for entry in std::fs::read_dir(data.join("segments")).expect("segments") {
        files.push(entry.expect("entry").path());
    }
    let needle = b"CUST-000005";
    let mut changed = 0;
    for file in files {
        let mut bytes = std::fs::read(&file).expect("store file");
        let mut at = 0;
        while let Some(found) = bytes[at..].windows(needle.len()).position(|w| w == needle) {
            bytes[at + found + 9] = b'9';
            changed += 1;
            at += found + needle.len();
        }
        std::fs::write(&file, bytes).expect("write");
    }
    assert!(changed > 0, "the reference is stored on disk");
    let output = run(&data, &["verify"]);
    assert!(!output.status.success(), "{}", stdout(&output));
    let said = stderr(&output);
    assert!(
        said.contains("damaged") || said.contains("corrupt") || said.contains("FAILED at position"),
        "{said}"
    );
    assert!(!said.contains("panicked"), "{said}");
}

#[test]
fn given_a_store_when_rebuilt_then_events_per_second_are_reported_and_verify_still_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    demo(&data, "8", "3");
    let said = ok(&data, &["rebuild"]);
    for name in ["timeline", "escalation", "metrics", "directory"] {
        assert!(said.contains(&format!("{name}: rebuilt from")), "{said}");
    }
    assert!(said.contains("events/s"));
    verified(&data);
    let unknown = run(&data, &["rebuild", "nope"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("timeline, escalation, metrics, directory"));
}

/// The size of the sled files of the store in `data` (the log's segments apart).
fn database_bytes(data: &Path) -> u64 {
    fn size(path: &Path) -> u64 {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => std::fs::read_dir(path)
                .expect("read dir")
                .map(|e| size(&e.expect("entry").path()))
                .sum(),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        }
    }
    std::fs::read_dir(data)
        .expect("read data dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            matches!(name, "db" | "conf" | "blobs") || name.starts_with("snap.")
        })
        .map(|p| size(&p))
        .sum()
}

#[test]
fn given_a_rebuilt_store_when_compacted_then_its_database_shrinks_and_verify_reads_the_same() {
    // Given a demo store whose projections were rebuilt twice (their old generations are
    // garbage in sled's files)
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    demo(&data, "8", "5");
    ok(&data, &["rebuild"]);
    ok(&data, &["rebuild"]);
    let before = verified(&data);
    let bytes = database_bytes(&data);
    // When it is compacted
    let said = ok(&data, &["compact"]);
    // Then it says what it freed, its database files are smaller, and verify reads the same
    // log, projections and hash
    assert!(said.contains("compacted:"), "{said}");
    assert!(database_bytes(&data) < bytes, "{said}");
    assert_eq!(verified(&data), before);
    // And a store a server holds is not compacted, with a message saying why
    let mut server = Server::start(&data, &[]);
    let refused = run(&data, &["compact"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("in use by another sijil process"),
        "{}",
        stderr(&refused)
    );
    server.terminate();
    assert!(server.wait(std::time::Duration::from_secs(30)));
    assert_eq!(verified(&data), before);
}
