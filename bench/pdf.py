"""Invoice PDFs/s, warm, against WeasyPrint rendering a one-line page in the same process.

It also renders the invoice's own HTML without its stylesheet and logo, in the same rounds: what this
content costs with no styling at all (issue 13; docs/performance.md)."""

import re
import time

from .common import report, reset_business_data, setup_django


def run(*, quick: bool = False) -> None:
    setup_django()
    reset_business_data()
    from django.template.loader import render_to_string
    from weasyprint import HTML

    from buying.purchases import purchase_record_manual
    from invoices.models import Invoice
    from invoices.pdf import TEMPLATE, invoice_pdf_data, pdf_from_data

    from .data import bench_workspace

    workspace, _, _ = bench_workspace("pdf")
    purchase_record_manual(workspace=workspace, pack_id="builder", reference="bench")
    invoice = Invoice.objects.filter(workspace=workspace).first()
    data = invoice_pdf_data(invoice=invoice)
    count = 5 if quick else 30
    unstyled = re.sub(r"<img[^>]*>", "", render_to_string(TEMPLATE, {"doc": data}))
    pdf_from_data(data)
    HTML(string="<p>One line.</p>").write_pdf()  # warm all three
    HTML(string=unstyled).write_pdf()
    # Interleaved in rounds of 5, so that a change in the machine's load during the run weighs on the
    # figure and on its baseline alike.
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
    baseline = (count // 5 * 5) / baseline_seconds
    rate = (count // 5 * 5) / invoice_seconds
    unstyled_rate = (count // 5 * 5) / unstyled_seconds
    report("pdf", rate, "PDFs/s", baseline, ">= 0.35",
           extra=f"the invoice's HTML without stylesheet or logo {unstyled_rate:,.1f}/s ({unstyled_rate / baseline:.2f})")
