#!/usr/bin/env bash
# The PostgreSQL baseline for sijil's durable-append benchmark (issue 3).
#
# Starts a throw-away PostgreSQL (initdb in a temp dir, random port, fsync and
# synchronous_commit on, the machine's packaged server) with an `events` table shaped
# like sijil's envelope: global position, (stream, version) unique, event-id unique,
# payload and hash. pgbench then does what sijil-store-bench does: each client appends
# single events (or 10-event batches) to its own stream, each append one durable
# transaction that reads the stream head and inserts at the next version.
#
# Usage: bench/pg-baseline.sh [seconds-per-run]   (default 15)
set -euo pipefail
SECS=${1:-15}
BIN=$(dirname "$(command -v initdb || echo /usr/lib/postgresql/15/bin/initdb)")
DIR=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
trap '"$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
if [ "$(id -u)" = 0 ]; then RUN="runuser -u nobody --"; chown nobody "$DIR"; else RUN=""; fi
$RUN "$BIN/initdb" -D "$DIR/data" -U bench -A trust >/dev/null
$RUN "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
  -o "-p $PORT -k $DIR -c fsync=on -c synchronous_commit=on -c max_connections=100 -c shared_buffers=256MB" start >/dev/null
PSQL="psql -h $DIR -p $PORT -U bench -d postgres -q -v ON_ERROR_STOP=1"
$PSQL <<'SQL'
CREATE TABLE events (
  position    bigserial PRIMARY KEY,
  stream_id   text        NOT NULL,
  version     bigint      NOT NULL,
  event_id    uuid        NOT NULL UNIQUE,
  workspace   uuid        NOT NULL,
  event_type  text        NOT NULL,
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  actor       text        NOT NULL,
  payload     bytea       NOT NULL,
  hash        bytea       NOT NULL,
  UNIQUE (stream_id, version)
);
SQL
cat > "$DIR/one.sql" <<'SQL'
BEGIN;
INSERT INTO events (stream_id, version, event_id, workspace, event_type, occurred_at, actor, payload, hash)
SELECT 'bench-' || :client_id, coalesce(max(version), 0) + 1, gen_random_uuid(), '00000000-0000-0000-0000-000000000000',
       'CustomerUpdated', now(), 'system:bench', '\x84a36e616d65ac416461204c6f76656c616365'::bytea, sha256('x'::bytea)
FROM events WHERE stream_id = 'bench-' || :client_id;
COMMIT;
SQL
cat > "$DIR/ten.sql" <<'SQL'
BEGIN;
INSERT INTO events (stream_id, version, event_id, workspace, event_type, occurred_at, actor, payload, hash)
SELECT 'bench-' || :client_id, h.v + g, gen_random_uuid(), '00000000-0000-0000-0000-000000000000',
       'CustomerUpdated', now(), 'system:bench', '\x84a36e616d65ac416461204c6f76656c616365'::bytea, sha256('x'::bytea)
FROM (SELECT coalesce(max(version), 0) AS v FROM events WHERE stream_id = 'bench-' || :client_id) h,
     generate_series(1, 10) g;
COMMIT;
SQL
printf "%8s %6s %12s %12s %10s\n" clients batch events/s appends/s "avg lat"
for batch in 1 10; do
  for clients in 1 8 64; do
    $PSQL -c "TRUNCATE events" >/dev/null
    f="$DIR/one.sql"; [ "$batch" = 10 ] && f="$DIR/ten.sql"
    out=$(pgbench -h "$DIR" -p "$PORT" -U bench -n -c "$clients" -j 2 -T "$SECS" -f "$f" postgres 2>&1)
    tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
    lat=$(echo "$out" | sed -n 's/^latency average = \(.*\)$/\1/p')
    printf "%8s %6s %12.0f %12.0f %10s\n" "$clients" "$batch" "$(echo "$tps * $batch" | bc)" "$tps" "$lat"
  done
done
