//! Test helper for the projection crash test: catches the standard timeline and directory
//! projections up with the log of an existing store in small chunks, printing the applied
//! position after every committed chunk, so the test can `kill -9` it in the middle and check
//! that a later catch-up neither loses nor repeats anything.
//!
//! Usage: `sijil-store-projcatchup <store-dir> [chunk-events]`. Prints one line per committed
//! chunk: `<projection> <applied-position>`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use sijil_store::projections::directory::DirectoryProjection;
use sijil_store::projections::timeline::TimelineProjection;
use sijil_store::projections::{CatchUpOptions, Projection, ProjectionHandle};
use sijil_store::Store;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: sijil-store-projcatchup <store-dir> [chunk-events]");
        return ExitCode::from(2);
    };
    let chunk = match args.next().map(|c| c.parse::<usize>()) {
        None => 5,
        Some(Ok(c)) if c > 0 => c,
        Some(_) => {
            eprintln!("chunk-events must be a positive integer");
            return ExitCode::from(2);
        }
    };
    match run(&dir, chunk) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("projcatchup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &str, chunk: usize) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(dir)?;
    let head = store.head_position();
    let projections: Vec<Arc<dyn Projection>> =
        vec![Arc::new(TimelineProjection), Arc::new(DirectoryProjection)];
    let handles = projections
        .into_iter()
        .map(|p| ProjectionHandle::open(store.db(), p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = std::io::stdout().lock();
    // Interleave the projections, one chunk each in turn, until both reach the head.
    loop {
        let mut progressed = false;
        for handle in &handles {
            let before = handle.applied_position();
            if before >= head {
                continue;
            }
            let options = CatchUpOptions {
                chunk_events: chunk,
                upto: Some((before + chunk as u64).min(head)),
            };
            let applied = handle.catch_up_with(&store, options)?;
            writeln!(out, "{} {applied}", handle.name())?;
            out.flush()?;
            progressed = true;
        }
        if !progressed {
            return Ok(());
        }
    }
}
