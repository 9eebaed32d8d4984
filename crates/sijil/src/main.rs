//! The `sijil` command: parses the command line ([`cli`]), resolves the settings ([`config`]),
//! sets up logging, and runs one subcommand. Errors are printed as one clear message (with
//! their causes) and exit with status 1; `verify` exits with 1 when it finds a problem; bad
//! flags exit with status 2 (clap's usage error).

mod cli;
mod cluster;
mod commands;
mod config;
mod demo;
mod keys;
mod logfile;
mod serve;
mod store_dir;
mod verify;

use std::process::ExitCode;

/// mimalloc instead of the system allocator: sled copies a tree node on every insert, and
/// glibc's malloc spent a third of the demo loader's time in allocation and consolidation.
/// Built without transparent huge pages (the workspace's `no_thp` feature): with them
/// the server held ~2x the memory it used on small stores.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sijil: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines go to stderr through a writer thread: a request's thread only formats its
/// line and queues it, and the thread writes whatever is queued in one `write` (a buffered
/// stderr flushed each time the queue runs dry). Written straight to stderr, the server's
/// per-request line cost a `write` call each, ~2 % of its CPU under the timeline load. The
/// returned guard writes what is still queued when it is dropped, at the end of [`run`].
/// A full queue (128k lines) drops lines rather than stall requests.
fn init_logging(filter: &str) -> Result<tracing_appender::non_blocking::WorkerGuard> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("--log `{filter}` is not a log filter: {e}"))?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .thread_name("sijil-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Colours only on a terminal: a log redirected to a file reads as plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))?;
    Ok(guard)
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let file = config::file_config(cli)?;
    let common = config::common(cli, &file);
    let _log = init_logging(&common.log)?;
    match &cli.command {
        Command::Serve(args) => {
            let settings = config::serve(args, &file);
            serve::run(&common, settings)?;
        }
        Command::Demo(args) => {
            let store = store_dir::open(&common.data, store_dir::Mode::Create)?;
            let vault = if args.unsealed {
                if keys::seals(&common.data, &store) {
                    anyhow::bail!(
                        "--unsealed needs a store that never sealed personal data; {} seals it \
                         (point --data at a new directory)",
                        common.data.display()
                    );
                }
                println!(
                    "demo: --unsealed: personal data is written in clear and cannot be \
                     crypto-shredded (for reproducibility checks only)"
                );
                None
            } else {
                Some(keys::unlock(
                    &common.data,
                    &store,
                    common.master_key_file.as_ref(),
                )?)
            };
            let report = demo::run(&store, vault.as_ref(), args.customers, args.seed, true)?;
            store_dir::mark(&common.data, &store)?;
            let digest = verify::digest(&store)?;
            let secs = report.elapsed.as_secs_f64();
            println!(
                "demo: {} customers, {} agents, {} events in {:.2} s ({:.0} events/s); workspace {}",
                report.customers,
                report.agents,
                report.events,
                secs,
                report.events as f64 / secs.max(1e-9),
                report.workspace
            );
            let notes = report.notes();
            if !notes.is_empty() {
                println!("demo: {notes}");
            }
            println!("log hash: {} (head {})", digest.hex(), digest.head);
        }
        Command::Export(args) => commands::export(&common, args)?,
        Command::Import(args) => commands::import(&common, args)?,
        Command::Verify => {
            if let Some(url) = &common.postgres {
                let (problem, events) = cluster::verify_log(url)?;
                if let Some((position, what)) = problem {
                    eprintln!(
                        "sijil verify: FAILED at position {position} of the PostgreSQL log: {what}"
                    );
                    return Ok(ExitCode::FAILURE);
                }
                println!("verify: the PostgreSQL log is OK ({events} events)");
                if !common.data.exists() {
                    println!(
                        "verify: no local copy in {} to check (its read models are checked on the node that holds it)",
                        common.data.display()
                    );
                    return Ok(ExitCode::SUCCESS);
                }
            }
            let store = store_dir::open(&common.data, store_dir::Mode::Existing)?;
            if let Some(url) = &common.postgres {
                if let Some(problem) = cluster::compare_copy(url, &store)? {
                    eprintln!("sijil verify: FAILED: {problem}");
                    return Ok(ExitCode::FAILURE);
                }
            }
            // The log verifies without the master key; only the sealed directory's keyed
            // hashes need it, so without it that one check is skipped.
            let keys = match keys::unlock_existing(
                &common.data,
                &store,
                common.master_key_file.as_ref(),
            ) {
                Ok(vault) => verify::Keys::Available(vault.map(|(vault, _)| vault)),
                Err(e) => {
                    eprintln!("sijil verify: {e:#}; the directory projection is not checked");
                    verify::Keys::Unavailable
                }
            };
            if let Some(problem) = verify::run(&store, keys)? {
                eprintln!(
                    "sijil verify: FAILED at position {}: {}",
                    problem.position, problem.what
                );
                return Ok(ExitCode::FAILURE);
            }
            store_dir::mark(&common.data, &store)?;
            println!("verify: OK");
        }
        Command::Rebuild(args) => commands::rebuild(
            &common.data,
            args.projection.as_deref(),
            common.master_key_file.as_ref(),
        )?,
        Command::Compact => commands::compact(&common.data)?,
        Command::Token(command) => {
            commands::token(&common.data, common.postgres.as_deref(), command)?
        }
        Command::MasterKey => println!("{}", keys::generate()?),
    }
    Ok(ExitCode::SUCCESS)
}
