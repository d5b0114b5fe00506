"""The only module that calls Stripe's API. Everything here runs outside database transactions (a
view calls it after its purchase row is committed) and tests stub these functions or Stripe's HTTP
client, never the network.

Without STRIPE_SECRET_KEY payments are off, unless BILLING_TEST_CHECKOUT=true turns on the built-in
test checkout (`test_checkout_enabled()`)."""

from datetime import timedelta

import stripe
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from billing.models import Plan, Purchase, Workspace
from billing.money import cents_to_stripe_minor_units


def stripe_enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def test_checkout_enabled() -> bool:
    """An explicit switch: without keys the checkout must fail closed, never pay for free."""
    return settings.BILLING_TEST_CHECKOUT and not stripe_enabled()


def payments_configured() -> bool:
    return stripe_enabled() or test_checkout_enabled()


def _client() -> stripe.StripeClient:
    base = {"base_addresses": {"api": settings.STRIPE_API_BASE}} if settings.STRIPE_API_BASE else {}
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, max_network_retries=2, **base)


def _absolute(path: str) -> str:
    return settings.SITE_URL + path


def _tax_params(workspace: Workspace, *, mode: str) -> dict:
    """Stripe Tax on a Checkout Session (docs/tax.md): the tax for the buyer's billing address,
    which Checkout requires, and the buyer's VAT/GST id, which Checkout collects; an existing
    customer's name and address are updated from what they type, so they flow back to the
    workspace (customer.updated). A setup session charges nothing, so it computes no tax."""
    params = {"tax_id_collection": {"enabled": True}, "billing_address_collection": "required"}
    if mode != "setup":
        params["automatic_tax"] = {"enabled": True}
    if workspace.stripe_customer_id:
        params["customer_update"] = {"name": "auto", "address": "auto"}
    return params


def checkout_session_for_purchase(*, purchase: Purchase, save_card: bool = False) -> stripe.checkout.Session:
    """A Checkout Session (mode=payment) for a pending purchase. The metadata names the workspace,
    pack and purchase, so the webhook can fulfil it without asking Stripe anything. `save_card`
    keeps the card for off-session auto-recharges (setup_future_usage=off_session; recorded from
    payment_intent.succeeded)."""
    workspace = purchase.workspace
    metadata = {"workspace": workspace.slug, "workspace_id": str(workspace.pk), "pack": purchase.pack_id,
                "purchase": str(purchase.pk)}
    if purchase.pack.stripe_price_id:
        line_item = {"price": purchase.pack.stripe_price_id, "quantity": 1}
    else:
        line_item = {"quantity": 1, "price_data": {
            "currency": purchase.currency,
            "unit_amount": cents_to_stripe_minor_units(purchase.amount_cents, purchase.currency),
            "product_data": {"name": f"{purchase.pack.name} credit pack"},
            "tax_behavior": "exclusive",  # the pack's price; Stripe Tax adds the tax on top
        }}
    done = reverse("billing:purchase_done", kwargs={"slug": workspace.slug, "purchase_id": purchase.pk})
    params = {
        "mode": "payment",
        "line_items": [line_item],
        "client_reference_id": str(purchase.pk),
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": _absolute(done) + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": _absolute(reverse("billing:checkout_cancelled",
                                        kwargs={"slug": workspace.slug, "purchase_id": purchase.pk})),
        **_tax_params(workspace, mode="payment"),
    }
    if save_card:
        params["payment_intent_data"]["setup_future_usage"] = "off_session"
    if workspace.stripe_customer_id:
        params["customer"] = workspace.stripe_customer_id
    else:
        # A customer keeps the address and tax id Checkout collects (and a saved card).
        params["customer_creation"] = "always"
    return _client().v1.checkout.sessions.create(params, {"idempotency_key": f"purchase-{purchase.pk}"})


