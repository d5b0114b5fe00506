"""Receipts: when a purchase or a plan payment is invoiced, the workspace owner gets an e-mail with
the invoice's link (the History page) and, with RECEIPT_ATTACH_PDF, the PDF itself."""

from django.conf import settings
from django.urls import reverse

from billing.emails import email_send
from billing.money import cents_display

from .models import Invoice


def receipt_send(*, invoice_id: int) -> int:
    invoice = Invoice.objects.select_related("workspace").defer("pdf").filter(pk=invoice_id).first()
    if invoice is None or not invoice.buyer_email or invoice.kind != Invoice.INVOICE:
        return 0
    workspace = invoice.workspace
    url = settings.SITE_URL + reverse("invoices:detail", kwargs={"slug": workspace.slug, "number": invoice.number})
    attachments = []
    if settings.RECEIPT_ATTACH_PDF:
        from .pdf import invoice_pdf

        attachments.append((f"{invoice.number}.pdf", invoice_pdf(invoice=invoice), "application/pdf"))
    return email_send(template="receipt", to=[invoice.buyer_email], attachments=attachments, context={
        "invoice": invoice, "workspace": workspace, "invoice_url": url, "attached": bool(attachments),
        "total": cents_display(invoice.total_cents, invoice.currency), "lines": list(invoice.lines.all()),
    })
