"""Tax on the built-in test checkout (BILLING_TAX_RATES = DE=19,FR=20,GB=20 in the test settings,
SELLER_COUNTRY US): what the buyer sees before paying, what they pay, the invoice, the credits."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import LedgerEntry, Purchase, Wallet, credits
from billing.money import cents_display, price_display
from buying.auto_recharge import auto_recharge_set, auto_recharge_test_card_set
from buying.plans import plan_subscribe_test
from buying.purchases import purchase_refund
from invoices.models import Invoice
from invoices.services import workspace_billing_details_update
from invoices.tax import line_tax
from operations.reconcile import reconcile_workspace
from tests.factories import make_workspace

VALID_DE_VAT = "DE136695976"


def _details(workspace, country, tax_id=""):
    workspace_billing_details_update(workspace=workspace, actor=None, billing_name="Acme GmbH",
                                     billing_address="Hauptstr. 1\n10115 Berlin", billing_country=country, tax_id=tax_id)


def _buy_builder(client, team):
    client.force_login(team.owner)
    response = client.post(reverse("billing:buy", kwargs={"slug": "acme"}), {"pack": "builder"})
    purchase = Purchase.objects.get(workspace=team.workspace)
    checkout = client.get(response.url).content.decode()
    client.post(response.url, {"action": "pay"})
    purchase.refresh_from_db()
    return purchase, checkout


@pytest.mark.django_db
@pytest.mark.parametrize("country, tax_id, pays, tax, shown, reverse_charge", [
    ("DE", "", 2380, 380, "VAT 19% (Germany): $3.80", False),
    ("DE", VALID_DE_VAT, 2000, 0, "reverse charge", True),
    ("US", "", 2000, 0, None, False),
])
def test_each_buyer_pays_the_table_tax_and_gets_525_credits(client, team, country, tax_id, pays, tax, shown,
                                                             reverse_charge):
    _details(team.workspace, country, tax_id)
    purchase, checkout = _buy_builder(client, team)
    assert f'data-testid="total">{price_display(pays)}<' in checkout  # the total, before paying
    if shown:
        assert shown in checkout
    else:
        assert "VAT" not in checkout and "reverse charge" not in checkout
    assert purchase.status == Purchase.PAID and (purchase.amount_cents, purchase.tax_cents) == (2000, tax)
    invoice = Invoice.objects.get(purchase=purchase)
    assert (invoice.subtotal_cents, invoice.tax_cents, invoice.total_cents) == (2000, tax, pays)
    assert invoice.reverse_charge is reverse_charge and invoice.buyer_country == country
    taxes = list(invoice.taxes.values_list("label", "jurisdiction", "rate", "taxable_cents", "amount_cents"))
    assert taxes == ([("VAT", "DE", 19, 2000, 380)] if tax else [])
    # Tax never changes the credits: the Builder pack is 500 + 25 bonus at any rate.
    assert Wallet.objects.get(workspace=team.workspace).purchased == credits(525)
    assert sum(e.amount for e in LedgerEntry.objects.filter(purchase=purchase)) == credits(525)
    page = client.get(reverse("invoices:detail", kwargs={"slug": "acme", "number": invoice.number})).content.decode()
    if reverse_charge:
        assert "Reverse charge: VAT to be accounted for by the recipient" in page and VALID_DE_VAT in page
    else:
        assert "Reverse charge" not in page
    assert reconcile_workspace(workspace=team.workspace) == []


@pytest.mark.django_db
def test_buy_credits_and_plans_say_which_tax_applies_before_paying(client, team):
    client.force_login(team.owner)
    buy, plans = reverse("billing:buy", kwargs={"slug": "acme"}), reverse("billing:plans", kwargs={"slug": "acme"})
    assert "Set your country in Billing details" in client.get(buy).content.decode()
    _details(team.workspace, "FR")
    assert "VAT 20% (France) is added at checkout" in client.get(buy).content.decode()
    assert "VAT 20% (France) is added at checkout" in client.get(plans).content.decode()
    _details(team.workspace, "DE", VALID_DE_VAT)
    assert f"reverse charge with your VAT id {VALID_DE_VAT}" in client.get(buy).content.decode()
    _details(team.workspace, "US")
    assert "No tax is added for United States" in client.get(plans).content.decode()


@pytest.mark.django_db
def test_a_refund_credit_note_carries_back_the_tax_share(client, team):
    _details(team.workspace, "DE")
    purchase, _ = _buy_builder(client, team)
    invoice = Invoice.objects.get(purchase=purchase)
    purchase_refund(purchase=purchase, amount_cents=1190, key="half")  # half of the $23.80 paid
    first = invoice.credit_notes.get()
    assert (first.subtotal_cents, first.tax_cents, first.total_cents) == (-1000, -190, -1190)
    assert list(first.taxes.values_list("jurisdiction", "rate", "taxable_cents", "amount_cents")) == [("DE", 19, -1000, -190)]
    purchase_refund(purchase=purchase, amount_cents=1, key="one-cent")
    purchase_refund(purchase=purchase, amount_cents=5000, key="rest")  # capped at what is left: 1189
    notes = list(invoice.credit_notes.order_by("id"))
    # Cumulative shares: every cent of tax comes back exactly once, however the refund is split.
    assert sum(n.tax_cents for n in notes) == -380 and sum(n.total_cents for n in notes) == -2380
    assert sum(n.subtotal_cents for n in notes) == -2000
    invoice.refresh_from_db()
    assert invoice.status == Invoice.REFUNDED
    assert Wallet.objects.get(workspace=team.workspace).purchased == 0
    assert reconcile_workspace(workspace=team.workspace) == []


@pytest.mark.django_db
def test_a_plan_upgrade_is_taxed_line_by_line(client):
    pro = make_workspace(slug="acme", plan="pro")
    _details(pro.workspace, "GB")
    client.force_login(pro.owner)
    checkout = client.get(reverse("billing:plan_checkout", kwargs={"slug": "acme", "plan_id": "team"}))
    page = checkout.content.decode()
    plan_subscribe_test(workspace=pro.workspace, plan_id="team", actor=pro.owner, now=timezone.now(),
                        expected_cents=checkout.context["quote"].amount_cents)  # the amount the page showed
    invoice = Invoice.objects.get(workspace=pro.workspace)
    lines = [line.amount_cents for line in invoice.lines.all()]
    assert len(lines) == 2 and lines[1] < 0  # the new plan's days, less the old plan's unused days
    # 20% on each line, rounded half up once per line, summed; the checkout page said so.
    assert invoice.tax_cents == sum(line_tax(amount, Decimal(20)) for amount in lines) > 0
    assert invoice.total_cents == sum(lines) + invoice.tax_cents
    assert f"Plus VAT 20% (United Kingdom): {cents_display(invoice.tax_cents)}" in page
    assert f"Pay {cents_display(invoice.total_cents)} (test)" in page
    assert reconcile_workspace(workspace=pro.workspace) == []


@pytest.mark.django_db(transaction=True)
def test_an_auto_recharge_is_taxed_by_the_same_rule(team):
    _details(team.workspace, "DE")
    auto_recharge_test_card_set(workspace=team.workspace, mode="succeeds")
    auto_recharge_set(workspace=team.workspace, enabled=True, threshold=credits(6000), pack_id="builder")
    purchase = Purchase.objects.get(workspace=team.workspace, status=Purchase.PAID)
    invoice = Invoice.objects.get(purchase=purchase)
    assert (purchase.tax_cents, invoice.tax_cents, invoice.total_cents) == (380, 380, 2380)
    assert Wallet.objects.get(workspace=team.workspace).purchased == credits(525)
    assert reconcile_workspace(workspace=team.workspace) == []