def checkout_session_for_plan(*, workspace: Workspace, plan: Plan, actor_email: str) -> stripe.checkout.Session:
    """A Checkout Session (mode=subscription). The subscription carries the workspace and plan in its
    metadata, so invoice.paid can be matched even if it arrives before checkout.session.completed."""
    metadata = {"workspace": workspace.slug, "workspace_id": str(workspace.pk), "plan": plan.pk}
    if plan.stripe_price_id:
        line_item = {"price": plan.stripe_price_id, "quantity": 1}
    else:
        line_item = {"quantity": 1, "price_data": {
            "currency": "usd", "unit_amount": cents_to_stripe_minor_units(plan.price_cents or 0),
            "recurring": {"interval": "month"}, "product_data": {"name": f"{plan.name} plan"},
            "tax_behavior": "exclusive",
        }}
    plans_url = _absolute(reverse("billing:plans", kwargs={"slug": workspace.slug}))
    subscription_data = {"metadata": metadata}
    # The period never moves on a plan change (buying/prorations.py): the subscription is anchored at
    # our period end and Stripe prorates the days until then; full months follow from the anchor.
    # Stripe needs the anchor in the future; an hour's margin covers the time spent on Checkout.
    if workspace.period_end - timezone.now() > timedelta(hours=1):
        subscription_data["billing_cycle_anchor"] = int(workspace.period_end.timestamp())
        subscription_data["proration_behavior"] = "create_prorations"
    params = {
        "mode": "subscription",
        "line_items": [line_item],
        "client_reference_id": f"workspace:{workspace.pk}",
        "metadata": metadata,
        "subscription_data": subscription_data,
        "success_url": plans_url + "?subscribed=1",
        "cancel_url": plans_url,
        # The subscription this creates keeps automatic tax: its renewals and prorations are taxed too.
        **_tax_params(workspace, mode="subscription"),
    }
    if workspace.stripe_customer_id:
        params["customer"] = workspace.stripe_customer_id
    else:
        params["customer_email"] = actor_email
    return _client().v1.checkout.sessions.create(params)


def subscription_price_change(*, subscription_id: str, plan: Plan, prorate: bool, proration_date=None) -> None:
    """Move a Stripe subscription to another plan's price: an upgrade is invoiced at once (prorated
    from `proration_date`, the start of the days our quote billed, so Stripe's fraction is ours), a
    downgrade takes effect from the next invoice."""
    client = _client()
    subscription = client.v1.subscriptions.retrieve(subscription_id)
    item_id = subscription["items"]["data"][0]["id"]
    item = {"id": item_id}
    if plan.stripe_price_id:
        item["price"] = plan.stripe_price_id
    else:
        item["price_data"] = {"currency": "usd", "unit_amount": plan.price_cents or 0, "tax_behavior": "exclusive",
                              "recurring": {"interval": "month"}, "product": subscription["items"]["data"][0]["price"]["product"]}
    # automatic_tax again: a subscription made before tax was switched on gets it from its next invoice.
    params = {"items": [item], "metadata": {"plan": plan.pk}, "automatic_tax": {"enabled": True},
              "proration_behavior": "always_invoice" if prorate else "none"}
    if prorate and proration_date is not None:
        params["proration_date"] = int(proration_date.timestamp())
    client.v1.subscriptions.update(subscription_id, params)


def subscription_cancel_at_period_end(*, subscription_id: str, cancel: bool = True) -> None:
    _client().v1.subscriptions.update(subscription_id, {"cancel_at_period_end": cancel})


def auto_recharge_idempotency_key(*, attempt_key: str, try_number: int) -> str:
    """One key per intended payment: an attempt's try. A try is only ever followed by a new one after
    its decline was recorded, so a redelivered task sends the same key, never a new one."""
    return f"{attempt_key}:try:{try_number}"


def auto_recharge_intent_create(*, purchase: Purchase, attempt_key: str, try_number: int, customer_id: str,
                                payment_method_id: str) -> str:
    """The PaymentIntent of one try of an auto-recharge, created unconfirmed (nothing is charged
    yet) and returned by id, so the caller records the id before the call that charges. The
    idempotency key names the attempt and the try: sent again (a redelivered task) it answers the
    same PaymentIntent. The metadata lets the webhook find the attempt and the try."""
    metadata = {"workspace": purchase.workspace.slug, "workspace_id": str(purchase.workspace_id),
                "pack": purchase.pack_id, "purchase": str(purchase.pk), "auto_recharge": attempt_key, "try": str(try_number)}
    params = {
        "amount": cents_to_stripe_minor_units(purchase.total_cents, purchase.currency), "currency": purchase.currency,
        "customer": customer_id, "payment_method": payment_method_id, "payment_method_types": ["card"],
        "description": f"Auto-recharge: {purchase.pack.name} credit pack", "metadata": metadata,
    }
    calculation = (purchase.tax_detail or {}).get("calculation")
    if calculation:  # the tax is Stripe Tax's calculation: the Tax transaction is recorded from the payment
        params["hooks"] = {"inputs": {"tax": {"calculation": calculation}}}
    key = auto_recharge_idempotency_key(attempt_key=attempt_key, try_number=try_number)
    return _client().v1.payment_intents.create(params, {"idempotency_key": key})["id"]


