#!/usr/bin/env bash
# usage: bench/serve-start.sh BIN STORE
# Serves a fresh copy of STORE (a `sijil demo` data directory, its key in STORE.master-key)
# and prints the seconds until every projection's lag on /metrics is 0, and the server's RSS.
set -euo pipefail
BIN=$1; STORE=$2
RUN="$STORE.serve-start"
rm -rf "$RUN" && cp -a "$STORE" "$RUN" && cp "$STORE.master-key" "$RUN.master-key"
log="$RUN.log"
start=$(date +%s.%N)
"$BIN" --data "$RUN" serve --listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$RUN" "$RUN.master-key"' EXIT
url=""
for _ in $(seq 1 3000); do
  url=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\)\/graphql.*/\1/p' "$log" | head -n 1)
  [ -n "$url" ] && break; sleep 0.2; done
[ -n "$url" ] || { echo "serve did not start: see $log" >&2; exit 1; }
until curl -sf "$url/metrics" 2>/dev/null | awk '/^sijil_projection_lag_events/ { seen = 1; if ($2 + 0 > 0) bad = 1 } END { exit (bad || !seen) }'; do sleep 0.5; done
end=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo "caught up in $(echo "$end - $start" | bc) s, RSS $((rss / 1024)) MiB"
