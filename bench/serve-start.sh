#!/usr/bin/env bash
# usage: bench/serve-start.sh BIN STORE
# Serves a fresh copy of STORE (a `sijil demo` data directory, its key in STORE.master-key)
# and prints the seconds until every projection's lag on /metrics is 0, and the server's RSS.
set -euo pipefail
BIN=$1; STORE=$2
. "$(dirname "$0")/serve-caught-up.sh"
RUN="$STORE.serve-start"
rm -rf "$RUN" && cp -a "$STORE" "$RUN" && cp "$STORE.master-key" "$RUN.master-key"
trap 'kill "${SERVE_PID:-}" 2>/dev/null || true; rm -rf "$RUN" "$RUN.master-key"' EXIT
serve_caught_up "$BIN" "$RUN" "$RUN.log"
rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVE_PID/status")
echo "caught up in $SERVE_SECS s, RSS $((rss / 1024)) MiB"
