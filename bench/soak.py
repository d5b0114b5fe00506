"""`make soak MINUTES=N`: the project served as production serves it, under a bounded load, while
faults are injected; then the money is checked (bench/soak_checks.py). docs/reliability.md.

It starts, on loopback only, and stops again every process itself:
- a Redis server of its own (another port, append-only file on: a restart keeps the queue);
- gunicorn (the benches' Server: several gthread workers), a Celery worker (prefork, acks late) and
  Celery beat, on a database of its own (lf_soak_run, dropped and created afresh);
- a double of Stripe's API (bench/stripe_double.py), reached through STRIPE_API_BASE, which sends
  its webhooks back signed.

Load (bench/soak_load.py): API runs, runs that cross an auto-recharge threshold (Celery pays them
at the double), credit packs bought through the portal and the double's Checkout.

Faults (bench/soak_faults.py), in rounds, one at a time, each followed by a measure of the time to
recover:
- web_worker_kill: SIGKILL of one gunicorn worker (the master replaces it);
- celery_worker_kill: SIGKILL of the whole Celery worker while it waits for Stripe's answer to an
  auto-recharge (the PaymentIntent succeeded, the answer is lost), then a restart; the broker hands
  the unacknowledged message to the new worker (bench/soak_settings.py);
- celery_child_kill: the same moment, but SIGKILL of the pool's processes only (the OOM killer's
  choice): the main process replaces them and acknowledges the lost task, so no redelivery;
- pg_terminate: pg_terminate_backend of every connection to the soak's database;
- redis_restart: the soak's Redis stopped, down for 2 s, started again;
- stripe_reject: the double rejects the next creating call (a card decline, or a 500 for Checkout).

Usage: python -m bench.soak --minutes 10   (SOAK_DATABASE_URL names another database)"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from . import common
from .soak_faults import Faults, db
from .stripe_double import StripeDouble

ROOT = common.ROOT
SOAK_DB = os.environ.get("SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lf_soak_run")
FAULTS = ["web_worker_kill", "celery_worker_kill", "pg_terminate", "redis_restart", "stripe_reject",
          "celery_child_kill"]
WEIGHTS = {"run": 0.70, "recharge_run": 0.26, "purchase": 0.04}
DRAIN_CAP = 600.0  # after the load: a declined auto-recharge retries after 5 min (its webhook may be 3 min late)
PASSWORD = "soak-buyer-12345"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    """Every process the soak runs, started and stopped here (and only here)."""

    def __init__(self, workdir: Path, *, web_workers: int):
        self.workdir, self.web_workers = workdir, web_workers
        self.redis_port, self.web_port = free_port(), free_port()
        self.redis = self.celery = self.beat = self.web = None
        self.env: dict = {}

    def log(self, name: str):
        return open(self.workdir / f"{name}.log", "ab")

    # --- Redis --------------------------------------------------------------------------------

    def redis_start(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "yes"],
            stdout=self.log("redis"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the soak's Redis did not start")

    def redis_stop(self) -> None:
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()  # SHUTDOWN: the append-only file is flushed
            self.redis.wait(timeout=20)

    # --- web, worker, beat -------------------------------------------------------------------

    def web_start(self) -> None:
        self.web = common.Server(self.web_port, workers=self.web_workers, threads=4, log=self.log("gunicorn"),
                                 **self.env)
        self.web.args += ["--graceful-timeout", "10"]
        self.web.__enter__()

    def web_worker_pids(self) -> list[int]:
        pid = self.web.proc.pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def celery_start(self) -> None:
        self.celery = subprocess.Popen(
            [str(ROOT / ".venv/bin/celery"), "-A", "config", "worker", "--loglevel=info", "--concurrency=2",
             "-n", f"soak-{uuid.uuid4().hex[:6]}@%h", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=common.bench_env(**self.env), stdout=self.log("celery"), stderr=subprocess.STDOUT,
            start_new_session=True)

    def celery_kill(self) -> None:
        _killpg(self.celery, signal.SIGKILL)

    def celery_children_kill(self) -> None:
        """SIGKILL of the pool's processes only (what the OOM killer picks): the main process lives
        on, replaces them, and acknowledges the lost task as failed (task_reject_on_worker_lost off)."""
        pid = self.celery.pid
        try:
            children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            children = []
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def beat_start(self) -> None:
        self.beat = subprocess.Popen(
            [str(ROOT / ".venv/bin/celery"), "-A", "config", "beat", "--loglevel=warning",
             "-s", str(self.workdir / "celerybeat-schedule")],
            cwd=ROOT, env=common.bench_env(**self.env), stdout=self.log("beat"), stderr=subprocess.STDOUT,
            start_new_session=True)

    def stop(self) -> None:
        for proc in (self.beat, self.celery):
            _killpg(proc, signal.SIGTERM)
        if self.web is not None and self.web.proc.poll() is None:
            try:
                self.web.__exit__(None, None, None)
            except subprocess.TimeoutExpired:
                self.web.proc.kill()
        for proc in (self.beat, self.celery):
            if proc is not None:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    _killpg(proc, signal.SIGKILL)
                    proc.wait(timeout=5)
        self.redis_stop()


def _killpg(proc, sig) -> None:
    if proc is not None and proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)  # the process and its pool children (its own session)
        except ProcessLookupError:
            pass


# --- setup -----------------------------------------------------------------------------------------

def database_recreate() -> None:
    """The soak's database afresh: a copy of a migrated template (kept between soaks, made again when
    a migration changed), so that a soak on a busy machine does not spend minutes migrating."""
    import psycopg

    name = SOAK_DB.rsplit("/", 1)[1]
    template, digest = f"{name}_template", _migrations_digest()
    with psycopg.connect(SOAK_DB.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (template,)).fetchone()
        if row is not None and row[0] == digest:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def database_template_keep() -> None:
    """After the migrations: keep the migrated database as the next soak's template."""
    import psycopg
    from django.db import connection

    connection.close()
    name = SOAK_DB.rsplit("/", 1)[1]
    template, digest = f"{name}_template", _migrations_digest()
    with psycopg.connect(SOAK_DB.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (template,)).fetchone()
        if row is None or row[0] != digest:
            conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{template}" TEMPLATE "{name}"')
            conn.execute(f"COMMENT ON DATABASE \"{template}\" IS '{digest}'")


