//! Crash safety of projection catch-up: a child process catches the timeline and directory
//! up in small chunks and is killed with SIGKILL in the middle, several times over on the
//! same database; afterwards a catch-up in this process must give exactly the model a
//! one-shot build gives (nothing lost, nothing applied twice).

mod projection_support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use projection_support::{append_blocking, contact_value, dump, World, KINDS};
use sijil_domain::Channel;
use sijil_store::projections::directory::DirectoryProjection;
use sijil_store::projections::timeline::TimelineProjection;
use sijil_store::projections::{Projection, ProjectionHandle};
use sijil_store::Store;

fn history() -> Vec<World> {
    (0..2u64)
        .map(|n| {
            let mut w = World::new(300 + n);
            let mut customers = Vec::new();
            for i in 0..150u64 {
                let kind = KINDS[(i % 4) as usize];
                let c = w
                    .register(
                        &format!("Crash Test{i}"),
                        &format!("CR-{i}"),
                        &[(kind, &contact_value(kind, i))],
                    )
                    .expect("register");
                for k in 0..3 {
                    w.interaction(c, Channel::ALL[k], "hello", None, None)
                        .expect("interaction");
                }
                customers.push(c);
            }
            for i in (0..140).step_by(10) {
                w.merge(customers[i + 1], customers[i]).expect("merge");
                w.forget(customers[i + 2]).expect("forget");
                w.rename(customers[i + 3], "Renamed Crash").expect("rename");
            }
            w
        })
        .collect()
}

/// Runs the catch-up child until it reported `lines` chunks, then kills it. Returns whether
/// it was killed (false: it finished first).
fn run_and_kill(dir: &std::path::Path, lines: usize) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sijil-store-projcatchup"))
        .arg(dir)
        .arg("3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn catch-up child");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    let mut seen = 0;
    while seen < lines {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(n) if n > 0 => seen += 1,
            _ => break,
        }
    }
    let finished = seen < lines;
    if finished {
        let status = child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        assert!(status.success(), "child failed: {err}");
        return false;
    }
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    true
}

#[test]
fn sigkill_during_catch_up_loses_and_duplicates_nothing() {
    let worlds = history();
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = Store::open(dir.path()).expect("open store");
        for w in &worlds {
            append_blocking(&store, w.ws, &w.log);
        }
    }
    // Kill the child after a growing number of chunks, four times over.
    let mut kills = 0;
    for round in 1..=4 {
        if run_and_kill(dir.path(), round * 40) {
            kills += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(kills >= 1, "the child was never killed mid-way");
    // Reference: a one-shot build over the same log in a separate store.
    let reference_dir = tempfile::tempdir().expect("temp dir");
    let reference = Store::open(reference_dir.path()).expect("open reference");
    for w in &worlds {
        append_blocking(&reference, w.ws, &w.log);
    }
    let store = Store::open(dir.path()).expect("reopen store");
    let projections: Vec<Arc<dyn Projection>> =
        vec![Arc::new(TimelineProjection), Arc::new(DirectoryProjection)];
    for projection in projections {
        let handle = ProjectionHandle::open(store.db(), Arc::clone(&projection)).expect("open");
        let resumed_from = handle.applied_position();
        handle.catch_up(&store).expect("finish catch-up");
        let fresh = ProjectionHandle::open(reference.db(), projection).expect("open reference");
        fresh.catch_up(&reference).expect("one-shot build");
        let got = handle.read(dump);
        let want = fresh.read(dump);
        assert_eq!(
            got.len(),
            want.len(),
            "{} resumed from {resumed_from}",
            handle.name()
        );
        assert!(
            got == want,
            "{} differs from a one-shot build",
            handle.name()
        );
        assert!(handle.check(&store).expect("check").is_consistent());
    }
}
