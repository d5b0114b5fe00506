#!/usr/bin/env bash
# Runs the whole suite, once. PostgreSQL and Redis are used when reachable (DATABASE_URL / REDIS_URL,
# or the local defaults); without a PostgreSQL server the tests start the embedded one
# (config/test_settings.py). Under CI=true a missing service is a failure, never a fallback or a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lenserfight}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
# The layers contract (.importlinter; README "Architecture") runs first: an app importing a layer
# above it fails the run before any test does.
.venv/bin/lint-imports --no-cache || exit 1
# pytest's 5 means "no tests collected": that must never pass as green (|| exit keeps it).
.venv/bin/python -m pytest "$@" || exit $?
