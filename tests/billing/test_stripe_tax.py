"""Tax on the Stripe path: the parameters we send (checked against stripe-python's own types),
and Stripe's object shapes replayed through the webhook (tests/billing/stripe_shapes.py: every
field stripe-python declares, with the values a scenario needs). Stripe Tax computes; we record."""

import copy
import json
import time

import pytest
import stripe
from django.core.management import call_command
from stripe.params import PaymentIntentCreateParams, SubscriptionUpdateParams
from stripe.params.checkout import SessionCreateParams
from stripe.params.tax import CalculationCreateParams

from billing.models import AuditEvent, LedgerEntry, Plan, Purchase, StripeEvent, Wallet, Workspace, credits
from buying import stripe_client
from buying.auto_recharge import auto_recharge_set
from buying.purchases import purchase_start
from invoices.models import Invoice
from operations.reconcile import reconcile_workspace
from tests.billing import stripe_payloads as sp
from tests.billing.stripe_params import assert_stripe_params, form_decode
from tests.billing.stripe_shapes import stripe_object
from tests.billing.test_auto_recharge import _stripe_on, fake_stripe  # noqa: F401  (a fixture)

CUSTOMER = "cus_TaxAcme0001"
VALID_DE_VAT = "DE136695976"
NOW = int(time.time())
ADDRESS_DE = {"city": "Berlin", "country": "DE", "line1": "Hauptstr. 1", "line2": None, "postal_code": "10115",
              "state": None}


def fixture(kind: str) -> dict:
    """A Stripe object of that kind, as a webhook delivers it (tests/billing/stripe_shapes.py)."""
    values = {
        "event": dict(id="evt_test_tax", created=NOW - 3600, pending_webhooks=1,
                      request={"id": None, "idempotency_key": None}),
        "checkout_session": dict(
            id="cs_test_tax_1", created=NOW - 600, expires_at=NOW + 85800, payment_intent="pi_test_tax_1",
            payment_method_types=["card"], ui_mode="hosted", customer_creation="always", locale=None,
            success_url="http://127.0.0.1:8000/w/acme/settings/billing/buy/done/",
            cancel_url="http://127.0.0.1:8000/w/acme/settings/billing/buy/",
            customer_details={**stripe_object("checkout_session")["customer_details"], "tax_exempt": "none",
                              "tax_ids": []}),
        "tax_rate": dict(id="txr_test_de_vat", active=True, country="DE", created=NOW - 86400, description="VAT Germany",
                         display_name="VAT", flat_amount=None, inclusive=False, jurisdiction="DE", metadata={},
                         percentage=19.0, tax_type="vat"),
        "tax_id": dict(id="txi_test_de_1", country="DE", created=NOW - 60, customer=CUSTOMER, type="eu_vat",
                       value="DE123456789", owner={"type": "customer", "customer": CUSTOMER, "account": None,
                                                   "application": None, "customer_account": None},
                       verification={"status": "pending", "verified_address": None, "verified_name": None}),
        "customer": dict(id=CUSTOMER, created=NOW - 86400, email="ap@acme.de", name="Acme GmbH", address=ADDRESS_DE,
                         tax_exempt="none", metadata={}, currency="usd", preferred_locales=[]),
    }[kind]
    return stripe_object(kind, **values)


def event_of(event_id: str, type_: str, obj: dict) -> dict:
    """Stripe's event fixture around `obj`."""
    event = fixture("event")
    event.update(id=event_id, type=type_, api_version=sp.API_VERSION, data={"object": obj})
    event["created"] = event["created"] + len(StripeEvent.objects.all())  # later events are newer
    return event


def session_with_tax(purchase: Purchase, *, breakdown: bool = True, total: int = 2380) -> dict:
    """Stripe's checkout.session fixture, completed and paid for `purchase` with 19% German VAT."""
    session = fixture("checkout_session")
    rate = fixture("tax_rate")  # VAT Germany, 19%
    address = ADDRESS_DE
    session.update(
        mode="payment", status="complete", payment_status="paid", currency="usd", customer=CUSTOMER,
        client_reference_id=str(purchase.pk), amount_subtotal=2000, amount_total=total, currency_conversion=None,
        shipping_cost=None, billing_address_collection="required",
        automatic_tax={"enabled": True, "liability": {"type": "self"}, "status": "complete", "provider": "stripe"},
        metadata={"workspace": purchase.workspace.slug, "workspace_id": str(purchase.workspace_id),
                  "pack": purchase.pack_id, "purchase": str(purchase.pk)},
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 380},
    )
    session["customer_details"].update(address=address, name="Acme GmbH", email="ap@acme.de")
    if breakdown:  # present when the session is retrieved with expand[]=total_details.breakdown
        session["total_details"]["breakdown"] = {"discounts": [], "taxes": [
            {"amount": 380, "rate": rate, "taxability_reason": "standard_rated", "taxable_amount": 2000}]}
    return session


