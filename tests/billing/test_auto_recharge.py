"""Auto-recharge (issue 15): trigger semantics, exactly one recharge per crossing under concurrency,
the ceiling, the failure paths, and the Stripe path stubbed at its HTTP edge."""

import json
import threading
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from billing.ledger import credits_adjust
from billing.models import AutoRecharge, AutoRechargeAttempt, LedgerEntry, Purchase, Wallet, credits
from budgets.models import Agent
from buying.auto_recharge import (MAX_TRIES, PaymentOutcome, auto_recharge_payment_record, auto_recharge_retry_due,
                                   auto_recharge_set, auto_recharge_test_card_set)
from invoices.models import Invoice
from operations.reconcile import reconcile_workspace
from tests.billing import stripe_payloads as sp
from tests.factories import PASSWORD
from usage.services import NodeInput, run_authorize, run_complete

NODE = [NodeInput(name="answer", model="gpt-4o", input_tokens=200_000, output_tokens=200_000)]  # 4 credits


def _wallet(ws):
    return Wallet.objects.get(workspace=ws)


def _attempts(ws):
    return AutoRechargeAttempt.objects.filter(workspace=ws).order_by("id")


def _turn_on(ws, *, threshold, pack="builder", ceiling=3, card=AutoRecharge.TEST_CARD_OK):
    auto_recharge_test_card_set(workspace=ws, mode=card)
    return auto_recharge_set(workspace=ws, enabled=True, threshold=credits(threshold), pack_id=pack,
                             max_per_period=ceiling)


def _spend_down_to(ws, available):
    """An adjustment that leaves `available` credits (monthly credits stay, purchased go negative-free)."""
    credits_adjust(workspace=ws, amount=available - _wallet(ws).available, reason="test: set the balance")


def _run(team, run_id, *, cost_node=NODE):
    auth = run_authorize(membership=team.membership(team.member), workflow="wf", agent="bulk", model="gpt-4o",
                         public_id=run_id)
    return run_complete(workspace=team.workspace, public_id=auth.run.public_id, status="succeeded", nodes=cost_node)


@pytest.fixture
def roomy_agent(team):
    """An agent whose own budgets never bind in these tests."""
    return Agent.objects.create(workspace=team.workspace, name="bulk", max_per_run=credits(10),
                                max_per_day=credits(100_000), max_per_month=credits(100_000))


@pytest.mark.django_db(transaction=True)
def test_a_charge_that_crosses_the_threshold_buys_the_pack_once_with_invoice_and_receipt(team, roomy_agent):
    ws = team.workspace
    _turn_on(ws, threshold=4990)
    assert not _attempts(ws).exists()  # 5,000 available: above the threshold
    _run(team, "r1")  # 4,996 left
    assert not _attempts(ws).exists()
    _run(team, "r2")  # reserving 10 takes available to 4,986: the crossing
    _run(team, "r3")
    (attempt,) = _attempts(ws)
    assert attempt.status == "succeeded" and attempt.purchase.status == Purchase.PAID
    assert _wallet(ws).available == credits(5000) - 3 * credits(4) + credits(525)
    entries = LedgerEntry.objects.filter(purchase=attempt.purchase).order_by("id")
    assert [(e.kind, e.amount) for e in entries] == [("purchase", credits(500)), ("bonus", credits(25))]
    invoice = Invoice.objects.get(purchase=attempt.purchase)
    assert invoice.total_cents == 2000
    receipts = [m for m in mail.outbox if m.subject.startswith("Receipt")]
    assert len(receipts) == 1 and receipts[0].to == [team.owner.email] and invoice.number in receipts[0].subject
    assert reconcile_workspace(workspace=ws) == []


@pytest.mark.django_db(transaction=True)
def test_it_recharges_at_once_when_turned_on_below_the_threshold(team):
    ws = team.workspace
    _turn_on(ws, threshold=6000)
    assert _attempts(ws).get().status == "succeeded"
    assert _wallet(ws).purchased == credits(525)


@pytest.mark.django_db(transaction=True)
def test_it_rearms_only_back_above_the_threshold_and_the_ceiling_stops_the_fourth(team):
    ws = team.workspace
    credits_adjust(workspace=ws, amount=credits(5000), reason="test: purchased credits to spend")  # 10,000
    _turn_on(ws, threshold=8000, pack="starter", ceiling=3)  # Starter: 100 credits
    _spend_down_to(ws, credits(7950))  # crossing 1 -> 8,050
    assert _wallet(ws).available == credits(8050)
    _spend_down_to(ws, credits(7990))  # crossing 2 -> 8,090
    _spend_down_to(ws, credits(7800))  # crossing 3 -> 7,900: still below, so disarmed
    assert [a.status for a in _attempts(ws)] == ["succeeded"] * 3
    _spend_down_to(ws, credits(7700))  # still below: no new crossing, nothing bought
    assert _attempts(ws).count() == 3
    _spend_down_to(ws, credits(8200))  # back above: re-armed
    _spend_down_to(ws, credits(7000))  # crossing 4: past the ceiling of 3 this period
    assert [a.status for a in _attempts(ws)] == ["succeeded"] * 3 + ["skipped"]
    assert "ceiling of 3" in _attempts(ws).last().last_error
    assert _wallet(ws).available == credits(7000)
    assert LedgerEntry.objects.filter(workspace=ws, kind="purchase").count() == 3
    assert reconcile_workspace(workspace=ws) == []


