"""A test double of Stripe's API at the HTTP layer, on loopback, for the soak (bench/soak.py).

The project reaches it through STRIPE_API_BASE, so every byte the service sends goes through
stripe-python as it would to Stripe. It plays the few endpoints the service calls:

- POST /v1/payment_intents (unconfirmed, or confirmed at once with confirm=true) and
  POST /v1/payment_intents/<id>/confirm (off-session: succeeded, or 402 card_declined when a
  rejection is armed; a second confirm is payment_intent_unexpected_state);
  GET /v1/payment_intents/<id>, GET /v1/payment_intents (?customer=),
  GET /v1/payment_intents/search (?query=metadata['key']:'value');
- POST /v1/checkout/sessions (mode=payment); the customer "pays" with `checkout_pay`;
- POST /v1/tax/calculations (Stripe Tax, before an auto-recharge's PaymentIntent): no tax, as for a
  customer where none is due.

Like Stripe it keeps every idempotency key: the same key with the same parameters replays the first
answer (`Idempotent-Replayed: true`), with other parameters it is a 400 idempotency_error. It
remembers every PaymentIntent it created, with its key, so the soak can count the charges of one
intended payment. It sends the webhooks Stripe would (payment_intent.succeeded / payment_failed,
checkout.session.completed), signed with the endpoint's secret, after a delay, again and again
until the service answers 2xx, sometimes twice (Stripe delivers at least once)."""

import hashlib
import hmac
import heapq
import itertools
import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


