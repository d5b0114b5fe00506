"""The soak's faults (bench/soak.py): each injected at a chosen moment, then timed until the service
recovered; a watcher notes when an interrupted payment settles, and a supervisor restarts a Celery
worker or beat that exits by itself, as systemd or a platform would."""

import json
import os
import signal
import threading
import time

from .stripe_double import StripeDouble

RECOVERY_CAP = 150.0  # seconds a fault may take to recover before the soak calls it unrecovered


def db(fn):
    """Run a read in the soak's process with a fresh connection (pg_terminate kills the old one)."""
    from django.db import OperationalError, connection

    for attempt in range(5):
        connection.close()
        try:
            return fn()
        except OperationalError:
            time.sleep(1 + attempt)
    return fn()


class Faults:
    def __init__(self, stack, double: StripeDouble, record, probe_token: str, database: str):
        self.stack, self.double, self.record, self.probe_token = stack, double, record, probe_token
        self.database = database  # the soak's own: pg_terminate_backend reaches no other
        self.results: list[dict] = []
        self._armed = threading.Event()
        self._kill_lock = threading.Lock()
        self._mode = "worker"
        self._killed: dict = {}
        double.on_payment_intent = self._maybe_kill_celery
        self.started = time.monotonic()
        self.watching: dict[str, float] = {}  # an interrupted payment's key -> when its fault hit (monotonic)
        self.settled: dict[str, tuple[float, str]] = {}  # key -> (when it left flight, its status)
        self.stopping = threading.Event()
        self.crashes: list[dict] = []  # processes that died by themselves (the supervisor restarted them)
        self.expecting = False  # a celery kill of ours is under way: not a crash
        self.watcher = threading.Thread(target=self._watch, daemon=True, name="soak-watcher")
        self.watcher.start()

    def _watched(self, result: dict, payment: str, at: float) -> dict:
        if payment:
            self.watching[payment] = at
        return {**result, "payment": payment}

    def _watch(self) -> None:
        """Every half second: which interrupted payments have left flight (paid, failed, paused)."""
        from django.db import connection

        from billing.models import AutoRechargeAttempt

        while not self.stopping.wait(0.5):
            self._supervise()
            keys = [key for key in list(self.watching) if key not in self.settled]
            if not keys:
                continue
            try:
                rows = db(lambda: list(AutoRechargeAttempt.objects.filter(key__in=keys).values_list("key", "status")))
            except Exception:  # the database is being faulted: look again next time
                continue
            for key, status in rows:
                if status not in AutoRechargeAttempt.IN_FLIGHT:
                    self.settled[key] = (time.monotonic(), status)
        connection.close()

    def _supervise(self) -> None:
        """What systemd or a platform does for the Procfile's processes: restart one that exited."""
        for name in ("celery", "beat"):
            proc = getattr(self.stack, name)
            if proc is None or proc.poll() is None or (name == "celery" and self.expecting):
                continue
            self.crashes.append({"process": name, "exit": proc.returncode, "after_s": round(time.monotonic()
                                 - self.started, 1)})
            print(f"  supervisor: {name} exited by itself ({proc.returncode}); restarting it", flush=True)
            time.sleep(1.0)
            getattr(self.stack, f"{name}_start")()

    def settle_times(self) -> None:
        """Add to each fault that hit a payment how it ended and the seconds until it did (a declined
        card waits for its 5-minute retry by design)."""
        self.stopping.set()
        self.watcher.join(timeout=10)
        for result in self.results:
            key = result.get("payment")
            if key:
                when, status = self.settled.get(key, (None, None))
                result["settled"] = status
                result["settled_s"] = round(when - self.watching[key], 1) if when is not None else None

    def inject(self, kind: str) -> dict:
        started = time.monotonic()
        result = getattr(self, kind)(started)
        result.update(kind=kind, errors=self.record.errors_between(started, time.monotonic() + 5))
        self.results.append(result)
        print(f"  fault {kind}: {json.dumps({k: v for k, v in result.items() if k != 'kind'})}", flush=True)
        return result

    def _probe_recovered(self, since: float) -> float | None:
        from .soak_load import probe

        while time.monotonic() - since < RECOVERY_CAP:
            if probe(self.stack.web_port, self.probe_token):
                return round(time.monotonic() - since, 2)
            time.sleep(0.05)
        return None

    def web_worker_kill(self, started: float) -> dict:
        before = self.stack.web_worker_pids()
        victim = before[len(self.results) % len(before)]
        os.kill(victim, signal.SIGKILL)
        recovered = self._probe_recovered(started)
        replaced = None
        while time.monotonic() - started < RECOVERY_CAP:
            now = self.stack.web_worker_pids()
            if len(now) >= len(before) and victim not in now:
                replaced = round(time.monotonic() - started, 2)
                break
            time.sleep(0.05)
        return {"recovered_s": recovered, "worker_replaced_s": replaced}

    def _maybe_kill_celery(self, intent: dict) -> None:
        """The double's hook: Stripe has charged, its answer is not sent yet."""
        if intent["status"] != "succeeded" or not intent["metadata"].get("auto_recharge"):
            return
        with self._kill_lock:
            if not self._armed.is_set():
                return
            self._killed = {"at": time.monotonic(), "intent": intent["id"], "payment": intent["metadata"]["auto_recharge"]}
            self.watching[self._killed["payment"]] = self._killed["at"]  # watched from now, not after the restart
            if self._mode == "children":
                self.stack.celery_children_kill()
            else:
                self.stack.celery_kill()
            self._armed.clear()

    def _armed_kill(self, mode: str, kill) -> dict:
        """Arm the double's hook (it kills in `mode` while a PaymentIntent is being charged); after
        30 s without an auto-recharge, `kill` wherever the worker is. What was killed, and when."""
        self._killed, self._mode = {}, mode
        self._armed.set()
        deadline = time.monotonic() + 30
        while self._armed.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._kill_lock:
            if self._armed.is_set():
                self._armed.clear()
                kill()
        return self._killed or {"at": time.monotonic()}

    def celery_child_kill(self, started: float) -> dict:
        """Like celery_worker_kill, but only the pool's processes die: no restart, no redelivery."""
        killed = self._armed_kill("children", self.stack.celery_children_kill)
        return self._watched({"mid_payment": bool(self._killed)}, killed.get("payment", ""), killed["at"])

    def celery_worker_kill(self, started: float) -> dict:
        """Armed at the double: the kill lands while the worker waits for a PaymentIntent's answer.
        With no auto-recharge in 30 s, the worker is killed wherever it is."""
        self.expecting = True
        killed = self._armed_kill("worker", self.stack.celery_kill)
        self.stack.celery.wait(timeout=20)
        time.sleep(1.0)  # the supervisor's restart delay
        log = self.stack.workdir / "celery.log"
        offset = log.stat().st_size if log.exists() else 0
        self.stack.celery_start()
        self.expecting = False
        # The interrupted payment settles later (the broker's redelivery or Stripe's webhook, whichever
        # comes first): the watcher notes when, the schedule does not wait for it.
        return self._watched({"mid_payment": bool(self._killed), "recovered_s": self._celery_ready(killed["at"], offset)},
                             killed.get("payment", ""), killed["at"])

    def _celery_ready(self, since: float, offset: int, sign: bytes = b" ready.") -> float | None:
        """Seconds from `since` until the worker logs `sign` (ready, or connected again)."""
        log = self.stack.workdir / "celery.log"
        while time.monotonic() - since < RECOVERY_CAP:
            with open(log, "rb") as f:
                f.seek(offset)
                if sign in f.read():
                    return round(time.monotonic() - since, 2)
            time.sleep(0.1)
        return None

    def pg_terminate(self, started: float) -> dict:
        import psycopg

        name = self.database.rsplit("/", 1)[1]
        with psycopg.connect(self.database.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            (terminated,) = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s "
                "AND pid <> pg_backend_pid()", (name,)).fetchone()
        return {"connections": terminated, "recovered_s": self._probe_recovered(started)}

    def redis_restart(self, started: float) -> dict:
        log = self.stack.workdir / "celery.log"
        offset = log.stat().st_size if log.exists() else 0
        self.stack.redis_stop()
        time.sleep(2.0)
        self.stack.redis_start()
        down = round(time.monotonic() - started, 2)
        return {"down_s": down, "recovered_s": self._probe_recovered(started),
                "celery_back_s": self._celery_ready(started, offset, b"Connected to redis")}

    def stripe_reject(self, started: float) -> dict:
        before = len(self.double.rejections)
        # In turn an auto-recharge's PaymentIntent (a decline) and a Checkout Session (an outage).
        turn = sum(r["kind"] == "stripe_reject" for r in self.results)
        self.double.reject_next(1, path=("/v1/payment_intents", "/v1/checkout/sessions")[turn % 2])
        while len(self.double.rejections) == before and time.monotonic() - started < RECOVERY_CAP:
            time.sleep(0.05)
        if len(self.double.rejections) == before:
            self.double.reject_next(-1)  # disarm: no such call came
            return {"rejected": None, "recovered_s": None}
        rejection = self.double.rejections[before]
        self._watched({}, rejection.get("payment", ""), rejection["at"])
        while time.monotonic() - rejection["at"] < RECOVERY_CAP:
            if any(at > rejection["at"] for at in self.double.accepted[-50:]):
                return {"rejected": rejection["path"], "payment": rejection.get("payment", ""),
                        "recovered_s": round(min(at for at in self.double.accepted if at > rejection["at"])
                                             - rejection["at"], 2)}
            time.sleep(0.05)
        return {"rejected": rejection["path"], "recovered_s": None}
