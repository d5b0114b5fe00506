"""Issuing invoices and credit notes.

Each issuing function is called inside the caller's transaction (the purchase or plan payment it
bills), so the invoice exists exactly when the payment does. Each is idempotent by
Invoice.idempotency_key: a second call for the same event returns the first invoice.

    invoice_issue_for_purchase(*, purchase) -> Invoice
    invoice_issue_for_plan_payment(*, workspace, plan, amount_cents, period_start, period_end,
                                   stripe_invoice_id, tax) -> Invoice
    invoice_issue_for_plan_change(*, workspace, plan, lines, key, period_start, period_end, tax) -> Invoice
    credit_note_issue_for_refund(*, invoice, amount_cents, reason, key) -> Invoice
    workspace_billing_details_update(*, workspace, actor, ...) -> Workspace

Every invoice is subtotal (its lines, before tax) + tax (one InvoiceTax row per tax) = total, a
database constraint. The tax is the caller's TaxDecision (invoices/tax.py): Stripe Tax's figures
for a Stripe payment, else the tax table's for the workspace's billing details (tax=None).

Numbers are gapless per prefix and year (LF-2026-000001, CN-2026-000001): the InvoiceSequence row is
locked with SELECT ... FOR UPDATE until the caller commits, so two payments never share a number,
and a rolled-back payment rolls its number back too (nothing is skipped). The price is that issuing
is serialized per prefix and year; the lock is held only for the rest of the caller's short
transaction.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django_countries import countries

from billing.audit import audit_record
from billing.models import Plan, Purchase, User, Workspace
from billing.money import nanos_display

from .models import Invoice, InvoiceLine, InvoiceSequence, InvoiceTax
from .tasks import receipt_schedule, render_invoice_pdf
from .tax import TaxDecision, TaxIdError, TaxLine, tax_id_normalise, tax_refund_share, workspace_tax

INVOICE_PREFIX = "LF"
CREDIT_NOTE_PREFIX = "CN"


class InvoiceError(ValueError):
    pass


class BillingDetailsError(ValueError):
    """Billing details that cannot be saved; the message names the field and the problem."""


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
        "buyer_email": workspace.billing_email or (owner.email if owner else ""),
        "buyer_workspace": workspace.name,
        "buyer_address": workspace.billing_address,
        "buyer_tax_id": workspace.tax_id,
        "buyer_country": workspace.billing_country.code or "",
    }


def _issue(*, workspace: Workspace, prefix: str, key: str, lines: list[LineInput], description: str,
           tax: TaxDecision, **fields) -> Invoice:
    """Number, store and schedule the PDF of one document, or return the one already issued for `key`.
    `issued_at` (default now) is when the payment it bills was made. Its subtotal is its lines', its
    total the subtotal plus `tax`."""
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
        subtotal = sum(line.amount_cents for line in lines)
        invoice = Invoice.objects.create(
            workspace=workspace, number=number, description=description[:200], issued_at=issued_at,
            idempotency_key=key, subtotal_cents=subtotal, tax_cents=tax.tax_cents,
            total_cents=subtotal + tax.tax_cents, reverse_charge=tax.reverse_charge, **fields,
        )
        InvoiceLine.objects.bulk_create([
            InvoiceLine(invoice=invoice, position=position, description=line.description[:300],
                        quantity=line.quantity, unit_cents=line.unit_cents, amount_cents=line.amount_cents,
                        credits=line.credits)
            for position, line in enumerate(lines, start=1)
        ])
        InvoiceTax.objects.bulk_create([
            InvoiceTax(invoice=invoice, position=position, label=line.label[:64], jurisdiction=line.jurisdiction[:64],
                       rate=line.rate, taxable_cents=line.taxable_cents, amount_cents=line.amount_cents)
            for position, line in enumerate(tax.lines, start=1)
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
    zero-priced line, with the tax the purchase recorded (Purchase.tax_detail)."""
    pack = purchase.pack
    lines = [LineInput(f"{pack.name} credit pack: {nanos_display(purchase.credits)} credits",
                       unit_cents=purchase.amount_cents, credits=purchase.credits)]
    if purchase.bonus:
        lines.append(LineInput(f"Bonus credits with the {pack.name} pack: {nanos_display(purchase.bonus)} credits",
                               unit_cents=0, credits=purchase.bonus))
    return _issue(
        workspace=purchase.workspace, prefix=INVOICE_PREFIX, key=f"purchase:{purchase.pk}", lines=lines,
        description=f"{pack.name} credit pack", purchase=purchase, currency=purchase.currency, issued_at=purchase.paid_at,
        tax=TaxDecision.from_json(purchase.tax_detail), **_buyer_snapshot(purchase.workspace),
    )


def period_text(start: datetime, end: datetime) -> str:
    # Periods are [start, end); people read the last day as included.
    last = end - timedelta(seconds=1)
    return f"{start:%b} {start.day}, {start.year} – {last:%b} {last.day}, {last.year}"


def invoice_issue_for_plan_payment(*, workspace: Workspace, plan: Plan, amount_cents: int, period_start: datetime,
                                   period_end: datetime, stripe_invoice_id: str | None, paid_at=None,
                                   tax: TaxDecision | None = None) -> Invoice:
    """The invoice for one period of a plan, `amount_cents` before tax. Idempotent by the Stripe
    invoice id, or, for a payment made outside Stripe, by workspace, plan and period."""
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
        issued_at=paid_at, tax=tax or workspace_tax(workspace=workspace, amounts=[amount_cents]),
        **_buyer_snapshot(workspace),
    )


