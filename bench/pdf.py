"""The History page's invoice PDF: p95 of its download, which serves the PDF rendered when the
invoice was issued (invoices.pdf.invoice_pdf), as a report (issue 26 retired the render target).

Rendering is still measured and printed, in the same process and in rounds of 5: the invoice, a
one-line WeasyPrint page, and the invoice's own HTML without its stylesheet and logo (which renders
at the styled invoice's speed: the cost is in the content's boxes, docs/performance.md). The last
line's figure is the download's p95; its baseline, the warm render of the same invoice."""

import re
import time

from .common import p95, report, reset_business_data, setup_django, timings


def run(*, quick: bool = False) -> None:
    setup_django(RATE_LIMIT_ENABLED="false")
    reset_business_data()
    from django.template.loader import render_to_string
    from django.test import Client
    from weasyprint import HTML

    from buying.purchases import purchase_record_manual
    from invoices.models import Invoice
    from invoices.pdf import TEMPLATE, invoice_pdf, invoice_pdf_data, pdf_from_data

    from .data import bench_workspace

    workspace, membership, _ = bench_workspace("pdf")
    purchase_record_manual(workspace=workspace, pack_id="builder", reference="bench")
    invoice = Invoice.objects.filter(workspace=workspace).first()
    invoice_pdf(invoice=invoice)  # rendered and stored, as the Celery task does when it is issued
    data = invoice_pdf_data(invoice=invoice)
    count = 5 if quick else 30
    unstyled = re.sub(r"<img[^>]*>", "", render_to_string(TEMPLATE, {"doc": data}))
    pdf_from_data(data)
    HTML(string="<p>One line.</p>").write_pdf()  # warm all three
    HTML(string=unstyled).write_pdf()
    # Interleaved in rounds of 5, so that a change in the machine's load during the run weighs on the
    # figures alike.
    baseline_seconds = invoice_seconds = unstyled_seconds = 0.0
    for _ in range(count // 5):
        started = time.perf_counter()
        for _ in range(5):
            HTML(string="<p>One line.</p>").write_pdf()
        baseline_seconds += time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(5):
            pdf_from_data(data)
        invoice_seconds += time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(5):
            HTML(string=unstyled).write_pdf()
        unstyled_seconds += time.perf_counter() - started
    rendered = count // 5 * 5
    baseline, rate, unstyled_rate = rendered / baseline_seconds, rendered / invoice_seconds, rendered / unstyled_seconds
    print(f"  renders: invoice {rate:,.1f}/s, one-line page {baseline:,.1f}/s ({rate / baseline:.2f}), the "
          f"invoice's HTML without stylesheet or logo {unstyled_rate:,.1f}/s ({unstyled_rate / baseline:.2f})",
          flush=True)

    client = Client()
    client.force_login(membership.user)
    url = f"/w/{workspace.slug}/settings/billing/history/{invoice.number}.pdf"
    timings(client, url, 5)  # warm
    download = p95(timings(client, url, 50 if quick else 300))
    render_ms = 1000 / rate
    report("pdf", download * 1000, "ms p95 (History page PDF download)", render_ms, "none: a report (issue 26)",
           extra=f"baseline: rendering that invoice, warm ({render_ms:.1f} ms)")
