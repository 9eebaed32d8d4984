#!/usr/bin/env bash
# sijil on PostgreSQL next to sled (issue 9), measured over HTTP with sijil-load:
#   1. writes (recordInteraction: durable append + read-your-writes) on a sled node and on a
#      node whose log is in PostgreSQL, with 1 and 32 clients;
#   2. timeline reads (32 clients) on one PostgreSQL node, then spread over two nodes that
#      share the log (sijil-load --url A,B takes turns).
# Both stores hold the same demo (CUSTOMERS customers, seed 7). PostgreSQL is a throw-away
# server (initdb in a temp dir, fsync and synchronous_commit on) from the machine's packages.
# Results: $OUT/pg-*.json and a summary table on stdout.
#
# Usage: bench/pg-nodes.sh [OUT_DIR] [CUSTOMERS]   (defaults: bench/results/pg, 3600)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/bench/results/pg}
CUSTOMERS=${2:-3600}
DURATION=${DURATION:-20}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$OUT"
if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked -p sijil -p sijil-loadgen)
fi
SIJIL=$TARGET/release/sijil
LOAD=$TARGET/release/sijil-load

WORK=$(mktemp -d /tmp/sijil-pg-bench.XXXXXX)
BIN=$(dirname "$(command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
PORT=$((20000 + RANDOM % 20000))
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  $RUN "$BIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
if [ "$(id -u)" = 0 ]; then RUN="runuser -u nobody --"; chown nobody "$WORK"; else RUN=""; fi
$RUN "$BIN/initdb" -D "$WORK/pg" -U sijil -A trust >/dev/null
$RUN "$BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w -o "-p $PORT -k $WORK -c listen_addresses='' \
  -c fsync=on -c synchronous_commit=on -c max_connections=200 -c shared_buffers=256MB" start >/dev/null
psql -h "$WORK" -p "$PORT" -U sijil -d postgres -qc "CREATE DATABASE crm"
STORE="host=$WORK port=$PORT user=sijil dbname=crm"
"$SIJIL" master-key | tail -n 1 >"$WORK/master.key"
KEY=$WORK/master.key

# Runs `sijil ARGS… --listen 127.0.0.1:0` (ARGS ends with `serve [flags]`); sets $url and $pid;
# waits for /readyz.
start_node() {
  local name=$1
  shift
  local log=$OUT/serve-$name.log
  "$SIJIL" --master-key-file "$KEY" "$@" --listen 127.0.0.1:0 >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  url=""
  for _ in $(seq 1 1800); do
    url=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\)\/graphql.*/\1/p' "$log" | head -n 1)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  [ -n "$url" ] || { echo "node $name did not start; see $log" >&2; exit 1; }
  until curl -sf "$url/readyz" >/dev/null; do sleep 1; done
}

load() {
  local name=$1
  shift
  echo "== $name"
  "$LOAD" --token "$TOKEN" --duration "$DURATION" --json "$OUT/pg-$name.json" "$@"
}

# The sled node: the demo in its own store, and a token of its workspace.
demo_out=$("$SIJIL" --master-key-file "$KEY" --data "$WORK/sled" demo --customers "$CUSTOMERS" --seed 7)
echo "$demo_out" | tail -n 2
WS=$(echo "$demo_out" | sed -n 's/.*workspace \([0-9a-f-]*\).*/\1/p' | head -n 1)
TOKEN_SLED=$("$SIJIL" --master-key-file "$KEY" --data "$WORK/sled" token create --workspace "$WS" --role admin | sed -n 's/^secret: *//p')
start_node sled --data "$WORK/sled" serve
SLED_URL=$url
SLED_PID=$pid

# Node A fills the empty database with the same demo (written locally, then sent).
start_node a --store "$STORE" --data "$WORK/a" serve --demo --demo-customers "$CUSTOMERS"
A_URL=$url
A_PID=$pid
grep -E '^(demo|sent)' "$OUT/serve-a.log" || true
TOKEN=$(sed -n 's/^admin token for workspace [^:]*: \(sjl_[0-9a-f]*\).*/\1/p' "$OUT/serve-a.log" | head -n 1)
[ -n "$TOKEN" ] || { echo "no admin token from node a" >&2; exit 1; }

# Node B copies the log (timed).
copy_start=$(date +%s.%N)
start_node b --store "$STORE" --data "$WORK/b" serve
B_URL=$url
B_PID=$pid
copy_secs=$(python3 -c "import time; print(round(time.time() - $copy_start, 1))")
events=$(psql -h "$WORK" -p "$PORT" -U sijil -d crm -Atc "SELECT position FROM sijil_log_head")
echo "== node b copied $events events and caught up in ${copy_secs}s"

TOKEN=$TOKEN_SLED load sled-write-1 --url "$SLED_URL" --scenario write --clients 1 --server-pid "$SLED_PID"
TOKEN=$TOKEN_SLED load sled-write-32 --url "$SLED_URL" --scenario write --clients 32 --server-pid "$SLED_PID"
load pg-write-1 --url "$A_URL" --scenario write --clients 1 --server-pid "$A_PID"
load pg-write-32 --url "$A_URL" --scenario write --clients 32 --server-pid "$A_PID"
load pg-write-32-two-nodes --url "$A_URL,$B_URL" --scenario write --clients 32
TOKEN=$TOKEN_SLED load sled-timeline-32 --url "$SLED_URL" --scenario timeline --clients 32 --server-pid "$SLED_PID"
load pg-timeline-32-one-node --url "$A_URL" --scenario timeline --clients 32 --server-pid "$A_PID"
load pg-timeline-32-two-nodes --url "$A_URL,$B_URL" --scenario timeline --clients 32
# The same reads with each node pinned to a core of its own (taskset), so a second node
# brings a core the first could not use (PostgreSQL and sijil-load still float).
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  taskset -apc 0 "$A_PID" >/dev/null
  taskset -apc 1 "$B_PID" >/dev/null
  load pg-timeline-32-one-node-pinned --url "$A_URL" --scenario timeline --clients 32
  load pg-timeline-32-two-nodes-pinned --url "$A_URL,$B_URL" --scenario timeline --clients 32
fi
echo "{\"events\": $events, \"copy_seconds\": $copy_secs, \"cores\": $(nproc)}" >"$OUT/pg-setup.json"