def _migrations_digest() -> str:
    import hashlib

    digest = hashlib.sha256((ROOT / "requirements.txt").read_bytes())  # dj-stripe's migrations come with it
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def workspaces(*, runs: int, recharges: int) -> dict:
    """Workspaces for the load (tokens as "slug:token"), the buyers, and the probe's token."""
    from billing.money import NANOS_PER_CREDIT
    from billing.services import user_get_or_create
    from buying.auto_recharge import auto_recharge_payment_method_record, auto_recharge_set

    from .data import bench_workspace

    made = {"runs": [], "recharges": [], "buyers": []}
    for i in range(runs):
        workspace, membership, raw = bench_workspace(f"soak-run-{i}")
        made["runs"].append(f"{workspace.slug}:{raw}")
        if i < 3:
            user_get_or_create(email=membership.user.email, password=PASSWORD)
            made["buyers"].append({"slug": workspace.slug, "email": membership.user.email, "password": PASSWORD})
    for i in range(recharges):
        workspace, _, raw = bench_workspace(f"soak-recharge-{i}", credits=150)
        auto_recharge_payment_method_record(workspace=workspace, customer_id=f"cus_soak_{i}",
                                            payment_method_id=f"pm_soak_{i}", card_label="Soak card")
        auto_recharge_set(workspace=workspace, enabled=True, threshold=100 * NANOS_PER_CREDIT, pack_id="starter",
                          max_per_period=100)
        made["recharges"].append(f"{workspace.slug}:{raw}")
    workspace, _, raw = bench_workspace("soak-probe")
    made["probe"] = f"{workspace.slug}:{raw}"
    return made


# --- the run ---------------------------------------------------------------------------------------

