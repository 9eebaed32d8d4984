//! Test support: a throw-away PostgreSQL server per test.
//!
//! [`PgServer::start`] finds the machine's PostgreSQL binaries
//! (`SIJIL_PG_BIN`, then `/usr/local/bin`, then the newest
//! `/usr/lib/postgresql/*/bin`; as root it runs `apt-get install -y
//! postgresql` if none is found), runs `initdb` into a temporary directory,
//! and starts `postgres` on a random port that listens only on a unix socket
//! inside that directory, with `fsync` and `synchronous_commit` on. As root
//! the server runs as `nobody` via `runuser`, since PostgreSQL refuses to run
//! as root. Dropping the server stops it (`pg_ctl stop -m immediate`) and
//! deletes the directory.
//!
//! [`PgReplicaPair`] runs a primary with one streaming standby (its own
//! directory and port, made by `pg_basebackup`), synchronous
//! (`synchronous_standby_names = 'sijil_standby'`, so a commit returns only
//! once the standby flushed its WAL) or asynchronous; it can kill the
//! primary's postmaster with `SIGKILL`, detach the standby, and promote it.
//!
//! Usable from other crates' tests via
//! `#[path = "../../store/tests/pg_support/mod.rs"] mod pg_support;` (needs
//! the `tempfile` and `getrandom` crates).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A running throw-away PostgreSQL server.
pub struct PgServer {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    as_nobody: bool,
    /// Set by [`PgServer::kill_hard`]: dropping then skips `pg_ctl stop`
    /// (the pid in `postmaster.pid` is stale and could name another process).
    killed: AtomicBool,
}

impl PgServer {
    /// Starts a fresh server; panics with a clear message if PostgreSQL is
    /// not available and cannot be installed.
    pub fn start() -> PgServer {
        PgServer::start_with_options("")
    }

    /// Like [`start`](PgServer::start), with `extra` appended to the
    /// server's command line (e.g. `-c wal_level=replica`; single quotes
    /// work as in a shell).
    pub fn start_with_options(extra: &str) -> PgServer {
        let server = PgServer::unstarted();
        server.pg(
            "initdb",
            &[
                "-D",
                &server.data_dir().display().to_string(),
                "-U",
                "sijil",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        server.launch(extra);
        server
    }

    /// A server with its directory and port chosen but no data directory.
    fn unstarted() -> PgServer {
        let bin = pg_bin().clone();
        let dir = tempfile::Builder::new()
            .prefix("sijil-pg-")
            .tempdir()
            .expect("create a temporary directory for PostgreSQL");
        let as_nobody = is_root();
        if as_nobody {
            run(Command::new("chown")
                .arg("-R")
                .arg("nobody")
                .arg(dir.path()));
        }
        PgServer {
            bin,
            dir,
            port: random_port(),
            as_nobody,
            killed: AtomicBool::new(false),
        }
    }

    /// Starts `postgres` on the existing data directory and waits until it
    /// accepts connections.
    fn launch(&self, extra: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses='' -c fsync=on -c synchronous_commit=on \
             -c max_connections=200 -c shared_buffers=32MB {extra}",
            self.port,
            self.dir.path().display()
        );
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir().display().to_string(),
                "-l",
                &self.log_path().display().to_string(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
    }

    /// A connection string for `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!(
            "host={} port={} user=sijil dbname={database}",
            self.dir.path().display(),
            self.port
        )
    }

    /// Creates `database` and returns its connection string.
    pub fn create_database(&self, database: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {database}"));
        self.url(database)
    }

