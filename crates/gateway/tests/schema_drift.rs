//! The committed `schema/schema.graphql` must be exactly the SDL the server serves.
//! Regenerate it with `SIJIL_UPDATE_SCHEMA=1 cargo test -p sijil-gateway --test schema_drift`.

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schema/schema.graphql")
}

#[test]
fn committed_schema_matches_the_served_schema() {
    let served = sijil_gateway::sdl();
    let path = committed_path();
    if std::env::var_os("SIJIL_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &served).expect("write schema/schema.graphql");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != served {
        let first_difference = committed
            .lines()
            .zip(served.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || committed.lines().count().min(served.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "schema/schema.graphql differs from the served schema (first at line {first_difference}).\n\
             Regenerate it with:\n    SIJIL_UPDATE_SCHEMA=1 cargo test -p sijil-gateway --test schema_drift"
        );
    }
}