class FakeCheckout:
    """Stripe's Checkout and Subscriptions endpoints behind the HTTP edge: records what we send."""

    def __init__(self):
        self.sent = []

    def __call__(self, method, url, headers, body):
        path = url.split("api.stripe.com")[-1].split("?")[0]
        self.sent.append((method, path, body))
        if method == "post" and path == "/v1/checkout/sessions":
            return json.dumps({"id": "cs_test_new", "object": "checkout.session",
                               "url": "https://checkout.stripe.com/c/pay/cs_test_new"}), 200, {}
        if path.startswith("/v1/subscriptions/"):
            return json.dumps({"id": "sub_1", "object": "subscription", "items": {"object": "list", "data": [
                {"id": "si_1", "object": "subscription_item", "price": {"id": "price_1", "product": "prod_1"}}]}}), 200, {}
        raise AssertionError(f"unexpected Stripe call {method} {url}")

    def bodies(self, path):
        return [form_decode(body) for method, p, body in self.sent if method == "post" and p == path]


@pytest.fixture
def fake_checkout(settings, monkeypatch):
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    fake = FakeCheckout()

    def fake_request(self, method, url, headers, post_data=None, **kwargs):
        return fake(method, url, headers, post_data.decode() if isinstance(post_data, bytes) else (post_data or ""))

    monkeypatch.setattr(stripe.RequestsClient, "request", fake_request, raising=False)
    monkeypatch.setattr(stripe._http_client, "new_default_http_client", lambda *a, **k: stripe.RequestsClient(),
                        raising=False)
    return fake


@pytest.fixture
def endpoint(db):
    call_command("stripe_webhook_endpoint", "--quiet")


@pytest.mark.django_db
def test_every_checkout_asks_stripe_tax_and_collects_address_and_tax_id(team, fake_checkout):
    ws = team.workspace
    purchase = purchase_start(workspace=ws, pack_id="builder", actor=team.owner, source=Purchase.STRIPE)
    stripe_client.checkout_session_for_purchase(purchase=purchase)
    stripe_client.checkout_session_for_plan(workspace=ws, plan=Plan.objects.get(pk="pro"), actor_email="o@acme.test")
    stripe_client.checkout_session_for_card_setup(workspace=ws, actor_email="o@acme.test")
    Workspace.objects.filter(pk=ws.pk).update(stripe_customer_id=CUSTOMER)
    ws.refresh_from_db()
    stripe_client.checkout_session_for_purchase(purchase=purchase_start(workspace=ws, pack_id="pro", source=Purchase.STRIPE))
    stripe_client.checkout_session_for_plan(workspace=ws, plan=Plan.objects.get(pk="team"), actor_email="o@acme.test")
    stripe_client.checkout_session_for_card_setup(workspace=ws, actor_email="o@acme.test")
    pack, plan, setup, pack_again, plan_again, setup_again = fake_checkout.bodies("/v1/checkout/sessions")
    for body in (pack, plan, setup, pack_again, plan_again, setup_again):
        assert_stripe_params(body, SessionCreateParams)
        assert body["tax_id_collection"] == {"enabled": "true"} and body["billing_address_collection"] == "required"
    for body in (pack, plan, pack_again, plan_again):
        assert body["automatic_tax"] == {"enabled": "true"}
        assert body["line_items"][0]["price_data"]["tax_behavior"] == "exclusive"
    assert "automatic_tax" not in setup  # a setup session pays nothing: Stripe computes no tax on it
    assert pack["customer_creation"] == "always" and "customer_update" not in pack  # the customer keeps the tax id
    for body in (pack_again, plan_again, setup_again):
        assert body["customer"] == CUSTOMER and body["customer_update"] == {"name": "auto", "address": "auto"}


@pytest.mark.django_db
def test_a_plan_change_keeps_automatic_tax_on_the_subscription(team, fake_checkout):
    stripe_client.subscription_price_change(subscription_id="sub_1", plan=Plan.objects.get(pk="team"), prorate=True)
    (update,) = fake_checkout.bodies("/v1/subscriptions/sub_1")
    assert_stripe_params(update, SubscriptionUpdateParams)
    assert update["automatic_tax"] == {"enabled": "true"}


