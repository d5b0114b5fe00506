"""Stripe's deliveries through dj-stripe's endpoint: signed like Stripe signs them, verified by
dj-stripe, handled from the payload (sockets are blocked: nothing may call Stripe)."""

import json
import time
from datetime import datetime, timezone

import pytest
from django.core.management import call_command

from billing.models import LedgerEntry, Purchase, StripeEvent, Workspace, credits
from buying.purchases import purchase_start
from tests.billing import stripe_payloads as sp


@pytest.fixture
def endpoint(db):
    call_command("stripe_webhook_endpoint", "--quiet")


@pytest.fixture
def purchase(team):
    return purchase_start(workspace=team.workspace, pack_id="builder", actor=team.owner, source=Purchase.STRIPE)


def purchased(workspace):
    workspace.wallet.refresh_from_db()
    return workspace.wallet.purchased


@pytest.mark.django_db
def test_it_fulfils_a_paid_checkout_session_once(client, endpoint, team, purchase):
    response = sp.deliver(client, sp.checkout_session_completed(event_id="evt_1", purchase=purchase))
    assert response.status_code == 200
    assert purchased(team.workspace) == credits(525)
    purchase.refresh_from_db()
    assert purchase.status == "paid" and purchase.stripe_checkout_session_id == "cs_test_a1B2c3"
    assert purchase.stripe_payment_intent_id == "pi_test_a1B2c3"
    assert StripeEvent.objects.get().outcome == f"purchase {purchase.pk} fulfilled"


@pytest.mark.django_db
def test_a_replayed_event_changes_nothing(client, endpoint, team, purchase):
    event = sp.checkout_session_completed(event_id="evt_1", purchase=purchase)
    for _ in range(3):
        assert sp.deliver(client, event).status_code == 200
    assert purchased(team.workspace) == credits(525)
    assert LedgerEntry.objects.filter(purchase=purchase).count() == 2
    assert StripeEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_second_event_for_the_same_session_changes_nothing(client, endpoint, team, purchase):
    # Stripe can send the same object in two events (e.g. completed, then async_payment_succeeded).
    sp.deliver(client, sp.checkout_session_completed(event_id="evt_1", purchase=purchase))
    second = sp.checkout_session_completed(event_id="evt_2", purchase=purchase)
    second["type"] = "checkout.session.async_payment_succeeded"
    assert sp.deliver(client, second).status_code == 200
    assert purchased(team.workspace) == credits(525)


@pytest.mark.django_db
def test_an_unpaid_session_credits_nothing_until_paid(client, endpoint, team, purchase):
    sp.deliver(client, sp.checkout_session_completed(event_id="evt_1", purchase=purchase, payment_status="unpaid"))
    assert purchased(team.workspace) == 0
    later = sp.checkout_session_completed(event_id="evt_2", purchase=purchase)
    later["type"] = "checkout.session.async_payment_succeeded"
    sp.deliver(client, later)
    assert purchased(team.workspace) == credits(525)


@pytest.mark.django_db
def test_it_refuses_a_tampered_body(client, endpoint, team, purchase):
    event = sp.checkout_session_completed(event_id="evt_1", purchase=purchase)
    signed_for = json.dumps(event)
    tampered = signed_for.replace('"pack": "builder"', '"pack": "team"')
    response = client.post(sp.webhook_url(), data=tampered, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=sp.sign(signed_for))
    assert response.status_code == 400
    assert purchased(team.workspace) == 0 and StripeEvent.objects.count() == 0


@pytest.mark.django_db
def test_it_refuses_another_secret(client, endpoint, team, purchase):
    body = json.dumps(sp.checkout_session_completed(event_id="evt_1", purchase=purchase))
    response = client.post(sp.webhook_url(), data=body, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=sp.sign(body, secret="whsec_attacker"))
    assert response.status_code == 400
    assert purchased(team.workspace) == 0


@pytest.mark.django_db
def test_it_refuses_a_stale_timestamp(client, endpoint, team, purchase, settings):
    body = json.dumps(sp.checkout_session_completed(event_id="evt_1", purchase=purchase))
    stale = int(time.time()) - settings.STRIPE_WEBHOOK_TOLERANCE - 5
    response = client.post(sp.webhook_url(), data=body, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=sp.sign(body, timestamp=stale))
    assert response.status_code == 400
    assert purchased(team.workspace) == 0 and StripeEvent.objects.count() == 0


@pytest.mark.django_db
def test_it_refuses_a_session_whose_amount_differs(client, endpoint, team, purchase):
    sp.deliver(client, sp.checkout_session_completed(event_id="evt_1", purchase=purchase, amount_total=1))
    assert purchased(team.workspace) == 0
    purchase.refresh_from_db()
    assert purchase.status == "pending"


