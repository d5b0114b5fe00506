"""Setup shared by the benchmarks: a dedicated PostgreSQL database, Django, fast data builders."""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lf_bench")
BENCH_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")


def use(*, database: str, redis: str) -> None:
    """Point the helpers here at another database and Redis (the soak's own, bench/soak.py)."""
    global BENCH_DB, BENCH_REDIS
    BENCH_DB, BENCH_REDIS = database, redis


def bench_env(**extra) -> dict:
    env = dict(os.environ)
    env.update(DATABASE_URL=BENCH_DB, REDIS_URL=BENCH_REDIS, SECRET_KEY="bench", DEBUG="false",
               ALLOWED_HOSTS="127.0.0.1,localhost,testserver", LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="config.settings")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def setup_django(**extra) -> None:
    """Point this process at the bench database (created and migrated if needed) and set Django up."""
    os.environ.update(bench_env(**extra))
    sys.path.insert(0, str(ROOT))
    _ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _ensure_database() -> None:
    import psycopg

    name = BENCH_DB.rsplit("/", 1)[1]
    with psycopg.connect(BENCH_DB.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def reset_business_data() -> None:
    """Empty the project's tables (not the seeded catalogue) so every run starts alike."""
    from django.db import connection

    tables = [
        "usage_runnode", "usage_dailyusage", "billing_ledgerentry", "invoices_invoiceline", "invoices_invoice",
        "invoices_invoicesequence", "usage_run", "usage_runkey", "usage_droppedrunmonth", "usage_developertoken", "usage_agent", "usage_workflow",
        "budgets_spendcounter", "budgets_budgetalert", "budgets_workspacebudget", "billing_purchase",
        "billing_auditevent", "billing_wallet", "billing_membership", "billing_workspace",
    ]
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        cursor.execute("TRUNCATE " + ", ".join(t for t in tables if t in existing) + " CASCADE")
    # The catalogue (plans, packs, rates) is the seed migration's; make sure it is whole.
    import importlib

    from django.apps import apps

    importlib.import_module("billing.migrations.0003_seed_catalog").seed(apps, None)
    importlib.import_module("billing.migrations.0009_token_classes").seed_class_rates(apps, None)
    import redis

    redis.Redis.from_url(BENCH_REDIS).flushdb()


def timings(client, url: str, samples: int, **headers) -> list[float]:
    """Seconds of each of `samples` GETs of `url` with a Django test client (each must answer 200)."""
    measured = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get(url, **headers)
        assert response.status_code == 200, (url, response.status_code)
        measured.append(time.perf_counter() - started)
    return measured


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile (0 < fraction <= 1)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered))) - 1))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def report(name: str, figure: float, unit: str, baseline: float, target: str, *, ratio: float | None = None,
           extra: str = "") -> float:
    """The last line of every bench: figure, baseline, ratio."""
    ratio = ratio if ratio is not None else (figure / baseline if baseline else float("inf"))
    line = f"bench {name}: {figure:,.2f} {unit} vs baseline {baseline:,.2f} {unit}, ratio {ratio:.2f} (target {target})"
    if extra:
        line += f"; {extra}"
    print(line, flush=True)
    return ratio


class Server:
    """gunicorn serving the project on a loopback port, for the HTTP benchmarks."""

    def __init__(self, port: int, workers: int = 2, threads: int = 8, log=None, **env):
        self.port, self.log = port, log  # log: a file for gunicorn's output (default: this terminal)
        self.args = [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
                     "-k", "gthread", "--threads", str(threads), "--log-level", "warning", "--keep-alive", "30"]
        self.env = bench_env(**env)

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log)
        import http.client

        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/accounts/login/")
                conn.getresponse().read()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=20)