    /// Runs `sql` on `database` with `psql` and returns its unaligned,
    /// tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = self.pg("psql", &self.psql_args(database, sql));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Like [`psql`](PgServer::psql), but returns `psql`'s error output
    /// instead of panicking (for polling a server that may not be up).
    pub fn try_psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = run(&mut self.command("psql", &self.psql_args(database, sql)));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    fn psql_args(&self, database: &str, sql: &str) -> Vec<String> {
        [
            "-h",
            &self.socket_dir().display().to_string(),
            "-p",
            &self.port.to_string(),
            "-U",
            "sijil",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-c",
            sql,
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect()
    }

    /// The directory holding the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The port naming the server's socket.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log so far (empty if unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The postmaster's pid, from the first line of `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Kills the postmaster with `SIGKILL` (a real `kill -9`: no shutdown
    /// checkpoint, no goodbye to clients or standbys) and waits until the
    /// process is gone. Its backends notice the postmaster's death and exit
    /// on their own without answering pending commits.
    pub fn kill_hard(&self) {
        let pid = self
            .postmaster_pid()
            .unwrap_or_else(|| panic!("no postmaster.pid: is the server running?\n{}", self.log()));
        self.killed.store(true, Ordering::SeqCst);
        let out = run(Command::new("kill").args(["-KILL", &pid.to_string()]));
        assert!(
            out.status.success(),
            "kill -KILL {pid} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_until(
            Duration::from_secs(30),
            "the killed postmaster to go",
            || !process_alive(pid),
        );
    }

    /// Whether [`kill_hard`](PgServer::kill_hard) ran.
    pub fn was_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one PostgreSQL program (as `nobody` when we are root) and
    /// panics, with the server log, if it fails.
    fn pg<A: AsRef<std::ffi::OsStr>>(&self, program: &str, args: &[A]) -> Output {
        let out = run(&mut self.command(program, args));
        if !out.status.success() {
            let args: Vec<_> = args.iter().map(|a| a.as_ref().to_owned()).collect();
            panic!(
                "{program} {args:?} failed: {}\n{}\nserver log:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
        }
        out
    }

    /// The command running one PostgreSQL program (as `nobody` when we are
    /// root) in the server's directory.
    fn command<A: AsRef<std::ffi::OsStr>>(&self, program: &str, args: &[A]) -> Command {
        let path = self.bin.join(program);
        let mut command = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(self.dir.path());
        command
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.was_killed() {
            return;
        }
        let data = self.data_dir();
        let _ = self
            .command("pg_ctl", &[] as &[&str])
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// The application name the standby streams under, and so the value of the
/// primary's `synchronous_standby_names` in synchronous mode.
pub const STANDBY_NAME: &str = "sijil_standby";

/// A primary and one streaming standby, each a [`PgServer`] with its own
/// directory and port. Dropping it stops both (the standby first).
pub struct PgReplicaPair {
    // Field order is drop order: the standby goes before its primary.
    standby: PgServer,
    primary: PgServer,
    synchronous: bool,
}

impl PgReplicaPair {
    /// A primary whose commits wait until the standby has flushed them
    /// (`synchronous_standby_names = 'sijil_standby'`,
    /// `synchronous_commit = on`); returns once the primary reports the
    /// standby as `sync`.
    pub fn start_sync() -> PgReplicaPair {
        PgReplicaPair::start(true)
    }

    /// The same pair with asynchronous replication
    /// (`synchronous_standby_names` empty): commits do not wait for the
    /// standby. Returns once the standby streams.
    pub fn start_async() -> PgReplicaPair {
        PgReplicaPair::start(false)
    }

    fn start(synchronous: bool) -> PgReplicaPair {
        let names = if synchronous { STANDBY_NAME } else { "" };
        // wal_level=replica and max_wal_senders are PostgreSQL's defaults;
        // set them anyway so the pair does not depend on them.
        let primary = PgServer::start_with_options(&format!(
            "-c wal_level=replica -c max_wal_senders=10 -c wal_keep_size=256MB \
             -c synchronous_standby_names='{names}'"
        ));
        let hba = std::fs::read_to_string(primary.data_dir().join("pg_hba.conf"))
            .expect("read the primary's pg_hba.conf");
        assert!(
            hba.lines().any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.len() >= 4
                    && fields[0] == "local"
                    && fields[1] == "replication"
                    && (fields[2] == "all" || fields[2] == "sijil")
                    && fields[3] == "trust"
            }),
            "initdb -A trust did not allow local replication connections:\n{hba}"
        );

        let standby = PgServer::unstarted();
        let data = standby.data_dir();
        standby.pg(
            "pg_basebackup",
            &[
                "-D",
                &data.display().to_string(),
                "-h",
                &primary.socket_dir().display().to_string(),
                "-p",
                &primary.port().to_string(),
                "-U",
                "sijil",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        );
        std::fs::write(data.join("standby.signal"), b"").expect("write standby.signal");
        let conninfo = format!(
            "\nprimary_conninfo = 'host={} port={} user=sijil application_name={STANDBY_NAME}'\n",
            primary.socket_dir().display(),
            primary.port()
        );
        let mut auto_conf = std::fs::read_to_string(data.join("postgresql.auto.conf"))
            .expect("read the standby's postgresql.auto.conf");
        auto_conf.push_str(&conninfo);
        std::fs::write(data.join("postgresql.auto.conf"), auto_conf)
            .expect("write the standby's postgresql.auto.conf");
        if standby.as_nobody {
            run(Command::new("chown").arg("-R").arg("nobody").arg(&data));
        }
        // Not synchronous itself: once promoted it must not wait for a
        // standby of its own.
        standby.launch("-c hot_standby=on -c synchronous_standby_names=''");

        let pair = PgReplicaPair {
            standby,
            primary,
            synchronous,
        };
        pair.wait_for_streaming();
        pair
    }

    /// The primary server.
    pub fn primary(&self) -> &PgServer {
        &self.primary
    }

    /// The standby server (the new primary once promoted).
    pub fn standby(&self) -> &PgServer {
        &self.standby
    }

    /// Whether commits wait for the standby.
    pub fn is_synchronous(&self) -> bool {
        self.synchronous
    }

    /// A connection string for `database` on the primary.
    pub fn primary_url(&self, database: &str) -> String {
        self.primary.url(database)
    }

    /// A connection string for `database` on the standby.
    pub fn standby_url(&self, database: &str) -> String {
        self.standby.url(database)
    }

    /// Creates `database` on the primary (replicated to the standby) and
    /// returns the primary's connection string for it.
    pub fn create_database(&self, database: &str) -> String {
        self.primary.create_database(database)
    }

    /// Waits until the primary's `pg_stat_replication` shows the standby
    /// streaming, as `sync` in synchronous mode.
    pub fn wait_for_streaming(&self) {
        let wanted = if self.synchronous { "sync" } else { "async" };
        let sql = format!(
            "SELECT sync_state FROM pg_stat_replication \
             WHERE application_name = '{STANDBY_NAME}' AND state = 'streaming'"
        );
        self.wait(&format!("the standby to stream as {wanted}"), || {
            self.primary.try_psql("postgres", &sql).as_deref() == Ok(wanted)
        });
    }

    /// Waits until the standby has replayed everything the primary has
    /// written so far.
    pub fn wait_for_catch_up(&self) {
        let lsn = self.primary.psql("postgres", "SELECT pg_current_wal_lsn()");
        let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
        self.wait(&format!("the standby to replay up to {lsn}"), || {
            self.standby.try_psql("postgres", &sql).as_deref() == Ok("t")
        });
    }

    /// Stops the standby from receiving anything more (clears its
    /// `primary_conninfo` and waits until its WAL receiver is gone) while
    /// the primary keeps running. In asynchronous mode the primary keeps
    /// acknowledging commits the standby will never see; in synchronous
    /// mode its commits wait.
    pub fn detach_standby(&self) {
        self.standby
            .psql("postgres", "ALTER SYSTEM SET primary_conninfo = ''");
        self.standby.psql("postgres", "SELECT pg_reload_conf()");
        self.wait("the standby's WAL receiver to stop", || {
            self.standby
                .try_psql("postgres", "SELECT count(*) FROM pg_stat_wal_receiver")
                .as_deref()
                == Ok("0")
                && self
                    .primary
                    .try_psql("postgres", "SELECT count(*) FROM pg_stat_replication")
                    .as_deref()
                    == Ok("0")
        });
    }

    /// `kill -9` of the primary's postmaster; see [`PgServer::kill_hard`].
    pub fn kill_primary_hard(&self) {
        self.primary.kill_hard();
    }

    /// Promotes the standby (`pg_ctl promote -w`) and waits until it is
    /// out of recovery, i.e. accepts writes.
    pub fn promote_standby(&self) {
        self.standby.pg(
            "pg_ctl",
            &[
                "-D",
                &self.standby.data_dir().display().to_string(),
                "-w",
                "-t",
                "60",
                "promote",
            ],
        );
        self.wait("the promoted standby to leave recovery", || {
            self.standby
                .try_psql("postgres", "SELECT pg_is_in_recovery()")
                .as_deref()
                == Ok("f")
        });
    }

    /// Polls `done` for up to 60 s; panics with both servers' logs if it
    /// never holds.
    fn wait(&self, what: &str, done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut done = done;
        while !done() {
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {what}\nprimary log:\n{}\nstandby log:\n{}",
                    self.primary.log(),
                    self.standby.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Polls `done` every 20 ms for up to `limit`; panics naming `what`.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` names a live (not zombie) process.
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn random_port() -> u16 {
    // The server listens on a unix socket in its own directory only, so the
    // port just names the socket; any value works, a random one keeps logs
    // distinguishable.
    let mut bytes = [0u8; 2];
    getrandom::fill(&mut bytes).expect("random bytes");
    20_000 + u16::from_be_bytes(bytes) % 30_000
}

/// The directory holding `initdb`, `pg_ctl`, `postgres` and `psql`.
fn pg_bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(found) = find_pg_bin() {
            return found;
        }
        if is_root() && Path::new("/usr/bin/apt-get").exists() {
            let _ = Command::new("apt-get").arg("update").output();
            let _ = Command::new("apt-get")
                .args(["install", "-y", "postgresql"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output();
            if let Some(found) = find_pg_bin() {
                return found;
            }
        }
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) not found: set \
             SIJIL_PG_BIN to their directory or install them (`apt-get install -y postgresql`)"
        )
    })
}

fn find_pg_bin() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres", "psql"]
            .iter()
            .all(|p| dir.join(p).exists())
    };
    if let Some(dir) = std::env::var_os("SIJIL_PG_BIN").map(PathBuf::from) {
        if complete(&dir) {
            return Some(dir);
        }
    }
    let local = PathBuf::from("/usr/local/bin");
    if complete(&local) {
        return Some(local);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}
