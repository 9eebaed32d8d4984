//! The command line: every subcommand and flag, with the help text users read.
//! Flags win over `SIJIL_*` environment variables, which win over the TOML file given with
//! `--config`, which wins over the built-in defaults (see `config.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// sijil — an event-sourced CRM workspace. Every customer interaction, on every channel, is an
/// immutable event; sijil projects each customer's timeline and each case's escalation state
/// from that log and serves them over GraphQL.
#[derive(Parser, Debug)]
#[command(name = "sijil", version, propagate_version = true)]
pub struct Cli {
    /// Directory of the embedded sled store [default: ./sijil-data]
    #[arg(long, global = true, env = "SIJIL_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Optional TOML file with any of the settings below (flags and SIJIL_* variables win)
    #[arg(long, global = true, env = "SIJIL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log filter, e.g. `info`, `sijil=debug` [default: info]
    #[arg(long, global = true, env = "SIJIL_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// File holding the workspace master key (64 hex characters) that seals personal data;
    /// or give the key itself in SIJIL_MASTER_KEY. Without either, sijil uses the key file
    /// beside the data directory, <DIR>.master-key (e.g. ./sijil-data.master-key), creating it
    /// for a store that never sealed anything. Keep the key apart from backups of the data
    /// directory: without it no personal data can be read
    #[arg(
        long,
        global = true,
        env = "SIJIL_MASTER_KEY_FILE",
        value_name = "FILE"
    )]
    pub master_key_file: Option<PathBuf>,

    /// Where the log lives: `sled` (the embedded store in --data) or a PostgreSQL connection
    /// string (`postgres://user@host/db` or `host=… dbname=…`). With PostgreSQL, any number of
    /// `serve` nodes share the log; each keeps a local copy and its read models in its own
    /// --data directory, and every node needs the same master key [default: sled]
    #[arg(long, global = true, env = "SIJIL_STORE", value_name = "URL")]
    pub store: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open (or create) the store, start the projections and serve GraphQL. Personal data is
    /// always sealed: on a new store without a configured master key, a key is created in
    /// <DIR>.master-key beside the data directory and used on every later start.
    Serve(ServeArgs),
    /// Fill the store with deterministic, realistic demo data.
    Demo(DemoArgs),
    /// Write the full log, envelopes and hashes included, to a file or stdout.
    Export(ExportArgs),
    /// Append a log written by `export` to this store (verified first; idempotent).
    Import(ImportArgs),
    /// Check hash chains, gap-free positions and versions, payloads, and every projection
    /// against a rebuild. Exits non-zero on any problem, naming the position.
    Verify,
    /// Rebuild one projection (or all) from the log.
    Rebuild(RebuildArgs),
    /// Compact the store's database while no server runs on it: every index and projection
    /// tree is copied into a fresh database that takes the old one's place, leaving behind
    /// the old page versions sled keeps (its files and its memory at start shrink with them).
    /// The log's segment files are not touched; an interrupted compaction is finished or
    /// undone the next time the store opens.
    Compact,
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print a new random workspace master key (64 hex characters) to give `serve` through
    /// SIJIL_MASTER_KEY or --master-key-file (instead of the key file `serve` creates for a
    /// new store). Store it safely: without it no personal data can be read.
    MasterKey,
}

