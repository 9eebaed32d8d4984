//! The offline commands: `export`, `import`, `rebuild` and `token`. Each opens the store in
//! the data directory itself (sled allows one process at a time, so they cannot run while
//! `sijil serve` holds the same directory).
//!
//! `export --keys` and `import --keys` move the vault's customer data keys with the log, as a
//! key bundle sealed under the master key (see `sijil_store::vault::bundle`): an imported
//! log's personal data is readable only with them, and a customer forgotten before the export
//! has no key in the bundle, so they stay erased in the destination.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use sijil_store::vault::{KeyBundle, Vault};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sijil_domain::WorkspaceId;
use sijil_gateway::{Permission, Role, TokenStore};
use sijil_store::projections::{self, ProjectionHandle};
use sijil_store::{ImportCheck, Store};

use crate::cli::{ExportArgs, ExportFormat, ImportArgs, TokenCommand};
use crate::config::Common;
use crate::keys;
use crate::logfile::{self, LogReader};
use crate::store_dir::{self, Mode};

/// Events per read while exporting and per transaction while importing.
const CHUNK: usize = 10_000;

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC, proleptic Gregorian).
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `sijil export`.
pub fn export(common: &Common, args: &ExportArgs) -> Result<()> {
    if let Some(url) = &common.postgres {
        return crate::cluster::export(url, common, args);
    }
    let data = common.data.as_path();
    let (from, format, out) = (args.from, args.format, args.out.as_deref());
    let store = store_dir::open(data, Mode::Existing)?;
    // The keys first: a missing or wrong master key stops the export before it writes.
    let bundle = match &args.keys {
        Some(path) => {
            let Some((vault, master)) =
                keys::unlock_existing(data, &store, common.master_key_file.as_ref())?
            else {
                bail!(
                    "the store in {} never sealed personal data, so it has no keys to export \
                     (export without --keys)",
                    data.display()
                );
            };
            let bundle = vault
                .export_keys()
                .map_err(|e| anyhow!("cannot read the vault: {e} [{}]", e.code()))?;
            let bytes = bundle
                .seal(&master)
                .map_err(|e| anyhow!("cannot seal the key bundle: {e} [{}]", e.code()))?;
            Some((path, bundle, bytes))
        }
        None => None,
    };
    let head = store.head_position();
    let written = write_export(format, out, from, head, |next| {
        store
            .read_all_raw(next, CHUNK, None)
            .with_context(|| format!("reading the log at position {next}"))
    })?;
    report_export(out, from, written);
    match bundle {
        Some((path, bundle, bytes)) => write_bundle(path, &bundle, &bytes)?,
        None if keys::seals(data, &store) => eprintln!(
            "note: this log's personal data is sealed; to read it in another store, also \
             export its keys with --keys FILE and import them with `sijil import --keys FILE`"
        ),
        None => {}
    }
    Ok(())
}

/// Writes the events `fetch` gives (a batch from a position on) from `from` to `head` to
/// `out` (standard output when `None`) in `format`, durably; returns how many.
pub fn write_export(
    format: ExportFormat,
    out: Option<&Path>,
    from: u64,
    head: u64,
    mut fetch: impl FnMut(u64) -> Result<Vec<sijil_store::RecordedEvent>>,
) -> Result<u64> {
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut next = from.max(1);
    let mut written = 0u64;
    while next <= head {
        let batch = fetch(next)?;
        let Some(last) = batch.last() else { break };
        next = last.position + 1;
        for event in batch.iter().filter(|e| e.position <= head) {
            match format {
                ExportFormat::Jsonl => logfile::write_json(&mut sink, event)?,
                ExportFormat::Msgpack => logfile::write_msgpack(&mut sink, event)?,
            }
            written += 1;
        }
    }
    sink.flush().context("writing the export")?;
    drop(sink);
    if let Some(path) = out {
        File::open(path)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", path.display()))?;
    }
    Ok(written)
}

