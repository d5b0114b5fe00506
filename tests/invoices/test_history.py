import pytest
from django.urls import reverse

from billing.models import AuditEvent
from invoices.services import credit_note_issue_for_refund, invoice_issue_for_purchase
from tests.factories import make_workspace
from tests.invoices.helpers import make_purchase


@pytest.fixture
def invoice(team):
    return invoice_issue_for_purchase(purchase=make_purchase(workspace=team.workspace, pack_id="builder"))


def urls(slug: str, number: str) -> dict:
    return {
        "history": reverse("invoices:history", kwargs={"slug": slug}),
        "detail": reverse("invoices:detail", kwargs={"slug": slug, "number": number}),
        "pdf": reverse("invoices:pdf", kwargs={"slug": slug, "number": number}),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["owner", "admin"])
def test_it_shows_history_detail_and_pdf_to_owner_and_admins(client, team, invoice, persona):
    client.force_login(getattr(team, persona))
    pages = urls("acme", invoice.number)
    history = client.get(pages["history"])
    assert history.status_code == 200
    body = history.content.decode()
    assert invoice.number in body and "Builder credit pack" in body and "$20.00" in body and "Paid" in body
    assert pages["pdf"] in body and pages["detail"] in body
    detail = client.get(pages["detail"])
    assert detail.status_code == 200 and "Bonus credits with the Builder pack" in detail.content.decode()
    pdf = client.get(pages["pdf"])
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == f'inline; filename="{invoice.number}.pdf"'
    assert pdf.content.startswith(b"%PDF")


@pytest.mark.django_db
def test_it_forbids_members(client, team, invoice):
    client.force_login(team.member)
    for url in urls("acme", invoice.number).values():
        assert client.get(url).status_code == 403


@pytest.mark.django_db
def test_it_hides_everything_from_outsiders(client, team, outsider, invoice):
    client.force_login(outsider)
    for url in urls("acme", invoice.number).values():
        assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_it_404s_another_workspaces_number(client, team, invoice):
    other = make_workspace(slug="other")
    foreign = invoice_issue_for_purchase(purchase=make_purchase(workspace=other.workspace))
    client.force_login(team.owner)
    pages = urls("acme", foreign.number)
    assert client.get(pages["detail"]).status_code == 404
    assert client.get(pages["pdf"]).status_code == 404
    assert foreign.number not in client.get(pages["history"]).content.decode()


@pytest.mark.django_db
def test_it_redirects_anonymous_visitors_to_login(client, invoice):
    response = client.get(urls("acme", invoice.number)["pdf"])
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_it_shows_an_empty_state(client, team):
    client.force_login(team.owner)
    response = client.get(reverse("invoices:history", kwargs={"slug": "acme"}))
    assert response.status_code == 200 and "No invoices yet" in response.content.decode()


@pytest.mark.django_db
def test_it_lists_credit_notes_with_their_invoice(client, team, invoice):
    note = credit_note_issue_for_refund(invoice=invoice, amount_cents=2000, reason="duplicate", key="k1")
    client.force_login(team.owner)
    body = client.get(urls("acme", invoice.number)["history"]).content.decode()
    assert note.number in body and "-$20.00" in body and "Refunded" in body
    detail = client.get(urls("acme", invoice.number)["detail"]).content.decode()
    assert note.number in detail