/// `sijil serve`
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "SIJIL_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Fill an empty store with demo data before serving
    #[arg(long, env = "SIJIL_DEMO")]
    pub demo: bool,

    /// Customers to create with --demo [default: 200]
    #[arg(long, env = "SIJIL_DEMO_CUSTOMERS", value_name = "N")]
    pub demo_customers: Option<u32>,

    /// Deepest GraphQL selection accepted [default: 12]
    #[arg(long, env = "SIJIL_MAX_DEPTH", value_name = "N")]
    pub max_depth: Option<usize>,

    /// Largest GraphQL query complexity accepted [default: 5000]
    #[arg(long, env = "SIJIL_MAX_COMPLEXITY", value_name = "N")]
    pub max_complexity: Option<usize>,

    /// Largest page any list returns [default: 200]
    #[arg(long, env = "SIJIL_MAX_PAGE", value_name = "N")]
    pub max_page: Option<usize>,

    /// Largest request body in bytes [default: 1048576]
    #[arg(long, env = "SIJIL_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Longest a request may run, in milliseconds [default: 15000]
    #[arg(long, env = "SIJIL_REQUEST_TIMEOUT_MS", value_name = "MS")]
    pub request_timeout_ms: Option<u64>,

    /// Serve GraphQL introspection (true/false) [default: true]
    #[arg(long, env = "SIJIL_INTROSPECTION", value_name = "BOOL")]
    pub introspection: Option<bool>,

    /// Sustained requests per second allowed per token [default: 5000]
    #[arg(long, env = "SIJIL_RATE_PER_SECOND", value_name = "N")]
    pub rate_per_second: Option<u32>,

    /// Burst of requests allowed per token [default: 10000]
    #[arg(long, env = "SIJIL_RATE_BURST", value_name = "N")]
    pub rate_burst: Option<u32>,

    /// sled page cache of the store, in MiB (the main part of the server's memory) [default: 256]
    #[arg(long, env = "SIJIL_CACHE_MB", value_name = "MIB")]
    pub cache_mb: Option<u64>,

    /// How often the SLA checker looks for breaches, in milliseconds [default: 1000]
    #[arg(long, env = "SIJIL_SLA_INTERVAL_MS", value_name = "MS")]
    pub sla_interval_ms: Option<u64>,

    /// Workspace id for the admin token made on a new store [default: a fresh id]
    #[arg(long, env = "SIJIL_WORKSPACE", value_name = "UUID")]
    pub workspace: Option<uuid::Uuid>,
}

/// `sijil demo`
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// How many customers to create
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub customers: u32,

    /// Seed of the generator: the same seed gives the same log
    #[arg(long, default_value_t = 7, value_name = "S")]
    pub seed: u64,

    /// Workspace to fill [default: the demo workspace 0190…]
    #[arg(long, value_name = "UUID")]
    pub workspace: Option<uuid::Uuid>,

    /// Write personal data in clear instead of sealing it, so the same seed gives the same
    /// log byte for byte (sealing uses fresh keys and nonces). For reproducibility checks
    /// only: data written this way cannot be crypto-shredded
    #[arg(long)]
    pub unsealed: bool,
}

/// Export formats.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON envelope per line (payload decoded to JSON, raw bytes in `payload_b64`)
    Jsonl,
    /// A stream of MessagePack envelopes
    Msgpack,
}

/// `sijil export`
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// First position to export
    #[arg(long, default_value_t = 1, value_name = "POS")]
    pub from: u64,

    /// Output format
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,

    /// Output file [default: standard output]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Also write the customers' data keys to FILE, sealed under the master key (needed to
    /// read the personal data of an imported log; forgotten customers' keys are not in it)
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
}

/// `sijil import`
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A file written by `sijil export` (either format)
    pub file: PathBuf,

    /// A key bundle written by `sijil export --keys`: its keys are added to this store's
    /// vault. Needs the master key of the store it was exported from (--master-key-file or
    /// SIJIL_MASTER_KEY); a bundle that does not open with it is refused before anything is
    /// written
    #[arg(long, value_name = "BUNDLE")]
    pub keys: Option<PathBuf>,
}

/// `sijil rebuild`
#[derive(Args, Debug)]
pub struct RebuildArgs {
    /// The projection to rebuild (timeline, escalation, metrics, directory) [default: all]
    pub projection: Option<String>,
}

/// `sijil token …`
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown once)
    Create {
        /// Workspace the token is bound to
        #[arg(long, value_name = "UUID")]
        workspace: uuid::Uuid,
        /// agent, supervisor, auditor, app or admin
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// A name to recognise the token by
        #[arg(long, default_value = "", value_name = "NAME")]
        name: String,
        /// For app tokens: comma-separated permissions (e.g. READ_CUSTOMERS,RECORD_INTERACTIONS)
        #[arg(long, value_delimiter = ',', value_name = "LIST")]
        scopes: Vec<String>,
    },
    /// List tokens (never their secrets)
    List,
    /// Revoke a token by id
    Revoke {
        /// The token's id (from `token list`)
        id: uuid::Uuid,
    },
}
