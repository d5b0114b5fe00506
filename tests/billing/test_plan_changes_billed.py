"""Plan changes billed as shown (issue 10, section 3): the Plans page's quote is what the checkout
charges, what the invoice says (lines, amounts, service period) and what the ledger grants, on the
test checkout and on the Stripe path (Stripe's proration, stubbed at its HTTP edge)."""

import json
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from html import unescape
from urllib.parse import parse_qs

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from billing.models import LedgerEntry, Plan, Wallet, Workspace, credits
from billing.money import nanos_display, price_display
from billing.services import user_get_or_create
from budgets.workspaces import workspace_create
from buying.prorations import plan_change_quote
from invoices.models import Invoice
from tests.billing import stripe_payloads as sp

PASSWORD = "pw-solo-12345"


@pytest.fixture
def solo(db):
    """A personal Free workspace whose period started 20 days and an hour ago: 10 or 11 days left."""
    owner = user_get_or_create(email="solo@example.com", password=PASSWORD, name="Sol Solo")
    workspace = workspace_create(slug="solo", name="Solo", owner=owner, plan_id="free", kind=Workspace.PERSONAL,
                                 now=timezone.now() - timedelta(days=20, hours=1))
    return workspace


def _fresh(ws):
    return Workspace.objects.select_related("plan", "wallet").get(pk=ws.pk)


def _page(client, slug):
    return unescape(client.get(reverse("billing:plans", kwargs={"slug": slug})).content.decode())


def _upgrade_grant(ws):
    return LedgerEntry.objects.get(workspace=ws, kind="grant", idempotency_key__startswith="upgrade:")


