"""History -> the accountants' CSV: one row per invoice and credit note, as each was issued."""

import csv
import io

import pytest
from django.urls import reverse

from buying.purchases import pack_purchase_fulfil, purchase_refund, purchase_start
from invoices.services import workspace_billing_details_update

URL = reverse("invoices:export", kwargs={"slug": "acme"})


@pytest.mark.django_db
def test_it_lists_net_tax_and_total_of_every_document_with_the_buyer_as_issued(client, team):
    ws = team.workspace
    workspace_billing_details_update(workspace=ws, actor=None, billing_name="=HYPERLINK(\"http://evil\")",
                                     billing_country="DE")
    purchase = pack_purchase_fulfil(purchase=purchase_start(workspace=ws, pack_id="builder"))
    purchase_refund(purchase=purchase, amount_cents=1190, key="half")
    workspace_billing_details_update(workspace=ws, actor=None, billing_name="Acme SE", billing_country="FR")
    client.force_login(team.admin)
    response = client.get(URL)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["date", "number", "buyer", "country", "tax_id", "net", "tax", "total", "currency"]
    invoice, note = rows[1:]
    assert invoice[1].startswith("LF-") and invoice[2:] == ["'=HYPERLINK(\"http://evil\")", "DE", "", "20.00", "3.80",
                                                            "23.80", "USD"]
    assert note[1].startswith("CN-") and note[5:8] == ["-10.00", "-1.90", "-11.90"]


@pytest.mark.django_db
def test_only_owners_and_admins_of_the_workspace_get_it(client, team, outsider):
    client.force_login(team.member)
    assert client.get(URL).status_code == 403
    client.force_login(outsider)
    assert client.get(URL).status_code == 404
