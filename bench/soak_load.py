"""The soak's clients (bench/soak.py): a bounded closed loop of API runs (authorize, extend when it
exists, complete), runs that cross an auto-recharge threshold, and credit-pack purchases through the
portal and the Stripe double's Checkout, over loopback. Each client records what the service
accepted (a 2xx) so the end of the soak can check that every accepted effect is present once.

A client does what a careful API client does: a run's request that failed (a dropped connection, a
5xx) is sent again with the same run id and body, which the API replays idempotently."""

import collections
import http.client
import json
import random
import re
import threading
import time
import uuid

import requests

CHEAP = {"model": "gpt-4o-mini", "estimated_input_tokens": 1000, "max_output_tokens": 500}
CHEAP_USE = {"input_tokens": 1000, "output_tokens": 400}
# About 4.5 credits a run: an auto-recharge workspace crosses its threshold every dozen runs.
COSTLY = {"model": "claude-opus-4", "estimated_input_tokens": 50_000, "max_output_tokens": 20_000}
COSTLY_USE = {"input_tokens": 50_000, "output_tokens": 20_000}
EXTEND = None  # POST /v1/runs/<id>/extend is not built yet (issue 25): when it is, name it here.
TRIES = 4  # a run request is sent at most this often (the first and three retries)


class Record:
    """What the clients saw. Counts are of HTTP requests by (kind, outcome): ok (the 2xx the kind
    expects), refused (a 4xx answer: no credits, a limit), error (a 5xx or no answer)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = collections.Counter()
        self.operations = collections.Counter()
        self.authorized: dict[str, str] = {}  # run id -> workspace slug, for every authorize answered 2xx
        self.completed: dict[str, str] = {}  # run id -> workspace slug, for every complete answered 2xx
        self.abandoned: set[str] = set()  # authorized runs never completed (the sweep must release them)
        self.sessions: dict[str, dict] = {}  # Checkout Session id -> {"slug", "paid"}
        self.errors: list[tuple[float, str, str]] = []  # (monotonic, kind, what)
        self.statuses = collections.Counter()  # (kind, status) of every 4xx answer
        self.failures = collections.Counter()  # (kind, status or exception) of every error

    def request(self, kind: str, outcome: str, what: str = "") -> None:
        with self.lock:
            self.requests[(kind, outcome)] += 1
            if outcome == "error":
                self.errors.append((time.monotonic(), kind, what))
                self.failures[(kind, what)] += 1
            elif outcome == "refused":
                self.statuses[(kind, what)] += 1

    def errors_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for at, _, _ in self.errors if start <= at <= end)


class Client(threading.Thread):
    def __init__(self, *, index: int, port: int, run_tokens: list[str], recharge_tokens: list[str],
                 buyer: dict | None, double, record: Record, stop_at: float, max_operations: int,
                 weights: dict[str, float], seed: int = 0):
        super().__init__(name=f"soak-client-{index}", daemon=True)
        self.port, self.run_tokens, self.recharge_tokens, self.buyer = port, run_tokens, recharge_tokens, buyer
        self.double, self.record, self.stop_at, self.max_operations = double, record, stop_at, max_operations
        self.rng = random.Random(seed * 7919 + index)
        self.kinds, self.cumulative = list(weights), list(_cumulative(weights.values()))
        self.conn = None
        self.portal = None

    def run(self) -> None:
        done = 0
        while time.monotonic() < self.stop_at and done < self.max_operations:
            kind = self.rng.choices(self.kinds, cum_weights=self.cumulative)[0]
            try:
                if kind == "run":
                    self._run(self.rng.choice(self.run_tokens), CHEAP, CHEAP_USE)
                elif kind == "recharge_run":
                    self._run(self.rng.choice(self.recharge_tokens), COSTLY, COSTLY_USE)
                elif kind == "purchase" and self.buyer:
                    self._purchase()
            except Exception as error:  # a client bug must show in the figures, never stop the soak
                self.record.request(kind, "error", f"client: {error!r}")
            with self.record.lock:
                self.record.operations[kind] += 1
            done += 1
        if self.conn is not None:
            self.conn.close()

    # --- API runs -----------------------------------------------------------------------------

    def _run(self, token: str, shape: dict, use: dict) -> None:
        run_id = uuid.uuid4().hex
        slug = token.split(":", 1)[0]
        body = {"id": run_id, "workflow": "soak", "agent": "bench-agent", **shape}
        if self._send("authorize", "POST", "/v1/runs", body, token, (200, 201)) is None:
            return
        with self.record.lock:
            self.record.authorized[run_id] = slug
        if EXTEND is not None:
            pass  # the extend call goes here once it exists (its effect checked like complete's)
        if self.rng.random() < 0.03:  # a client that crashed after authorizing: the sweep releases its hold
            with self.record.lock:
                self.record.abandoned.add(run_id)
            return
        complete = {"status": "succeeded", "nodes": [{"name": "n1", "model": shape["model"], **use}]}
        if self._send("complete", "POST", f"/v1/runs/{run_id}/complete", complete, token, (200,)) is not None:
            with self.record.lock:
                self.record.completed[run_id] = slug

    def _send(self, kind: str, method: str, path: str, body: dict, token: str, accept: tuple) -> int | None:
        """The status of the first accepted answer, or None (refused, or no 2xx after TRIES)."""
        headers = {"Authorization": f"Bearer {token.split(':', 1)[1]}", "Content-Type": "application/json"}
        for attempt in range(TRIES):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request(method, path, body=json.dumps(body), headers=headers)
                response = self.conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                self.conn.close()
                self.conn = None
                self.record.request(kind, "error", type(error).__name__)
            else:
                if status in accept:
                    self.record.request(kind, "ok")
                    return status
                if status < 500:
                    self.record.request(kind, "refused", str(status))
                    return None
                self.record.request(kind, "error", str(status))
            if time.monotonic() >= self.stop_at:
                return None
            time.sleep(0.2 * 2 ** attempt)
        return None

    # --- purchases through the portal -----------------------------------------------------------

    def _purchase(self) -> None:
        base = f"http://127.0.0.1:{self.port}"
        buy = f"{base}/w/{self.buyer['slug']}/settings/billing/buy/"
        try:
            if self.portal is None:
                self.portal = _login(base, self.buyer["email"], self.buyer["password"])
            self.portal.get(buy, timeout=30)
            answer = self.portal.post(buy, data={"pack": "starter", "csrfmiddlewaretoken": self.portal.cookies.get(
                "csrftoken", "")}, headers={"Referer": buy}, allow_redirects=False, timeout=30)
        except requests.RequestException as error:
            self.portal = None
            self.record.request("purchase", "error", type(error).__name__)
            return
        found = re.search(r"/pay/(cs_double_\d+)$", answer.headers.get("Location", ""))
        if answer.status_code == 302 and found:
            self.record.request("purchase", "ok")
            session_id = found.group(1)
            paid = self.rng.random() < 0.9  # one customer in ten leaves Checkout without paying
            if paid:
                self.double.checkout_pay(session_id)
            with self.record.lock:
                self.record.sessions[session_id] = {"slug": self.buyer["slug"], "paid": paid}
        elif answer.status_code in (302, 303):
            self.record.request("purchase", "refused", "checkout not started")  # Stripe said no: nothing charged
        else:
            self.portal = None
            self.record.request("purchase", "error", str(answer.status_code))


def _login(base: str, email: str, password: str) -> requests.Session:
    session = requests.Session()
    login = f"{base}/accounts/login/"
    session.get(login, timeout=30)
    answer = session.post(login, data={"username": email, "password": password,
                                       "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
                          headers={"Referer": login}, allow_redirects=False, timeout=30)
    if answer.status_code != 302:
        raise requests.RequestException(f"login answered {answer.status_code}")
    return session


def _cumulative(values) -> list[float]:
    total, out = 0.0, []
    for value in values:
        total += value
        out.append(total)
    return out


def probe(port: int, token: str, *, timeout: float = 5.0) -> bool:
    """One authorize and complete on the probe workspace: True when both answered 2xx."""
    run_id = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {token.split(':', 1)[1]}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/v1/runs", body=json.dumps({"id": run_id, "workflow": "probe", "agent": "bench-agent",
                                                          **CHEAP}), headers=headers)
        first = conn.getresponse()
        first.read()
        if first.status != 201:
            return False
        complete = {"status": "succeeded", "nodes": [{"name": "n1", "model": CHEAP["model"], **CHEAP_USE}]}
        conn.request("POST", f"/v1/runs/{run_id}/complete", body=json.dumps(complete), headers=headers)
        second = conn.getresponse()
        second.read()
        return second.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