@pytest.mark.django_db
def test_a_refund_takes_back_the_refunded_share_once(client, endpoint, team, purchase):
    sp.deliver(client, sp.checkout_session_completed(event_id="evt_1", purchase=purchase))
    half = sp.charge_refunded(event_id="evt_r1", payment_intent="pi_test_a1B2c3", amount=2000, amount_refunded=1000)
    sp.deliver(client, half)
    sp.deliver(client, half)
    assert purchased(team.workspace) == credits("262.5")
    full = sp.charge_refunded(event_id="evt_r2", payment_intent="pi_test_a1B2c3", amount=2000, amount_refunded=2000)
    sp.deliver(client, full)
    assert purchased(team.workspace) == 0
    purchase.refresh_from_db()
    assert purchase.status == "refunded" and purchase.refunded_cents == 2000


@pytest.mark.django_db
def test_refunds_out_of_order_take_back_the_total_once(client, endpoint, team, purchase):
    sp.deliver(client, sp.checkout_session_completed(event_id="evt_1", purchase=purchase))
    sp.deliver(client, sp.charge_refunded(event_id="evt_r2", payment_intent="pi_test_a1B2c3", amount=2000, amount_refunded=2000))
    sp.deliver(client, sp.charge_refunded(event_id="evt_r1", payment_intent="pi_test_a1B2c3", amount=2000, amount_refunded=1000))
    assert purchased(team.workspace) == 0
    assert LedgerEntry.objects.filter(kind="refund").count() == 1


@pytest.mark.django_db
def test_a_refund_of_spent_credits_takes_the_bucket_below_zero(client, endpoint, team, purchase):
    from billing.ledger import credits_adjust

    sp.deliver(client, sp.checkout_session_completed(event_id="evt_1", purchase=purchase))
    credits_adjust(workspace=team.workspace, amount=-credits(500), reason="spent (stand-in for runs)")
    sp.deliver(client, sp.charge_refunded(event_id="evt_r", payment_intent="pi_test_a1B2c3", amount=2000, amount_refunded=2000))
    assert purchased(team.workspace) == -credits(500)


@pytest.mark.django_db
def test_a_refund_before_its_payment_is_retried_later(endpoint, team, purchase):
    from django.test import Client

    client = Client(raise_request_exception=False)
    early = sp.charge_refunded(event_id="evt_r", payment_intent="pi_test_a1B2c3", amount=2000, amount_refunded=2000)
    assert sp.deliver(client, early).status_code == 500  # Stripe delivers it again later
    assert StripeEvent.objects.count() == 0
    sp.deliver(client, sp.checkout_session_completed(event_id="evt_1", purchase=purchase))
    assert sp.deliver(client, early).status_code == 200
    assert purchased(team.workspace) == 0


def _ts(*args):
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())


@pytest.mark.django_db
def test_a_subscription_grants_its_period_once_whatever_the_order(client, endpoint):
    from billing.services import user_get_or_create
    from budgets.workspaces import workspace_create

    owner = user_get_or_create(email="solo@example.com", password="pw-solo-123")
    ws = workspace_create(slug="solo", name="Solo", owner=owner, plan_id="free",
                          now=datetime(2026, 1, 10, tzinfo=timezone.utc))
    start, end = _ts(2026, 1, 20), _ts(2026, 2, 20)
    paid = sp.invoice_paid(event_id="evt_inv", invoice_id="in_1", workspace=ws, plan_id="pro", subscription_id="sub_1",
                           period_start=start, period_end=end, amount=2900, billing_reason="subscription_create")
    # invoice.paid before checkout.session.completed: the subscription's metadata names the workspace
    assert sp.deliver(client, paid).status_code == 200
    sp.deliver(client, sp.checkout_session_subscription(event_id="evt_cs", workspace=ws, plan_id="pro",
                                                        subscription_id="sub_1"))
    sp.deliver(client, paid)
    ws.refresh_from_db()
    assert ws.plan_id == "pro" and ws.stripe_subscription_id == "sub_1" and ws.stripe_customer_id == "cus_test_9"
    assert ws.period_start == datetime(2026, 1, 20, tzinfo=timezone.utc)
    assert ws.period_end == datetime(2026, 2, 20, tzinfo=timezone.utc)
    ws.wallet.refresh_from_db()
    assert ws.wallet.monthly == credits(1000)  # Free's remainder expired, Pro granted once
    assert LedgerEntry.objects.filter(workspace=ws, kind="grant").count() == 2

    renewal = sp.invoice_paid(event_id="evt_inv2", invoice_id="in_2", workspace=ws, plan_id="pro",
                              subscription_id="sub_1", period_start=end, period_end=_ts(2026, 3, 20), amount=2900)
    sp.deliver(client, renewal)
    # an old period's invoice arriving late grants nothing
    late = sp.invoice_paid(event_id="evt_inv_old", invoice_id="in_1b", workspace=ws, plan_id="pro",
                           subscription_id="sub_1", period_start=start, period_end=end, amount=2900)
    sp.deliver(client, late)
    ws.refresh_from_db()
    assert ws.period_start == datetime(2026, 2, 20, tzinfo=timezone.utc)
    assert LedgerEntry.objects.filter(workspace=ws, kind="grant").count() == 3


