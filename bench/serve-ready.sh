#!/usr/bin/env bash
# usage: bench/serve-ready.sh BIN STORE KEYFILE [TOKENFILE [LOADBIN]]
# Serves STORE in place (no copy: for stores too large to copy), prints the seconds until
# /readyz answers and the server's idle RSS; with TOKENFILE also runs 15 s of the `timeline`
# scenario at 32 clients (LOADBIN, default target/release/sijil-load) and prints the RSS after.
set -euo pipefail
BIN=$1; STORE=$2; KEY=$3; TOKEN=${4:-}; LOAD=${5:-target/release/sijil-load}
LOG=$(mktemp)
SIJIL_MASTER_KEY=$(cat "$KEY") "$BIN" --data "$STORE" --log warn serve --listen 127.0.0.1:0 \
  --rate-per-second 1000000 --rate-burst 1000000 >"$LOG" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
START=$(date +%s.%N)
URL=
until [ -n "$URL" ]; do
  kill -0 "$PID" 2>/dev/null || { cat "$LOG"; exit 1; }
  URL=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\)\/graphql.*/\1/p' "$LOG" | head -n1)
  sleep 0.1
done
until curl -sf "$URL/readyz" >/dev/null; do sleep 0.1; done
echo "ready after $(echo "$(date +%s.%N) - $START" | bc) s, idle RSS $(awk '/VmRSS/ {print $2}' /proc/$PID/status) KB"
if [ -n "$TOKEN" ]; then
  "$LOAD" --url "$URL" --token "$(cat "$TOKEN")" --server-pid "$PID" --scenario timeline \
    --clients 32 --duration 15 | grep -E "timeline page"
  echo "RSS after load $(awk '/VmRSS/ {print $2}' /proc/$PID/status) KB"
fi