@pytest.mark.django_db(transaction=True)
def test_a_declined_card_is_retried_with_backoff_then_pauses_and_emails(team):
    ws = team.workspace
    _turn_on(ws, threshold=6000, card=AutoRecharge.TEST_CARD_DECLINE)
    attempt = _attempts(ws).get()
    assert attempt.status == "retrying" and attempt.tries == 1
    assert auto_recharge_retry_due(now=timezone.now()) == 0  # not before its backoff
    first_retry = attempt.next_try_at
    assert timedelta(minutes=4) < first_retry - timezone.now() <= timedelta(minutes=5)
    auto_recharge_retry_due(now=first_retry)
    attempt.refresh_from_db()
    assert attempt.status == "retrying" and attempt.tries == 2 and attempt.next_try_at - first_retry > timedelta(minutes=29)
    assert not mail.outbox
    auto_recharge_retry_due(now=attempt.next_try_at)
    attempt.refresh_from_db()
    assert attempt.status == "failed" and attempt.tries == MAX_TRIES == 3
    row = AutoRecharge.objects.get(pk=ws.pk)
    assert row.paused_reason == "declined" and _wallet(ws).auto_recharge_threshold is None
    assert auto_recharge_retry_due(now=timezone.now() + timedelta(days=1)) == 0  # never retried blindly
    (email,) = mail.outbox
    assert "paused" in email.subject and "declined 3 times" in email.body and team.owner.email in email.to
    assert LedgerEntry.objects.filter(workspace=ws, kind="purchase").count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_decline_then_a_success_on_retry_credits_once(team):
    ws = team.workspace
    _turn_on(ws, threshold=6000, card=AutoRecharge.TEST_CARD_DECLINE)
    attempt = _attempts(ws).get()
    auto_recharge_test_card_set(workspace=ws, mode=AutoRecharge.TEST_CARD_OK)  # the owner fixed the card
    auto_recharge_retry_due(now=attempt.next_try_at)
    attempt.refresh_from_db()
    assert attempt.status == "succeeded" and attempt.tries == 2
    assert _wallet(ws).purchased == credits(525)


@pytest.mark.django_db(transaction=True)
def test_requires_action_pauses_at_once_and_emails_a_link(client, team):
    ws = team.workspace
    _turn_on(ws, threshold=6000, card=AutoRecharge.TEST_CARD_AUTH)
    attempt = _attempts(ws).get()
    assert attempt.status == "requires_action" and attempt.tries == 1
    assert AutoRecharge.objects.get(pk=ws.pk).paused_reason == "requires_action"
    (email,) = mail.outbox
    assert "Action needed" in email.subject and "/w/acme/settings/billing/buy/#auto-recharge" in email.body
    client.login(email=team.admin.email, password=PASSWORD)
    page = client.get(reverse("billing:buy", kwargs={"slug": "acme"})).content.decode()
    assert "Auto-recharge is paused." in page and "authentication (3-D Secure)" in page
    overview = client.get(reverse("billing:overview", kwargs={"slug": "acme"})).content.decode()
    assert "paused" in overview and "authentication needed" in overview


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_runs_crossing_together_buy_exactly_one_recharge(team, roomy_agent):
    ws = team.workspace
    _turn_on(ws, threshold=4950)
    barrier = threading.Barrier(20)
    errors = []

    def one_run(n):
        try:
            barrier.wait()
            _run(team, f"c-{n}")
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=one_run, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []  # no run was refused or failed because of the recharge
    (attempt,) = _attempts(ws)
    assert attempt.status == "succeeded"
    assert Purchase.objects.filter(workspace=ws).count() == 1
    assert Invoice.objects.filter(workspace=ws, purchase__isnull=False).count() == 1
    assert _wallet(ws).available == credits(5000) - 20 * credits(4) + credits(525)
    assert reconcile_workspace(workspace=ws) == []


@pytest.mark.django_db(transaction=True)
def test_the_set_auto_recharge_command(team):
    call_command("set_auto_recharge", "acme", "--threshold", "100", "--pack", "pro", "--max-per-period", "2",
                 "--test-payment-method")
    row = AutoRecharge.objects.get(pk=team.workspace.pk)
    assert (row.enabled, row.threshold, row.pack_id, row.max_per_period, row.test_card) == (
        True, credits(100), "pro", 2, "succeeds")
    assert _wallet(team.workspace).auto_recharge_threshold == credits(100)
    call_command("set_auto_recharge", "acme", "--off")
    assert AutoRecharge.objects.get(pk=team.workspace.pk).enabled is False
    assert _wallet(team.workspace).auto_recharge_threshold is None
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="threshold above zero"):
        call_command("set_auto_recharge", "acme", "--threshold", "0", "--pack", "pro")