def invoice_issue_for_plan_change(*, workspace: Workspace, plan: Plan, lines: list[LineInput], key: str,
                                  period_start: datetime, period_end: datetime, stripe_invoice_id: str | None = None,
                                  paid_at=None, tax: TaxDecision | None = None) -> Invoice:
    """The invoice of a mid-period upgrade: its lines are the quote's (billing.prorations, test
    checkout) or Stripe's proration lines, its service period the days billed; its tax Stripe's,
    or the table's on each line. Idempotent by `key`."""
    return _issue(
        workspace=workspace, prefix=INVOICE_PREFIX, key=key, lines=lines,
        description=f"Upgrade to the {plan.name} plan", stripe_invoice_id=stripe_invoice_id or None,
        period_start=period_start, period_end=period_end, issued_at=paid_at,
        tax=tax or workspace_tax(workspace=workspace, amounts=[line.amount_cents for line in lines]),
        **_buyer_snapshot(workspace),
    )


def credit_note_issue_for_refund(*, invoice: Invoice, amount_cents: int, reason: str, key: str) -> Invoice:
    """A credit note for a (partial) refund of `amount_cents` of `invoice`'s total: a negative
    total that refers to it, carrying back the invoice's tax in the same proportion (each tax line
    its share, tax.tax_refund_share). The invoice becomes refunded or partially_refunded; the buyer
    is the invoice's buyer, unchanged."""
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
        taxes = list(invoice.taxes.all())
        shares = tax_refund_share(lines=[(t.taxable_cents, t.amount_cents) for t in taxes], total_cents=invoice.total_cents,
                                  refunded_before=refunded, refunded_now=amount_cents)
        tax_back = TaxDecision(source="refund", reverse_charge=invoice.reverse_charge, lines=tuple(
            TaxLine(t.label, t.jurisdiction, t.rate, -taxable, -tax) for t, (taxable, tax) in zip(taxes, shares)))
        note = _issue(
            workspace=invoice.workspace, prefix=CREDIT_NOTE_PREFIX, key=credit_key,
            lines=[LineInput(line_text, unit_cents=-(amount_cents + tax_back.tax_cents))], tax=tax_back,
            description=f"Credit note for {invoice.number}",
            kind=Invoice.CREDIT_NOTE, refers_to=invoice, status=Invoice.ISSUED, currency=invoice.currency,
            buyer_name=invoice.buyer_name, buyer_contact=invoice.buyer_contact, buyer_email=invoice.buyer_email,
            buyer_workspace=invoice.buyer_workspace, buyer_address=invoice.buyer_address,
            buyer_tax_id=invoice.buyer_tax_id, buyer_country=invoice.buyer_country,
        )
        status = Invoice.REFUNDED if refunded + amount_cents >= invoice.total_cents else Invoice.PARTIALLY_REFUNDED
        if invoice.status != status:
            # The stored PDF shows the old status stamp: drop it and render again after commit.
            Invoice.objects.filter(pk=invoice.pk).update(status=status, pdf=None, pdf_rendered_at=None)
            invoice_pdf_schedule(invoice=invoice)
    return note


BILLING_DETAIL_FIELDS = ("billing_name", "billing_address", "billing_country", "tax_id", "billing_email")


def _billing_details(workspace: Workspace) -> dict:
    return {"billing_name": workspace.billing_name, "billing_address": workspace.billing_address,
            "billing_country": workspace.billing_country.code or "", "tax_id": workspace.tax_id,
            "billing_email": workspace.billing_email}


def workspace_billing_details_update(*, workspace: Workspace, actor: User | None, source: str = "settings",
                                     **changes: str) -> Workspace:
    """Set the billing details printed on future invoices (issued ones keep their snapshot) and
    used for tax: any of billing_name (the legal name), billing_address, billing_country (ISO
    3166-1 alpha-2), tax_id (checked for the country, invoices/tax.py) and billing_email. Fields
    not given keep their value. Raises BillingDetailsError, changing nothing, on a bad value.

    One function for the page, `manage.py set_billing_details` and what Stripe Checkout collected
    (`source` "stripe": customer.updated, customer.tax_id.created). An audit row records the
    fields that changed, before and after."""
    unknown = set(changes) - set(BILLING_DETAIL_FIELDS)
    if unknown:
        raise BillingDetailsError(f"Unknown billing detail: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        ws = Workspace.objects.select_for_update(of=("self",)).get(pk=workspace.pk)
        before = _billing_details(ws)
        after = {**before, **{name: " ".join((value or "").split()) if name != "billing_address" else
                              "\n".join(line.strip() for line in (value or "").strip().splitlines())
                              for name, value in changes.items()}}
        after["billing_country"] = after["billing_country"].upper()
        if after["billing_country"] and after["billing_country"] not in countries:
            raise BillingDetailsError(f"{after['billing_country']} is not an ISO 3166-1 country code (e.g. DE, FR, US).")
        for name, limit in (("billing_name", 200), ("billing_address", 1000), ("billing_email", 254)):
            if len(after[name]) > limit:
                raise BillingDetailsError(f"The {name.replace('_', ' ')} has at most {limit} characters.")
        if after["billing_email"]:
            try:
                validate_email(after["billing_email"])
            except ValidationError:
                raise BillingDetailsError(f"{after['billing_email']} is not a valid e-mail address.") from None
        try:
            after["tax_id"] = tax_id_normalise(country=after["billing_country"], tax_id=after["tax_id"])
        except TaxIdError as error:
            raise BillingDetailsError(str(error)) from None
        changed = [name for name in BILLING_DETAIL_FIELDS if after[name] != before[name]]
        if changed:
            for name in changed:
                setattr(ws, name, after[name])
            ws.save(update_fields=changed)
            audit_record(workspace_id=ws.pk, actor=actor, action="billing_details.update",
                         before={name: before[name] for name in changed},
                         after={"source": source, **{name: after[name] for name in changed}})
    workspace.refresh_from_db()
    return workspace
