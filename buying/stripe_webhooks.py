"""Stripe webhooks, verified by dj-stripe's endpoint (/stripe/webhook/<uuid>/) and handled here from
the verified payload, so fulfilment needs no call to Stripe.

dj-stripe calls `handle_verified_event` only for events whose signature and timestamp it verified,
inside transaction.atomic: whatever we write commits together with the StripeEvent row that marks
the event as handled, and an exception rolls both back and answers 500, so Stripe delivers again.

- A replayed or duplicated delivery: the StripeEvent row (unique event id) exists -> nothing.
- Out of order: each handler is idempotent by its own key (a purchase is paid once, a period is
  granted once, a refund total is applied once), subscription updates older than one already
  applied are ignored, and an event about an object we do not know yet (charge.refunded before its
  checkout.session.completed) raises, so Stripe retries it later.
"""

import logging
from datetime import datetime, timezone as dt_timezone

from django.db import IntegrityError, transaction

from billing.forms import digits_int
from billing.models import Plan, Purchase, StripeEvent, Workspace
from invoices.services import BillingDetailsError, workspace_billing_details_update
from invoices.tax import stripe_invoice_tax, stripe_session_tax

from .auto_recharge import (PaymentOutcome, auto_recharge_attempt_for_intent, auto_recharge_payment_method_record,
                            auto_recharge_payment_record)
from .plans import plan_payment_record, subscription_checkout_record, subscription_end, subscription_sync
from .purchases import pack_purchase_fulfil, purchase_cancel, purchase_refund

log = logging.getLogger(__name__)


class NotYetKnown(Exception):
    """The event refers to something whose own event has not arrived yet: answer 500, Stripe retries."""


def _ts(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=dt_timezone.utc) if value is not None else None


def handle_verified_event(trigger, api_key=None, **kwargs):
    """DJSTRIPE_WEBHOOK_EVENT_CALLBACK: a one-line adapter per event type into the services."""
    event = trigger.json_body
    trigger.processed = True
    handler = HANDLERS.get(event.get("type"))
    obj = (event.get("data") or {}).get("object") or {}
    try:
        with transaction.atomic():
            record = StripeEvent.objects.create(
                event_id=event["id"], type=event["type"], object_id=str(obj.get("id", ""))[:200],
                stripe_created=_ts(event.get("created", 0)), livemode=bool(event.get("livemode")),
            )
    except IntegrityError:
        log.info("Stripe event %s delivered again; already handled", event["id"])
        return
    outcome = handler(event, obj) if handler else "ignored: not an event we act on"
    StripeEvent.objects.filter(pk=record.pk).update(outcome=(outcome or "handled")[:200])