@pytest.mark.django_db(transaction=True)
def test_the_page_turns_it_on_for_owner_and_admin_only(client, team, outsider):
    url = reverse("billing:auto_recharge", kwargs={"slug": "acme"})
    client.login(email=team.member.email, password=PASSWORD)
    assert client.post(url, {"action": "test_card", "mode": "succeeds"}).status_code == 403
    client.logout()
    client.login(email=outsider.email, password="pw-outsider-1")
    assert client.post(url, {"action": "test_card", "mode": "succeeds"}).status_code == 404
    client.logout()
    client.login(email=team.owner.email, password=PASSWORD)
    response = client.post(url, {"action": "save", "threshold": "100", "pack": "builder", "max_per_period": "3"},
                           follow=True)
    assert "Add a payment method first" in response.content.decode()
    client.post(url, {"action": "test_card", "mode": "succeeds"})
    for bad in ({"threshold": "-5"}, {"threshold": "abc"}, {"max_per_period": "0"}, {"pack": "nope"}):
        data = {"action": "save", "threshold": "100", "pack": "builder", "max_per_period": "3", **bad}
        response = client.post(url, data)
        assert response.status_code == 302
        assert AutoRecharge.objects.get(pk=team.workspace.pk).enabled is False
    client.post(url, {"action": "save", "threshold": "100", "pack": "builder", "max_per_period": "3"})
    page = client.get(reverse("billing:buy", kwargs={"slug": "acme"})).content.decode()
    assert "When available credits fall below <strong>100</strong>" in page and "Test card (no money moves)" in page


