import io

import pytest
from django.db import transaction
from pypdf import PdfReader

from invoices import pdf as invoice_pdf_module
from invoices.models import Invoice
from invoices.pdf import StaticOnlyFetcher, invoice_pdf, invoice_pdf_render
from invoices.services import credit_note_issue_for_refund, invoice_issue_for_purchase
from tests.invoices.helpers import make_purchase


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def fetched(monkeypatch):
    """Every URL WeasyPrint asks the fetcher for."""
    urls = []
    real_fetch = StaticOnlyFetcher.fetch

    def recording_fetch(self, url, headers=None):
        urls.append(url)
        return real_fetch(self, url, headers)

    monkeypatch.setattr(StaticOnlyFetcher, "fetch", recording_fetch)
    # Decoded images are cached per process; start cold so every fetch the document needs is seen.
    monkeypatch.setattr(invoice_pdf_module, "_image_cache", {})
    return urls


@pytest.mark.django_db
def test_it_prints_the_number_lines_total_and_buyer(team, fetched):
    workspace = team.workspace
    workspace.billing_name, workspace.billing_address, workspace.tax_id = "Acme GmbH", "Hauptstr. 1\n10115 Berlin", "DE999"
    workspace.save()
    invoice = invoice_issue_for_purchase(purchase=make_purchase(workspace=workspace, pack_id="builder"))
    text = squash(pdf_text(invoice_pdf_render(invoice=invoice)))
    assert invoice.number in text
    for line in invoice.lines.all():
        assert squash(line.description) in text
    assert "$20.00" in text and "$0.00" in text and "Total (USD) $20.00" in text
    for buyer in ("Acme GmbH", "Attn: Olivia Owner", "owner@acme.test", "Hauptstr. 1", "10115 Berlin", "DE999",
                  "Acme Inc"):
        assert buyer in text
    assert "LenserFight Inc." in text and "PAID" in text.upper() and "Page 1 of 1" in text
    # The logo is the one thing fetched, from static/.
    assert len(fetched) == 1 and fetched[0].endswith("/static/invoices/logo.svg")


@pytest.mark.django_db
def test_it_prints_hostile_billing_details_as_text_and_fetches_nothing(team, fetched):
    workspace = team.workspace
    workspace.billing_name = '<img src="http://169.254.169.254/latest/meta-data/">'
    workspace.billing_address = '<img src="http://169.254.169.254/">\n<link rel=stylesheet href="file:///etc/passwd">\nfile:///etc/passwd'
    workspace.tax_id = '<style>@import url("https://evil.example/x.css");</style>'
    workspace.save()
    invoice = invoice_issue_for_purchase(purchase=make_purchase(workspace=workspace))
    # Long unbreakable strings wrap in the PDF: compare without whitespace.
    text = "".join(pdf_text(invoice_pdf_render(invoice=invoice)).split())
    for hostile in ('<img src="http://169.254.169.254/latest/meta-data/">', '<img src="http://169.254.169.254/">',
                    '<link rel=stylesheet href="file:///etc/passwd">', "file:///etc/passwd",
                    '<style>@import url("https://evil.example/x.css");</style>'):
        assert "".join(hostile.split()) in text
    assert all(url.startswith("file://") and "/static/invoices/" in url for url in fetched), fetched
    assert not any("169.254" in url or "passwd" in url or "evil" in url for url in fetched)


def test_the_fetcher_refuses_anything_but_static_files(settings):
    fetcher = StaticOnlyFetcher()
    static = invoice_pdf_module.static_root()
    assert fetcher.fetch((static / "invoices" / "logo.svg").as_uri()).read().startswith(b"<svg")
    for url in ("http://169.254.169.254/", "https://example.com/a.png", "file:///etc/passwd",
                (static / ".." / "manage.py").as_uri(), static.as_uri() + "/../config/settings.py",
                "data:text/plain,hello", "ftp://example.com/x"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)


@pytest.mark.django_db
def test_it_renders_a_missing_pdf_on_demand_and_stores_it(team):
    invoice = invoice_issue_for_purchase(purchase=make_purchase(workspace=team.workspace))
    assert Invoice.objects.get(pk=invoice.pk).pdf is None
    data = invoice_pdf(invoice=invoice)
    assert data.startswith(b"%PDF")
    stored = Invoice.objects.get(pk=invoice.pk)
    assert bytes(stored.pdf) == data and stored.pdf_rendered_at is not None
    assert invoice_pdf(invoice=invoice) == data


@pytest.mark.django_db(transaction=True)
def test_the_task_renders_after_commit_and_a_refund_rerenders_with_the_new_stamp():
    from tests.factories import make_workspace

    team = make_workspace(slug="stamp")
    with transaction.atomic():
        invoice = invoice_issue_for_purchase(purchase=make_purchase(workspace=team.workspace))
        assert Invoice.objects.get(pk=invoice.pk).pdf is None  # not inside the payment's transaction
    invoice.refresh_from_db()
    assert invoice.pdf_rendered_at is not None and "PAID" in pdf_text(bytes(invoice.pdf)).upper()
    with transaction.atomic():
        note = credit_note_issue_for_refund(invoice=invoice, amount_cents=2000, reason="duplicate", key="k")
    invoice.refresh_from_db()
    note.refresh_from_db()
    assert invoice.status == Invoice.REFUNDED and "REFUNDED" in pdf_text(bytes(invoice.pdf)).upper()
    note_text = squash(pdf_text(bytes(note.pdf)))
    assert "CREDIT NOTE" in note_text.upper() and invoice.number in note_text and "-$20.00" in note_text


@pytest.mark.django_db
def test_it_prints_seller_buyer_tax_ids_subtotal_each_tax_total_and_the_reverse_charge_note(team, settings, tmp_path):
    from invoices.services import workspace_billing_details_update
    from buying.purchases import pack_purchase_fulfil, purchase_start

    settings.SELLER = {**settings.SELLER, "tax_id": "US-EIN 12-3456789"}
    ws = team.workspace
    workspace_billing_details_update(workspace=ws, actor=None, billing_name="Acme GmbH",
                                     billing_address="Hauptstr. 1\n10115 Berlin", billing_country="DE")
    taxed = pack_purchase_fulfil(purchase=purchase_start(workspace=ws, pack_id="builder"))
    data = invoice_pdf(invoice=Invoice.objects.get(purchase=taxed))
    (tmp_path / "taxed.pdf").write_bytes(data)  # kept for a look: pdftoppm -png
    text = squash(pdf_text(data))
    for seen in ("LenserFight Inc.", "1 Market Street", "Tax ID: US-EIN 12-3456789", "Acme GmbH", "Hauptstr. 1",
                 "Germany", "Subtotal $20.00", "VAT 19% (Germany) on $20.00 $3.80", "Total (USD) $23.80"):
        assert seen in text, seen
    assert "Reverse charge" not in text
    workspace_billing_details_update(workspace=ws, actor=None, tax_id="DE136695976")
    reverse = pack_purchase_fulfil(purchase=purchase_start(workspace=ws, pack_id="builder"))
    data = invoice_pdf(invoice=Invoice.objects.get(purchase=reverse))
    (tmp_path / "reverse-charge.pdf").write_bytes(data)
    text = squash(pdf_text(data))
    for seen in ("Tax ID: DE136695976", "Subtotal $20.00", "VAT (reverse charge) $0.00", "Total (USD) $20.00",
                 "Reverse charge: VAT to be accounted for by the recipient. Buyer's VAT id: DE136695976."):
        assert seen in text, seen