def _metadata(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _workspace_from_metadata(metadata: dict) -> Workspace | None:
    if metadata.get("workspace_id"):
        return Workspace.objects.filter(pk=metadata["workspace_id"]).first()
    if metadata.get("workspace"):
        return Workspace.objects.filter(slug=metadata["workspace"]).first()
    return None


def _purchase_reference(session: dict):
    return _metadata(session).get("purchase") or session.get("client_reference_id")


def _purchase_for_session(session: dict) -> Purchase | None:
    """The purchase a pack's Checkout Session names (its metadata, or client_reference_id)."""
    purchase_pk = digits_int(_purchase_reference(session), max_digits=18)
    if purchase_pk is None:
        return None
    return Purchase.objects.select_related("workspace", "pack").filter(pk=purchase_pk).first()


def checkout_session_completed(event: dict, session: dict) -> str:
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return "not paid yet: waiting for checkout.session.async_payment_succeeded"
    if session.get("mode") == "subscription":
        workspace = _workspace_from_metadata(_metadata(session))
        if workspace is None:
            return "ignored: no workspace in the session metadata"
        subscription_checkout_record(workspace=workspace, subscription_id=session.get("subscription") or "",
                                     customer_id=session.get("customer") or "")
        return f"subscription recorded for {workspace.slug}"
    purchase = _purchase_for_session(session)
    if purchase is None:
        return f"ignored: no purchase {_purchase_reference(session)!r}"
    tax = stripe_session_tax(session)
    subtotal = session.get("amount_subtotal", session.get("amount_total"))
    if subtotal is not None and (int(subtotal) != purchase.amount_cents or (
            session.get("amount_total") is not None and int(session["amount_total"]) != int(subtotal) + tax.tax_cents)):
        # Never credit a session whose price is not the purchase's, or whose total is not that
        # price plus Stripe's tax: staff look at it.
        log.error("Checkout Session %s: %s + %s tax = %s cents for purchase %s of %s cents", session.get("id"),
                  subtotal, tax.tax_cents, session.get("amount_total"), purchase.pk, purchase.amount_cents)
        return "refused: amount differs from the purchase"
    customer_id = _id(session.get("customer"))
    pack_purchase_fulfil(purchase=purchase, paid_at=_ts(event.get("created")), stripe_checkout_session_id=session["id"],
                         stripe_payment_intent_id=session.get("payment_intent") or None, tax=tax,
                         stripe_customer_id=customer_id)
    details = session.get("customer_details") or {}
    notes = _billing_details_flow_back(purchase.workspace, name=details.get("business_name") or details.get("name"),
                                       address=details.get("address"), tax_ids=details.get("tax_ids") or [])
    return f"purchase {purchase.pk} fulfilled" + "".join(f"; {note}" for note in notes)


def checkout_session_expired(event: dict, session: dict) -> str:
    """The buyer never paid and the session closed: the purchase shows as cancelled."""
    if session.get("mode") != "payment":
        return "ignored: not a credit-pack checkout"
    purchase = _purchase_for_session(session)
    if purchase is None:
        return f"ignored: no purchase {_purchase_reference(session)!r}"
    if purchase_cancel(purchase=purchase, reason="checkout expired"):
        return f"purchase {purchase.pk} cancelled"
    return f"purchase {purchase.pk} is {purchase.status}: unchanged"


def _address_text(address: dict) -> str:
    """A Stripe address as the lines of our billing address (the country is a field of its own)."""
    city = " ".join(part for part in (address.get("postal_code"), address.get("city")) if part)
    return "\n".join(part for part in (address.get("line1"), address.get("line2"), city, address.get("state")) if part)


def _billing_details_flow_back(workspace: Workspace, *, name: str | None = None, address: dict | None = None,
                               tax_ids: list[dict] = ()) -> list[str]:
    """What the buyer typed into Stripe Checkout becomes the workspace's billing details, through
    the service the Billing details page uses (its checks, its audit row). A tax id the checks
    refuse is left out, and said so in the event's outcome; the rest is kept."""
    notes = []
    changes = {}
    if name:
        changes["billing_name"] = name
    if address and address.get("country"):
        changes.update(billing_address=_address_text(address), billing_country=address["country"])
    if changes:
        try:
            workspace = workspace_billing_details_update(workspace=workspace, actor=None, source="stripe", **changes)
        except BillingDetailsError as error:
            notes.append(f"billing details refused: {error}")
    for tax_id in tax_ids[:1]:  # the first id; a workspace keeps one
        country = workspace.billing_country.code or tax_id.get("country") or ""
        try:
            workspace_billing_details_update(workspace=workspace, actor=None, source="stripe",
                                             billing_country=country, tax_id=tax_id.get("value") or "")
        except BillingDetailsError as error:
            notes.append(f"tax id refused: {error}"[:150])
    return notes


def _workspace_for_customer(customer_id: str) -> Workspace | None:
    return Workspace.objects.filter(stripe_customer_id=customer_id).first() if customer_id else None


def customer_updated(event: dict, customer: dict) -> str:
    """The name and address a customer typed in Checkout (customer_update: auto) or changed in
    Stripe flow back into the workspace's billing details."""
    workspace = _workspace_for_customer(customer.get("id") or "")
    if workspace is None:
        return "ignored: no workspace for this customer"
    if StripeEvent.objects.filter(object_id=customer["id"], type="customer.updated",
                                  stripe_created__gt=_ts(event.get("created", 0))).exclude(event_id=event["id"]).exists():
        return "ignored: a newer customer.updated was already applied"
    notes = _billing_details_flow_back(workspace, name=customer.get("name"), address=customer.get("address"))
    return f"billing details of {workspace.slug} updated" + "".join(f"; {note}" for note in notes)


def customer_tax_id_created(event: dict, tax_id: dict) -> str:
    """A tax id the buyer gave in Checkout (tax_id_collection) becomes the workspace's, if it is
    valid for its country (invoices/tax.py)."""
    customer_id = _id(tax_id.get("customer")) or _id((tax_id.get("owner") or {}).get("customer"))
    workspace = _workspace_for_customer(customer_id)
    if workspace is None:
        return "ignored: no workspace for this customer"
    notes = _billing_details_flow_back(workspace, tax_ids=[tax_id])
    return notes[0] if notes else f"tax id of {workspace.slug} recorded"


def _invoice_subscription_metadata(invoice: dict) -> dict:
    # API versions before 2025-03-31 put it at subscription_details; later ones under parent.
    details = invoice.get("subscription_details") or ((invoice.get("parent") or {}).get("subscription_details")) or {}
    return details.get("metadata") or {}


def _invoice_subscription_id(invoice: dict) -> str:
    sub = invoice.get("subscription") or ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    return sub.get("id", "") if isinstance(sub, dict) else (sub or "")


def _plan_from_price(price: dict | None, fallback: str | None = None) -> Plan | None:
    price = price or {}
    if price.get("id"):
        plan = Plan.objects.filter(stripe_price_id=price["id"]).first()
        if plan:
            return plan
    plan_id = (price.get("metadata") or {}).get("plan") or fallback
    return Plan.objects.filter(pk=plan_id).first() if plan_id else None


def _workspace_for_subscription(subscription_id: str, customer_id: str, metadata: dict) -> Workspace | None:
    workspace = _workspace_from_metadata(metadata)
    if workspace is None and subscription_id:
        workspace = Workspace.objects.filter(stripe_subscription_id=subscription_id).first()
    if workspace is None and customer_id:
        workspace = Workspace.objects.filter(stripe_customer_id=customer_id).first()
    return workspace


def _is_proration(line: dict) -> bool:
    details = ((line.get("parent") or {}).get("subscription_item_details")) or {}
    return bool(line.get("proration") or details.get("proration"))


def invoice_paid(event: dict, invoice: dict) -> str:
    subscription_id = _invoice_subscription_id(invoice)
    if not subscription_id:
        return "ignored: not a subscription invoice"
    metadata = _invoice_subscription_metadata(invoice)
    workspace = _workspace_for_subscription(subscription_id, invoice.get("customer") or "", metadata)
    if workspace is None:
        raise NotYetKnown(f"No workspace for subscription {subscription_id} yet")
    lines = ((invoice.get("lines") or {}).get("data")) or []
    line = next((li for li in lines if not _is_proration(li)), lines[0] if lines else {})
    price = line.get("price")  # API versions before 2025-03-31; later ones name only the price id
    if not isinstance(price, dict):
        price = {"id": ((line.get("pricing") or {}).get("price_details") or {}).get("price")}
    plan = _plan_from_price(price, (line.get("metadata") or {}).get("plan") or metadata.get("plan"))
    if plan is None:
        raise NotYetKnown(f"Invoice {invoice.get('id')} names no plan we know")
    period = line.get("period") or {}
    # Only the subscription's own invoices (first and renewals) start a period; a proration
    # invoice of a mid-period upgrade is billed but its credits came with the upgrade.
    grant = invoice.get("billing_reason") in ("subscription_create", "subscription_cycle", None)
    stripe_lines = [(li.get("description") or "", int(li.get("amount") or 0),
                     _ts((li.get("period") or {}).get("start")) if (li.get("period") or {}).get("start") else None,
                     _ts((li.get("period") or {}).get("end")) if (li.get("period") or {}).get("end") else None)
                    for li in lines]
    paid = int(invoice.get("amount_paid") or 0)
    # Stripe Tax's tax on this invoice; the lines and the plan payment are the amount before it.
    tax = stripe_invoice_tax(invoice, taxable_cents=sum(amount for _, amount, _, _ in stripe_lines))
    plan_payment_record(workspace=workspace, plan=plan, amount_cents=paid - tax.tax_cents,
                        period_start=_ts(period.get("start")), period_end=_ts(period.get("end")),
                        stripe_invoice_id=invoice["id"], grant=grant, stripe_subscription_id=subscription_id,
                        stripe_customer_id=invoice.get("customer") or "", stripe_lines=stripe_lines, tax=tax)
    return f"plan payment {plan.pk} recorded for {workspace.slug}"


def _newer_subscription_event_applied(event: dict, subscription_id: str) -> bool:
    return StripeEvent.objects.filter(
        object_id=subscription_id, type__startswith="customer.subscription.",
        stripe_created__gt=_ts(event.get("created", 0)),
    ).exclude(event_id=event["id"]).exists()


def subscription_updated(event: dict, subscription: dict) -> str:
    if _newer_subscription_event_applied(event, subscription["id"]):
        return "ignored: a newer subscription event was already applied"
    workspace = _workspace_for_subscription(subscription["id"], subscription.get("customer") or "",
                                            _metadata(subscription))
    if workspace is None:
        raise NotYetKnown(f"No workspace for subscription {subscription['id']} yet")
    items = ((subscription.get("items") or {}).get("data")) or [{}]
    plan = _plan_from_price(items[0].get("price"), _metadata(subscription).get("plan"))
    subscription_sync(workspace=workspace, plan=plan, status=subscription.get("status", ""),
                      cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
                      subscription_id=subscription["id"], customer_id=subscription.get("customer") or "")
    return f"subscription synced for {workspace.slug}"


def subscription_deleted(event: dict, subscription: dict) -> str:
    workspace = _workspace_for_subscription(subscription["id"], "", _metadata(subscription)) or \
        Workspace.objects.filter(stripe_subscription_id=subscription["id"]).first()
    if workspace is None:
        return "ignored: unknown subscription"
    subscription_end(workspace=workspace, subscription_id=subscription["id"])
    return f"{workspace.slug} back on Free"


def charge_refunded(event: dict, charge: dict) -> str:
    payment_intent = charge.get("payment_intent")
    payment_intent = payment_intent.get("id") if isinstance(payment_intent, dict) else payment_intent
    purchase = Purchase.objects.filter(stripe_payment_intent_id=payment_intent).first() if payment_intent else None
    if purchase is None:
        purchase_id = _metadata(charge).get("purchase")
        purchase_pk = digits_int(purchase_id, max_digits=18)
        purchase = Purchase.objects.filter(pk=purchase_pk).first() if purchase_pk is not None else None
    if purchase is None:
        if charge.get("invoice"):
            return "ignored: a plan payment refund (credit notes for plans are issued by staff)"
        raise NotYetKnown(f"No purchase for payment {payment_intent} yet")
    if purchase.status in Purchase.UNPAID:
        raise NotYetKnown(f"Purchase {purchase.pk} is not fulfilled yet")
    total = int(charge.get("amount_refunded") or 0)
    purchase_refund(purchase=purchase, refunded_total_cents=total, key=f"upto:{total}")
    return f"purchase {purchase.pk} refunded up to {total} cents"


def _card_label(payment_method) -> str:
    card = (payment_method or {}).get("card") if isinstance(payment_method, dict) else None
    return f"{card.get('brand', 'card').title()} ending {card.get('last4', '')}" if card else ""


def _id(value) -> str:
    return value.get("id", "") if isinstance(value, dict) else (value or "")


def _try_number(metadata: dict) -> int:
    """Which try of an auto-recharge a PaymentIntent paid (0: unknown). We wrote it, but a signed
    event is still input: anything but a short run of digits reads as unknown, never a 500."""
    return digits_int(metadata.get("try"), max_digits=5) or 0


def payment_intent_succeeded(event: dict, intent: dict) -> str:
    """An auto-recharge paid (its synchronous answer may come before or after this: credits once),
    or a pack bought with setup_future_usage=off_session, whose card is saved for auto-recharge."""
    metadata = _metadata(intent)
    attempt = auto_recharge_attempt_for_intent(payment_intent_id=intent["id"], metadata=metadata)
    if attempt is not None:
        outcome = PaymentOutcome(PaymentOutcome.SUCCEEDED, intent["id"], try_number=_try_number(metadata))
        auto_recharge_payment_record(attempt=attempt, outcome=outcome, now=_ts(event.get("created")))
        return f"auto-recharge {attempt.key} paid"
    workspace = _workspace_from_metadata(metadata)
    payment_method, customer = _id(intent.get("payment_method")), _id(intent.get("customer"))
    if workspace and intent.get("setup_future_usage") == "off_session" and payment_method and customer:
        auto_recharge_payment_method_record(workspace=workspace, customer_id=customer, payment_method_id=payment_method,
                                            card_label=_card_label(intent.get("payment_method")))
        return f"payment method saved for {workspace.slug}"
    return "ignored: not an auto-recharge"


def payment_intent_failed(event: dict, intent: dict) -> str:
    metadata = _metadata(intent)
    attempt = auto_recharge_attempt_for_intent(payment_intent_id=intent["id"], metadata=metadata)
    if attempt is None:
        return "ignored: not an auto-recharge"
    error = intent.get("last_payment_error") or {}
    status = PaymentOutcome.REQUIRES_ACTION if intent.get("status") == "requires_action" or \
        error.get("code") == "authentication_required" else PaymentOutcome.DECLINED
    outcome = PaymentOutcome(status, intent["id"], str(error.get("message") or "The payment failed.")[:300],
                             try_number=_try_number(metadata))
    auto_recharge_payment_record(attempt=attempt, outcome=outcome, now=_ts(event.get("created")))
    return f"auto-recharge {attempt.key}: {status}"


def setup_intent_succeeded(event: dict, setup_intent: dict) -> str:
    """Checkout in mode=setup saved a card for off-session use (auto-recharge)."""
    workspace = _workspace_from_metadata(_metadata(setup_intent))
    payment_method, customer = _id(setup_intent.get("payment_method")), _id(setup_intent.get("customer"))
    if workspace is None or not payment_method or not customer:
        return "ignored: not a saved card for a workspace"
    auto_recharge_payment_method_record(workspace=workspace, customer_id=customer, payment_method_id=payment_method,
                                        card_label=_card_label(setup_intent.get("payment_method")))
    return f"payment method saved for {workspace.slug}"


HANDLERS = {
    "payment_intent.succeeded": payment_intent_succeeded,
    "payment_intent.payment_failed": payment_intent_failed,
    "setup_intent.succeeded": setup_intent_succeeded,
    "checkout.session.completed": checkout_session_completed,
    "checkout.session.async_payment_succeeded": checkout_session_completed,
    "checkout.session.expired": checkout_session_expired,
    "invoice.paid": invoice_paid,
    "customer.subscription.updated": subscription_updated,
    "customer.subscription.deleted": subscription_deleted,
    "charge.refunded": charge_refunded,
    "customer.updated": customer_updated,
    "customer.tax_id.created": customer_tax_id_created,
}
