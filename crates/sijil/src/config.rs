//! Resolves the settings of a run: a flag (or its `SIJIL_*` variable, which clap reads) wins,
//! then the TOML file named by `--config`, then the built-in default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use sijil_gateway::limits::GatewayConfig;

use crate::cli::{Cli, ServeArgs};

/// What a TOML file may set. Unknown keys are refused so a typo does not pass silently.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data: Option<PathBuf>,
    pub store: Option<String>,
    pub log: Option<String>,
    pub listen: Option<SocketAddr>,
    pub demo_customers: Option<u32>,
    pub max_depth: Option<usize>,
    pub max_complexity: Option<usize>,
    pub max_page: Option<usize>,
    pub max_body_bytes: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    pub introspection: Option<bool>,
    pub rate_per_second: Option<u32>,
    pub rate_burst: Option<u32>,
    pub max_subscriptions_per_connection: Option<usize>,
    pub max_subscriptions_per_token: Option<usize>,
    pub sla_interval_ms: Option<u64>,
    pub cache_mb: Option<u64>,
    pub workspace: Option<uuid::Uuid>,
    pub master_key_file: Option<PathBuf>,
}

impl FileConfig {
    /// Reads the file, with an error that names it.
    pub fn load(path: &Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("configuration file {} is not valid", path.display()))
    }
}

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct Common {
    pub data: PathBuf,
    pub log: String,
    /// Where the master key is read from when `SIJIL_MASTER_KEY` is not set.
    pub master_key_file: Option<PathBuf>,
    /// The PostgreSQL log to use instead of the embedded one (`None`: sled).
    pub postgres: Option<String>,
}

/// Settings of `sijil serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub demo: bool,
    pub demo_customers: u32,
    pub gateway: GatewayConfig,
    pub sla_interval: Duration,
    pub workspace: Option<uuid::Uuid>,
    /// sled page cache of the store, in bytes.
    pub cache_bytes: u64,
}

/// The file's settings, or none when no file was named.
pub fn file_config(cli: &Cli) -> Result<FileConfig> {
    match &cli.config {
        Some(path) => FileConfig::load(path),
        None => Ok(FileConfig::default()),
    }
}

/// Resolves the shared settings.
pub fn common(cli: &Cli, file: &FileConfig) -> Common {
    Common {
        data: cli
            .data
            .clone()
            .or_else(|| file.data.clone())
            .unwrap_or_else(|| PathBuf::from("./sijil-data")),
        log: cli
            .log
            .clone()
            .or_else(|| file.log.clone())
            .unwrap_or_else(|| "info".to_owned()),
        master_key_file: cli
            .master_key_file
            .clone()
            .or_else(|| file.master_key_file.clone()),
        postgres: cli
            .store
            .clone()
            .or_else(|| file.store.clone())
            .filter(|s| !s.trim().is_empty() && s.trim() != "sled"),
    }
}

/// Resolves the settings of `serve`.
pub fn serve(args: &ServeArgs, file: &FileConfig) -> ServeConfig {
    let d = GatewayConfig::default();
    let gateway = GatewayConfig {
        max_depth: args.max_depth.or(file.max_depth).unwrap_or(d.max_depth),
        max_complexity: args
            .max_complexity
            .or(file.max_complexity)
            .unwrap_or(d.max_complexity),
        max_page: args.max_page.or(file.max_page).unwrap_or(d.max_page),
        max_body_bytes: args
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(d.max_body_bytes),
        request_timeout: args
            .request_timeout_ms
            .or(file.request_timeout_ms)
            .map(Duration::from_millis)
            .unwrap_or(d.request_timeout),
        introspection: args
            .introspection
            .or(file.introspection)
            .unwrap_or(d.introspection),
        rate_per_second: args
            .rate_per_second
            .or(file.rate_per_second)
            .unwrap_or(d.rate_per_second),
        rate_burst: args.rate_burst.or(file.rate_burst).unwrap_or(d.rate_burst),
        read_your_writes_timeout: d.read_your_writes_timeout,
        max_subscriptions_per_connection: file
            .max_subscriptions_per_connection
            .unwrap_or(d.max_subscriptions_per_connection),
        max_subscriptions_per_token: file
            .max_subscriptions_per_token
            .unwrap_or(d.max_subscriptions_per_token),
        as_of_max_events: d.as_of_max_events,
        tail_buffer: d.tail_buffer,
    };
    ServeConfig {
        listen: args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        demo: args.demo,
        demo_customers: args.demo_customers.or(file.demo_customers).unwrap_or(200),
        gateway,
        sla_interval: Duration::from_millis(
            args.sla_interval_ms
                .or(file.sla_interval_ms)
                .unwrap_or(1000),
        ),
        workspace: args.workspace.or(file.workspace),
        cache_bytes: args
            .cache_mb
            .or(file.cache_mb)
            .unwrap_or(DEFAULT_CACHE_MB)
            .max(1)
            .saturating_mul(1024 * 1024),
    }
}

/// The sled page cache `serve` gives the store unless told otherwise, in MiB.
pub const DEFAULT_CACHE_MB: u64 = 256;

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Command;

    fn serve_args(argv: &[&str]) -> ServeArgs {
        match Cli::try_parse_from(argv).expect("parse").command {
            Command::Serve(args) => args,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn given_cache_settings_when_resolved_then_the_flag_beats_the_file_beats_the_default() {
        let file: FileConfig = toml::from_str("cache_mb = 64").expect("toml");
        let flag = serve_args(&["sijil", "serve", "--cache-mb", "32"]);
        assert_eq!(serve(&flag, &file).cache_bytes, 32 << 20);
        let none = serve_args(&["sijil", "serve"]);
        if std::env::var_os("SIJIL_CACHE_MB").is_none() {
            assert_eq!(serve(&none, &file).cache_bytes, 64 << 20);
            assert_eq!(
                serve(&none, &FileConfig::default()).cache_bytes,
                DEFAULT_CACHE_MB << 20
            );
        }
    }
}
