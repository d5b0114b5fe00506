from celery import shared_task
from django.db import OperationalError, transaction

from .emails import receipt_send
from .models import Invoice
from .pdf import invoice_pdf_render


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def render_invoice_pdf(invoice_id: int) -> None:
    """Render and store an invoice's PDF. Idempotent: rendering again stores the same document."""
    invoice = Invoice.objects.defer("pdf").filter(pk=invoice_id).first()
    if invoice is not None:
        invoice_pdf_render(invoice=invoice)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def send_receipt(invoice_id: int) -> None:
    """E-mail the receipt of an invoice to the workspace owner (invoices.emails)."""
    receipt_send(invoice_id=invoice_id)


def receipt_schedule(*, invoice: Invoice) -> None:
    """Send after the invoice's transaction commits, through Celery (the PDF render can take a
    moment); a broker that is down is logged and never breaks the payment (robust=True)."""
    invoice_id = invoice.pk
    transaction.on_commit(lambda: send_receipt.delay(invoice_id), robust=True)
