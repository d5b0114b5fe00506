"""Invoices and credit notes with gapless yearly numbers (LF-2026-000001, CN-2026-000001)."""

from django.db import models
from django.utils import timezone

from billing.models import Purchase, Workspace


class InvoiceSequence(models.Model):
    """The last number used per prefix and year; locked with SELECT ... FOR UPDATE while a number is
    taken, in the same transaction as the invoice, so numbers are never shared and never skipped."""

    prefix = models.CharField(max_length=8)  # LF or CN
    year = models.IntegerField()
    last_number = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prefix", "year"], name="one_sequence_per_prefix_year")]


class Invoice(models.Model):
    INVOICE, CREDIT_NOTE = "invoice", "credit_note"
    PAID, REFUNDED, PARTIALLY_REFUNDED, ISSUED = "paid", "refunded", "partially_refunded", "issued"
    STATUSES = [(PAID, "Paid"), (REFUNDED, "Refunded"), (PARTIALLY_REFUNDED, "Partially refunded"), (ISSUED, "Issued")]

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=32, unique=True)
    kind = models.CharField(max_length=16, choices=[(INVOICE, "Invoice"), (CREDIT_NOTE, "Credit note")], default=INVOICE)
    refers_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes")
    status = models.CharField(max_length=24, choices=STATUSES, default=PAID)
    description = models.CharField(max_length=200)
    issued_at = models.DateTimeField(default=timezone.now)
    currency = models.CharField(max_length=3, default="usd")
    # subtotal (the lines) + tax (the InvoiceTax rows) = total, a database constraint. Negative on a
    # credit note. Stripe payments carry Stripe Tax's figures; the others the tax table's (tax.py).
    subtotal_cents = models.IntegerField(default=0)
    tax_cents = models.IntegerField(default=0)
    total_cents = models.IntegerField()
    # No tax charged because the buyer accounts for it (a valid VAT/GST id abroad): the note is printed.
    reverse_charge = models.BooleanField(default=False)
    # Buyer snapshot at issue time: an invoice never changes when the workspace does.
    buyer_name = models.CharField(max_length=200)  # Workspace.billing_name, else the owner's name
    buyer_contact = models.CharField(max_length=200, blank=True)  # the owner's name when billing_name is set
    buyer_email = models.EmailField()
    buyer_workspace = models.CharField(max_length=120)
    buyer_address = models.TextField(blank=True)
    buyer_tax_id = models.CharField(max_length=64, blank=True)
    buyer_country = models.CharField(max_length=2, blank=True)  # ISO 3166-1 alpha-2
    # What it bills: exactly one of purchase / stripe_invoice_id (plan payment) / refers_to (credit note).
    purchase = models.ForeignKey(Purchase, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices")
    stripe_invoice_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    pdf = models.BinaryField(null=True, blank=True, editable=False)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [models.CheckConstraint(condition=models.Q(total_cents=models.F("subtotal_cents") + models.F("tax_cents")),
                                              name="invoice_total_is_subtotal_plus_tax")]

    def __str__(self):
        return self.number

    @property
    def is_credit_note(self) -> bool:
        return self.kind == self.CREDIT_NOTE

    @property
    def pdf_filename(self) -> str:
        return f"{self.number}.pdf"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.IntegerField()
    description = models.CharField(max_length=300)
    quantity = models.IntegerField(default=1)
    unit_cents = models.IntegerField()
    amount_cents = models.IntegerField()
    credits = models.BigIntegerField(default=0)  # nanocredits delivered by this line

    class Meta:
        ordering = ["invoice", "position"]


class InvoiceTax(models.Model):
    """One tax of an invoice: its rate and jurisdiction, the amount it was charged on and the tax.
    The rows of an invoice sum to Invoice.tax_cents."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="taxes")
    position = models.IntegerField()
    label = models.CharField(max_length=64)  # "VAT", "GST", "Sales tax"
    jurisdiction = models.CharField(max_length=64)  # a country code, or Stripe's jurisdiction ("DE", "CA - ON")
    rate = models.DecimalField(max_digits=7, decimal_places=4)  # percent: 19.0000
    taxable_cents = models.IntegerField()
    amount_cents = models.IntegerField()

    class Meta:
        ordering = ["invoice", "position"]
