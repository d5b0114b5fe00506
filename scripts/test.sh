#!/usr/bin/env bash
# Runs the whole suite. PostgreSQL and Redis are used when reachable (DATABASE_URL / REDIS_URL, or
# the local defaults); under CI=true a missing service is a failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lenserfight}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
# The layers contract (.importlinter; README "Architecture") runs first: an app importing a layer
# above it fails the run before any test does.
.venv/bin/lint-imports --no-cache || exit 1
.venv/bin/python -m pytest "$@" || exit $?
# pytest's 5 means "no tests collected": that must never pass as green (|| exit keeps it).
if [ $# -eq 0 ]; then
  # The second pass: the same tests on the embedded SQLite default of `make run`, where the charge
  # path's fixed SQL (billing/sql.py) must give the same answers. PostgreSQL-only tests (real
  # concurrency, partitions) and the browser tests (they add nothing database-specific) ran above.
  echo "== the suite again on SQLite (the embedded default) =="
  TEST_DATABASE=sqlite .venv/bin/python -m pytest -m "not needs_postgres and not browser" || exit $?
fi
