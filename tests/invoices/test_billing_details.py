"""Settings -> Billing -> Billing details, and `manage.py set_billing_details`: one service
(invoices.services.workspace_billing_details_update) behind both."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.models import AuditEvent
from invoices.services import invoice_issue_for_purchase
from tests.invoices.helpers import make_purchase

URL = reverse("invoices:billing_details", kwargs={"slug": "acme"})
GOOD = {"billing_name": "Acme GmbH", "billing_address": "<b>Hauptstr. 1</b>\n10115 Berlin", "billing_country": "DE",
        "tax_id": "de 136 695 976", "billing_email": "invoices@acme.de"}


@pytest.mark.django_db
def test_it_saves_billing_details_for_future_invoices_only(client, team):
    issued = invoice_issue_for_purchase(purchase=make_purchase(workspace=team.workspace))
    client.force_login(team.admin)
    assert client.get(URL).status_code == 200
    response = client.post(URL, GOOD)
    assert response.status_code == 302
    ws = team.workspace
    ws.refresh_from_db()
    assert (ws.billing_name, ws.billing_country.code, ws.tax_id, ws.billing_email) == (
        "Acme GmbH", "DE", "DE136695976", "invoices@acme.de")  # the id stored as VIES writes it
    issued.refresh_from_db()
    assert (issued.buyer_name, issued.buyer_tax_id, issued.buyer_country) == ("Olivia Owner", "", "")
    later = invoice_issue_for_purchase(purchase=make_purchase(workspace=ws))
    assert (later.buyer_name, later.buyer_tax_id, later.buyer_country, later.buyer_email) == (
        "Acme GmbH", "DE136695976", "DE", "invoices@acme.de")
    detail = client.get(reverse("invoices:detail", kwargs={"slug": "acme", "number": later.number})).content.decode()
    assert "&lt;b&gt;Hauptstr. 1&lt;/b&gt;" in detail and "<b>Hauptstr" not in detail and "Germany" in detail


@pytest.mark.django_db
def test_it_records_the_change_before_and_after_in_the_audit_log(client, team):
    client.force_login(team.owner)
    client.post(URL, GOOD)
    client.post(URL, {**GOOD, "billing_name": "Acme SE"})
    first, second = AuditEvent.objects.filter(action="billing_details.update").order_by("id")
    assert first.actor == team.owner and first.before["tax_id"] == "" and first.detail["tax_id"] == "DE136695976"
    assert second.before == {"billing_name": "Acme GmbH"}  # only what changed
    assert second.detail == {"source": "settings", "billing_name": "Acme SE"}
    client.post(URL, {**GOOD, "billing_name": "Acme SE"})
    assert AuditEvent.objects.filter(action="billing_details.update").count() == 2  # nothing changed, no row


@pytest.mark.django_db
@pytest.mark.parametrize("tax_id, expected", [
    ("DE12345", "9 digits long"),  # too short
    ("DE136695978", "check digit"),  # a wrong check digit
    ("FR40303265045", "starts with FR, but a VAT number of Germany starts with DE"),
])
def test_an_invalid_tax_id_is_a_form_error_naming_the_format_and_changes_nothing(client, team, tax_id, expected):
    client.force_login(team.owner)
    response = client.post(URL, {**GOOD, "tax_id": tax_id})
    assert response.status_code == 200
    errors = response.context["form"].errors["tax_id"][0]
    assert expected in errors and tax_id in errors
    team.workspace.refresh_from_db()
    assert team.workspace.billing_name == "" and team.workspace.tax_id == ""
    assert not AuditEvent.objects.filter(action="billing_details.update").exists()


@pytest.mark.django_db
def test_a_bad_country_or_email_is_a_form_error(client, team):
    client.force_login(team.owner)
    for field, value in (("billing_country", "XX"), ("billing_email", "not-an-address")):
        response = client.post(URL, {**GOOD, field: value})
        assert response.status_code == 200 and field in response.context["form"].errors
    team.workspace.refresh_from_db()
    assert team.workspace.billing_name == ""


@pytest.mark.django_db
def test_members_cannot_see_or_change_billing_details(client, team):
    client.force_login(team.member)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {**GOOD, "billing_name": "Hijack"}).status_code == 403
    team.workspace.refresh_from_db()
    assert team.workspace.billing_name == ""


@pytest.mark.django_db
def test_outsiders_get_a_404(client, team, outsider):
    client.force_login(outsider)
    assert client.get(URL).status_code == 404


@pytest.mark.django_db
def test_the_command_sets_the_same_details_with_the_same_checks(team, capsys):
    call_command("set_billing_details", "acme", "--legal-name", "Acme Ltd", "--country", "gb",
                 "--tax-id", "GB 980 7806 84", "--address", "1 High St\\nLondon", "--email", "ap@acme.co.uk")
    ws = team.workspace
    ws.refresh_from_db()
    assert (ws.billing_name, ws.billing_country.code, ws.tax_id, ws.billing_address, ws.billing_email) == (
        "Acme Ltd", "GB", "GB980780684", "1 High St\nLondon", "ap@acme.co.uk")
    assert "GB980780684" in capsys.readouterr().out
    assert AuditEvent.objects.get(action="billing_details.update").detail["source"] == "command"
    with pytest.raises(CommandError, match="not a valid VAT"):
        call_command("set_billing_details", "acme", "--legal-name", "Acme Ltd", "--country", "GB", "--tax-id", "GB123")
    with pytest.raises(CommandError, match="No workspace"):
        call_command("set_billing_details", "nope", "--legal-name", "X", "--country", "GB")
    ws.refresh_from_db()
    assert ws.tax_id == "GB980780684"
