"""The soak's pieces that can be checked in seconds (the soak itself is `make soak`, not part of the
suite): the Stripe double the service reaches through STRIPE_API_BASE, and the checks that call a
second charge of one intended payment a violation."""

import pytest
import stripe

from bench.soak_checks import charge_problems, purchase_problems
from bench.stripe_double import StripeDouble
from buying import stripe_client


@pytest.fixture
def double(settings):
    fake = StripeDouble().start()
    settings.STRIPE_SECRET_KEY = "sk_test_soak"
    settings.STRIPE_API_BASE = fake.url
    yield fake
    fake.stop()


def _create(key: str, amount: int = 500):
    params = {"amount": amount, "currency": "usd", "customer": "cus_1", "payment_method": "pm_1", "off_session": True,
              "confirm": True, "metadata": {"auto_recharge": "auto-recharge:1:1"}}
    return stripe_client._client().v1.payment_intents.create(params, {"idempotency_key": key})


def test_it_reaches_the_double_through_stripe_api_base_and_replays_an_idempotency_key(double):
    first = _create("auto-recharge:1:1:try:1")
    again = _create("auto-recharge:1:1:try:1")
    assert first["status"] == "succeeded" and again["id"] == first["id"]
    assert len(double.intents) == 1 and double.intents[first["id"]]["idempotency_key"] == "auto-recharge:1:1:try:1"
    with pytest.raises(stripe.IdempotencyError):
        _create("auto-recharge:1:1:try:1", amount=900)  # the same key with other parameters, as at Stripe
    found = stripe_client._client().v1.payment_intents.search({"query": "metadata['auto_recharge']:'auto-recharge:1:1'"})
    assert [intent["id"] for intent in found["data"]] == [first["id"]]


def test_it_rejects_an_armed_call_as_a_decline_and_remembers_the_declined_intent(double):
    double.reject_next(1)
    with pytest.raises(stripe.CardError) as declined:
        _create("auto-recharge:1:1:try:1")
    intent_id = declined.value.json_body["error"]["payment_intent"]["id"]
    assert double.intents[intent_id]["status"] == "requires_payment_method"
    assert [r["status"] for r in double.rejections] == [402]
    assert _create("auto-recharge:1:1:try:2")["status"] == "succeeded"  # only the armed call is rejected


@pytest.mark.django_db
def test_it_calls_two_succeeded_intents_for_one_auto_recharge_a_double_charge(double):
    _create("auto-recharge:1:1:try:1")
    _create("auto-recharge:1:1:try:2")  # a redelivered task's second try with a new key: a second charge
    problems = charge_problems(intents=list(double.intents.values()))
    assert "auto-recharge auto-recharge:1:1: the card was charged 2 times" in problems[0]


@pytest.mark.django_db
def test_it_calls_a_paid_checkout_session_without_its_purchase_a_violation(double):
    session = stripe_client._client().v1.checkout.sessions.create(
        {"mode": "payment", "metadata": {"purchase": "999999"}, "success_url": "http://127.0.0.1/ok",
         "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 500,
                                                        "product_data": {"name": "Starter credit pack"}}}]},
        {"idempotency_key": "purchase-999999"})
    double.checkout_pay(session["id"])
    double.checkout_pay(session["id"])  # paying twice is one payment
    assert sum(i.get("checkout_session") == session["id"] for i in double.intents.values()) == 1
    assert purchase_problems(sessions=double.sessions, paid={}) == [f"{session['id']}: its purchase 999999 does not exist"]


def test_it_charges_a_payment_intent_created_unconfirmed_only_when_confirmed_and_only_once(double):
    """The auto-recharge creates each try's PaymentIntent unconfirmed and confirms it in a second call
    (buying.stripe_client): the double charges at the confirm, once, as Stripe does."""
    client = stripe_client._client()
    params = {"amount": 500, "currency": "usd", "customer": "cus_1", "payment_method": "pm_1",
              "metadata": {"auto_recharge": "auto-recharge:1:2"}}
    created = client.v1.payment_intents.create(params, {"idempotency_key": "auto-recharge:1:2:try:1"})
    assert created["status"] == "requires_confirmation" and double.accepted == []
    confirmed = client.v1.payment_intents.confirm(created["id"], {"off_session": True})
    assert confirmed["status"] == "succeeded" and len(double.accepted) == 1
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.payment_intents.confirm(created["id"], {"off_session": True})
    assert again.value.code == "payment_intent_unexpected_state" and len(double.accepted) == 1


@pytest.mark.django_db
def test_it_answers_the_tax_calculation_an_auto_recharge_asks_first(double, team):
    """The soak found every auto-recharge stuck: the double did not play Stripe Tax's calculation,
    which an auto-recharge makes before its PaymentIntent."""
    from buying.purchases import purchase_start
    from invoices.tax import stripe_calculation_tax

    purchase = purchase_start(workspace=team.workspace, pack_id="builder", source="stripe")
    calculation = stripe_client.auto_recharge_tax_calculate(purchase=purchase, customer_id="cus_1")
    assert calculation["object"] == "tax.calculation" and calculation["amount_total"] == purchase.amount_cents
    assert stripe_calculation_tax(calculation).tax_cents == 0