@pytest.mark.django_db
def test_the_test_checkout_charges_invoices_and_grants_what_the_plans_page_promised(client, solo):
    client.login(email="solo@example.com", password=PASSWORD)
    period = (solo.period_start, solo.period_end)
    quote = plan_change_quote(workspace=solo, plan=Plan.objects.get(pk="pro"), at=timezone.now())
    days, period_days = quote.days_left, quote.days_in_period
    assert 10 <= days <= 11 and 28 <= period_days <= 31
    price = Decimal(2900 * days / Decimal(period_days)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    promised_credits = credits(1000) * days // period_days - credits(50) * days // period_days
    expected = (f"Pay {price_display(int(price))} today for the {days} days left, get "
                f"{nanos_display(promised_credits)} credits now; from {solo.period_end:%b} "
                f"{solo.period_end.day}, {solo.period_end.year}, $29 a month with 1,000 credits.")
    assert expected in _page(client, "solo")

    response = client.post(reverse("billing:plans", kwargs={"slug": "solo"}), {"plan": "pro", "action": "upgrade",
                                                                              "expected_cents": str(price)})
    checkout = unescape(client.get(response.url).content.decode())
    assert expected in checkout and f"Pay ${price / 100:.2f} (test)" in checkout
    client.post(response.url, {"expected_cents": str(price)})
    client.post(response.url, {"expected_cents": str(price)})  # a double submit bills once

    ws = _fresh(solo)
    assert ws.plan_id == "pro" and (ws.period_start, ws.period_end) == period  # the period never moves
    invoice = Invoice.objects.get(workspace=ws)
    (line,) = invoice.lines.all()
    assert invoice.total_cents == line.amount_cents == price
    assert (invoice.period_start, invoice.period_end) == (solo.period_end - timedelta(days=days), solo.period_end)
    assert line.credits == _upgrade_grant(ws).amount == promised_credits
    assert f"({days} of {period_days} days)" in line.description
    assert ws.wallet.monthly == credits(50) + promised_credits


@pytest.mark.django_db
def test_an_upgrade_between_paid_plans_credits_the_unused_days_of_the_old_plan(client, solo):
    from buying.plans import plan_change, plan_subscribe_test

    plan_change(workspace=solo, plan_id="pro", actor=None)  # staff put it on Pro at once
    ws = _fresh(solo)
    now = timezone.now()
    quote = plan_change_quote(workspace=ws, plan=Plan.objects.get(pk="team"), at=now)
    plan_subscribe_test(workspace=ws, plan_id="team", expected_cents=quote.amount_cents, now=now)
    invoice = Invoice.objects.get(workspace=ws, description__contains="Team")
    lines = list(invoice.lines.order_by("position"))
    assert [line.amount_cents for line in lines] == [quote.charge_cents, -quote.credit_cents]
    assert invoice.total_cents == quote.amount_cents == quote.charge_cents - quote.credit_cents > 0
    grants = LedgerEntry.objects.filter(workspace=ws, idempotency_key__startswith="upgrade:").order_by("id")
    assert lines[0].credits == grants.last().amount == quote.credits_now
    # Never above the new plan's allowance for the period, however often the plan moved.
    total_granted = sum(e.amount for e in LedgerEntry.objects.filter(workspace=ws, kind="grant"))
    assert total_granted <= credits(5000)


@pytest.mark.django_db
def test_it_charges_nothing_when_the_quote_moved_since_the_page_was_read(client, solo):
    client.login(email="solo@example.com", password=PASSWORD)
    url = reverse("billing:plan_checkout", kwargs={"slug": "solo", "plan_id": "pro"})
    response = client.post(url, {"expected_cents": "1"}, follow=True)
    assert "The price changed since you looked" in unescape(response.content.decode())
    assert _fresh(solo).plan_id == "free" and not Invoice.objects.filter(workspace=solo).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("form", [{}, {"expected_cents": ""}, {"expected_cents": "²"}])
def test_a_checkout_post_without_a_confirmed_amount_charges_nothing(client, solo, form):
    """A hand-made POST that names no amount the person saw is not paid at whatever the quote is now."""
    client.login(email="solo@example.com", password=PASSWORD)
    url = reverse("billing:plan_checkout", kwargs={"slug": "solo", "plan_id": "pro"})
    response = client.post(url, form, follow=True)
    assert response.status_code == 200
    assert "Confirm the amount first" in unescape(response.content.decode())
    assert _fresh(solo).plan_id == "free" and not Invoice.objects.filter(workspace=solo).exists()


@pytest.mark.django_db
def test_cancelling_asks_for_confirmation_first(client, solo):
    from buying.plans import plan_change

    plan_change(workspace=solo, plan_id="pro", actor=None)
    client.login(email="solo@example.com", password=PASSWORD)
    page = _page(client, "solo")
    assert 'value="cancel"' not in page and "Cancel subscription at period end…" in page  # no one-click cancel
    confirm = unescape(client.get(reverse("billing:plans", kwargs={"slug": "solo"}), {"confirm": "free"}
                                  ).content.decode())
    assert "Cancel your Pro subscription?" in confirm
    assert f"until {solo.period_end:%b} {solo.period_end.day}, {solo.period_end.year}" in confirm
    assert 'value="cancel"' in confirm
    assert _fresh(solo).cancel_at_period_end is False  # reading the question changes nothing
    client.post(reverse("billing:plans", kwargs={"slug": "solo"}), {"plan": "free", "action": "cancel"})
    assert _fresh(solo).cancel_at_period_end is True


@pytest.mark.django_db
def test_a_personal_workspace_plan_cards_do_not_contradict_themselves(client, solo):
    client.login(email="solo@example.com", password=PASSWORD)
    page = _page(client, "solo")
    team_card = page[page.index('data-plan="team"'):page.index('data-plan="enterprise"')]
    assert "Up to 1 member (personal workspace)" in team_card
    assert "Unlimited members" not in team_card and "API access" in team_card


# --- The Stripe path: Stripe's proration, stubbed at Stripe's HTTP edge -----------------------------

@pytest.fixture
def stripe_edge(settings, monkeypatch):
    """Stripe's HTTP client answers from here; every request is recorded."""
    import stripe

    settings.STRIPE_SECRET_KEY = "sk_test_123"
    requests = []

    def fake_request(self, method, url, headers, post_data=None, **kwargs):
        body = post_data.decode() if isinstance(post_data, bytes) else (post_data or "")
        requests.append((method, url, parse_qs(body)))
        if "/v1/checkout/sessions" in url:
            return json.dumps({"id": "cs_test_sub", "object": "checkout.session",
                               "url": "https://checkout.stripe.com/c/sub"}), 200, {}
        subscription = {"id": "sub_1", "object": "subscription", "items": {"object": "list", "data": [
            {"id": "si_1", "object": "subscription_item", "price": {"id": "price_pro", "object": "price",
                                                                    "product": "prod_1"}}]}}
        return json.dumps(subscription), 200, {}

    monkeypatch.setattr(stripe.RequestsClient, "request", fake_request, raising=False)
    monkeypatch.setattr(stripe._http_client, "new_default_http_client",
                        lambda *a, **k: stripe.RequestsClient(), raising=False)
    call_command("stripe_webhook_endpoint", "--quiet")
    return requests


def _proration_invoice(ws, *, invoice_id, plan_id, billing_reason, lines):
    event = sp.invoice_paid(event_id=f"evt_{invoice_id}", invoice_id=invoice_id, workspace=ws, plan_id=plan_id,
                            subscription_id="sub_1", period_start=lines[0][2], period_end=lines[0][3],
                            amount=sum(line[1] for line in lines), billing_reason=billing_reason)
    template = event["data"]["object"]["lines"]["data"][0]
    event["data"]["object"]["lines"]["data"] = [
        {**template, "id": f"il_{n}", "description": description, "amount": amount,
         "period": {"start": start, "end": end},
         "parent": {"subscription_item_details": {"proration": True, "subscription": "sub_1",
                                                  "subscription_item": "si_1"}, "type": "subscription_item_details"}}
        for n, (description, amount, start, end) in enumerate(lines)]
    return event


@pytest.mark.django_db(transaction=True)
def test_a_stripe_upgrade_without_a_confirmed_amount_never_reaches_stripe(client, solo, stripe_edge):
    from buying.plans import plan_change

    plan_change(workspace=solo, plan_id="pro", actor=None)
    Workspace.objects.filter(pk=solo.pk).update(stripe_subscription_id="sub_1", stripe_customer_id="cus_test_9")
    client.login(email="solo@example.com", password=PASSWORD)
    response = client.post(reverse("billing:plans", kwargs={"slug": "solo"}), {"plan": "team", "action": "upgrade"},
                           follow=True)
    assert "Confirm the amount first" in unescape(response.content.decode())
    assert stripe_edge == [] and _fresh(solo).plan_id == "pro"


@pytest.mark.django_db(transaction=True)
def test_a_stripe_upgrade_is_prorated_by_stripe_from_the_quote_and_invoiced_with_its_lines(client, solo, stripe_edge):
    from buying.plans import plan_change

    plan_change(workspace=solo, plan_id="pro", actor=None)
    Workspace.objects.filter(pk=solo.pk).update(stripe_subscription_id="sub_1", stripe_customer_id="cus_test_9")
    client.login(email="solo@example.com", password=PASSWORD)
    ws = _fresh(solo)
    quote = plan_change_quote(workspace=ws, plan=Plan.objects.get(pk="team"), at=timezone.now())
    assert quote.sentence() in _page(client, "solo")
    client.post(reverse("billing:plans", kwargs={"slug": "solo"}),
                {"plan": "team", "action": "upgrade", "expected_cents": str(quote.amount_cents)})
    method, url, params = stripe_edge[-1]
    assert url.endswith("/v1/subscriptions/sub_1") and method == "post"
    assert params["proration_behavior"] == ["always_invoice"]
    assert params["proration_date"] == [str(int(quote.service_start.timestamp()))]
    ws = _fresh(solo)
    assert ws.plan_id == "team"
    grant = LedgerEntry.objects.filter(workspace=ws, idempotency_key__startswith="upgrade:").order_by("id").last()
    assert grant.amount == quote.credits_now

    start, end = int(quote.service_start.timestamp()), int(ws.period_end.timestamp())
    stripe_lines = [("Unused time on Pro plan after 19 Nov 2026", -quote.credit_cents, start, end),
                    ("Remaining time on Team plan after 19 Nov 2026", quote.charge_cents, start, end)]
    event = _proration_invoice(ws, invoice_id="in_upg", plan_id="team", billing_reason="subscription_update",
                               lines=stripe_lines)
    assert sp.deliver(client, event).status_code == 200
    invoice = Invoice.objects.get(stripe_invoice_id="in_upg")
    assert [(line.description, line.amount_cents, line.credits) for line in invoice.lines.order_by("position")] == [
        (stripe_lines[0][0], -quote.credit_cents, 0), (stripe_lines[1][0], quote.charge_cents, grant.amount)]
    assert invoice.total_cents == quote.amount_cents
    # Stripe counts in whole seconds; our periods may carry microseconds.
    assert (int(invoice.period_start.timestamp()), int(invoice.period_end.timestamp())) == (start, end)
    assert _fresh(solo).period_start == ws.period_start  # no new period


@pytest.mark.django_db(transaction=True)
def test_a_stripe_subscription_from_free_is_anchored_at_the_period_end(client, solo, stripe_edge):
    client.login(email="solo@example.com", password=PASSWORD)
    response = client.post(reverse("billing:plans", kwargs={"slug": "solo"}), {"plan": "pro", "action": "upgrade"})
    assert response.url == "https://checkout.stripe.com/c/sub"
    _, _, params = stripe_edge[-1]
    assert params["subscription_data[billing_cycle_anchor]"] == [str(int(solo.period_end.timestamp()))]
    assert params["subscription_data[proration_behavior]"] == ["create_prorations"]

    # Stripe's first invoice: the days until the anchor, prorated by Stripe.
    started = timezone.now().replace(microsecond=0)
    quote = plan_change_quote(workspace=solo, plan=Plan.objects.get(pk="pro"), at=started)
    lines = [("Remaining time on Pro plan", quote.amount_cents, int(started.timestamp()),
              int(solo.period_end.timestamp()))]
    event = _proration_invoice(solo, invoice_id="in_first", plan_id="pro", billing_reason="subscription_create",
                               lines=lines)
    assert sp.deliver(client, event).status_code == 200
    assert sp.deliver(client, event).status_code == 200  # a replay changes nothing
    ws = _fresh(solo)
    assert ws.plan_id == "pro" and ws.period_start == solo.period_start and ws.period_end == solo.period_end
    assert ws.wallet.monthly == credits(50) + quote.credits_now
    (line,) = Invoice.objects.get(stripe_invoice_id="in_first").lines.all()
    assert (line.amount_cents, line.credits) == (quote.amount_cents, _upgrade_grant(ws).amount)
    assert Wallet.objects.get(workspace=ws).monthly == sum(
        e.amount for e in LedgerEntry.objects.filter(workspace=ws, bucket="monthly"))


@pytest.mark.django_db(transaction=True)
def test_a_stripe_downgrade_synced_then_upgrades_again_bill_each_upgrade_once_without_a_500(client, solo, stripe_edge):
    """Pro -> Team -> (a downgrade made in Stripe, synced) Pro -> Team again, in one period: the
    second upgrade to Team once died on the duplicate grant key upgrade:<ws>:<period>:<credits>."""
    import time

    from buying.plans import plan_change

    plan_change(workspace=solo, plan_id="pro", actor=None)
    Workspace.objects.filter(pk=solo.pk).update(stripe_subscription_id="sub_1", stripe_customer_id="cus_test_9")
    client.login(email="solo@example.com", password=PASSWORD)
    quotes = []
    for n, created in ((1, int(time.time()) - 60), (2, int(time.time()))):
        ws = _fresh(solo)
        quote = plan_change_quote(workspace=ws, plan=Plan.objects.get(pk="team"), at=timezone.now())
        response = client.post(reverse("billing:plans", kwargs={"slug": "solo"}),
                               {"plan": "team", "action": "upgrade", "expected_cents": str(quote.amount_cents)})
        assert response.status_code == 302 and _fresh(solo).plan_id == "team"
        quotes.append(quote)
        start, end = int(quote.service_start.timestamp()), int(ws.period_end.timestamp())
        event = _proration_invoice(ws, invoice_id=f"in_upg{n}", plan_id="team", billing_reason="subscription_update",
                                   lines=[("Unused time on Pro plan", -quote.credit_cents, start, end),
                                          ("Remaining time on Team plan", quote.charge_cents, start, end)])
        assert sp.deliver(client, event).status_code == 200
        invoice = Invoice.objects.get(stripe_invoice_id=f"in_upg{n}")
        grants = LedgerEntry.objects.filter(workspace=ws, idempotency_key__startswith="upgrade:").order_by("id")
        assert invoice.total_cents == quote.amount_cents
        assert sum(line.credits for line in invoice.lines.all()) == grants.last().amount == quote.credits_now
        # The customer moves back to Pro in Stripe's portal: Stripe's own proration credits them.
        down = sp.subscription_event(event_id=f"evt_down{n}", type_="customer.subscription.updated", workspace=ws,
                                     plan_id="pro", subscription_id="sub_1", created=created)
        assert sp.deliver(client, down).status_code == 200
        assert _fresh(solo).plan_id == "pro"
    invoices = Invoice.objects.filter(workspace=solo, stripe_invoice_id__startswith="in_upg")
    assert sum(i.total_cents for i in invoices) == sum(q.amount_cents for q in quotes)
    total_granted = sum(e.amount for e in LedgerEntry.objects.filter(workspace=solo, kind="grant"))
    assert total_granted <= credits(5000)  # never above the highest allowance of the period


@pytest.mark.django_db(transaction=True)
def test_the_subscription_at_stripe_follows_a_cancel_then_an_upgrade_and_a_downgrade_then_keep(client, solo,
                                                                                               stripe_edge):
    """What Stripe will bill next follows what the Plans page says: an upgrade after a scheduled
    cancellation also resumes the subscription, and "Keep plan" after a scheduled downgrade puts the
    kept plan's price back on it."""
    from buying.plans import plan_change

    plan_change(workspace=solo, plan_id="pro", actor=None)
    Workspace.objects.filter(pk=solo.pk).update(stripe_subscription_id="sub_1", stripe_customer_id="cus_test_9")
    client.login(email="solo@example.com", password=PASSWORD)
    url = reverse("billing:plans", kwargs={"slug": "solo"})

    def updates(action):
        before = len(stripe_edge)
        action()
        return [params for method, call_url, params in stripe_edge[before:]
                if method == "post" and call_url.endswith("/v1/subscriptions/sub_1")]

    (cancel,) = updates(lambda: client.post(url, {"plan": "free", "action": "cancel"}))
    assert cancel["cancel_at_period_end"] == ["true"]
    quote = plan_change_quote(workspace=_fresh(solo), plan=Plan.objects.get(pk="team"), at=timezone.now())
    sent = updates(lambda: client.post(url, {"plan": "team", "action": "upgrade",
                                             "expected_cents": str(quote.amount_cents)}))
    assert {"cancel_at_period_end": ["false"]} in sent  # the subscription goes on
    (price,) = [p for p in sent if "metadata[plan]" in p]
    assert price["metadata[plan]"] == ["team"] and price["proration_behavior"] == ["always_invoice"]
    assert _fresh(solo).plan_id == "team" and _fresh(solo).cancel_at_period_end is False

    (down,) = updates(lambda: client.post(url, {"plan": "pro", "action": "downgrade"}))
    assert down["metadata[plan]"] == ["pro"] and down["proration_behavior"] == ["none"]
    (keep,) = updates(lambda: client.post(url, {"plan": "team", "action": "keep"}))
    assert keep["metadata[plan]"] == ["team"] and keep["proration_behavior"] == ["none"]
    ws = _fresh(solo)
    assert ws.plan_id == "team" and ws.scheduled_plan_id is None