/// Tells what an export wrote.
pub fn report_export(out: Option<&Path>, from: u64, written: u64) {
    let first = from.max(1);
    let range = if written == 0 {
        "nothing to export".to_owned()
    } else {
        format!("positions {first}..={}", first + written - 1)
    };
    let target = out.map_or("standard output".to_owned(), |p| p.display().to_string());
    eprintln!("exported {written} events ({range}) to {target}");
}

/// Writes a sealed key bundle next to an export and says so.
pub fn write_bundle(path: &Path, bundle: &KeyBundle, bytes: &[u8]) -> Result<()> {
    write_private(path, bytes)?;
    eprintln!(
        "exported {} customer keys to {}, sealed under the master key ({} forgotten \
         customers are named without a key); import them with `sijil import --keys`",
        bundle.live_keys(),
        path.display(),
        bundle.forgotten_customers()
    );
    Ok(())
}

/// Writes `bytes` to `path` (created readable by its owner only, or replaced), durably.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads and opens the key bundle of `import --keys` with the configured master key, before
/// anything is written.
pub fn open_bundle(
    common: &Common,
    path: &Path,
) -> Result<(KeyBundle, sijil_store::vault::MasterKey, keys::Source)> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the key bundle {}", path.display()))?;
    let (master, source) = keys::required(&common.data, common.master_key_file.as_ref())
        .map_err(|e| anyhow!("import refused, nothing was written: {e:#}"))?;
    let bundle = KeyBundle::open(&master, &bytes).map_err(|e| {
        anyhow!(
            "import refused, nothing was written: {}: {e} [{}] (master key from {source})",
            path.display(),
            e.code()
        )
    })?;
    Ok((bundle, master, source))
}

/// `sijil import`.
pub fn import(common: &Common, args: &ImportArgs) -> Result<()> {
    let (data, file) = (common.data.as_path(), args.file.as_path());
    logfile::check_readable(file)?;
    let bundle = match &args.keys {
        Some(path) => Some(open_bundle(common, path)?),
        None => None,
    };
    if let Some(url) = &common.postgres {
        return crate::cluster::import(
            url,
            file,
            bundle.map(|(bundle, master, _)| (bundle, master)),
        );
    }
    let store = store_dir::open(data, Mode::Create)?;
    let mut check = ImportCheck::new(&store);
    let mut sealed = false;
    for event in LogReader::open(file)? {
        let event = event.with_context(|| format!("reading {}", file.display()))?;
        check
            .check(&event)
            .map_err(|e| anyhow!("import refused, nothing was written: {e} [{}]", e.code()))?;
        sealed = sealed || keys::holds_sealed(&event);
    }
    let summary = check.finish();
    let vault = match bundle {
        Some((bundle, master, source)) => {
            let vault = keys::open_vault(data, &store, master, &source)
                .map_err(|e| anyhow!("import refused before writing any event: {e:#}"))?;
            let done = vault
                .import_keys(&bundle)
                .map_err(|e| anyhow!("importing the keys failed: {e} [{}]", e.code()))?;
            println!(
                "imported keys: {} added, {} already held; forgotten customers: {} marked, {} already forgotten",
                done.added, done.already_held, done.forgotten, done.stayed_forgotten
            );
            Some(vault)
        }
        None => {
            if sealed {
                eprintln!(
                    "note: {} holds sealed personal data; without its keys (`sijil export \
                     --keys FILE` on the source, then `sijil import --keys FILE`) this store \
                     cannot read it",
                    file.display()
                );
            }
            None
        }
    };
    if summary.new_events == 0 {
        println!(
            "nothing to import: the store already holds all {} events of {}",
            summary.events,
            file.display()
        );
        return Ok(());
    }
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut written = 0u64;
    for event in LogReader::open(file)? {
        chunk.push(event.with_context(|| format!("reading {}", file.display()))?);
        if chunk.len() >= CHUNK {
            written += write_chunk(&store, vault.as_ref(), &chunk)?;
            chunk.clear();
        }
    }
    written += write_chunk(&store, vault.as_ref(), &chunk)?;
    store_dir::mark(data, &store)?;
    println!(
        "imported {written} new events (positions {}..={}); {} were already present; head is now {}",
        summary.last_position + 1 - summary.new_events,
        summary.last_position,
        summary.already_present,
        store.head_position()
    );
    Ok(())
}