def form_decode(body: str) -> dict:
    """stripe-python's form encoding (`metadata[workspace]=acme`, `line_items[0][quantity]=1`) back
    into nested dicts (lists stay dicts keyed by their index: enough for what the soak reads)."""
    out: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def sign(secret: str, body: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class StripeDouble:
    def __init__(self, *, webhook_url: str = "", webhook_secret: str = "", seed: int = 0,
                 webhook_delay: tuple[float, float] = (0.5, 3.0), late_webhooks: float = 0.0,
                 late_delay: float = 180.0, duplicate_webhooks: float = 0.1):
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self.rng = random.Random(seed)
        self.webhook_delay, self.late_webhooks, self.late_delay = webhook_delay, late_webhooks, late_delay
        self.duplicate_webhooks = duplicate_webhooks
        self.lock = threading.Lock()
        self.intents: dict[str, dict] = {}  # every PaymentIntent created, by id
        self.sessions: dict[str, dict] = {}  # every Checkout Session created, by id
        self.keys: dict[str, tuple[str, int, str]] = {}  # idempotency key -> (params digest, status, body)
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.rejections: list[dict] = []  # what was rejected: {"at", "path", "status", "intent"}
        self.accepted: list[float] = []  # monotonic time of every creating call answered 200
        self._reject, self._reject_path = 0, ""
        self.on_payment_intent = None  # a callable run after a PaymentIntent is stored, before answering
        self._ids = itertools.count(1)
        self._outbox: list = []  # heap of (due, n, event, attempts)
        self._outbox_lock = threading.Condition()
        self.deliveries = {"sent": 0, "failed": 0, "duplicates": 0}
        self._stopping = False
        self.server = None

    # --- faults -------------------------------------------------------------------------------

    def reject_next(self, count: int = 1, *, path: str = "") -> None:
        """The next `count` creating calls (to `path` only, if given) are rejected: a PaymentIntent
        as a card decline (402, the PaymentIntent exists in requires_payment_method, as at Stripe),
        a Checkout Session as an outage (500 api_error, Stripe-Should-Retry: false)."""
        with self.lock:
            self._reject += count
            self._reject_path = path

    def _take_rejection(self, path: str) -> bool:
        with self.lock:
            if self._reject > 0 and self._reject_path in ("", path):
                self._reject -= 1
                return True
            return False

    # --- serving ------------------------------------------------------------------------------

    def start(self, port: int = 0) -> "StripeDouble":
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                double._serve(self, "GET")

            def do_POST(self):
                double._serve(self, "POST")

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a caller that died mid-request: not news
                pass

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True, name="stripe-double").start()
        threading.Thread(target=self._deliver_loop, daemon=True, name="stripe-double-webhooks").start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        with self._outbox_lock:
            self._stopping = True
            self._outbox_lock.notify_all()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def _serve(self, handler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        path = urlsplit(handler.path)
        with self.lock:
            self.requests.append((method, path.path))
        key = handler.headers.get("Idempotency-Key") or ""
        try:
            status, payload, extra = self._answer(method, path.path, dict(parse_qsl(path.query)), body, key)
        except Exception as error:  # a bug in the double must show, not hang the caller
            status, payload, extra = 500, _error("api_error", f"double: {error!r}"), {}
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.send_header("Request-Id", f"req_double_{next(self._ids)}")
            for name, value in extra.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the caller died while we answered (a killed worker): what Stripe would see too

    def _answer(self, method: str, path: str, query: dict, body: str, key: str):
        if method == "POST" and key:
            digest = hashlib.sha256(f"{path}?{body}".encode()).hexdigest()
            with self.lock:
                seen = self.keys.get(key)
            if seen is not None:
                if seen[0] != digest:
                    return 400, _error("idempotency_error", "Keys for idempotent requests can only be used with the "
                                       "same parameters they were first used with."), {}
                return seen[1], json.loads(seen[2]), {"Idempotent-Replayed": "true", "Idempotency-Key": key}
        status, payload, extra = self._route(method, path, query, form_decode(body), key)
        if method == "POST" and key and extra.get("Stripe-Should-Retry") != "false":
            with self.lock:
                self.keys.setdefault(key, (digest, status, json.dumps(payload)))
        return status, payload, extra

    def _route(self, method: str, path: str, query: dict, params: dict, key: str):
        if method == "POST" and path == "/v1/payment_intents":
            return self._intent_create(params, key)
        if method == "POST" and path == "/v1/checkout/sessions":
            return self._session_create(params, key)
        if method == "POST" and path == "/v1/tax/calculations":
            return 200, self._tax_calculation(params), {}
        if method == "GET" and path == "/v1/payment_intents/search":
            return 200, self._intent_search(query.get("query", "")), {}
        if method == "GET" and path == "/v1/payment_intents":
            with self.lock:
                found = [i for i in self.intents.values() if i["customer"] == query.get("customer", i["customer"])]
            return 200, {"object": "list", "data": [_public(i) for i in reversed(found)], "has_more": False,
                         "url": "/v1/payment_intents"}, {}
        confirm = re.fullmatch(r"/v1/payment_intents/([A-Za-z0-9_]+)/confirm", path)
        if method == "POST" and confirm:
            return self._intent_confirm(confirm.group(1))
        match = re.fullmatch(r"/v1/payment_intents/([A-Za-z0-9_]+)", path)
        if method == "GET" and match:
            with self.lock:
                intent = self.intents.get(match.group(1))
            if intent is None:
                return 404, _error("invalid_request_error", f"No such payment_intent: '{match.group(1)}'",
                                   code="resource_missing"), {}
            return 200, _public(intent), {}
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path})."), {}

    def _intent_create(self, params: dict, key: str):
        """A PaymentIntent; confirmed (charged) at once only with `confirm=true`, as at Stripe."""
        intent = {
            "id": f"pi_double_{next(self._ids)}", "object": "payment_intent", "amount": int(params.get("amount", 0)),
            "currency": params.get("currency", "usd"), "customer": params.get("customer"),
            "payment_method": params.get("payment_method"), "metadata": params.get("metadata") or {},
            "status": "requires_confirmation", "livemode": False,
            "created": int(time.time()), "idempotency_key": key, "next_action": None,
            "last_payment_error": None,
        }
        with self.lock:
            self.intents[intent["id"]] = intent
        if params.get("confirm") == "true":
            return self._intent_confirm(intent["id"])
        return 200, _public(intent), {}

    def _intent_confirm(self, intent_id: str):
        """The call that charges: succeeded, or a 402 card_declined when a rejection is armed. A
        PaymentIntent is confirmed once; again is Stripe's payment_intent_unexpected_state."""
        with self.lock:
            intent = self.intents.get(intent_id)
            if intent is not None and intent["status"] == "requires_confirmation":
                intent["status"] = "confirming"
        if intent is None:
            return 404, _error("invalid_request_error", f"No such payment_intent: '{intent_id}'",
                               code="resource_missing"), {}
        if intent["status"] != "confirming":
            error = _error("invalid_request_error", "This PaymentIntent's status does not allow confirming it.",
                           code="payment_intent_unexpected_state")
            error["error"]["payment_intent"] = _public(intent)
            return 400, error, {}
        rejected = self._take_rejection("/v1/payment_intents")
        with self.lock:
            intent["status"] = "requires_payment_method" if rejected else "succeeded"
            if rejected:
                intent["last_payment_error"] = {"type": "card_error", "code": "card_declined",
                                                "decline_code": "generic_decline", "message": "Your card was declined."}
                self.rejections.append({"at": time.monotonic(), "path": "/v1/payment_intents", "status": 402,
                                        "intent": intent["id"], "payment": intent["metadata"].get("auto_recharge", "")})
            else:
                self.accepted.append(time.monotonic())
        self._schedule("payment_intent.payment_failed" if rejected else "payment_intent.succeeded", _public(intent))
        hook = self.on_payment_intent
        if hook is not None:
            hook(intent)  # e.g. the soak kills the Celery worker now: Stripe charged, the answer is lost
        if rejected:
            error = _error("card_error", "Your card was declined.", code="card_declined", decline_code="generic_decline")
            error["error"]["payment_intent"] = _public(intent)
            return 402, error, {}
        return 200, _public(intent), {}

    def _tax_calculation(self, params: dict) -> dict:
        amount = sum(int(line.get("amount") or 0) for line in (params.get("line_items") or {}).values())
        return {"id": f"taxcalc_double_{next(self._ids)}", "object": "tax.calculation", "amount_total": amount,
                "currency": params.get("currency") or "usd", "customer": params.get("customer"),
                "tax_amount_exclusive": 0, "tax_amount_inclusive": 0, "tax_breakdown": [], "livemode": False}

    def _session_create(self, params: dict, key: str):
        if self._take_rejection("/v1/checkout/sessions"):
            with self.lock:
                self.rejections.append({"at": time.monotonic(), "path": "/v1/checkout/sessions", "status": 500})
            return 500, _error("api_error", "The double rejected this call (an outage at Stripe)."), \
                {"Stripe-Should-Retry": "false"}
        number = next(self._ids)
        line = (params.get("line_items") or {}).get("0") or {}
        amount = int(((line.get("price_data") or {}).get("unit_amount")) or 0) * int(line.get("quantity") or 1)
        session = {
            "id": f"cs_double_{number}", "object": "checkout.session", "mode": params.get("mode"),
            "url": f"{self.url}/pay/cs_double_{number}", "metadata": params.get("metadata") or {},
            "client_reference_id": params.get("client_reference_id"), "amount_total": amount,
            "currency": params.get("currency") or "usd", "customer": params.get("customer"),
            "payment_status": "unpaid", "status": "open", "payment_intent": None, "idempotency_key": key,
        }
        with self.lock:
            self.sessions[session["id"]] = session
            self.accepted.append(time.monotonic())
        return 200, dict(session), {}

    def _intent_search(self, query: str) -> dict:
        terms = dict(re.findall(r"metadata\['([^']+)'\]\s*:\s*'([^']*)'", query))
        with self.lock:
            found = [i for i in self.intents.values() if all(i["metadata"].get(k) == v for k, v in terms.items())]
        return {"object": "search_result", "data": [_public(i) for i in found], "has_more": False,
                "url": "/v1/payment_intents/search", "next_page": None}

    # --- the customer's side ------------------------------------------------------------------

    def checkout_pay(self, session_id: str) -> dict:
        """The customer pays a Checkout Session: a PaymentIntent succeeds, and Stripe sends
        checkout.session.completed. Paying a session twice changes nothing (as at Stripe)."""
        with self.lock:
            session = self.sessions[session_id]
            if session["payment_status"] == "paid":
                return dict(session)
            intent = {"id": f"pi_double_{next(self._ids)}", "object": "payment_intent",
                      "amount": session["amount_total"], "currency": session["currency"],
                      "customer": session["customer"], "payment_method": "pm_double_checkout",
                      "metadata": dict(session["metadata"]), "status": "succeeded", "livemode": False,
                      "created": int(time.time()), "idempotency_key": "", "checkout_session": session_id,
                      "next_action": None, "last_payment_error": None}
            self.intents[intent["id"]] = intent
            session.update(payment_status="paid", status="complete", payment_intent=intent["id"])
            paid = dict(session)
        self._schedule("checkout.session.completed", {k: v for k, v in paid.items() if k != "idempotency_key"})
        return paid

    # --- webhooks -----------------------------------------------------------------------------

    def _schedule(self, event_type: str, obj: dict) -> None:
        if not self.webhook_url:
            return
        event = {"id": f"evt_double_{next(self._ids)}", "object": "event", "api_version": "2025-03-31.basil",
                 "created": int(time.time()), "livemode": False, "pending_webhooks": 1,
                 "request": {"id": None, "idempotency_key": None}, "type": event_type, "data": {"object": obj}}
        with self.lock:
            late = self.rng.random() < self.late_webhooks
            delay = self.late_delay if late else self.rng.uniform(*self.webhook_delay)
            twice = self.rng.random() < self.duplicate_webhooks
        self._push(time.monotonic() + delay, event, 0)
        if twice:
            self._push(time.monotonic() + delay + 1.0, event, 0)
            self.deliveries["duplicates"] += 1

    def _push(self, due: float, event: dict, attempts: int) -> None:
        with self._outbox_lock:
            heapq.heappush(self._outbox, (due, next(self._ids), event, attempts))
            self._outbox_lock.notify_all()

    def pending_webhooks(self) -> int:
        with self._outbox_lock:
            return len(self._outbox)

    def _deliver_loop(self) -> None:
        while True:
            with self._outbox_lock:
                while not self._stopping and (not self._outbox or self._outbox[0][0] > time.monotonic()):
                    wait = self._outbox[0][0] - time.monotonic() if self._outbox else None
                    self._outbox_lock.wait(timeout=wait)
                if self._stopping:
                    return
                _, _, event, attempts = heapq.heappop(self._outbox)
            if self._deliver(event):
                self.deliveries["sent"] += 1
            else:  # Stripe retries with backoff; so does the double (faster: the soak is minutes long)
                self.deliveries["failed"] += 1
                self._push(time.monotonic() + min(2.0 * 2 ** attempts, 30.0), event, attempts + 1)

    def _deliver(self, event: dict) -> bool:
        body = json.dumps(event)
        request = urllib.request.Request(self.webhook_url, data=body.encode(), method="POST", headers={
            "Content-Type": "application/json", "Stripe-Signature": sign(self.webhook_secret, body)})
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return 200 <= response.status < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False


def _public(intent: dict) -> dict:
    return {k: v for k, v in intent.items() if k not in ("idempotency_key", "checkout_session")}


def _error(type_: str, message: str, **extra) -> dict:
    return {"error": {"type": type_, "message": message, **extra}}
