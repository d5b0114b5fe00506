"""Stripe event payloads shaped as Stripe sends them (API 2025-03-31.basil, trimmed of fields we do
not read), and the signing that Stripe does, for posting to dj-stripe's endpoint in tests."""

import hashlib
import hmac
import json
import time

from django.conf import settings

API_VERSION = "2025-03-31.basil"


def webhook_url() -> str:
    return f"/stripe/webhook/{settings.STRIPE_WEBHOOK_UUID}/"


def sign(body: str, *, secret: str | None = None, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    secret = secret or settings.STRIPE_WEBHOOK_SECRET
    signature = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def deliver(client, event: dict, *, body: str | None = None, **sign_options):
    body = body if body is not None else json.dumps(event)
    signed = sign(json.dumps(event) if "tamper" in sign_options else body,
                  **{k: v for k, v in sign_options.items() if k != "tamper"})
    return client.post(webhook_url(), data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signed)


def event(event_id: str, type_: str, obj: dict, *, created: int | None = None) -> dict:
    return {
        "id": event_id, "object": "event", "api_version": API_VERSION,
        "created": created or int(time.time()), "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None}, "type": type_, "data": {"object": obj},
    }


def checkout_session_completed(*, event_id: str, purchase, session_id: str = "cs_test_a1B2c3", amount_total=None,
                               payment_status: str = "paid", created: int | None = None) -> dict:
    metadata = {"workspace": purchase.workspace.slug, "workspace_id": str(purchase.workspace_id),
                "pack": purchase.pack_id, "purchase": str(purchase.pk)}
    return event(event_id, "checkout.session.completed", {
        "id": session_id, "object": "checkout.session", "adjustable_quantity": None, "after_expiration": None,
        "allow_promotion_codes": None, "amount_subtotal": purchase.amount_cents,
        "amount_total": purchase.amount_cents if amount_total is None else amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_address_collection": None, "cancel_url": "http://127.0.0.1:8000/w/acme/settings/billing/buy/",
        "client_reference_id": str(purchase.pk), "created": int(time.time()) - 60, "currency": "usd",
        "customer": None, "customer_creation": "if_required",
        "customer_details": {"email": "owner@acme.test", "name": "Olivia Owner", "tax_exempt": "none"},
        "customer_email": None, "expires_at": int(time.time()) + 86000, "invoice": None, "livemode": False,
        "locale": None, "metadata": metadata, "mode": "payment", "payment_intent": f"pi_test_{session_id[-6:]}",
        "payment_method_types": ["card"], "payment_status": payment_status, "status": "complete",
        "submit_type": None, "subscription": None,
        "success_url": "http://127.0.0.1:8000/w/acme/settings/billing/buy/1/?session_id={CHECKOUT_SESSION_ID}",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}, "ui_mode": "hosted", "url": None,
    }, created=created)


def checkout_session_expired(*, event_id: str, purchase, session_id: str = "cs_test_a1B2c3") -> dict:
    """The session closed unpaid (24 hours passed, or it was expired through the API)."""
    expired = checkout_session_completed(event_id=event_id, purchase=purchase, session_id=session_id,
                                         payment_status="unpaid")
    expired["type"] = "checkout.session.expired"
    expired["data"]["object"].update(status="expired", payment_intent=None, url=None)
    return expired


def charge_refunded(*, event_id: str, payment_intent: str, amount: int, amount_refunded: int,
                    created: int | None = None) -> dict:
    return event(event_id, "charge.refunded", {
        "id": "ch_test_3Qx", "object": "charge", "amount": amount, "amount_captured": amount,
        "amount_refunded": amount_refunded, "balance_transaction": "txn_test_1", "captured": True,
        "created": int(time.time()) - 3600, "currency": "usd", "customer": None, "description": None,
        "invoice": None, "livemode": False, "metadata": {}, "paid": True, "payment_intent": payment_intent,
        "payment_method": "pm_test_1", "refunded": amount_refunded >= amount, "status": "succeeded",
    }, created=created)


def _subscription_metadata(workspace, plan_id):
    return {"workspace": workspace.slug, "workspace_id": str(workspace.pk), "plan": plan_id}


def checkout_session_subscription(*, event_id: str, workspace, plan_id: str, subscription_id: str,
                                  customer_id: str = "cus_test_9") -> dict:
    return event(event_id, "checkout.session.completed", {
        "id": "cs_test_sub_1", "object": "checkout.session", "amount_total": 2900, "currency": "usd",
        "client_reference_id": f"workspace:{workspace.pk}", "customer": customer_id, "invoice": "in_test_first",
        "livemode": False, "metadata": _subscription_metadata(workspace, plan_id), "mode": "subscription",
        "payment_intent": None, "payment_status": "paid", "status": "complete", "subscription": subscription_id,
    })


def invoice_paid(*, event_id: str, invoice_id: str, workspace, plan_id: str, subscription_id: str, period_start: int,
                 period_end: int, amount: int, billing_reason: str = "subscription_cycle", customer_id: str = "cus_test_9",
                 created: int | None = None) -> dict:
    metadata = _subscription_metadata(workspace, plan_id)
    return event(event_id, "invoice.paid", {
        "id": invoice_id, "object": "invoice", "account_country": "US", "amount_due": amount, "amount_paid": amount,
        "amount_remaining": 0, "attempt_count": 1, "attempted": True, "billing_reason": billing_reason,
        "collection_method": "charge_automatically", "currency": "usd", "customer": customer_id,
        "customer_email": "owner@acme.test", "livemode": False, "metadata": {},
        "parent": {"quote_details": None, "subscription_details": {"metadata": metadata, "subscription": subscription_id},
                   "type": "subscription_details"},
        "period_start": period_start, "period_end": period_start, "status": "paid", "total": amount,
        "lines": {"object": "list", "has_more": False, "data": [{
            "id": "il_test_1", "object": "line_item", "amount": amount, "currency": "usd",
            "description": f"1 × {plan_id.title()} plan", "metadata": {},
            "parent": {"subscription_item_details": {"proration": False, "subscription": subscription_id,
                                                     "subscription_item": "si_test_1"},
                       "type": "subscription_item_details"},
            "period": {"end": period_end, "start": period_start},
            "pricing": {"price_details": {"price": f"price_test_{plan_id}", "product": "prod_test_1"},
                        "type": "price_details", "unit_amount_decimal": str(amount)},
            "quantity": 1,
        }]},
    }, created=created)


def subscription_event(*, event_id: str, type_: str, workspace, plan_id: str, subscription_id: str,
                       status: str = "active", cancel_at_period_end: bool = False, created: int | None = None,
                       customer_id: str = "cus_test_9") -> dict:
    return event(event_id, type_, {
        "id": subscription_id, "object": "subscription", "cancel_at_period_end": cancel_at_period_end,
        "collection_method": "charge_automatically", "created": int(time.time()) - 86400, "currency": "usd",
        "customer": customer_id, "livemode": False, "metadata": _subscription_metadata(workspace, plan_id),
        "status": status,
        "items": {"object": "list", "data": [{
            "id": "si_test_1", "object": "subscription_item",
            "current_period_start": int(time.time()) - 86400, "current_period_end": int(time.time()) + 29 * 86400,
            "price": {"id": f"price_test_{plan_id}", "object": "price", "currency": "usd", "metadata": {"plan": plan_id},
                      "recurring": {"interval": "month", "interval_count": 1}, "type": "recurring"},
            "quantity": 1}]},
    }, created=created)
