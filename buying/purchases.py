"""Credit-pack sales: start, fulfil (exactly once), record a payment made outside Stripe, refund.

Fulfilment is the same function for Stripe's checkout.session.completed, the built-in test checkout
and `manage.py record_purchase`, so the three cannot drift apart."""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.access_versions import access_versions_bump
from billing.audit import audit_record
from billing.ledger import PURCHASED, Posting, post, wallet_lock
from billing.models import AutoRechargeAttempt, CreditPack, LedgerEntry, Purchase, Workspace
from billing.money import cents_display, nanos_display
from billing.edition import is_community
from invoices import services as invoice_services
from invoices.tax import TaxDecision, workspace_tax


class PurchaseError(Exception):
    pass


class BillingUnavailable(PurchaseError):
    """Community Edition sells nothing (SPEC section 9)."""

    def __init__(self, message: str = "Billing is a Cloud-only feature: Community Edition sells no credits or plans."):
        super().__init__(message)


def purchase_start(*, workspace: Workspace, pack_id: str, actor=None, source: str = Purchase.TEST) -> Purchase:
    """A pending purchase with a snapshot of the pack, so a later price change never alters it, and,
    outside Stripe, of the tax the table adds for the workspace's billing details (invoices/tax.py;
    through Stripe, Stripe Tax decides at payment). Tax never changes the credits."""
    if is_community():
        raise BillingUnavailable()
    pack = CreditPack.objects.filter(pk=pack_id, is_active=True).first()
    if pack is None:
        raise PurchaseError(f"There is no credit pack {pack_id!r} for sale.")
    tax = TaxDecision() if source == Purchase.STRIPE else workspace_tax(workspace=workspace, amounts=[pack.price_cents])
    return Purchase.objects.create(
        workspace=workspace, pack=pack, source=source, credits=pack.credits, bonus=pack.bonus,
        amount_cents=pack.price_cents, tax_cents=tax.tax_cents, tax_detail=tax.as_json(), created_by=actor,
    )


def pack_purchase_fulfil(*, purchase: Purchase, paid_at=None, stripe_checkout_session_id: str | None = None,
                         stripe_payment_intent_id: str | None = None, tax: TaxDecision | None = None,
                         stripe_customer_id: str = "") -> Purchase:
    """Mark the purchase paid and credit it, exactly once, in one transaction: the pack's credits and
    its bonus go into the purchased bucket as two ledger entries, and the invoice is issued. `tax`
    is what Stripe Tax charged on top of the price (a Checkout Session); without it, the tax the
    purchase recorded when it started. `stripe_customer_id`: the customer Checkout created, kept by a
    workspace that has none yet (its billing details flow back from it, buying/stripe_webhooks.py).

    Exactly once three ways: the wallet lock serialises writers, the conditional UPDATE only moves a
    pending purchase to paid, and the ledger keys derive from the purchase id (unique in the
    database), as does the Checkout Session id on the purchase."""
    paid_at = paid_at or timezone.now()
    with transaction.atomic():
        wallet = wallet_lock(purchase.workspace_id)
        changes = {"status": Purchase.PAID, "paid_at": paid_at}
        if tax is not None:
            changes.update(tax_cents=tax.tax_cents, tax_detail=tax.as_json())
        if stripe_checkout_session_id:
            changes["stripe_checkout_session_id"] = stripe_checkout_session_id
        if stripe_payment_intent_id:
            changes["stripe_payment_intent_id"] = stripe_payment_intent_id
        # A cancelled purchase is paid too: Stripe can still take a payment for a checkout we
        # cancelled on the buyer's return or by the sweep, and money received is credited.
        won = Purchase.objects.filter(pk=purchase.pk, status__in=Purchase.UNPAID).update(**changes)
        purchase.refresh_from_db()
        if not won:
            return purchase  # already fulfilled: a replay or a second delivery
        if stripe_customer_id and Workspace.objects.filter(pk=purchase.workspace_id, stripe_customer_id="").update(
                stripe_customer_id=stripe_customer_id):
            access_versions_bump(workspace_ids=[purchase.workspace_id])  # cached API tokens carry the workspace row
        name = purchase.pack.name
        via = ", auto-recharge" if AutoRechargeAttempt.objects.filter(purchase_id=purchase.pk).exists() else ""
        post(wallet=wallet, actor=purchase.created_by, purchase=purchase, at=paid_at, postings=[
            Posting(LedgerEntry.PURCHASE, PURCHASED, purchase.credits, f"purchase:{purchase.pk}:credits",
                    f"{name} pack ({cents_display(purchase.amount_cents, purchase.currency)}{via})"),
            Posting(LedgerEntry.BONUS, PURCHASED, purchase.bonus, f"purchase:{purchase.pk}:bonus",
                    f"{name} pack bonus"),
        ])
        invoice_services.invoice_issue_for_purchase(purchase=purchase)  # and its receipt e-mail (invoices/emails.py)
        audit_record(workspace_id=purchase.workspace_id, actor=purchase.created_by, action="purchase.paid", after={
            "purchase": purchase.pk, "pack": purchase.pack_id, "source": purchase.source,
            "amount": cents_display(purchase.amount_cents, purchase.currency),
            "credits": nanos_display(purchase.credits + purchase.bonus)})
    return purchase


def purchase_cancel(*, purchase: Purchase, reason: str, actor=None) -> bool:
    """A checkout left without paying, or expired: the pending purchase shows as cancelled. Only a
    pending purchase moves (a conditional UPDATE, so a payment landing at the same moment wins or
    finds it cancelled and still pays it). Returns whether this call cancelled it."""
    if not Purchase.objects.filter(pk=purchase.pk, status=Purchase.PENDING).update(status=Purchase.CANCELLED):
        return False
    purchase.status = Purchase.CANCELLED
    audit_record(workspace_id=purchase.workspace_id, actor=actor, action="purchase.cancelled",
                 after={"purchase": purchase.pk, "pack": purchase.pack_id, "source": purchase.source, "reason": reason})
    return True