@pytest.mark.django_db
def test_subscription_updates_change_the_plan_and_ignore_older_ones(client, endpoint, team):
    ws = team.workspace
    Workspace.objects.filter(pk=ws.pk).update(stripe_subscription_id="sub_9")
    now = int(time.time())
    sp.deliver(client, sp.subscription_event(event_id="evt_new", type_="customer.subscription.updated", workspace=ws,
                                             plan_id="pro", subscription_id="sub_9", created=now))
    sp.deliver(client, sp.subscription_event(event_id="evt_old", type_="customer.subscription.updated", workspace=ws,
                                             plan_id="team", subscription_id="sub_9", created=now - 100))
    ws.refresh_from_db()
    assert ws.plan_id == "pro" and ws.requests_per_minute == 60 and ws.concurrent_runs == 5


@pytest.mark.django_db
def test_a_deleted_subscription_returns_to_free_and_a_late_update_changes_nothing(client, endpoint):
    from tests.factories import make_workspace

    ws = make_workspace(slug="solo2", plan="pro").workspace
    ws.memberships.exclude(role="owner").delete()
    Workspace.objects.filter(pk=ws.pk).update(stripe_subscription_id="sub_5")
    now = int(time.time())
    sp.deliver(client, sp.subscription_event(event_id="evt_del", type_="customer.subscription.deleted", workspace=ws,
                                             plan_id="pro", subscription_id="sub_5", status="canceled", created=now))
    sp.deliver(client, sp.subscription_event(event_id="evt_upd", type_="customer.subscription.updated", workspace=ws,
                                             plan_id="team", subscription_id="sub_5", created=now - 10))
    ws.refresh_from_db()
    assert ws.plan_id == "free" and ws.stripe_subscription_id == ""


@pytest.mark.django_db
def test_the_endpoint_command_is_a_no_op_without_settings(settings, capsys):
    from djstripe.models import WebhookEndpoint

    settings.STRIPE_WEBHOOK_SECRET = ""
    call_command("stripe_webhook_endpoint")
    assert "not set" in capsys.readouterr().out
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.django_db
def test_the_endpoint_command_enables_every_event_a_handler_acts_on():
    """Auto-recharge relies on payment_intent.* and setup_intent.succeeded; the endpoint left them out
    (found by the soak, issue 25), so an operator copying its list got no auto-recharge webhooks."""
    from djstripe.models import WebhookEndpoint

    call_command("stripe_webhook_endpoint", "--quiet")
    events = set(WebhookEndpoint.objects.get().enabled_events)
    assert {"payment_intent.succeeded", "payment_intent.payment_failed", "setup_intent.succeeded",
            "checkout.session.completed", "invoice.paid", "charge.refunded"} <= events


@pytest.mark.django_db
@pytest.mark.parametrize("reference", ["²", "١٢", "abc"])
def test_a_purchase_reference_that_is_not_a_plain_number_is_ignored_not_a_500(client, endpoint, team, purchase,
                                                                               reference):
    """str.isdigit() says yes to "²" and "١٢", which the purchase lookup then cannot read (a 500)."""
    event = sp.checkout_session_completed(event_id="evt_odd_ref", purchase=purchase)
    event["data"]["object"]["metadata"]["purchase"] = reference
    event["data"]["object"]["client_reference_id"] = reference
    response = sp.deliver(client, event)
    assert response.status_code == 200
    assert StripeEvent.objects.get().outcome == f"ignored: no purchase {reference!r}"
    assert purchased(team.workspace) == 0


@pytest.mark.django_db
def test_an_expired_checkout_shows_as_cancelled_and_a_late_payment_still_credits(client, endpoint, team, purchase):
    assert sp.deliver(client, sp.checkout_session_expired(event_id="evt_1", purchase=purchase)).status_code == 200
    purchase.refresh_from_db()
    assert purchase.status == "cancelled" and purchased(team.workspace) == 0
    assert StripeEvent.objects.get().outcome == f"purchase {purchase.pk} cancelled"
    # Money that reaches us for a cancelled checkout is never ignored.
    sp.deliver(client, sp.checkout_session_completed(event_id="evt_2", purchase=purchase))
    purchase.refresh_from_db()
    assert purchase.status == "paid" and purchased(team.workspace) == credits(525)
    # An expiry arriving after the payment changes nothing.
    sp.deliver(client, sp.checkout_session_expired(event_id="evt_3", purchase=purchase))
    purchase.refresh_from_db()
    assert purchase.status == "paid" and purchased(team.workspace) == credits(525)