def run(*, minutes: float, clients: int, seed: int, web_workers: int, late_webhooks: float) -> int:
    started_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    workdir = Path(tempfile.mkdtemp(prefix="lf-soak-"))
    stack = Stack(workdir, web_workers=web_workers)
    common.use(database=SOAK_DB, redis=f"redis://127.0.0.1:{stack.redis_port}/0")
    webhook_uuid, webhook_secret = str(uuid.uuid4()), "whsec_soak_" + uuid.uuid4().hex
    site = f"http://127.0.0.1:{stack.web_port}"
    double = StripeDouble(webhook_url=f"{site}/stripe/webhook/{webhook_uuid}/", webhook_secret=webhook_secret,
                          seed=seed, late_webhooks=late_webhooks)
    print(f"soak: {minutes} min, {clients} clients, {web_workers} web workers, seed {seed}; logs in {workdir}",
          flush=True)
    faults = None
    try:
        stack.redis_start()
        double.start()
        stack.env = {
            "DJANGO_SETTINGS_MODULE": "bench.soak_settings", "VAR_DIR": str(workdir), "SITE_URL": site,
            "STRIPE_SECRET_KEY": "sk_test_soak", "STRIPE_API_BASE": double.url, "BILLING_TEST_CHECKOUT": "false",
            "STRIPE_WEBHOOK_SECRET": webhook_secret, "STRIPE_WEBHOOK_UUID": webhook_uuid,
            "RESERVATION_TTL_SECONDS": "60", "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "PYTHONWARNINGS": "ignore",
        }
        database_recreate()
        common.setup_django(**stack.env)
        database_template_keep()
        from django.core.management import call_command

        call_command("stripe_webhook_endpoint", "--quiet")
        made = workspaces(runs=6, recharges=3)
        from django.db import connection

        connection.close()
        stack.web_start()
        stack.celery_start()
        stack.beat_start()
        from .soak_load import Client, Record, probe

        if not any(probe(stack.web_port, made["probe"]) or time.sleep(0.5) for _ in range(120)):
            raise RuntimeError("the service did not answer a run before the load")
        record = Record()
        faults = Faults(stack, double, record, made["probe"], SOAK_DB)
        load_seconds = minutes * 60
        load_started = time.monotonic()
        loadavg = [os.getloadavg()[0]]  # how busy the machine was (1-minute load average, at start, faults, end)
        stop_at = load_started + load_seconds
        pool = [Client(index=i, port=stack.web_port, run_tokens=made["runs"], recharge_tokens=made["recharges"],
                       buyer=made["buyers"][i % len(made["buyers"])], double=double, record=record, stop_at=stop_at,
                       max_operations=int(load_seconds * 20), weights=WEIGHTS, seed=seed) for i in range(clients)]
        for client in pool:
            client.start()
        rounds = max(1, round(minutes / 3))
        schedule = [kind for _ in range(rounds) for kind in FAULTS]
        spacing = load_seconds / (len(schedule) + 1)
        for number, kind in enumerate(schedule, 1):
            wait = load_started + number * spacing - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if time.monotonic() > stop_at - 5:
                break
            faults.inject(kind)
            loadavg.append(os.getloadavg()[0])
        for client in pool:
            client.join(timeout=max(1.0, stop_at - time.monotonic()) + 60)
        load_elapsed = time.monotonic() - load_started
        loadavg.append(os.getloadavg()[0])
        print(f"soak: load done after {load_elapsed:.0f} s; draining (webhooks, retries, expired holds) ...", flush=True)
        drained = drain(double)
        faults.settle_times()
        from .soak_checks import violations

        found = db(lambda: violations(record=record, double=double))
        figures = summary(record=record, double=double, faults=faults.results, crashes=faults.crashes, found=found,
                          minutes=minutes,
                          load_elapsed=load_elapsed, drained=drained, started_at=started_at, clients=clients,
                          web_workers=web_workers, late_webhooks=late_webhooks, seed=seed,
                          load_average={"min": min(loadavg), "max": max(loadavg),
                                        "mean": round(sum(loadavg) / len(loadavg), 2), "cores": os.cpu_count()})
        (workdir / "figures.json").write_text(json.dumps(figures, indent=2, default=str))
        report(figures)
        return 1 if figures["violations"] else 0
    finally:
        double.on_payment_intent = None
        if faults is not None:  # its supervisor must not restart what is being stopped
            faults.stopping.set()
            faults.watcher.join(timeout=10)
        stack.stop()
        double.stop()
        print(f"soak: every process it started is stopped; logs and figures.json in {workdir}", flush=True)


