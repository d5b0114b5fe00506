import pytest
from django.urls import reverse

from billing.models import User
from invoices.models import Invoice
from invoices.services import invoice_issue_for_purchase
from tests.invoices.helpers import make_purchase


@pytest.fixture
def staff_client(client, db):
    client.force_login(User.objects.create_superuser(email="staff@lenserfight.test", password="pw-staff-123"))
    return client


@pytest.fixture
def invoice(team):
    return invoice_issue_for_purchase(purchase=make_purchase(workspace=team.workspace, pack_id="pro"))


@pytest.mark.django_db
def test_it_searches_and_filters_invoices(staff_client, invoice):
    url = reverse("admin:invoices_invoice_changelist")
    assert invoice.number in staff_client.get(url, {"q": "owner@acme.test"}).content.decode()
    assert invoice.number not in staff_client.get(url, {"q": "nobody"}).content.decode()
    year = str(invoice.issued_at.year)
    assert invoice.number in staff_client.get(url, {"kind": "invoice", "status": "paid", "year": year}).content.decode()
    assert invoice.number not in staff_client.get(url, {"kind": "credit_note"}).content.decode()


@pytest.mark.django_db
def test_invoices_are_read_only_in_admin(staff_client, invoice):
    page = staff_client.get(reverse("admin:invoices_invoice_change", args=[invoice.pk]))
    assert page.status_code == 200 and 'name="buyer_name"' not in page.content.decode()
    assert staff_client.post(reverse("admin:invoices_invoice_change", args=[invoice.pk]), {}).status_code == 403
    assert staff_client.get(reverse("admin:invoices_invoice_delete", args=[invoice.pk])).status_code == 403
    assert staff_client.get(reverse("admin:invoices_invoice_add")).status_code == 403


@pytest.mark.django_db
def test_it_rerenders_pdfs_and_serves_them(staff_client, invoice):
    response = staff_client.post(reverse("admin:invoices_invoice_changelist"), {
        "action": "rerender_pdf", "_selected_action": [invoice.pk]}, follow=True)
    assert "Re-rendered 1 PDF" in response.content.decode()
    stored = Invoice.objects.get(pk=invoice.pk)
    assert stored.pdf and stored.pdf_rendered_at
    pdf = staff_client.get(reverse("admin:invoices_invoice_pdf", args=[invoice.pk]))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


@pytest.mark.django_db
def test_it_exports_invoices_as_csv(staff_client, invoice):
    url = reverse("admin:invoices_invoice_export")
    page = staff_client.get(url)
    assert page.status_code == 200
    form = page.context["form"]
    data = {"format": "0", "export_items": [invoice.pk]}
    for name in form.fields:
        if name.startswith("invoiceresource_"):
            data[name] = "on"
    response = staff_client.post(url, data)
    assert response.status_code == 200, response.content[:500]
    body = response.content.decode()
    assert body.splitlines()[0].startswith("number,kind,status")
    assert invoice.number in body and "75.00" in body and "owner@acme.test" in body


@pytest.mark.django_db
@pytest.mark.parametrize("year", ["²⁰²⁶", "٢٠٢٦", "year"])
def test_a_year_filter_that_is_not_plain_digits_lists_everything_not_a_500(staff_client, invoice, year):
    response = staff_client.get(reverse("admin:invoices_invoice_changelist"), {"year": year})
    assert response.status_code == 200 and invoice.number in response.content.decode()
