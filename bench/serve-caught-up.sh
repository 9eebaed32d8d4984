# Sourced by the bench scripts (bench/scale-run.sh, bench/serve-start.sh, bench/serve-ready.sh).
#
# serve_ready SIJIL DATA LOG [SERVE ARGS...]: starts `SIJIL --data DATA serve` on a free port
# (output in LOG) with the extra arguments, waits until it listens and /readyz answers. Sets
# SERVE_PID, SERVE_URL and SERVE_READY_SECS (seconds from the start until ready); the caller
# stops the server (and should trap EXIT to kill "$SERVE_PID").
serve_ready() {
  local sijil=$1 data=$2 log=$3
  shift 3
  SERVE_STARTED=$(date +%s.%N)
  "$sijil" --data "$data" serve --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  SERVE_PID=$!
  SERVE_URL=""
  # serve catches up (up to 10 minutes) before it listens, then /readyz says when it is done
  for _ in $(seq 1 108000); do
    SERVE_URL=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\)\/graphql.*/\1/p' "$log" | head -n 1)
    [ -n "$SERVE_URL" ] && break
    kill -0 "$SERVE_PID" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$SERVE_URL" ] || { echo "server did not start; see $log" >&2; return 1; }
  until curl -sf "$SERVE_URL/readyz" >/dev/null; do sleep 0.1; done
  SERVE_READY_SECS=$(awk -v a="$SERVE_STARTED" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
}

# serve_caught_up SIJIL DATA LOG: serve_ready, then waits until every projection's lag on
# /metrics is 0. Sets SERVE_PID, SERVE_URL and SERVE_SECS (seconds from the start until caught
# up).
serve_caught_up() {
  serve_ready "$1" "$2" "$3" || return 1
  # /readyz turns ready once serve stops waiting for the catch-up (at most 10 minutes); it is
  # caught up once every projection has applied the whole log.
  until curl -sf "$SERVE_URL/metrics" | awk '/^sijil_projection_lag_events/ { seen = 1; if ($2 + 0 > 0) bad = 1 } END { exit (bad || !seen) }'; do
    sleep 0.5
  done
  SERVE_SECS=$(awk -v a="$SERVE_STARTED" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
}