def auto_recharge_tax_calculate(*, purchase: Purchase, customer_id: str) -> dict:
    """Stripe Tax's calculation for an auto-recharge's pack (no Checkout: the customer's saved
    address and tax ids decide), as the Tax Calculation object. Charges nothing."""
    params = {"currency": purchase.currency, "customer": customer_id, "line_items": [{
        "amount": cents_to_stripe_minor_units(purchase.amount_cents, purchase.currency), "quantity": 1,
        "reference": f"purchase-{purchase.pk}", "tax_behavior": "exclusive"}]}
    return _client().v1.tax.calculations.create(params)


def auto_recharge_intent_settle(*, intent_id: str, attempt_key: str, try_number: int, look_up_first: bool,
                                may_confirm: bool = True) -> dict | None:
    """Charge (confirm off-session) the PaymentIntent of one try, once, and return its outcome as
    buying.auto_recharge.PaymentOutcome's fields. `look_up_first` (a try resumed after its worker
    died or its message was lost): read the PaymentIntent first and confirm only one that was never
    confirmed (and only if `may_confirm`; None when it was not confirmed). A PaymentIntent succeeds
    at most once, so however often this runs for one try, the card is charged at most once."""
    client = _client()
    if look_up_first or not may_confirm:
        intent = client.v1.payment_intents.retrieve(intent_id)
        if intent["status"] != "requires_confirmation":
            return _intent_outcome(intent, try_number)
        if not may_confirm:
            return None
    try:
        key = auto_recharge_idempotency_key(attempt_key=attempt_key, try_number=try_number)
        intent = client.v1.payment_intents.confirm(intent_id, {"off_session": True}, {"idempotency_key": f"{key}:confirm"})
    except stripe.CardError as error:
        # A decline, or authentication_required (3-D Secure) for an off-session payment.
        body = error.json_body.get("error", {}) if isinstance(error.json_body, dict) else {}
        status = "requires_action" if body.get("code") == "authentication_required" or \
            body.get("decline_code") == "authentication_required" else "declined"
        return {"status": status, "payment_intent_id": intent_id, "error": str(body.get("message") or error)[:300],
                "try_number": try_number}
    except stripe.InvalidRequestError as error:
        if error.code != "payment_intent_unexpected_state":
            raise
        intent = client.v1.payment_intents.retrieve(intent_id)  # confirmed meanwhile: its state is the answer
    return _intent_outcome(intent, try_number)


def _intent_outcome(intent, try_number: int) -> dict:
    status = intent["status"]
    if status == "succeeded":
        return {"status": "succeeded", "payment_intent_id": intent["id"], "try_number": try_number}
    if status == "requires_action":
        next_action = intent.get("next_action") or {}
        url = ((next_action.get("redirect_to_url") or {}).get("url")) or ""
        return {"status": "requires_action", "payment_intent_id": intent["id"], "action_url": url,
                "error": "The bank asks the cardholder to authenticate.", "try_number": try_number}
    if status in ("processing", "requires_capture"):
        # Not answered yet: the webhook reports it, or the sweep looks again. Never a new try.
        return {"status": "processing", "payment_intent_id": intent["id"], "try_number": try_number}
    error = (intent.get("last_payment_error") or {}).get("message") or f"The payment is {status.replace('_', ' ')}."
    if (intent.get("last_payment_error") or {}).get("code") == "authentication_required":
        return {"status": "requires_action", "payment_intent_id": intent["id"], "error": str(error)[:300],
                "try_number": try_number}
    # requires_payment_method (declined) or canceled: this try is over, unpaid.
    return {"status": "declined", "payment_intent_id": intent["id"], "error": str(error)[:300],
            "try_number": try_number}


def checkout_session_for_card_setup(*, workspace: Workspace, actor_email: str) -> stripe.checkout.Session:
    """Checkout in mode=setup: the customer saves a card for off-session auto-recharges. The
    SetupIntent carries the workspace in its metadata; setup_intent.succeeded records the card."""
    metadata = {"workspace": workspace.slug, "workspace_id": str(workspace.pk), "purpose": "auto_recharge"}
    buy_url = _absolute(reverse("billing:buy", kwargs={"slug": workspace.slug})) + "#auto-recharge"
    params = {"mode": "setup", "currency": "usd", "payment_method_types": ["card"], "metadata": metadata,
              "setup_intent_data": {"metadata": metadata}, "success_url": buy_url, "cancel_url": buy_url,
              # The address and tax id Stripe Tax will need for the off-session auto-recharges.
              **_tax_params(workspace, mode="setup")}
    if workspace.stripe_customer_id:
        params["customer"] = workspace.stripe_customer_id
    else:
        params["customer_creation"] = "always"
        params["customer_email"] = actor_email
    return _client().v1.checkout.sessions.create(params)
