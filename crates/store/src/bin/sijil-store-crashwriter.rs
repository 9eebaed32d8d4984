//! Test helper for the crash-safety test: appends to a store in a loop from
//! several tasks and prints every acknowledged event, so the test can
//! `kill -9` it at random moments and check that nothing acknowledged is
//! lost.
//!
//! Usage: `sijil-store-crashwriter <store-dir> [writers] [bulk]`; with `bulk`,
//! a loader thread also bulk-appends 2,000-event chunks over eight streams
//! beside the writers. Prints one line
//! per acknowledged event, flushed right after the acknowledgement:
//! `<position> <event_id> <stream> <version>`. The payload of each event is
//! [`payload_for`] of its id, which the test recomputes.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use sijil_store::{BulkAppend, ExpectedVersion, NewEvent, RecordedAt, Store};
use tokio::sync::Mutex;
use uuid::Uuid;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: sijil-store-crashwriter <store-dir> [writers]");
        return ExitCode::from(2);
    };
    let writers = match args.next().map(|w| w.parse::<usize>()) {
        None => 4,
        Some(Ok(w)) if w > 0 => w,
        Some(_) => {
            eprintln!("writers must be a positive integer");
            return ExitCode::from(2);
        }
    };
    let bulk = args.next().as_deref() == Some("bulk");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&dir, writers, bulk)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crashwriter: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The payload the crash test expects for `event_id`.
fn payload_for(event_id: Uuid) -> Vec<u8> {
    let value = rmpv::Value::Array(vec![
        "crash".into(),
        event_id.to_string().into(),
        rmpv::Value::Binary(event_id.as_bytes().repeat(8)),
    ]);
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, &value);
    out
}

async fn run(dir: &str, writers: usize, bulk: bool) -> Result<(), String> {
    let store = Store::open(dir).map_err(|e| e.to_string())?;
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    if bulk {
        let store = store.clone();
        let stdout = Arc::clone(&stdout);
        tasks.push(tokio::task::spawn_blocking(move || {
            bulk_loop(store, stdout)
        }));
    }
    for w in 0..writers {
        let store = store.clone();
        let stdout = Arc::clone(&stdout);
        tasks.push(tokio::spawn(
            async move { write_loop(store, w, stdout).await },
        ));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

fn new_event() -> NewEvent {
    let event_id = Uuid::now_v7();
    NewEvent {
        event_id,
        workspace_id: Uuid::nil(),
        event_type: "CrashTested".into(),
        schema_version: 1,
        occurred_at: 0,
        actor: "system:crashwriter".into(),
        on_behalf_of: None,
        correlation_id: None,
        causation_id: None,
        payload: payload_for(event_id),
    }
}

/// Bulk-appends chunks of 2,000 events over eight streams until killed.
fn bulk_loop(store: Store, stdout: Arc<Mutex<std::io::Stdout>>) -> Result<(), String> {
    loop {
        let appends: Vec<BulkAppend> = (0..8)
            .map(|s| BulkAppend {
                stream: format!("bulk-{s}"),
                expected: ExpectedVersion::Any,
                events: (0..250).map(|_| new_event()).collect(),
            })
            .collect();
        let results = store
            .append_bulk(&appends, RecordedAt::StoreClock)
            .map_err(|e| e.to_string())?;
        let mut out = stdout.blocking_lock();
        for (append, result) in appends.iter().zip(results) {
            let first_version = result.next_version - append.events.len() as u64;
            for (k, event) in append.events.iter().enumerate() {
                let k = k as u64;
                writeln!(
                    out,
                    "{} {} {} {}",
                    result.first_position + k,
                    event.event_id,
                    append.stream,
                    first_version + k
                )
                .map_err(|e| e.to_string())?;
            }
        }
        out.flush().map_err(|e| e.to_string())?;
    }
}

async fn write_loop(
    store: Store,
    writer: usize,
    stdout: Arc<Mutex<std::io::Stdout>>,
) -> Result<(), String> {
    let stream = format!("crash-{writer}");
    for i in 0u64.. {
        let batch: Vec<NewEvent> = (0..1 + i % 3)
            .map(|_| {
                let event_id = Uuid::now_v7();
                NewEvent {
                    event_id,
                    workspace_id: Uuid::nil(),
                    event_type: "CrashTested".into(),
                    schema_version: 1,
                    occurred_at: 0,
                    actor: "system:crashwriter".into(),
                    on_behalf_of: None,
                    correlation_id: None,
                    causation_id: None,
                    payload: payload_for(event_id),
                }
            })
            .collect();
        let ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
        let result = store
            .append(&stream, ExpectedVersion::Any, batch)
            .await
            .map_err(|e| e.to_string())?;
        let first_version = result.next_version - ids.len() as u64;
        let mut out = stdout.lock().await;
        for (k, id) in ids.iter().enumerate() {
            let k = k as u64;
            writeln!(
                out,
                "{} {id} {stream} {}",
                result.first_position + k,
                first_version + k
            )
            .map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}
