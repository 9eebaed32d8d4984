//! Crash safety: a child process appends in a loop and reports every
//! acknowledged event; it is killed with SIGKILL at random moments, over and
//! over on the same directory, and after each kill every acknowledged event
//! must be present and intact and the store must verify. The same checks
//! hold after the child runs out of disk space.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sijil_store::Store;
use uuid::Uuid;

const ROUNDS: usize = 10;

/// One acknowledged event as the child reported it.
#[derive(Debug, Clone)]
struct Ack {
    position: u64,
    event_id: Uuid,
    stream: String,
    version: u64,
}

fn parse(line: &str) -> Ack {
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts.len(), 4, "malformed ack line {line:?}");
    Ack {
        position: parts[0].parse().expect("position"),
        event_id: parts[1].parse().expect("event id"),
        stream: parts[2].to_owned(),
        version: parts[3].parse().expect("version"),
    }
}

/// The payload the crash writer stores for `event_id`.
fn payload_for(event_id: Uuid) -> Vec<u8> {
    let value = rmpv::Value::Array(vec![
        "crash".into(),
        event_id.to_string().into(),
        rmpv::Value::Binary(event_id.as_bytes().repeat(8)),
    ]);
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &value).expect("encode");
    out
}

/// A tiny xorshift generator, seeded from the clock (the seed is printed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs the writer until it has acknowledged something, lets it go on for a
/// random while, kills it, and returns every fully reported ack.
fn run_and_kill(dir: &std::path::Path, delay: Duration, bulk: bool) -> Vec<Ack> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sijil-store-crashwriter"))
        .arg(dir)
        .arg("4")
        .args(bulk.then_some("bulk"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crash writer");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, receiver) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                // Only complete lines count: a line cut by the kill is dropped.
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    if sender.send(parse(&line)).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    let mut acks = Vec::new();
    match receiver.recv_timeout(Duration::from_secs(60)) {
        Ok(ack) => acks.push(ack),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            panic!("the crash writer acknowledged nothing; stderr: {err}");
        }
    }
    std::thread::sleep(delay);
    child.kill().expect("SIGKILL the crash writer");
    child.wait().expect("reap the crash writer");
    reader.join().expect("reader thread");
    acks.extend(receiver.try_iter());
    acks
}

#[test]
fn acknowledged_events_survive_sigkill() {
    kill_rounds(false);
}

#[test]
fn acknowledged_bulk_appends_survive_sigkill_and_interrupted_ones_vanish() {
    kill_rounds(true);
}

fn kill_rounds(bulk: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    println!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let mut all_acks: Vec<Ack> = Vec::new();
    for round in 0..ROUNDS {
        let delay = Duration::from_millis(rng.next() % 150);
        let acks = run_and_kill(dir.path(), delay, bulk);
        assert!(!acks.is_empty());
        all_acks.extend(acks);

        let (head, checked) = check_acks(
            dir.path(),
            &all_acks,
            &format!("round {round} (seed {seed})"),
        );
        println!(
            "round {round}: killed after {delay:?}, {} acks so far, head {head}, verified {} events",
            all_acks.len(),
            checked
        );
    }
}

/// Opens the store at `dir` and checks every acknowledged event is there,
/// intact and indexed, and that the store verifies. Returns the head and
/// how many events verify checked.
fn check_acks(dir: &std::path::Path, acks: &[Ack], context: &str) -> (u64, u64) {
    let store = Store::open(dir).expect("reopen");
    let head = store.head_position();
    for ack in acks {
        assert!(
            ack.position <= head,
            "{context}: acked position {} lost (head {head})",
            ack.position
        );
        let found = store
            .read_all_raw(ack.position, 1, None)
            .expect("read acked event");
        let event = found.first().expect("acked event present");
        assert_eq!(event.position, ack.position);
        assert_eq!(
            event.event_id, ack.event_id,
            "{context}: position {} holds another event",
            ack.position
        );
        assert_eq!(event.stream_id, ack.stream);
        assert_eq!(event.version, ack.version);
        assert_eq!(event.payload, payload_for(ack.event_id));
        assert_eq!(
            store.event_position(ack.event_id).expect("index"),
            Some(ack.position)
        );
    }
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{context}: {report:?}");
    (head, report.events_checked)
}

/// The largest file the writer may write in [`acknowledged_events_survive_a_full_disk`], in
/// KiB (bash's `ulimit -f` unit).
const FILE_LIMIT_KIB: u64 = 3 * 1024;

#[test]
fn acknowledged_events_survive_a_full_disk() {
    // Given the writer (four writers and a bulk loader) with every file it writes limited
    // to a few MiB: past that, a write fails (EFBIG) as it would on a full disk (ENOSPC)
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {FILE_LIMIT_KIB}; exec \"$0\" \"$1\" 4 bulk"
        ))
        .arg(env!("CARGO_BIN_EXE_sijil-store-crashwriter"))
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crash writer");
    let stdout = child.stdout.take().expect("stdout");
    let mut acks = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read acks");
        acks.push(parse(&line));
    }
    // When the disk is full, the writer stops with a storage error, not a panic
    let status = child.wait().expect("reap the crash writer");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(!status.success(), "the writer stopped on its own: {err}");
    assert!(err.contains("storage error"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        acks.len() > 1000,
        "{} acks before the disk filled",
        acks.len()
    );
    // Then, reopened with room again, every acknowledged event is there and the store verifies
    let (head, _) = check_acks(dir.path(), &acks, "after a full disk");
    println!("{} acks, head {head}; the writer said: {err}", acks.len());
    // And it takes appends again
    let store = Store::open(dir.path()).expect("reopen");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let event_id = Uuid::now_v7();
    let appended = runtime.block_on(store.append(
        "after-full",
        sijil_store::ExpectedVersion::NoStream,
        vec![sijil_store::NewEvent {
            event_id,
            workspace_id: Uuid::nil(),
            event_type: "CrashTested".into(),
            schema_version: 1,
            occurred_at: 0,
            actor: "system:test".into(),
            on_behalf_of: None,
            correlation_id: None,
            causation_id: None,
            payload: payload_for(event_id),
        }],
    ));
    assert_eq!(appended.expect("append").first_position, head + 1);
}
