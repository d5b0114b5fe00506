"""Issuing invoices and credit notes.

Each issuing function is called inside the caller's transaction (the purchase or plan payment it
bills), so the invoice exists exactly when the payment does. Each is idempotent by
Invoice.idempotency_key: a second call for the same event returns the first invoice.

    invoice_issue_for_purchase(*, purchase) -> Invoice
    invoice_issue_for_plan_payment(*, workspace, plan, amount_cents, period_start, period_end,
                                   stripe_invoice_id) -> Invoice
    credit_note_issue_for_refund(*, invoice, amount_cents, reason, key) -> Invoice

Numbers are gapless per prefix and year (LF-2026-000001, CN-2026-000001): the InvoiceSequence row is
locked with SELECT ... FOR UPDATE until the caller commits, so two payments never share a number,
and a rolled-back payment rolls its number back too (nothing is skipped). The price is that issuing
is serialized per prefix and year; the lock is held only for the rest of the caller's short
transaction.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing.models import AuditEvent, Plan, Purchase, User, Workspace
from billing.money import nanos_display

from .models import Invoice, InvoiceLine, InvoiceSequence
from .tasks import receipt_schedule, render_invoice_pdf

INVOICE_PREFIX = "LF"
CREDIT_NOTE_PREFIX = "CN"


class InvoiceError(ValueError):
    pass


@dataclass(frozen=True)
class LineInput:
    description: str
    unit_cents: int
    credits: int = 0  # nanocredits delivered by the line
    quantity: int = 1

    @property
    def amount_cents(self) -> int:
        return self.unit_cents * self.quantity


def invoice_number_take(*, prefix: str, year: int) -> str:
    """The next number for `prefix` and `year`. Must run inside a transaction: the sequence row stays
    locked until it commits or rolls back."""
    # Create the row if this is the year's first number without racing another transaction that
    # does the same: ON CONFLICT DO NOTHING never fails, then FOR UPDATE waits for whoever holds it.
    InvoiceSequence.objects.bulk_create([InvoiceSequence(prefix=prefix, year=year)], ignore_conflicts=True)
    sequence = InvoiceSequence.objects.select_for_update().get(prefix=prefix, year=year)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return f"{prefix}-{year}-{sequence.last_number:06d}"


def _buyer_snapshot(workspace: Workspace) -> dict:
    owner: User | None = workspace.owner
    owner_name = (owner.get_full_name() or owner.email) if owner else ""
    return {
        "buyer_name": workspace.billing_name or owner_name or workspace.name,
        "buyer_contact": owner_name if workspace.billing_name else "",
        "buyer_email": owner.email if owner else "",
        "buyer_workspace": workspace.name,
        "buyer_address": workspace.billing_address,
        "buyer_tax_id": workspace.tax_id,
    }


def _issue(*, workspace: Workspace, prefix: str, key: str, lines: list[LineInput], description: str,
           **fields) -> Invoice:
    """Number, store and schedule the PDF of one document, or return the one already issued for `key`.
    `issued_at` (default now) is when the payment it bills was made."""
    existing = Invoice.objects.filter(idempotency_key=key).first()
    if existing:
        return existing
    issued_at = fields.pop("issued_at", None) or timezone.now()
    with transaction.atomic():
        number = invoice_number_take(prefix=prefix, year=issued_at.year)
        # Checked again under the sequence lock: a concurrent call with the same key that committed
        # while we waited is visible now (READ COMMITTED), and our number rolls back with us.
        existing = Invoice.objects.filter(idempotency_key=key).first()
        if existing:
            transaction.set_rollback(True)
            return existing
        fields.setdefault("total_cents", sum(line.amount_cents for line in lines))
        invoice = Invoice.objects.create(
            workspace=workspace, number=number, description=description[:200], issued_at=issued_at,
            idempotency_key=key, **fields,
        )
        InvoiceLine.objects.bulk_create([
            InvoiceLine(invoice=invoice, position=position, description=line.description[:300],
                        quantity=line.quantity, unit_cents=line.unit_cents, amount_cents=line.amount_cents,
                        credits=line.credits)
            for position, line in enumerate(lines, start=1)
        ])
    invoice_pdf_schedule(invoice=invoice)
    if invoice.kind == Invoice.INVOICE:
        receipt_schedule(invoice=invoice)
    return invoice


def invoice_pdf_schedule(*, invoice: Invoice) -> None:
    """Render the PDF after the surrounding transaction commits. If the broker is down the PDF is
    rendered on first download instead (robust=True logs the failure, never breaks the payment)."""
    invoice_id = invoice.pk
    transaction.on_commit(lambda: render_invoice_pdf.delay(invoice_id), robust=True)


def invoice_issue_for_purchase(*, purchase: Purchase) -> Invoice:
    """The invoice for a paid credit pack: the pack at its price, and its bonus credits as a
    zero-priced line."""
    pack = purchase.pack
    lines = [LineInput(f"{pack.name} credit pack: {nanos_display(purchase.credits)} credits",
                       unit_cents=purchase.amount_cents, credits=purchase.credits)]
    if purchase.bonus:
        lines.append(LineInput(f"Bonus credits with the {pack.name} pack: {nanos_display(purchase.bonus)} credits",
                               unit_cents=0, credits=purchase.bonus))
    return _issue(
        workspace=purchase.workspace, prefix=INVOICE_PREFIX, key=f"purchase:{purchase.pk}", lines=lines,
        description=f"{pack.name} credit pack", purchase=purchase, currency=purchase.currency, issued_at=purchase.paid_at,
        total_cents=purchase.amount_cents, **_buyer_snapshot(purchase.workspace),
    )


def period_text(start: datetime, end: datetime) -> str:
    # Periods are [start, end); people read the last day as included.
    last = end - timedelta(seconds=1)
    return f"{start:%b} {start.day}, {start.year} – {last:%b} {last.day}, {last.year}"


def invoice_issue_for_plan_payment(*, workspace: Workspace, plan: Plan, amount_cents: int, period_start: datetime,
                                   period_end: datetime, stripe_invoice_id: str | None, paid_at=None) -> Invoice:
    """The invoice for one period of a plan. Idempotent by the Stripe invoice id, or, for a payment
    made outside Stripe, by workspace, plan and period."""
    if stripe_invoice_id:
        key = f"plan:{stripe_invoice_id}"
    else:
        key = f"plan:{workspace.pk}:{plan.pk}:{period_start.isoformat()}"
    monthly = plan.monthly_credits
    if plan.is_custom and workspace.custom_monthly_credits is not None:
        monthly = workspace.custom_monthly_credits
    lines = [LineInput(f"{plan.name} plan, {period_text(period_start, period_end)}: "
                       f"{nanos_display(monthly)} credits per period",
                       unit_cents=amount_cents, credits=monthly)]
    return _issue(
        workspace=workspace, prefix=INVOICE_PREFIX, key=key, lines=lines, description=f"{plan.name} plan",
        stripe_invoice_id=stripe_invoice_id or None, period_start=period_start, period_end=period_end,
        total_cents=amount_cents, issued_at=paid_at, **_buyer_snapshot(workspace),
    )


def invoice_issue_for_plan_change(*, workspace: Workspace, plan: Plan, lines: list[LineInput], key: str,
                                  period_start: datetime, period_end: datetime, stripe_invoice_id: str | None = None,
                                  paid_at=None) -> Invoice:
    """The invoice of a mid-period upgrade: its lines are the quote's (billing.prorations, test
    checkout) or Stripe's proration lines, its service period the days billed. Idempotent by `key`."""
    total = sum(line.amount_cents for line in lines)
    return _issue(
        workspace=workspace, prefix=INVOICE_PREFIX, key=key, lines=lines,
        description=f"Upgrade to the {plan.name} plan", stripe_invoice_id=stripe_invoice_id or None,
        period_start=period_start, period_end=period_end, total_cents=total, issued_at=paid_at,
        **_buyer_snapshot(workspace),
    )


