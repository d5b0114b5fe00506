from datetime import datetime, timezone as dt_timezone

import pytest
from django.db import transaction
from django.utils import timezone

from tests.concurrency import run_at_once
from billing.models import Plan, credits
from invoices.models import Invoice, InvoiceSequence
from invoices.services import (
    InvoiceError, credit_note_issue_for_refund, invoice_issue_for_plan_payment, invoice_issue_for_purchase,
)
from tests.factories import make_workspace
from tests.invoices.helpers import make_purchase

YEAR = timezone.now().year


@pytest.mark.django_db
def test_it_issues_an_invoice_for_a_purchase_with_a_bonus_line(team):
    purchase = make_purchase(workspace=team.workspace, pack_id="builder")
    invoice = invoice_issue_for_purchase(purchase=purchase)
    assert invoice.number == f"LF-{YEAR}-000001"
    assert invoice.total_cents == 2000 and invoice.status == Invoice.PAID and invoice.purchase == purchase
    lines = list(invoice.lines.all())
    assert [(line.amount_cents, line.credits) for line in lines] == [(2000, credits(500)), (0, credits(25))]
    assert "Builder" in lines[0].description and "Bonus" in lines[1].description
    assert invoice.buyer_name == "Olivia Owner" and invoice.buyer_email == "owner@acme.test"
    assert invoice.buyer_workspace == "Acme Inc"


@pytest.mark.django_db
def test_it_has_no_bonus_line_for_a_pack_without_bonus(team):
    invoice = invoice_issue_for_purchase(purchase=make_purchase(workspace=team.workspace, pack_id="starter"))
    assert invoice.lines.count() == 1 and invoice.total_cents == 500


@pytest.mark.django_db
def test_it_is_idempotent_per_purchase(team):
    purchase = make_purchase(workspace=team.workspace)
    first = invoice_issue_for_purchase(purchase=purchase)
    second = invoice_issue_for_purchase(purchase=purchase)
    assert first.pk == second.pk and Invoice.objects.count() == 1
    assert InvoiceSequence.objects.get(prefix="LF", year=YEAR).last_number == 1


@pytest.mark.django_db
def test_it_snapshots_billing_details_and_later_edits_do_not_change_issued_invoices(team):
    workspace = team.workspace
    workspace.billing_name, workspace.billing_address, workspace.tax_id = "Acme GmbH", "Hauptstr. 1\nBerlin", "DE123"
    workspace.save()
    invoice = invoice_issue_for_purchase(purchase=make_purchase(workspace=workspace))
    assert (invoice.buyer_name, invoice.buyer_contact, invoice.buyer_tax_id) == ("Acme GmbH", "Olivia Owner", "DE123")
    workspace.billing_name = "Other"
    workspace.save()
    invoice.refresh_from_db()
    assert invoice.buyer_name == "Acme GmbH"


@pytest.mark.django_db
def test_it_issues_a_plan_invoice_with_its_period_once_per_stripe_invoice(team):
    plan = Plan.objects.get(pk="pro")
    start = datetime(YEAR, 3, 1, tzinfo=dt_timezone.utc)
    end = datetime(YEAR, 4, 1, tzinfo=dt_timezone.utc)
    args = dict(workspace=team.workspace, plan=plan, amount_cents=2900, period_start=start, period_end=end,
                stripe_invoice_id="in_123")
    invoice = invoice_issue_for_plan_payment(**args)
    assert invoice_issue_for_plan_payment(**args).pk == invoice.pk
    line = invoice.lines.get()
    assert "Pro plan" in line.description and f"Mar 1, {YEAR} – Mar 31, {YEAR}" in line.description
    assert line.amount_cents == 2900 and line.credits == credits(1000)
    assert invoice.period_start == start and invoice.stripe_invoice_id == "in_123"


@pytest.mark.django_db
def test_it_issues_credit_notes_that_refer_to_the_invoice_and_mark_it_refunded(team):
    invoice = invoice_issue_for_purchase(purchase=make_purchase(workspace=team.workspace, pack_id="builder"))
    note = credit_note_issue_for_refund(invoice=invoice, amount_cents=500, reason="goodwill", key="r1")
    assert note.number == f"CN-{YEAR}-000001" and note.total_cents == -500 and note.refers_to == invoice
    assert note.kind == Invoice.CREDIT_NOTE and note.buyer_name == invoice.buyer_name
    assert credit_note_issue_for_refund(invoice=invoice, amount_cents=500, reason="goodwill", key="r1").pk == note.pk
    invoice.refresh_from_db()
    assert invoice.status == Invoice.PARTIALLY_REFUNDED
    credit_note_issue_for_refund(invoice=invoice, amount_cents=1500, reason="", key="r2")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.REFUNDED
    with pytest.raises(InvoiceError):
        credit_note_issue_for_refund(invoice=invoice, amount_cents=1, reason="", key="r3")
    # Invoice numbers and credit-note numbers are separate sequences.
    assert invoice_issue_for_purchase(purchase=make_purchase(workspace=team.workspace)).number == f"LF-{YEAR}-000002"


@pytest.mark.django_db
def test_a_rolled_back_payment_leaves_no_gap(team):
    purchase = make_purchase(workspace=team.workspace)
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            invoice_issue_for_purchase(purchase=purchase)
            raise RuntimeError("payment failed after the invoice")
    assert invoice_issue_for_purchase(purchase=purchase).number == f"LF-{YEAR}-000001"


@pytest.mark.django_db(transaction=True)
def test_it_gives_30_concurrent_purchases_30_consecutive_numbers(monkeypatch):
    monkeypatch.setattr("invoices.services.invoice_pdf_schedule", lambda **kwargs: None)  # numbering only
    team = make_workspace(slug="busy")
    purchases = [make_purchase(workspace=team.workspace, pack_id="starter") for _ in range(30)]
    def buy(n):
        with transaction.atomic():
            return invoice_issue_for_purchase(purchase=purchases[n]).number

    numbers, errors = run_at_once(buy, 30)
    assert errors == []
    assert sorted(numbers) == [f"LF-{YEAR}-{n:06d}" for n in range(1, 31)]
    assert Invoice.objects.count() == 30
    assert InvoiceSequence.objects.get(prefix="LF", year=YEAR).last_number == 30