@pytest.mark.django_db
@pytest.mark.parametrize("breakdown", [True, False], ids=["expanded-breakdown", "as-webhooks-send-it"])
def test_a_checkout_session_with_tax_is_invoiced_as_stripe_computed_it(client, endpoint, team, breakdown):
    purchase = purchase_start(workspace=team.workspace, pack_id="builder", actor=team.owner, source=Purchase.STRIPE)
    assert purchase.tax_cents == 0  # Stripe decides at checkout
    event = event_of("evt_cs_tax", "checkout.session.completed", session_with_tax(purchase, breakdown=breakdown))
    assert sp.deliver(client, event).status_code == 200
    purchase.refresh_from_db()
    assert purchase.status == Purchase.PAID and (purchase.amount_cents, purchase.tax_cents) == (2000, 380)
    invoice = Invoice.objects.get(purchase=purchase)
    assert (invoice.subtotal_cents, invoice.tax_cents, invoice.total_cents) == (2000, 380, 2380)
    (tax,) = invoice.taxes.all()
    assert (tax.label, tax.jurisdiction, tax.rate, tax.taxable_cents, tax.amount_cents) == ("VAT", "DE", 19, 2000, 380)
    assert Wallet.objects.get(workspace=team.workspace).purchased == credits(525)  # tax never changes the credits
    ws = Workspace.objects.get(pk=team.workspace.pk)
    # The customer Checkout created, and the address typed there, are the workspace's now.
    assert ws.stripe_customer_id == CUSTOMER
    assert (ws.billing_name, ws.billing_country.code, ws.billing_address) == ("Acme GmbH", "DE", "Hauptstr. 1\n10115 Berlin")
    assert AuditEvent.objects.get(action="billing_details.update").detail["source"] == "stripe"
    assert reconcile_workspace(workspace=ws) == []
    # A refund of the whole payment, as Stripe reports it (tax included), gives every cent back.
    refund = sp.charge_refunded(event_id="evt_refund", payment_intent=event["data"]["object"]["payment_intent"],
                                amount=2380, amount_refunded=2380)
    assert sp.deliver(client, refund).status_code == 200
    note = invoice.credit_notes.get()
    assert (note.subtotal_cents, note.tax_cents, note.total_cents) == (-2000, -380, -2380)
    assert Wallet.objects.get(workspace=team.workspace).purchased == 0
    assert reconcile_workspace(workspace=ws) == []


@pytest.mark.django_db
def test_a_session_whose_total_is_not_price_plus_tax_credits_nothing(client, endpoint, team):
    purchase = purchase_start(workspace=team.workspace, pack_id="builder", actor=team.owner, source=Purchase.STRIPE)
    event = event_of("evt_cs_bad", "checkout.session.completed", session_with_tax(purchase, total=2000))
    assert sp.deliver(client, event).status_code == 200
    assert StripeEvent.objects.get(event_id="evt_cs_bad").outcome == "refused: amount differs from the purchase"
    purchase.refresh_from_db()
    assert purchase.status == Purchase.PENDING and not LedgerEntry.objects.filter(purchase=purchase).exists()


@pytest.mark.django_db
def test_a_tax_id_created_in_checkout_flows_back_to_the_billing_details(client, endpoint, team):
    Workspace.objects.filter(pk=team.workspace.pk).update(stripe_customer_id=CUSTOMER)
    tax_id = fixture("tax_id")  # an eu_vat id of a German customer, as Checkout collects it
    assert sp.deliver(client, event_of("evt_txi_1", "customer.tax_id.created", tax_id)).status_code == 200
    # DE123456789 (the form of a German VAT id) fails its check digit: refused, said why, nothing changed.
    outcome = StripeEvent.objects.get(event_id="evt_txi_1").outcome
    assert outcome.startswith("tax id refused") and "check digit" in outcome
    assert Workspace.objects.get(pk=team.workspace.pk).tax_id == ""
    tax_id.update(id="txi_valid", value=VALID_DE_VAT)
    assert sp.deliver(client, event_of("evt_txi_2", "customer.tax_id.created", tax_id)).status_code == 200
    ws = Workspace.objects.get(pk=team.workspace.pk)
    assert (ws.tax_id, ws.billing_country.code) == (VALID_DE_VAT, "DE")
    audit = AuditEvent.objects.get(action="billing_details.update")
    assert audit.actor is None and audit.detail["source"] == "stripe" and audit.detail["tax_id"] == VALID_DE_VAT
    # Someone else's customer changes nothing here.
    tax_id.update(id="txi_other", customer="cus_other", owner={"type": "customer", "customer": "cus_other"})
    sp.deliver(client, event_of("evt_txi_3", "customer.tax_id.created", tax_id))
    assert StripeEvent.objects.get(event_id="evt_txi_3").outcome == "ignored: no workspace for this customer"


