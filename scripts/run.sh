#!/usr/bin/env bash
# make run: migrate, seed the demo when the database is empty, and serve the portal with a Celery
# worker and beat. SQLite and an embedded (file) broker unless DATABASE_URL / REDIS_URL are set.
set -euo pipefail
cd "$(dirname "$0")/.."
# Production settings on a laptop: real error pages, static files through WhiteNoise, and a secret
# key kept in var/ across restarts. E-mail goes to the console (alerts show up in this terminal).
export DEBUG="${DEBUG:-false}"
export BILLING_TEST_CHECKOUT="${BILLING_TEST_CHECKOUT:-true}"  # the demo pays through the built-in checkout
export PORT="${PORT:-8000}"
export EMAIL_BACKEND="${EMAIL_BACKEND:-django.core.mail.backends.console.EmailBackend}"
export SIGNUP_ENABLED="${SIGNUP_ENABLED:-true}"
export SITE_URL="${SITE_URL:-http://127.0.0.1:$PORT}"
PY=.venv/bin/python
mkdir -p var/celery/queue var/celery/processed var/celery/control
[ -s var/secret_key ] || $PY -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key
export SECRET_KEY="${SECRET_KEY:-$(cat var/secret_key)}"
$PY manage.py collectstatic --noinput -v0
$PY manage.py migrate --noinput
$PY manage.py seed_demo --if-empty
$PY manage.py stripe_webhook_endpoint --quiet || true

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
# (Celery's root warning is about running as root in a container; the demo is a local process.)
PYTHONWARNINGS=ignore .venv/bin/celery --quiet -A config worker --loglevel=warning --pool=solo --concurrency=1 & pids+=($!)
PYTHONWARNINGS=ignore .venv/bin/celery --quiet -A config beat --loglevel=warning & pids+=($!)
$PY manage.py runserver "0.0.0.0:$PORT" --noreload & pids+=($!)
for _ in $(seq 60); do
  $PY -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/accounts/login/', timeout=2)" \
    2>/dev/null && break
  sleep 1
done
cat <<TXT

  LenserFight Billing is running: http://127.0.0.1:$PORT/
  Demo logins (password: demo12345)
    owner@demo.test   owner of "Acme Team" (Team plan) and of a personal Free workspace
    admin@demo.test   admin of Acme Team
    member@demo.test  member of Acme Team
    staff@demo.test   staff: the Django admin at http://127.0.0.1:$PORT/admin/
  Sign up: http://127.0.0.1:$PORT/accounts/signup/   API docs: http://127.0.0.1:$PORT/v1/docs/
  E-mails (invitations, password resets, receipts, alerts) are printed here.   Stop with Ctrl-C.

TXT
wait -n "${pids[@]}"