def purchases_expire_pending(*, now=None) -> int:
    """Celery beat: a checkout still pending PURCHASE_PENDING_HOURS after it started is cancelled (a
    Stripe Checkout Session lasts 24 hours; checkout.session.expired usually says so first). An
    auto-recharge's purchase is left to its attempt (it may wait for the card holder's approval).
    Returns how many were cancelled."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.PURCHASE_PENDING_HOURS)
    stale = (Purchase.objects.filter(status=Purchase.PENDING, created_at__lt=cutoff, auto_recharge__isnull=True)
             .order_by("pk")[:1000])
    return sum(purchase_cancel(purchase=purchase, reason="expired") for purchase in stale)


def purchase_record_manual(*, workspace: Workspace, pack_id: str, reference: str = "", actor=None, now=None) -> Purchase:
    """A purchase paid outside Stripe (bank transfer, sales-assisted), fulfilled like a Checkout
    payment. The same non-empty reference twice is the same purchase (a database constraint)."""
    reference = (reference or "").strip()
    if reference:
        existing = Purchase.objects.filter(workspace=workspace, source=Purchase.MANUAL, reference=reference).first()
        if existing:
            if existing.status == Purchase.PENDING:
                return pack_purchase_fulfil(purchase=existing, paid_at=now)
            return existing
    purchase = purchase_start(workspace=workspace, pack_id=pack_id, actor=actor, source=Purchase.MANUAL)
    if now:
        purchase.created_at = now
    purchase.reference = reference
    try:
        purchase.save(update_fields=["reference", "created_at"])
    except IntegrityError:
        # The same reference was recorded concurrently: keep the other one.
        purchase.delete()
        return Purchase.objects.get(workspace=workspace, source=Purchase.MANUAL, reference=reference)
    return pack_purchase_fulfil(purchase=purchase, paid_at=now)


def refund_share(*, purchase: Purchase, refunded_cents: int) -> int:
    """Nanocredits (credits + bonus) matching `refunded_cents` of what was paid (price and tax),
    cumulatively: the sum of the shares of several partial refunds equals the share of their total,
    and a full refund takes back exactly credits + bonus."""
    paid = purchase.total_cents
    if paid <= 0:
        return purchase.credits + purchase.bonus if refunded_cents > 0 else 0
    refunded_cents = min(refunded_cents, paid)
    return (purchase.credits + purchase.bonus) * refunded_cents // paid


def purchase_refund(*, purchase: Purchase, amount_cents: int | None = None, key: str, reason: str = "", actor=None,
                    refunded_total_cents: int | None = None) -> Purchase:
    """Take back the refunded share of a purchase's credits and bonus from the purchased bucket and
    issue a credit note (with its share of the tax), once per `key`. Amounts are of what the buyer
    paid, tax included (Purchase.total_cents), as Stripe's refunds are. Give either `amount_cents` (this refund) or
    `refunded_total_cents` (Stripe's cumulative `amount_refunded`, read under the lock, so refund
    events arriving out of order or twice never take credits back twice).

    When those credits were already spent, the purchased bucket goes below zero (docs/refunds.md): the
    money went back, so the credits must too; new runs are refused until the workspace tops up."""
    if (amount_cents is None) == (refunded_total_cents is None):
        raise PurchaseError("Give exactly one of amount_cents and refunded_total_cents.")
    if amount_cents is not None and amount_cents <= 0:
        raise PurchaseError("A refund must be a positive amount.")
    ledger_key = f"refund:{purchase.pk}:{key}"
    with transaction.atomic():
        wallet = wallet_lock(purchase.workspace_id)
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        if LedgerEntry.objects.filter(idempotency_key=ledger_key).exists():
            return purchase
        if purchase.status in Purchase.UNPAID:
            raise PurchaseError("An unpaid purchase cannot be refunded.")
        if refunded_total_cents is not None:
            amount_cents = refunded_total_cents - purchase.refunded_cents
        amount_cents = min(amount_cents, purchase.total_cents - purchase.refunded_cents)
        if amount_cents <= 0:
            return purchase  # nothing left to refund
        before = refund_share(purchase=purchase, refunded_cents=purchase.refunded_cents)
        purchase.refunded_cents += amount_cents
        removed = refund_share(purchase=purchase, refunded_cents=purchase.refunded_cents) - before
        purchase.status = (Purchase.REFUNDED if purchase.refunded_cents >= purchase.total_cents
                           else Purchase.PARTIALLY_REFUNDED)
        purchase.save(update_fields=["refunded_cents", "status"])
        text = reason or (f"Refund of {cents_display(amount_cents, purchase.currency)} for the {purchase.pack.name} pack"
                          f" ({nanos_display(removed)} credits)")
        post(wallet=wallet, actor=actor, purchase=purchase, postings=[
            Posting(LedgerEntry.REFUND, PURCHASED, -removed, ledger_key, text, keep_if_zero=True),
        ])
        invoice = purchase.invoices.filter(kind="invoice").order_by("id").first()
        if invoice is not None:
            invoice_services.credit_note_issue_for_refund(invoice=invoice, amount_cents=amount_cents, reason=text,
                                                          key=ledger_key)
        audit_record(workspace_id=purchase.workspace_id, actor=actor, action="purchase.refund", after={
            "purchase": purchase.pk, "refunded": cents_display(amount_cents, purchase.currency),
            "credits_removed": nanos_display(removed), "reason": text})
    return purchase
