#!/usr/bin/env bash
# usage: bench/serve-ready.sh BIN STORE KEYFILE [TOKENFILE [LOADBIN]]
# Serves STORE in place (no copy: for stores too large to copy), prints the seconds until
# /readyz answers and the server's idle RSS; with TOKENFILE also runs 15 s of the `timeline`
# scenario at 32 clients (LOADBIN, default target/release/sijil-load) and prints the RSS after.
set -euo pipefail
BIN=$1; STORE=$2; KEY=$3; TOKEN=${4:-}; LOAD=${5:-target/release/sijil-load}
. "$(dirname "$0")/serve-caught-up.sh"
LOG=$(mktemp)
trap 'kill "${SERVE_PID:-}" 2>/dev/null || true; wait "${SERVE_PID:-}" 2>/dev/null || true; rm -f "$LOG"' EXIT
SIJIL_MASTER_KEY=$(cat "$KEY") serve_ready "$BIN" "$STORE" "$LOG" --log warn \
  --rate-per-second 1000000 --rate-burst 1000000
echo "ready after $SERVE_READY_SECS s, idle RSS $(awk '/VmRSS/ {print $2}' "/proc/$SERVE_PID/status") KB"
if [ -n "$TOKEN" ]; then
  "$LOAD" --url "$SERVE_URL" --token "$(cat "$TOKEN")" --server-pid "$SERVE_PID" --scenario timeline \
    --clients 32 --duration 15 | grep -E "timeline page"
  echo "RSS after load $(awk '/VmRSS/ {print $2}' "/proc/$SERVE_PID/status") KB"
fi