@pytest.mark.django_db
def test_a_customer_update_flows_back_and_an_older_one_is_ignored(client, endpoint, team):
    Workspace.objects.filter(pk=team.workspace.pk).update(stripe_customer_id=CUSTOMER)
    customer = fixture("customer")
    newer = copy.deepcopy(customer)
    newer.update(name="Acme SAS", address={"city": "Paris", "country": "FR", "line1": "1 rue de Rivoli", "line2": None,
                                           "postal_code": "75001", "state": None})
    older = copy.deepcopy(customer)
    older.update(name="Acme Old", address={**newer["address"], "line1": "old street"})
    newer_event = event_of("evt_cus_new", "customer.updated", newer)
    older_event = {**event_of("evt_cus_old", "customer.updated", older), "created": newer_event["created"] - 60}
    assert sp.deliver(client, newer_event).status_code == 200
    assert sp.deliver(client, older_event).status_code == 200
    ws = Workspace.objects.get(pk=team.workspace.pk)
    assert (ws.billing_name, ws.billing_country.code, ws.billing_address) == ("Acme SAS", "FR", "1 rue de Rivoli\n75001 Paris")
    assert "older" not in StripeEvent.objects.get(event_id="evt_cus_new").outcome
    assert StripeEvent.objects.get(event_id="evt_cus_old").outcome.startswith("ignored: a newer customer.updated")


@pytest.mark.django_db
def test_a_subscription_invoice_records_stripe_tax(client, endpoint, team):
    ws = team.workspace
    paid = sp.invoice_paid(event_id="evt_inv_tax", invoice_id="in_tax", workspace=ws, plan_id="team",
                           subscription_id="sub_tax", period_start=int(ws.period_end.timestamp()),
                           period_end=int(ws.period_end.timestamp()) + 30 * 86400, amount=11781)
    invoice = paid["data"]["object"]
    invoice.update(subtotal=9900, total=11781, customer_address={"country": "DE"}, total_taxes=[
        {"amount": 1881, "tax_behavior": "exclusive", "taxability_reason": "standard_rated", "taxable_amount": 9900,
         "type": "tax_rate_details", "tax_rate_details": {"tax_rate": "txr_test_de_vat"}}])
    invoice["lines"]["data"][0]["amount"] = 9900
    assert sp.deliver(client, paid).status_code == 200
    ours = Invoice.objects.get(stripe_invoice_id="in_tax")
    assert (ours.subtotal_cents, ours.tax_cents, ours.total_cents) == (9900, 1881, 11781)
    assert list(ours.taxes.values_list("label", "jurisdiction", "rate")) == [("VAT", "DE", 19)]
    assert reconcile_workspace(workspace=ws) == []


@pytest.mark.django_db(transaction=True)
def test_a_stripe_auto_recharge_charges_stripe_tax_once(team, fake_stripe):  # noqa: F811
    ws = team.workspace
    _stripe_on(ws)
    fake_stripe.tax_percent = 19
    auto_recharge_set(workspace=ws, enabled=True, threshold=credits(6000), pack_id="builder")
    calculations = [form_decode(b) for m, u, b, h in fake_stripe.requests if u.endswith("/v1/tax/calculations")]
    (calculation,), (create,) = calculations, [form_decode(body) for body, _ in fake_stripe.creates()]
    assert_stripe_params(calculation, CalculationCreateParams)
    assert_stripe_params(create, PaymentIntentCreateParams)
    assert calculation["customer"] == "cus_test_9" and calculation["line_items"][0]["amount"] == "2000"
    assert create["amount"] == "2380" and create["hooks"] == {"inputs": {"tax": {"calculation": "taxcalc_test_1"}}}
    purchase = Purchase.objects.get(workspace=ws)
    invoice = Invoice.objects.get(purchase=purchase)
    assert (invoice.subtotal_cents, invoice.tax_cents, invoice.total_cents) == (2000, 380, 2380)
    assert Wallet.objects.get(workspace=ws).purchased == credits(525)
    assert reconcile_workspace(workspace=ws) == []


def test_the_parameter_check_refuses_what_stripe_python_does_not_know():
    """The check above can fail: a misspelt nested key, a missing required one, a wrong literal."""
    good = {"mode": "payment", "automatic_tax": {"enabled": True}, "customer_update": {"address": "auto"}}
    assert_stripe_params(good, SessionCreateParams)
    for bad, problem in (({"automatic_tax": {"enable": True}}, "automatic_tax.enable: not a parameter"),
                         ({"automatic_tax": {}}, "automatic_tax.enabled: required"),
                         ({"tax_id_collection": {"enabled": "yes"}}, "is not a boolean"),
                         ({"line_items": [{"price_data": {"currency": "usd", "tax_behaviour": "exclusive"}}]},
                          "tax_behaviour: not a parameter")):
        with pytest.raises(AssertionError, match=problem):
            assert_stripe_params(bad, SessionCreateParams)