def drain(double: StripeDouble) -> float:
    """Wait (at most DRAIN_CAP) until the double's webhooks are delivered, no run holds credits and no
    auto-recharge is pending or due; the seconds it took (None if the cap was reached)."""
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import AutoRechargeAttempt

    started = time.monotonic()

    def settled() -> bool:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM usage_run WHERE released_at IS NULL")
            (open_runs,) = cursor.fetchone()
        soon = timezone.now() + timedelta(minutes=6)
        waiting = AutoRechargeAttempt.objects.filter(status=AutoRechargeAttempt.PENDING).exists() or \
            AutoRechargeAttempt.objects.filter(status=AutoRechargeAttempt.RETRYING, next_try_at__lte=soon).exists()
        return not open_runs and not waiting and double.pending_webhooks() == 0

    while time.monotonic() - started < DRAIN_CAP:
        if db(settled):
            return round(time.monotonic() - started, 1)
        time.sleep(3)
    return None


def summary(*, record, double, faults, crashes, found, **context) -> dict:
    outcomes = {}
    for (kind, outcome), count in sorted(record.requests.items()):
        outcomes.setdefault(kind, {})[outcome] = count
    recovery = {}
    for result in faults:
        recovery.setdefault(result["kind"], []).append(result.get("recovered_s", result.get("settled_s")))
    intents = list(double.intents.values())
    return {
        **context,
        "operations": dict(record.operations),
        "requests": outcomes,
        "refusals": {f"{k} {s}": n for (k, s), n in sorted(record.statuses.items())},
        "errors": {f"{k} {s}": n for (k, s), n in sorted(record.failures.items())},
        "accepted": {"authorize": len(record.authorized), "complete": len(record.completed),
                     "abandoned": len(record.abandoned), "checkout_sessions_paid": sum(s["paid"] for s in
                                                                                      record.sessions.values())},
        "stripe": {"payment_intents": len(intents),
                   "succeeded": sum(i["status"] == "succeeded" for i in intents),
                   "auto_recharge_intents": sum(bool(i["metadata"].get("auto_recharge")) for i in intents),
                   "checkout_sessions": len(double.sessions), "rejections": len(double.rejections),
                   "webhooks": dict(double.deliveries)},
        "faults": {kind: len(times) for kind, times in recovery.items()},
        "recovery_s": recovery,
        "fault_details": faults,
        "crashes": crashes,
        "violations": {name: problems for name, problems in found.items() if problems},
        "checks": {name: len(problems) for name, problems in found.items()},
    }


def report(figures: dict) -> None:
    print("soak: figures", flush=True)
    for key in ("operations", "requests", "refusals", "errors", "accepted", "stripe", "faults", "recovery_s", "crashes",
                "checks"):
        print(f"  {key}: {json.dumps(figures[key])}")
    print(f"  drain: {figures['drained']} s; machine load average {json.dumps(figures['load_average'])}")
    for result in figures["fault_details"]:
        print(f"  {result['kind']}: {json.dumps({k: v for k, v in result.items() if k != 'kind'})}")
    if figures["violations"]:
        for name, problems in figures["violations"].items():
            print(f"  VIOLATION {name}: {len(problems)}")
            for problem in problems[:10]:
                print(f"    {problem}")
        print("soak: FAILED", flush=True)
    else:
        print("soak: passed (0 violations)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--late-webhooks", type=float, default=0.3,
                        help="the share of the double's webhooks sent 90 s late (Stripe gives no timing guarantee)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # make's interrupt: clean up through `finally`
    return run(minutes=args.minutes, clients=args.clients, seed=args.seed, web_workers=args.web_workers,
               late_webhooks=args.late_webhooks)


if __name__ == "__main__":
    sys.exit(main())