/// Appends `chunk`; with a vault, first records the case and follow-up links its events
/// make, as the gateway does when it appends them.
fn write_chunk(
    store: &Store,
    vault: Option<&Vault>,
    chunk: &[sijil_store::RecordedEvent],
) -> Result<u64> {
    if chunk.is_empty() {
        return Ok(0);
    }
    if let Some(vault) = vault {
        for recorded in chunk {
            let (Ok(event), Ok(ws)) = (
                projections::decode_event(recorded),
                WorkspaceId::new(recorded.workspace_id),
            ) else {
                continue;
            };
            vault
                .record_link(ws, &event)
                .map_err(|e| anyhow!("import stopped: {e} [{}]", e.code()))?;
        }
        vault
            .make_durable()
            .map_err(|e| anyhow!("import stopped: {e} [{}]", e.code()))?;
    }
    store
        .import_events(chunk)
        .map_err(|e| anyhow!("import stopped: {e} [{}]", e.code()))
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `sijil rebuild [PROJECTION]` (`master_key_file` as for `serve`: a sealed store's
/// directory indexes keyed hashes, which need the vault).
/// `sijil compact`: the store's checks first (an existing, undamaged store no server holds),
/// then the compaction; prints what it freed.
pub fn compact(data: &Path) -> Result<()> {
    drop(store_dir::open(data, Mode::Existing)?);
    let bar = spinner("compacting the database".into());
    let done = sijil_store::compact::compact(data);
    bar.finish_and_clear();
    let done = done.map_err(|e| store_dir::explain(data, e))?;
    let mb = |bytes: u64| bytes as f64 / 1e6;
    println!(
        "compacted: {:.1} MB -> {:.1} MB of database files ({} trees, {} keys) in {:.1} s",
        mb(done.bytes_before),
        mb(done.bytes_after),
        done.trees,
        done.entries,
        done.seconds
    );
    Ok(())
}

pub fn rebuild(
    data: &Path,
    name: Option<&str>,
    master_key_file: Option<&std::path::PathBuf>,
) -> Result<()> {
    let store = store_dir::open(data, Mode::Existing)?;
    let vault = keys::unlock_existing(data, &store, master_key_file)?.map(|(vault, _)| vault);
    let all = projections::default_projections_with_vault(vault);
    let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
    let chosen: Vec<_> = match name {
        Some(wanted) => {
            let found: Vec<_> = all.iter().filter(|p| p.name() == wanted).cloned().collect();
            if found.is_empty() {
                bail!(
                    "there is no projection `{wanted}`; the projections are: {}",
                    names.join(", ")
                );
            }
            found
        }
        None => all.clone(),
    };
    let head = store.head_position();
    for projection in chosen {
        let name = projection.name();
        let handle = ProjectionHandle::open(store.db(), projection)
            .with_context(|| format!("opening projection {name}"))?;
        let bar = spinner(format!("rebuilding {name} from {head} events"));
        let stats = handle.rebuild(&store);
        bar.finish_and_clear();
        let stats = stats.with_context(|| format!("rebuilding projection {name}"))?;
        println!(
            "{name}: rebuilt from {} events in {:.2} s ({:.0} events/s), generation {}",
            stats.events,
            stats.elapsed.as_secs_f64(),
            stats.events_per_sec,
            stats.generation
        );
    }
    Ok(())
}

/// `sijil token …`.
pub fn token(data: &Path, postgres: Option<&str>, command: &TokenCommand) -> Result<()> {
    let local = || -> Result<TokenStore> {
        let mode = match command {
            TokenCommand::Create { .. } => Mode::Create,
            _ => Mode::Existing,
        };
        let store = store_dir::open(data, mode)?;
        TokenStore::open(store.db()).context("opening the token store")
    };
    match command {
        TokenCommand::Create {
            workspace,
            role,
            name,
            scopes,
        } => {
            let (record, secret) = match postgres {
                Some(url) => crate::cluster::create_token(
                    url,
                    token_request(*workspace, role, name, scopes)?,
                )?,
                None => create_token(&local()?, *workspace, role, name, scopes)?,
            };
            println!("token id:  {}", record.id);
            println!("workspace: {}", record.workspace_id);
            println!("role:      {}", record.role.as_str());
            if !record.scopes.is_empty() {
                let names: Vec<String> = record.scopes.iter().map(|p| format!("{p:?}")).collect();
                println!("scopes:    {}", names.join(","));
            }
            println!("secret:    {secret}");
            println!("(the secret is shown once; send it as `Authorization: Bearer <secret>`)");
        }
        TokenCommand::List => {
            let list = match postgres {
                Some(url) => crate::cluster::list_tokens(url)?,
                None => local()?.list().context("listing tokens")?,
            };
            if list.is_empty() {
                println!("no tokens");
            }
            for record in list {
                println!(
                    "{}  {:<10}  workspace {}  created {}  {}  {}",
                    record.id,
                    record.role.as_str(),
                    record.workspace_id,
                    iso8601(record.created_at),
                    record
                        .revoked_at
                        .map_or("active".to_owned(), |at| format!("revoked {}", iso8601(at))),
                    if record.name.is_empty() {
                        String::new()
                    } else {
                        format!("\"{}\"", record.name)
                    }
                );
            }
        }
        TokenCommand::Revoke { id } => {
            let record = match postgres {
                Some(url) => crate::cluster::revoke_token(url, *id)?,
                None => local()?
                    .revoke(*id, now_ms())
                    .map_err(|e| anyhow!("cannot revoke token {id}: {e}"))?,
            };
            println!(
                "revoked token {} ({} of workspace {})",
                record.id,
                record.role.as_str(),
                record.workspace_id
            );
        }
    }
    Ok(())
}

/// A checked request for a new token.
pub struct TokenRequest {
    pub workspace: uuid::Uuid,
    pub role: Role,
    pub name: String,
    pub scopes: Vec<Permission>,
}

/// Checks the inputs of a new token.
pub fn token_request(
    workspace: uuid::Uuid,
    role: &str,
    name: &str,
    scopes: &[String],
) -> Result<TokenRequest> {
    WorkspaceId::new(workspace)
        .map_err(|_| anyhow!("--workspace {workspace} is not a workspace id (a UUID v7)"))?;
    let role = Role::parse(role).ok_or_else(|| {
        anyhow!("--role {role} is not a role; use agent, supervisor, auditor, app or admin")
    })?;
    let mut permissions = Vec::with_capacity(scopes.len());
    for scope in scopes.iter().filter(|s| !s.trim().is_empty()) {
        let permission = Permission::parse(scope.trim()).ok_or_else(|| {
            let known: Vec<String> = Permission::ALL.iter().map(|p| format!("{p:?}")).collect();
            anyhow!(
                "--scopes: `{scope}` is not a permission; known: {}",
                known.join(", ")
            )
        })?;
        permissions.push(permission);
    }
    match role {
        Role::App if permissions.is_empty() => {
            bail!("an app token needs --scopes (the permissions it grants)")
        }
        Role::App => {}
        _ if !permissions.is_empty() => bail!("--scopes only applies to app tokens"),
        _ => {}
    }
    Ok(TokenRequest {
        workspace,
        role,
        name: name.to_owned(),
        scopes: permissions,
    })
}

/// Checks the inputs of a new token and creates it.
pub fn create_token(
    tokens: &TokenStore,
    workspace: uuid::Uuid,
    role: &str,
    name: &str,
    scopes: &[String],
) -> Result<(sijil_gateway::TokenRecord, String)> {
    let request = token_request(workspace, role, name, scopes)?;
    tokens
        .create(
            request.workspace,
            request.role,
            &request.name,
            request.scopes,
            now_ms(),
        )
        .map_err(|e| anyhow!("cannot create the token: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_735_689_600_000), "2025-01-01T00:00:00Z");
        assert_eq!(
            iso8601(951_782_400_000 + 86_399_000),
            "2000-02-29T23:59:59Z"
        );
    }
}
