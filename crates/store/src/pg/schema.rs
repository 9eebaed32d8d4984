//! Owns the PostgreSQL schema of the event log and its versioned migrations.
//!
//! Migrations are numbered from 1 and recorded in `sijil_schema_migrations`.
//! [`migrate`] runs on every connect: under a transaction-scoped advisory
//! lock (so nodes starting together do not race), it applies every migration
//! newer than the recorded version in that one transaction (all or nothing),
//! and refuses a database whose recorded version is newer than this build
//! knows.

use tokio_postgres::Client;

use crate::error::StoreError;

use super::pg_err;

/// Advisory lock key that serialises migrations across nodes
/// (`"sijilmig"` as ASCII bytes).
const MIGRATION_LOCK: i64 = 0x7369_6a69_6c6d_6967;

/// One schema step.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Never edit a released entry: add a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "event log, log head",
        sql: r#"
CREATE TABLE sijil_log_head (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    position bigint  NOT NULL CHECK (position >= 0)
);
INSERT INTO sijil_log_head (id, position) VALUES (true, 0);
CREATE TABLE sijil_events (
    position       bigint  PRIMARY KEY CHECK (position > 0),
    stream_id      text    NOT NULL,
    version        bigint  NOT NULL CHECK (version > 0),
    event_id       uuid    NOT NULL,
    workspace_id   uuid    NOT NULL,
    event_type     text    NOT NULL,
    schema_version integer NOT NULL CHECK (schema_version BETWEEN 0 AND 65535),
    occurred_at    bigint  NOT NULL,
    recorded_at    bigint  NOT NULL,
    actor          text    NOT NULL,
    on_behalf_of   text,
    correlation_id uuid,
    causation_id   uuid,
    payload        bytea   NOT NULL,
    prev_hash      bytea   NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash           bytea   NOT NULL CHECK (octet_length(hash) = 32),
    CONSTRAINT sijil_events_stream_version UNIQUE (stream_id, version),
    CONSTRAINT sijil_events_event_id UNIQUE (event_id)
);
CREATE INDEX sijil_events_type_position ON sijil_events (event_type, position);
"#,
    },
    Migration {
        version: 2,
        name: "state shared by the nodes: tokens, mutation records, vault keys, settings",
        sql: r#"
CREATE TABLE sijil_shared (
    space      text        NOT NULL,
    key        bytea       NOT NULL,
    value      bytea       NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (space, key)
);
"#,
    },
];

/// The newest schema version this build knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the database's schema up to [`latest_version`]. Returns the
/// version found before migrating.
pub async fn migrate(client: &mut Client) -> Result<i32, StoreError> {
    let tx = client
        .transaction()
        .await
        .map_err(pg_err("begin migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_err("take migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS sijil_schema_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(pg_err("create migrations table"))?;
    let row = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM sijil_schema_migrations",
            &[],
        )
        .await
        .map_err(pg_err("read schema version"))?;
    let found: i32 = row.try_get(0).map_err(pg_err("read schema version"))?;
    if found > latest_version() {
        return Err(StoreError::IncompatibleFormat {
            found: u32::try_from(found).unwrap_or(u32::MAX),
            supported: u32::try_from(latest_version()).unwrap_or(0),
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        // All steps share the transaction that holds the lock: a crash
        // part-way leaves the schema exactly as it was.
        tx.batch_execute(migration.sql)
            .await
            .map_err(pg_err("apply migration"))?;
        tx.execute(
            "INSERT INTO sijil_schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(pg_err("record migration"))?;
    }
    tx.commit().await.map_err(pg_err("commit migration"))?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i32 + 1, "{}", migration.name);
        }
        assert_eq!(latest_version(), MIGRATIONS.len() as i32);
    }
}
