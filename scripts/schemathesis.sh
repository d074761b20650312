#!/usr/bin/env bash
# Schemathesis against a real server process: every check, a bounded number of examples per
# operation, then the stateful phase over the API's links.
#   bash scripts/schemathesis.sh                 as in CI
#   SCHEMATHESIS_MAX_EXAMPLES=400 bash scripts/schemathesis.sh   a longer run (default 100)
# Extra arguments go to `schemathesis run` (e.g. --seed N to replay a run). Expected-status
# exceptions live in services/observatory/schemathesis.toml, each with its reason.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
PYBIN="$("$UV" run --frozen python -c 'import sys; print(sys.executable)')"
port="$("$PYBIN" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
tmp="$(mktemp -d)"

# SQLite in a temporary folder, and an observer that is never reachable.
OBSERVATORY_DATABASE_URL="sqlite+aiosqlite:///$tmp/schemathesis.db" \
  OBSERVATORY_OBSERVER_URL="http://127.0.0.1:9" \
  OBSERVATORY_ENVIRONMENT=test \
  OBSERVATORY_RESULT_KEY_FILE="$tmp/result.key" \
  OBSERVATORY_RATE_LIMIT_PUBLIC="1000000/minute;10000000/day" \
  OBSERVATORY_READ_LIMIT_PUBLIC="1000000/minute" \
  OBSERVATORY_AUTH_FAILURE_LIMIT="1000000/minute" \
  "$PYBIN" -m app.cli serve --port "$port" >"$tmp/server.log" 2>&1 &
server=$!

stop_server() {
  if kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server" 2>/dev/null || true
  fi
  wait "$server" 2>/dev/null || true
}
cleanup() {
  status=$?
  stop_server
  if [ "$status" -ne 0 ] && [ -s "$tmp/server.log" ]; then
    echo "-- server log (last 40 lines)" >&2
    tail -n 40 "$tmp/server.log" >&2
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT

"$PYBIN" - "$port" "$server" <<'PY'
import os, sys, time, urllib.request

port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("the server exited before answering /health")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            if resp.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("the server did not answer /health within 60 s")
PY

"$PYBIN" -m schemathesis.cli run "http://127.0.0.1:$port/openapi.json" \
  --checks all \
  --max-examples "$MAX_EXAMPLES" \
  --request-timeout 30 \
  --no-color \
  "$@"
