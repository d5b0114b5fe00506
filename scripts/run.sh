#!/usr/bin/env bash
# make run: migrate, seed the demo when the database is empty, and serve the portal with a Celery
# worker and beat. Without DATABASE_URL an embedded PostgreSQL (config/embedded_db.py) runs in
# var/postgres for as long as this script does; without REDIS_URL an embedded (file) broker.
# Another port: PORT=8001 make run
set -euo pipefail
cd "$(dirname "$0")/.."
# Production settings on a laptop: real error pages, static files through WhiteNoise, and a secret
# key kept in var/ across restarts. E-mail goes to the console (alerts show up in this terminal).
export DEBUG="${DEBUG:-false}"
export BILLING_TEST_CHECKOUT="${BILLING_TEST_CHECKOUT:-true}"  # the demo pays through the built-in checkout
export BILLING_TAX_RATES="${BILLING_TAX_RATES-DE=19,FR=20,GB=20}"  # the demo's tax table (docs/tax.md)
export PORT="${PORT:-8000}"
# Loopback only: the demo has known passwords and a staff superuser, and a request from another
# machine that sends `Host: 127.0.0.1` would pass ALLOWED_HOSTS. HOST=0.0.0.0 serves the network.
export HOST="${HOST:-127.0.0.1}"
export EMAIL_BACKEND="${EMAIL_BACKEND:-django.core.mail.backends.console.EmailBackend}"
# Celery and kombu warn about things that are fine for a local demo (the file broker has no host,
# the worker runs as root in a container); warnings from our own code still show.
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}"
# The demo serves with runserver (static files through WhiteNoise); its "development server" notice is known.
export DJANGO_RUNSERVER_HIDE_WARNING=true
export SIGNUP_ENABLED="${SIGNUP_ENABLED:-true}"
export SITE_URL="${SITE_URL:-http://127.0.0.1:$PORT}"
PY=.venv/bin/python

# Fail at once, before any work, if the port is taken: a server that cannot bind must not be
# announced as running.
if ! $PY - "$HOST" "$PORT" <<'PY'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
with socket.socket() as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
    except OSError:
        sys.exit(1)
PY
then
  echo "make run: port $PORT is already in use. Stop what runs there, or pick another port: PORT=8001 make run" >&2
  exit 1
fi

mkdir -p var/celery/queue var/celery/processed var/celery/control

# Everything started from here on stops when this script ends: on Ctrl-C, on an error, or when one
# of the processes exits. The embedded PostgreSQL goes last, after the processes that use it.
pids=()
embedded_db=""
cleanup() {
  trap '' INT TERM  # a second Ctrl-C must not leave the database running
  kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true
  if [ -n "$embedded_db" ]; then $PY -m config.embedded_db stop "$embedded_db" || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -z "${DATABASE_URL:-}" ]; then
  embedded_db=var/postgres
  DATABASE_URL="$($PY -m config.embedded_db start "$embedded_db")"
  export DATABASE_URL
  echo "make run: PostgreSQL (embedded) in $embedded_db, stopped on exit"
fi
[ -s var/secret_key ] || $PY -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key
export SECRET_KEY="${SECRET_KEY:-$(cat var/secret_key)}"
# Static files, migrations, the demo (first time only; it prints no token), the banner's developer
# token in var/demo_token, and the Stripe webhook endpoint: one process, one Django start.
$PY manage.py run_prepare --token-file var/demo_token
DEMO_TOKEN="$(cat var/demo_token 2>/dev/null || true)"

.venv/bin/celery --quiet -A config worker --loglevel=error --pool=solo --concurrency=1 & pids+=($!)
.venv/bin/celery --quiet -A config beat --loglevel=error & pids+=($!)
$PY manage.py runserver "$HOST:$PORT" --noreload --skip-checks & server=$!; pids+=($server)
up=""
for _ in $(seq 60); do
  kill -0 "$server" 2>/dev/null || break
  if $PY -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/accounts/login/', timeout=2)" 2>/dev/null; then
    up=yes; break
  fi
  sleep 1
done
if [ -z "$up" ]; then
  echo "make run: the web server did not start on port $PORT (see the messages above)." >&2
  exit 1
fi
cat <<TXT

  LenserFight Billing is running: http://127.0.0.1:$PORT/   (another port: PORT=8001 make run)
  Demo logins (password: demo12345)
    owner@demo.test   owner of "Acme Team" (Team plan) and of a personal Free workspace
    admin@demo.test   admin of Acme Team
    member@demo.test  member of Acme Team
    staff@demo.test   staff: the Django admin at http://127.0.0.1:$PORT/admin/
  Sign up: http://127.0.0.1:$PORT/accounts/signup/   API docs: http://127.0.0.1:$PORT/v1/docs/
  E-mails (invitations, password resets, receipts, alerts) are printed here.   Stop with Ctrl-C.
  Developer token (owner@demo.test in Acme):
    curl -H "Authorization: Bearer ${DEMO_TOKEN:-<run: manage.py create_token acme owner@demo.test>}" http://127.0.0.1:$PORT/v1/billing/balance

TXT
wait -n "${pids[@]}"