def credit_note_issue_for_refund(*, invoice: Invoice, amount_cents: int, reason: str, key: str) -> Invoice:
    """A credit note for a (partial) refund of `invoice`: a negative total that refers to it. The
    invoice becomes refunded or partially_refunded; the buyer is the invoice's buyer, unchanged."""
    credit_key = f"credit_note:{key}"
    existing = Invoice.objects.filter(idempotency_key=credit_key).first()
    if existing:
        return existing
    if invoice.kind != Invoice.INVOICE:
        raise InvoiceError("Only an invoice can be refunded, not a credit note.")
    if amount_cents <= 0:
        raise InvoiceError("A refund amount must be positive.")
    with transaction.atomic():
        # Lock the invoice so two refunds of it cannot together exceed its total.
        invoice = Invoice.objects.select_for_update().defer("pdf").get(pk=invoice.pk)
        refunded = -(invoice.credit_notes.aggregate(total=Sum("total_cents"))["total"] or 0)
        if refunded + amount_cents > invoice.total_cents:
            existing = Invoice.objects.filter(idempotency_key=credit_key).first()
            if existing:  # the same refund, issued while we waited for the lock
                return existing
            raise InvoiceError(
                f"Refunding {amount_cents} cents would exceed {invoice.number} "
                f"({invoice.total_cents} cents, {refunded} already refunded).")
        line_text = f"Refund of invoice {invoice.number}" + (f": {reason}" if reason else "")
        note = _issue(
            workspace=invoice.workspace, prefix=CREDIT_NOTE_PREFIX, key=credit_key,
            lines=[LineInput(line_text, unit_cents=-amount_cents)], description=f"Credit note for {invoice.number}",
            kind=Invoice.CREDIT_NOTE, refers_to=invoice, status=Invoice.ISSUED, currency=invoice.currency,
            buyer_name=invoice.buyer_name, buyer_contact=invoice.buyer_contact, buyer_email=invoice.buyer_email,
            buyer_workspace=invoice.buyer_workspace, buyer_address=invoice.buyer_address,
            buyer_tax_id=invoice.buyer_tax_id,
        )
        status = Invoice.REFUNDED if refunded + amount_cents >= invoice.total_cents else Invoice.PARTIALLY_REFUNDED
        if invoice.status != status:
            # The stored PDF shows the old status stamp: drop it and render again after commit.
            Invoice.objects.filter(pk=invoice.pk).update(status=status, pdf=None, pdf_rendered_at=None)
            invoice_pdf_schedule(invoice=invoice)
    return note


def workspace_billing_details_update(*, workspace: Workspace, actor: User, billing_name: str, billing_address: str,
                                     tax_id: str) -> Workspace:
    """The buyer details printed on future invoices (issued ones keep their snapshot)."""
    with transaction.atomic():
        workspace.billing_name = billing_name.strip()
        workspace.billing_address = billing_address.strip()
        workspace.tax_id = tax_id.strip()
        workspace.save(update_fields=["billing_name", "billing_address", "tax_id"])
        AuditEvent.objects.create(workspace=workspace, actor=actor, action="billing_details.update", detail={
            "billing_name": workspace.billing_name, "billing_address": workspace.billing_address,
            "tax_id": workspace.tax_id,
        })
    return workspace
