//! Test helper for the crash-safety test: appends to a store in a loop from
//! several tasks and prints every acknowledged event, so the test can
//! `kill -9` it at random moments and check that nothing acknowledged is
//! lost.
//!
//! Usage: `sijil-store-crashwriter <store-dir> [writers]`. Prints one line
//! per acknowledged event, flushed right after the acknowledgement:
//! `<position> <event_id> <stream> <version>`. The payload of each event is
//! [`payload_for`] of its id, which the test recomputes.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use sijil_store::{ExpectedVersion, NewEvent, Store};
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
    match runtime.block_on(run(&dir, writers)) {
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

async fn run(dir: &str, writers: usize) -> Result<(), String> {
    let store = Store::open(dir).map_err(|e| e.to_string())?;
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
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
