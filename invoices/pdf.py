"""Invoice PDFs with WeasyPrint.

The template (templates/invoices/invoice_pdf.html) renders from a plain dict that
`invoice_pdf_data` prepares: it never queries, and Django's autoescaping escapes every field, so a
billing address such as `<img src="http://169.254.169.254/">` prints as text.

Rendering fetches nothing but the project's own static files: `StaticOnlyFetcher` serves file: URLs
inside static/ and refuses everything else (http, https, data:, other files). The stylesheet, the
font configuration and decoded images are built once per process and reused, so a warm render does
layout and PDF writing only.
"""

import mimetypes
import threading
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django_countries import countries
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from billing.money import cents_display, nanos_display

from .models import Invoice
from .tax import REVERSE_CHARGE_NOTE, TaxLine

TEMPLATE = "invoices/invoice_pdf.html"
STYLESHEET = "invoices/invoice_pdf.css"


def static_root() -> Path:
    return Path(settings.STATICFILES_DIRS[0]).resolve()


class StaticOnlyFetcher(URLFetcher):
    """Serves file: URLs that resolve inside the project's static/ directory; refuses anything else.
    WeasyPrint turns a refusal into a warning and renders without the resource."""

    _cache: dict[Path, bytes] = {}

    def __init__(self):
        super().__init__(timeout=1, allowed_protocols=("file",), allow_redirects=False)

    def fetch(self, url, headers=None):
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            raise ValueError(f"Refusing to fetch {url[:80]!r}: only the project's static files are served.")
        root = static_root()
        path = Path(unquote(parts.path)).resolve()  # resolves .. and symlinks before the check
        if not path.is_relative_to(root) or not path.is_file():
            raise ValueError(f"Refusing to fetch {url[:80]!r}: not a file under static/.")
        body = self._cache.get(path)
        if body is None:
            body = self._cache[path] = path.read_bytes()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(path.as_uri(), body=body, headers={"Content-Type": content_type})


_lock = threading.Lock()
_image_cache: dict = {}


@lru_cache(maxsize=1)
def _renderer() -> tuple[FontConfiguration, CSS, StaticOnlyFetcher]:
    """Built once per process: fontconfig setup and stylesheet parsing dominate a cold render."""
    fetcher = StaticOnlyFetcher()
    font_config = FontConfiguration()
    stylesheet = CSS(filename=str(static_root() / STYLESHEET), font_config=font_config, url_fetcher=fetcher)
    return font_config, stylesheet, fetcher


def _date(moment) -> str:
    return f"{moment:%b} {moment.day}, {moment.year}" if moment else ""


STATUS_STAMPS = {
    Invoice.PAID: ("Paid", "paid"),
    Invoice.REFUNDED: ("Refunded", "refunded"),
    Invoice.PARTIALLY_REFUNDED: ("Partially refunded", "partial"),
    Invoice.ISSUED: ("Issued", "issued"),
}


def invoice_pdf_data(*, invoice: Invoice) -> dict:
    """Everything the PDF shows, as display strings. The template only lays this out."""
    seller = settings.SELLER
    currency = invoice.currency
    invoice_lines = list(invoice.lines.all())
    lines = [
        {
            "description": line.description,
            "quantity": line.quantity,
            "unit": cents_display(line.unit_cents, currency),
            "amount": cents_display(line.amount_cents, currency),
            "credits": nanos_display(line.credits) if line.credits else "",
        }
        for line in invoice_lines
    ]
    stamp, stamp_class = STATUS_STAMPS.get(invoice.status, (invoice.get_status_display(), "issued"))
    period = ""
    if invoice.period_start and invoice.period_end:
        period_last_day = invoice.period_end - timedelta(seconds=1)
        period = f"{_date(invoice.period_start)} – {_date(period_last_day)}"
    credit_note = invoice.kind == Invoice.CREDIT_NOTE
    return {
        "title": "Credit note" if credit_note else "Invoice",
        "number": invoice.number,
        "status": invoice.status,
        "stamp": stamp,
        "stamp_class": stamp_class,
        "issued": _date(invoice.issued_at),
        "period": period,
        "refers_to": invoice.refers_to.number if invoice.refers_to_id else "",
        "description": invoice.description,
        "currency": currency.upper(),
        "seller": {
            "name": seller.get("name", ""),
            "address": seller.get("address", ""),
            "email": seller.get("email", ""),
            "tax_id": seller.get("tax_id", ""),
            "country": countries.name(seller.get("country", "")) or seller.get("country", ""),
        },
        "buyer": {
            "name": invoice.buyer_name,
            "contact": invoice.buyer_contact,
            "email": invoice.buyer_email,
            "workspace": invoice.buyer_workspace,
            "address": invoice.buyer_address,
            "tax_id": invoice.buyer_tax_id,
            "country": countries.name(invoice.buyer_country) if invoice.buyer_country else "",
        },
        "lines": lines,
        "subtotal": cents_display(invoice.subtotal_cents, currency),
        "taxes": [
            {"text": TaxLine(tax.label, tax.jurisdiction, tax.rate, tax.taxable_cents, tax.amount_cents).text,
             "taxable": cents_display(tax.taxable_cents, currency), "amount": cents_display(tax.amount_cents, currency)}
            for tax in invoice.taxes.all()
        ],
        "no_tax": cents_display(0, currency) if not invoice.tax_cents else "",
        "reverse_charge": REVERSE_CHARGE_NOTE if invoice.reverse_charge else "",
        "total": cents_display(invoice.total_cents, currency),
        "total_label": "Total credited" if credit_note else "Total",
        "credit_notes": [
            f"{note.number} ({cents_display(note.total_cents, note.currency)}, {_date(note.issued_at)})"
            for note in invoice.credit_notes.defer("pdf").order_by("issued_at", "id")
        ] if not credit_note else [],
        "paid_label": "Refunded to the original payment method" if credit_note else (
            f"Paid on {_date(invoice.issued_at)}" if invoice.status != Invoice.ISSUED else ""),
    }


def pdf_from_data(data: dict) -> bytes:
    """Lay out one document. Pure: no database, no network."""
    font_config, stylesheet, fetcher = _renderer()
    html = render_to_string(TEMPLATE, {"doc": data})
    document = HTML(string=html, base_url=static_root().as_uri() + "/", url_fetcher=fetcher)
    # WeasyPrint's font configuration is shared state; one render at a time per process.
    with _lock:
        return document.write_pdf(stylesheets=[stylesheet], font_config=font_config, cache=_image_cache)


def invoice_pdf_render(*, invoice: Invoice) -> bytes:
    """Render and store the PDF of `invoice` (the Celery task and the admin's re-render action)."""
    data = invoice_pdf_data(invoice=invoice)
    pdf = pdf_from_data(data)
    now = timezone.now()
    # Stored only if the status is still the one printed: a refund that landed meanwhile cleared
    # the PDF and scheduled its own render, which must not be overwritten by a stale stamp.
    Invoice.objects.filter(pk=invoice.pk, status=data["status"]).update(pdf=pdf, pdf_rendered_at=now)
    invoice.pdf, invoice.pdf_rendered_at = pdf, now
    return pdf


def invoice_pdf(*, invoice: Invoice) -> bytes:
    """The stored PDF, rendered now (and stored) if it is missing."""
    stored = Invoice.objects.filter(pk=invoice.pk).values_list("pdf", flat=True).first()
    if stored:
        return bytes(stored)
    return invoice_pdf_render(invoice=invoice)
