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

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tempfile::TempDir;

/// A running throw-away PostgreSQL server.
pub struct PgServer {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    as_nobody: bool,
}

impl PgServer {
    /// Starts a fresh server; panics with a clear message if PostgreSQL is
    /// not available and cannot be installed.
    pub fn start() -> PgServer {
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
        let port = random_port();
        let server = PgServer {
            bin,
            dir,
            port,
            as_nobody,
        };
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
        let options = format!(
            "-p {port} -k {} -c listen_addresses='' -c fsync=on -c synchronous_commit=on \
             -c max_connections=200 -c shared_buffers=32MB",
            server.dir.path().display()
        );
        server.pg(
            "pg_ctl",
            &[
                "-D",
                &server.data_dir().display().to_string(),
                "-l",
                &server.dir.path().join("server.log").display().to_string(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        server
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
        let out = self.pg(
            "psql",
            &[
                "-h",
                &self.dir.path().display().to_string(),
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
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one PostgreSQL program (as `nobody` when we are root).
    fn pg(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut command = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(self.dir.path());
        let out = run(&mut command);
        if !out.status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            panic!(
                "{program} {args:?} failed: {}\n{}\nserver log:\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let path = self.bin.join("pg_ctl");
        let data = self.data_dir();
        let mut command = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let _ = command
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
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