@pytest.mark.django_db(transaction=True)
def test_the_forecast_reads_the_usage_daily_average(client, team, roomy_agent):
    from tests.usage.conftest import Api
    from usage.tokens import token_create

    api = Api(token_create(membership=team.membership(team.owner), name="owner").raw)
    assert api.get("/v1/billing/balance").json()["forecast"] == {
        "daily_average": "0", "runs_out_on": None, "runs_out_beyond_horizon": False,
        "next_auto_recharge_on": None}  # no usage, no date
    _run(team, "f1")
    body = api.get("/v1/billing/balance").json()["forecast"]
    from usage.selectors import usage_summary

    today = timezone.now().date()
    rate = usage_summary(workspace=team.workspace, start=today, end=today).daily_average
    assert body["daily_average"] == f"{rate / 10**9:g}" or credits(body["daily_average"]) == rate
    days = _wallet(team.workspace).available // rate  # past a year: no date (tests/usage/test_forecast.py)
    expected = (today + timedelta(days=days)).isoformat() if days <= 365 else None
    assert body["runs_out_on"] == expected and body["runs_out_beyond_horizon"] is (days > 365)
    assert body["next_auto_recharge_on"] is None
    threshold = (_wallet(team.workspace).available - 30 * rate) // 10**9  # about a month away, in whole credits
    _turn_on(team.workspace, threshold=threshold)
    body = api.get("/v1/billing/balance").json()["forecast"]
    assert body["next_auto_recharge_on"] == (
        today + timedelta(days=(_wallet(team.workspace).available - credits(threshold)) // rate)).isoformat()
    client.login(email=team.member.email, password=PASSWORD)
    assert "next auto-recharge is around" in client.get(reverse("billing:overview", kwargs={"slug": "acme"})
                                                        ).content.decode()



@pytest.mark.django_db(transaction=True)
def test_the_forecast_says_no_recharge_can_fire_until_credits_are_back_above_the_threshold(client, team, roomy_agent):
    """Issue 30: after a crossing the trigger is disarmed; the forecast must not promise a date."""
    ws = team.workspace
    credits_adjust(workspace=ws, amount=credits(5000), reason="test: purchased credits to spend")  # 10,000
    _turn_on(ws, threshold=8000, pack="starter")  # Starter: 100 credits
    _spend_down_to(ws, credits(7800))  # a crossing buys 100 -> 7,900: still below, so disarmed
    _run(team, "r1")
    assert not _wallet(team.workspace).auto_recharge_armed
    client.login(email=team.owner.email, password=PASSWORD)
    page = client.get(reverse("billing:overview", kwargs={"slug": "acme"})).content.decode()
    assert "next auto-recharge is around" not in page
    assert "fires again only after available credits are back above that" in page
    from usage.forecast import credit_forecast

    assert credit_forecast(workspace=team.workspace).next_auto_recharge_on is None


# --- Stripe: an off-session PaymentIntent stubbed at Stripe's HTTP edge ---------------------------

@pytest.fixture
def stripe_edge(settings, monkeypatch):
    import stripe

    settings.STRIPE_SECRET_KEY = "sk_test_123"
    state = {"requests": [], "answer": None, "before_answer": None}

    def fake_request(self, method, url, headers, post_data=None, **kwargs):
        body = post_data.decode() if isinstance(post_data, bytes) else (post_data or "")
        state["requests"].append((method, url, body, headers))
        if state["before_answer"]:
            state["before_answer"]()  # e.g. the webhook arriving before the synchronous answer
        return state["answer"]

    monkeypatch.setattr(stripe.RequestsClient, "request", fake_request, raising=False)
    monkeypatch.setattr(stripe._http_client, "new_default_http_client",
                        lambda *a, **k: stripe.RequestsClient(), raising=False)
    call_command("stripe_webhook_endpoint", "--quiet")
    return state


def _intent(status, *, attempt_key, workspace, try_number=1, intent_id="pi_auto_1"):
    return {"id": intent_id, "object": "payment_intent", "amount": 2000, "currency": "usd", "status": status,
            "customer": "cus_test_9", "payment_method": "pm_card_visa", "off_session": True, "livemode": False,
            "metadata": {"workspace": workspace.slug, "workspace_id": str(workspace.pk), "pack": "builder",
                         "auto_recharge": attempt_key, "try": str(try_number)},
            "last_payment_error": None, "next_action": None}


def _stripe_on(ws):
    from buying.auto_recharge import auto_recharge_payment_method_record

    auto_recharge_payment_method_record(workspace=ws, customer_id="cus_test_9", payment_method_id="pm_card_visa",
                                        card_label="Visa ending 4242")


class FakeStripe:
    """Stripe's PaymentIntents as Stripe keeps them, behind its HTTP edge: idempotency keys replay
    their first answer, a PaymentIntent is confirmed (and the card charged) at most once, and every
    charge is counted. The saved card succeeds, declines, or asks for authentication (`card`)."""

    def __init__(self):
        self.intents, self.answers, self.requests, self.charges = {}, {}, [], []
        self.card = "succeeds"
        self.after_charge = None  # e.g. the webhook arriving before the synchronous answer
        self.tax_percent = 0  # what Stripe Tax charges on an auto-recharge (tax.calculations)
        self.tax_error = ""  # Stripe Tax's refusal to calculate (e.g. Stripe Tax not activated)

    def creates(self):
        return [(body, headers) for method, url, body, headers in self.requests
                if method == "post" and url.endswith("/v1/payment_intents")]

    def __call__(self, method, url, headers, body):
        self.requests.append((method, url, body, headers))
        path = url.split("api.stripe.com")[-1].split("?")[0]
        key = (path, headers.get("Idempotency-Key"))
        if method == "post" and key[1] and key in self.answers:
            return self.answers[key]  # Stripe replays the first answer to a key
        params = {k: v[0] for k, v in parse_qs(body).items()}
        if method == "post" and path == "/v1/payment_intents":
            intent_id = f"pi_auto_{len(self.intents) + 1}"
            metadata = {k[len("metadata["):-1]: v for k, v in params.items() if k.startswith("metadata[")}
            self.intents[intent_id] = {
                "id": intent_id, "object": "payment_intent", "amount": int(params["amount"]), "currency": "usd",
                "status": "requires_confirmation", "customer": params.get("customer"),
                "payment_method": params.get("payment_method"), "metadata": metadata, "livemode": False,
                "last_payment_error": None, "next_action": None}
            answer = self._confirm(intent_id) if params.get("confirm") == "true" else self._ok(intent_id)
        elif method == "post" and path == "/v1/tax/calculations" and self.tax_error:
            answer = json.dumps({"error": {"type": "invalid_request_error", "message": self.tax_error}}), 400, {}
        elif method == "post" and path == "/v1/tax/calculations":
            amount = int(params["line_items[0][amount]"])
            tax = amount * self.tax_percent // 100
            answer = json.dumps({
                "id": "taxcalc_test_1", "object": "tax.calculation", "amount_total": amount + tax, "currency": "usd",
                "customer": params.get("customer"), "tax_amount_exclusive": tax, "tax_amount_inclusive": 0,
                "tax_breakdown": [{"amount": tax, "inclusive": False, "taxability_reason": "standard_rated",
                                   "taxable_amount": amount,
                                   "tax_rate_details": {"country": "DE", "percentage_decimal": f"{self.tax_percent}.0",
                                                        "state": None, "tax_type": "vat"}}]}), 200, {}
        elif method == "post" and path.endswith("/confirm"):
            answer = self._confirm(path.split("/")[-2])
        elif method == "get" and path.startswith("/v1/payment_intents/"):
            answer = self._ok(path.split("/")[-1])
        else:
            raise AssertionError(f"unexpected Stripe call {method} {url}")
        if method == "post" and key[1]:
            self.answers[key] = answer
        return answer

    def _ok(self, intent_id):
        return json.dumps(self.intents[intent_id]), 200, {}

    def _confirm(self, intent_id):
        intent = self.intents[intent_id]
        if intent["status"] != "requires_confirmation":
            return json.dumps({"error": {"type": "invalid_request_error", "code": "payment_intent_unexpected_state",
                                         "message": f"This PaymentIntent's status is {intent['status']}."}}), 400, {}
        if self.card == "succeeds":
            intent["status"] = "succeeded"
            self.charges.append(intent_id)
            if self.after_charge:
                self.after_charge(intent)
            return self._ok(intent_id)
        code = "authentication_required" if self.card == "authenticates" else "card_declined"
        message = ("This payment requires authentication." if code == "authentication_required"
                   else "Your card has insufficient funds.")
        intent["status"], intent["last_payment_error"] = "requires_payment_method", {"code": code, "message": message}
        return json.dumps({"error": {"type": "card_error", "code": code, "message": message,
                                     "payment_intent": intent}}), 402, {}


@pytest.fixture
def fake_stripe(settings, monkeypatch):
    import stripe

    settings.STRIPE_SECRET_KEY = "sk_test_123"
    fake = FakeStripe()

    def fake_request(self, method, url, headers, post_data=None, **kwargs):
        body = post_data.decode() if isinstance(post_data, bytes) else (post_data or "")
        return fake(method, url, headers, body)

    monkeypatch.setattr(stripe.RequestsClient, "request", fake_request, raising=False)
    monkeypatch.setattr(stripe._http_client, "new_default_http_client",
                        lambda *a, **k: stripe.RequestsClient(), raising=False)
    call_command("stripe_webhook_endpoint", "--quiet")
    return fake


def _check_params(body, params_type):
    """Every parameter we send is one stripe-python's types know (stripe.params)."""
    known = params_type.__required_keys__ | params_type.__optional_keys__
    sent = {name.split("[")[0] for name in parse_qs(body)}
    assert sent <= known, sent - known


@pytest.mark.django_db(transaction=True)
def test_stripe_webhook_before_the_synchronous_success_credits_once(client, team, fake_stripe):
    from stripe.params import PaymentIntentConfirmParams, PaymentIntentCreateParams

    ws = team.workspace
    _stripe_on(ws)
    key = f"auto-recharge:{ws.pk}:1"

    def webhook_first(intent):
        fake_stripe.after_charge = None
        event = sp.event("evt_pi_ok", "payment_intent.succeeded", intent)
        assert sp.deliver(client, event).status_code == 200

    fake_stripe.after_charge = webhook_first
    auto_recharge_set(workspace=ws, enabled=True, threshold=credits(6000), pack_id="builder")
    (create, confirm) = [(m, u, b, h) for m, u, b, h in fake_stripe.requests
                         if m == "post" and "/v1/payment_intents" in u]  # after Stripe Tax's calculation
    assert create[1].endswith("/v1/payment_intents") and "confirm=" not in create[2]
    assert "customer=cus_test_9" in create[2] and "payment_method=pm_card_visa" in create[2] and "amount=2000" in create[2]
    assert create[3].get("Idempotency-Key") == f"{key}:try:1"
    assert confirm[1].endswith("/v1/payment_intents/pi_auto_1/confirm") and "off_session=true" in confirm[2]
    _check_params(create[2], PaymentIntentCreateParams)
    _check_params(confirm[2], PaymentIntentConfirmParams)
    attempt = _attempts(ws).get()
    assert attempt.status == "succeeded" and attempt.purchase.stripe_payment_intent_id == "pi_auto_1"
    assert LedgerEntry.objects.filter(workspace=ws, kind__in=["purchase", "bonus"]).count() == 2
    assert _wallet(ws).purchased == credits(525)
    assert Invoice.objects.filter(purchase=attempt.purchase).count() == 1
    # ... and the webhook delivered again, after the synchronous answer, changes nothing.
    event = sp.event("evt_pi_ok_2", "payment_intent.succeeded", _intent("succeeded", attempt_key=key, workspace=ws))
    assert sp.deliver(client, event).status_code == 200
    assert _wallet(ws).purchased == credits(525) and fake_stripe.charges == ["pi_auto_1"]
    assert reconcile_workspace(workspace=ws) == []


@pytest.mark.django_db(transaction=True)
def test_stripe_decline_and_its_webhook_count_as_one_try(client, team, fake_stripe):
    ws = team.workspace
    _stripe_on(ws)
    key = f"auto-recharge:{ws.pk}:1"
    fake_stripe.card = "declines"
    auto_recharge_set(workspace=ws, enabled=True, threshold=credits(5001), pack_id="builder")
    attempt = _attempts(ws).get()
    assert attempt.status == "retrying" and attempt.tries == 1 and "insufficient funds" in attempt.last_error
    failed = _intent("requires_payment_method", attempt_key=key, workspace=ws)
    failed["last_payment_error"] = {"code": "card_declined", "message": "Your card has insufficient funds."}
    assert sp.deliver(client, sp.event("evt_pi_fail", "payment_intent.payment_failed", failed)).status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == "retrying" and attempt.tries == 1  # the same try, not counted twice
    # Authentication required off-session: pause at once.
    fake_stripe.card = "authenticates"
    auto_recharge_retry_due(now=attempt.next_try_at)
    attempt.refresh_from_db()
    assert attempt.status == "requires_action" and attempt.tries == 2
    assert [h.get("Idempotency-Key") for _, h in fake_stripe.creates()] == [f"{key}:try:1", f"{key}:try:2"]
    assert AutoRecharge.objects.get(pk=ws.pk).paused_reason == "requires_action"
    assert any("Action needed" in m.subject for m in mail.outbox)
    # The cardholder authenticates later: Stripe reports success, the pack is credited once, and
    # auto-recharge resumes.
    ok = _intent("succeeded", attempt_key=key, workspace=ws, try_number=2, intent_id="pi_auto_2")
    assert sp.deliver(client, sp.event("evt_pi_ok", "payment_intent.succeeded", ok)).status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == "succeeded" and _wallet(ws).purchased == credits(525)
    assert AutoRecharge.objects.get(pk=ws.pk).paused_reason == ""
    assert fake_stripe.charges == []  # neither try charged the card; the cardholder's authentication did


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("try_value", ["²", "two"])
def test_a_payment_intent_event_whose_try_is_not_a_number_reads_as_unknown_not_a_500(client, team, fake_stripe,
                                                                                     try_value):
    """The metadata is ours, but a signed event is input all the same: an unreadable try number is
    "unknown" (the current try), and the success is still recorded, once."""
    ws = team.workspace
    _stripe_on(ws)
    key = f"auto-recharge:{ws.pk}:1"
    answers = []

    def webhook_first(intent):
        fake_stripe.after_charge = None
        intent = {**intent, "metadata": {**intent["metadata"], "try": try_value}}
        answers.append(sp.deliver(client, sp.event("evt_pi_odd_try", "payment_intent.succeeded", intent)).status_code)

    fake_stripe.after_charge = webhook_first
    auto_recharge_set(workspace=ws, enabled=True, threshold=credits(6000), pack_id="builder")
    assert answers == [200]
    assert _attempts(ws).get().status == "succeeded" and _wallet(ws).purchased == credits(525)
    assert fake_stripe.charges == ["pi_auto_1"]


@pytest.mark.django_db(transaction=True)
def test_a_try_started_by_the_code_before_the_fix_is_resumed_by_the_sweep_after_the_migration(team):
    """The old code started a try with `next_try_at` cleared (`pending` for the first try, `retrying`
    for a later one); today's sweep would never see it. The migration hands it to the sweep, which
    resumes it with the same try number (hence the same idempotency key) and pays once."""
    import importlib

    from django.apps import apps

    ws = team.workspace
    auto_recharge_test_card_set(workspace=ws, mode=AutoRecharge.TEST_CARD_OK)
    AutoRecharge.objects.filter(pk=ws.pk).update(enabled=True, threshold=credits(1), pack_id="builder")
    earlier = timezone.now() - timedelta(hours=1)
    first = AutoRechargeAttempt.objects.create(workspace=ws, key=f"auto-recharge:{ws.pk}:old-1", pack_id="builder",
                                               status="pending", tries=1, next_try_at=None, created_at=earlier,
                                               period_start=ws.period_start, available_at_trigger=0,
                                               threshold=credits(1))
    auto_recharge_retry_due()
    first.refresh_from_db()
    assert first.status == "pending"  # stuck: the sweep does not see it
    importlib.import_module("billing.migrations.0010_auto_recharge_started_tries_resume").started_tries_resume(
        apps, None)
    auto_recharge_retry_due(now=timezone.now() + timedelta(seconds=1))
    first.refresh_from_db()
    assert first.status == "succeeded" and first.tries == 1  # resumed as try 1, not paid as a try 2
    assert _wallet(ws).purchased == credits(525)
    assert reconcile_workspace(workspace=ws) == []


class WorkerKilled(BaseException):
    """A worker dying mid-task (SIGKILL): nothing after it runs, its transaction rolls back."""


def _die_once_while_recording(monkeypatch):
    """The next recording of a success dies before it commits: Stripe charged, we recorded nothing."""
    from buying import auto_recharge

    real = auto_recharge.pack_purchase_fulfil
    calls = []

    def dying(**kwargs):
        if not calls:
            calls.append(kwargs)
            raise WorkerKilled()
        return real(**kwargs)

    monkeypatch.setattr(auto_recharge, "pack_purchase_fulfil", dying)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_after_stripe_charged_is_redelivered_without_charging_again(team, fake_stripe, monkeypatch):
    from buying.tasks import auto_recharge_pay

    ws = team.workspace
    _stripe_on(ws)
    key = f"auto-recharge:{ws.pk}:1"
    _die_once_while_recording(monkeypatch)
    # The crossing's task is run by hand, so the worker's death is seen (acks late: the broker keeps
    # the message and delivers it again).
    monkeypatch.setattr(auto_recharge_pay, "delay", lambda *args: None)
    auto_recharge_set(workspace=ws, enabled=True, threshold=credits(6000), pack_id="builder")
    with pytest.raises(WorkerKilled):
        auto_recharge_pay(key)
    assert fake_stripe.charges == ["pi_auto_1"]  # Stripe charged; nothing was recorded
    attempt = _attempts(ws).get()
    assert attempt.status == "pending" and _wallet(ws).purchased == 0
    auto_recharge_pay(key)  # the redelivery
    attempt.refresh_from_db()
    assert attempt.status == "succeeded" and attempt.tries == 1
    assert [h.get("Idempotency-Key") for _, h in fake_stripe.creates()] == [f"{key}:try:1"]
    assert len(fake_stripe.intents) == 1 and fake_stripe.charges == ["pi_auto_1"]  # one PaymentIntent, one charge
    assert Purchase.objects.filter(workspace=ws).count() == 1 and _wallet(ws).purchased == credits(525)
    assert Invoice.objects.filter(purchase=attempt.purchase).count() == 1
    auto_recharge_pay(key)  # delivered once more: nothing moves
    assert fake_stripe.charges == ["pi_auto_1"] and _wallet(ws).purchased == credits(525)
    assert reconcile_workspace(workspace=ws) == []


@pytest.mark.django_db(transaction=True)
def test_a_stuck_started_try_is_swept_and_looked_up_at_stripe_not_paid_twice(team, fake_stripe, monkeypatch):
    from buying.tasks import auto_recharge_pay

    ws = team.workspace
    _stripe_on(ws)
    key = f"auto-recharge:{ws.pk}:1"
    _die_once_while_recording(monkeypatch)
    monkeypatch.setattr(auto_recharge_pay, "delay", lambda *args: None)  # its message will be lost
    auto_recharge_set(workspace=ws, enabled=True, threshold=credits(6000), pack_id="builder")
    with pytest.raises(WorkerKilled):
        auto_recharge_pay(key)  # charged at Stripe, then the worker died and the message was lost
    attempt = _attempts(ws).get()
    assert (attempt.status, attempt.tries, fake_stripe.charges) == ("pending", 1, ["pi_auto_1"])
    # It blocks every later recharge while it is pending: the sweep must resolve it.
    auto_recharge_retry_due(now=timezone.now() + timedelta(minutes=1))  # not while its try may still be running
    attempt.refresh_from_db()
    assert attempt.status == "pending"
    auto_recharge_retry_due(now=timezone.now() + timedelta(minutes=30))
    attempt.refresh_from_db()
    assert attempt.status == "succeeded" and attempt.tries == 1
    assert len(fake_stripe.intents) == 1 and fake_stripe.charges == ["pi_auto_1"]
    assert ("get", "https://api.stripe.com/v1/payment_intents/pi_auto_1") in [(m, u) for m, u, _, _ in fake_stripe.requests]
    assert _wallet(ws).purchased == credits(525) and Purchase.objects.filter(workspace=ws).count() == 1
    # No longer in flight, it blocks nothing: the next crossing buys again.
    _spend_down_to(ws, credits(6100))  # back above the threshold: re-armed
    _spend_down_to(ws, credits(5900))
    auto_recharge_pay(f"auto-recharge:{ws.pk}:2")
    assert _attempts(ws).count() == 2 and _attempts(ws).last().status == "succeeded"
    assert fake_stripe.charges == ["pi_auto_1", "pi_auto_2"]


@pytest.mark.django_db(transaction=True)
def test_a_try_started_but_never_sent_is_swept_and_paid_once(team, fake_stripe, monkeypatch):
    """The message was lost after the try was committed and before Stripe was called."""
    from buying import stripe_client
    from buying.tasks import auto_recharge_pay

    ws = team.workspace
    _stripe_on(ws)
    key = f"auto-recharge:{ws.pk}:1"
    monkeypatch.setattr(auto_recharge_pay, "delay", lambda *args: None)
    auto_recharge_set(workspace=ws, enabled=True, threshold=credits(6000), pack_id="builder")

    def killed(**kwargs):
        raise WorkerKilled()

    with monkeypatch.context() as patch:
        patch.setattr(stripe_client, "auto_recharge_intent_create", killed, raising=False)
        patch.setattr(stripe_client, "auto_recharge_payment_intent", killed, raising=False)
        with pytest.raises(WorkerKilled):
            auto_recharge_pay(key)
    attempt = _attempts(ws).get()
    intents = [url for _, url, _, _ in fake_stripe.requests if "/v1/payment_intents" in url]
    assert (attempt.status, attempt.tries, intents) == ("pending", 1, [])  # only Stripe Tax was asked
    auto_recharge_retry_due(now=timezone.now() + timedelta(minutes=30))
    attempt.refresh_from_db()
    assert attempt.status == "succeeded" and fake_stripe.charges == ["pi_auto_1"]
    assert [h.get("Idempotency-Key") for _, h in fake_stripe.creates()] == [f"{key}:try:1"]


@pytest.mark.django_db(transaction=True)
def test_an_outcome_for_an_older_try_changes_nothing(team):
    ws = team.workspace
    _turn_on(ws, threshold=6000, card=AutoRecharge.TEST_CARD_DECLINE)
    attempt = _attempts(ws).get()
    auto_recharge_retry_due(now=attempt.next_try_at)  # try 2 declined too
    attempt.refresh_from_db()
    late = PaymentOutcome(PaymentOutcome.DECLINED, "test_pi_old", "late report of try 1", try_number=1)
    auto_recharge_payment_record(attempt=attempt, outcome=late)
    attempt.refresh_from_db()
    assert attempt.status == "retrying" and attempt.tries == 2 and attempt.last_error != "late report of try 1"


@pytest.mark.django_db(transaction=True)
def test_a_stripe_card_is_saved_from_setup_checkout_or_a_pack_bought_to_keep_it(client, team, stripe_edge):
    ws = team.workspace
    stripe_edge["answer"] = (json.dumps({"id": "cs_setup", "object": "checkout.session",
                                         "url": "https://checkout.stripe.com/c/setup"}), 200, {})
    client.login(email=team.owner.email, password=PASSWORD)
    response = client.post(reverse("billing:auto_recharge", kwargs={"slug": "acme"}), {"action": "stripe_card"})
    assert response.url == "https://checkout.stripe.com/c/setup"
    _, _, body, _ = stripe_edge["requests"][-1]
    assert "mode=setup" in body and f"setup_intent_data[metadata][workspace_id]={ws.pk}" in body
    setup = {"id": "seti_1", "object": "setup_intent", "status": "succeeded", "customer": "cus_new",
             "payment_method": {"id": "pm_saved", "object": "payment_method", "card": {"brand": "visa", "last4": "4242"}},
             "metadata": {"workspace": "acme", "workspace_id": str(ws.pk)}, "livemode": False}
    assert sp.deliver(client, sp.event("evt_seti", "setup_intent.succeeded", setup)).status_code == 200
    row = AutoRecharge.objects.get(pk=ws.pk)
    assert (row.stripe_payment_method_id, row.card_label) == ("pm_saved", "Visa ending 4242")
    ws.refresh_from_db()
    assert ws.stripe_customer_id == "cus_new"
    page = client.get(reverse("billing:buy", kwargs={"slug": "acme"})).content.decode()
    assert "Visa ending 4242" in page and "Save the card for auto-recharge" in page

    stripe_edge["answer"] = (json.dumps({"id": "cs_pack", "object": "checkout.session",
                                         "url": "https://checkout.stripe.com/c/pack"}), 200, {})
    client.post(reverse("billing:buy", kwargs={"slug": "acme"}), {"pack": "builder", "save_card": "1"})
    _, _, body, _ = stripe_edge["requests"][-1]
    assert "payment_intent_data[setup_future_usage]=off_session" in body and "customer=cus_new" in body


@pytest.mark.django_db(transaction=True)
def test_a_lost_enqueue_never_fails_the_run_and_the_sweep_pays_it_later(team, roomy_agent, monkeypatch):
    from buying import tasks

    ws = team.workspace
    _turn_on(ws, threshold=4990)

    def broker_down(*args, **kwargs):
        raise OSError("broker unreachable")

    monkeypatch.setattr(tasks.auto_recharge_pay, "delay", broker_down)
    _run(team, "r1")
    _run(team, "r2")  # crosses: the enqueue fails after commit, the run does not
    attempt = _attempts(ws).get()
    assert attempt.status == "pending" and attempt.tries == 0
    assert _wallet(ws).available == credits(5000) - 2 * credits(4)
    assert auto_recharge_retry_due(now=timezone.now()) == 0  # give the queue its chance first
    auto_recharge_retry_due(now=timezone.now() + timedelta(minutes=3))
    attempt.refresh_from_db()
    assert attempt.status == "succeeded" and _wallet(ws).purchased == credits(525)


@pytest.mark.django_db
def test_watching_the_threshold_adds_no_statement_to_authorize_or_complete(team, roomy_agent):
    from django.test.utils import CaptureQueriesContext

    def statements(action):
        with CaptureQueriesContext(connection) as context:
            action()
        return sum(1 for q in context.captured_queries if "SAVEPOINT" not in q["sql"])

    def counts(run_id):
        auth = statements(lambda: run_authorize(membership=team.membership(team.member), workflow="wf",
                                                agent="bulk", model="gpt-4o", public_id=run_id))
        done = statements(lambda: run_complete(workspace=team.workspace, public_id=run_id, status="succeeded",
                                               nodes=NODE))
        return auth, done

    counts("warm-up")
    off = counts("off")
    _turn_on(team.workspace, threshold=100)  # on, far above the threshold
    assert counts("on") == off


@pytest.mark.django_db(transaction=True)
def test_a_started_try_turned_off_meanwhile_is_credited_if_charged_and_never_charged_after(team, fake_stripe,
                                                                                          monkeypatch):
    from buying import stripe_client
    from buying.tasks import auto_recharge_pay

    ws = team.workspace
    _stripe_on(ws)
    monkeypatch.setattr(auto_recharge_pay, "delay", lambda *args: None)
    # Charged at Stripe, then the worker died; the owner turns auto-recharge off: the card was
    # charged, so the pack is credited.
    _die_once_while_recording(monkeypatch)
    auto_recharge_set(workspace=ws, enabled=True, threshold=credits(6000), pack_id="builder")
    with pytest.raises(WorkerKilled):
        auto_recharge_pay(f"auto-recharge:{ws.pk}:1")
    auto_recharge_set(workspace=ws, enabled=False)
    auto_recharge_retry_due(now=timezone.now() + timedelta(minutes=30))
    first = _attempts(ws).get()
    assert first.status == "succeeded" and fake_stripe.charges == ["pi_auto_1"]
    assert _wallet(ws).purchased == credits(525)
    # Created at Stripe but never confirmed when the worker died; turned off meanwhile: never charged.
    _spend_down_to(ws, credits(6100))
    auto_recharge_set(workspace=ws, enabled=True, threshold=credits(6000), pack_id="builder")
    _spend_down_to(ws, credits(5900))

    def killed(**kwargs):
        raise WorkerKilled()

    with monkeypatch.context() as patch:
        patch.setattr(stripe_client, "auto_recharge_intent_settle", killed, raising=False)
        patch.setattr(stripe_client, "auto_recharge_payment_intent", killed, raising=False)
        with pytest.raises(WorkerKilled):
            auto_recharge_pay(f"auto-recharge:{ws.pk}:2")
    auto_recharge_set(workspace=ws, enabled=False)
    auto_recharge_retry_due(now=timezone.now() + timedelta(minutes=30))
    second = _attempts(ws).last()
    assert second.status == "failed" and "turned off" in second.last_error
    assert fake_stripe.charges == ["pi_auto_1"]
    assert LedgerEntry.objects.filter(workspace=ws, kind="purchase").count() == 1  # one pack, the one paid
    assert Purchase.objects.get(pk=second.purchase_id).status == Purchase.PENDING  # never paid, never credited
    assert reconcile_workspace(workspace=ws) == []


@pytest.mark.django_db(transaction=True)
def test_a_tax_calculation_stripe_refuses_is_a_failed_try_not_an_attempt_left_in_flight(team, fake_stripe):
    """Found by the soak: Stripe refusing the tax calculation raised out of the task, and the attempt
    stayed pending (resumed every lease, failing alike) while the workspace's runs were refused."""
    ws = team.workspace
    _stripe_on(ws)
    fake_stripe.tax_error = "Stripe Tax has not been activated on your account."
    auto_recharge_set(workspace=ws, enabled=True, threshold=credits(5001), pack_id="builder")
    attempt = _attempts(ws).get()
    assert attempt.status == "retrying" and attempt.tries == 1
    assert "could not calculate the tax" in attempt.last_error and "not been activated" in attempt.last_error
    assert fake_stripe.creates() == [] and fake_stripe.charges == []
    assert _wallet(ws).purchased == 0
    # Once Stripe Tax answers, the retry pays it.
    fake_stripe.tax_error = ""
    from buying.auto_recharge import auto_recharge_attempt_pay

    assert auto_recharge_attempt_pay(key=attempt.key).status == "succeeded"
    assert fake_stripe.charges == ["pi_auto_1"] and _wallet(ws).purchased == credits(525)
