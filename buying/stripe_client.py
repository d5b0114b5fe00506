"""The only module that calls Stripe's API. Everything here runs outside database transactions (a
view calls it after its purchase row is committed) and tests stub these functions or Stripe's HTTP
client, never the network.

Without STRIPE_SECRET_KEY the portal uses its built-in test checkout instead (`stripe_enabled()`)."""

import stripe
from django.conf import settings
from django.urls import reverse

from billing.models import Plan, Purchase, Workspace
from billing.money import cents_to_stripe_minor_units


def stripe_enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def _client() -> stripe.StripeClient:
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, max_network_retries=2)


def _absolute(path: str) -> str:
    return settings.SITE_URL + path


def checkout_session_for_purchase(*, purchase: Purchase) -> stripe.checkout.Session:
    """A Checkout Session (mode=payment) for a pending purchase. The metadata names the workspace,
    pack and purchase, so the webhook can fulfil it without asking Stripe anything."""
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
        }}
    done = reverse("billing:purchase_done", kwargs={"slug": workspace.slug, "purchase_id": purchase.pk})
    params = {
        "mode": "payment",
        "line_items": [line_item],
        "client_reference_id": str(purchase.pk),
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": _absolute(done) + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": _absolute(reverse("billing:buy", kwargs={"slug": workspace.slug})),
    }
    if workspace.stripe_customer_id:
        params["customer"] = workspace.stripe_customer_id
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
        }}
    plans_url = _absolute(reverse("billing:plans", kwargs={"slug": workspace.slug}))
    params = {
        "mode": "subscription",
        "line_items": [line_item],
        "client_reference_id": f"workspace:{workspace.pk}",
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
        "success_url": plans_url + "?subscribed=1",
        "cancel_url": plans_url,
    }
    if workspace.stripe_customer_id:
        params["customer"] = workspace.stripe_customer_id
    else:
        params["customer_email"] = actor_email
    return _client().v1.checkout.sessions.create(params)


def subscription_price_change(*, subscription_id: str, plan: Plan, prorate: bool) -> None:
    """Move a Stripe subscription to another plan's price: an upgrade is invoiced at once (prorated),
    a downgrade takes effect from the next invoice."""
    client = _client()
    subscription = client.v1.subscriptions.retrieve(subscription_id)
    item_id = subscription["items"]["data"][0]["id"]
    item = {"id": item_id}
    if plan.stripe_price_id:
        item["price"] = plan.stripe_price_id
    else:
        item["price_data"] = {"currency": "usd", "unit_amount": plan.price_cents or 0,
                              "recurring": {"interval": "month"}, "product": subscription["items"]["data"][0]["price"]["product"]}
    client.v1.subscriptions.update(subscription_id, {
        "items": [item], "metadata": {"plan": plan.pk},
        "proration_behavior": "always_invoice" if prorate else "none",
    })


def subscription_cancel_at_period_end(*, subscription_id: str, cancel: bool = True) -> None:
    _client().v1.subscriptions.update(subscription_id, {"cancel_at_period_end": cancel})
