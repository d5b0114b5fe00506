"""Receipts: a purchase or a plan payment e-mails the owner a text+HTML receipt with an absolute
link to the invoice (and the PDF when RECEIPT_ATTACH_PDF is on); a credit note sends none; an
invoice issued twice for the same payment sends one receipt."""

from datetime import datetime, timezone as dt_timezone

import pytest
from django.core import mail

from billing.models import Plan
from invoices.services import credit_note_issue_for_refund, invoice_issue_for_plan_payment, invoice_issue_for_purchase
from tests.invoices.helpers import make_purchase

pytestmark = pytest.mark.django_db


def test_a_purchase_receipt_links_to_its_invoice(team, settings, django_capture_on_commit_callbacks):
    settings.SITE_URL = "https://billing.example.com"
    purchase = make_purchase(workspace=team.workspace, pack_id="builder", user=team.admin)
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue_for_purchase(purchase=purchase)
        invoice_issue_for_purchase(purchase=purchase)  # the same payment again: the same invoice, no 2nd e-mail
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [team.owner.email] and invoice.number in message.subject
    url = f"https://billing.example.com/w/acme/settings/billing/history/{invoice.number}/"
    assert url in message.body and url in message.alternatives[0][0]
    assert "$20.00" in message.body and not message.attachments


def test_a_plan_payment_receipt_can_carry_the_pdf(team, settings, django_capture_on_commit_callbacks):
    settings.RECEIPT_ATTACH_PDF = True
    start, end = datetime(2026, 3, 1, tzinfo=dt_timezone.utc), datetime(2026, 4, 1, tzinfo=dt_timezone.utc)
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue_for_plan_payment(workspace=team.workspace, plan=Plan.objects.get(pk="pro"),
                                                 amount_cents=2900, period_start=start, period_end=end,
                                                 stripe_invoice_id="in_receipt")
    message = mail.outbox[-1]
    assert "Pro plan" in message.subject
    name, content, mimetype = message.attachments[0]
    assert name == f"{invoice.number}.pdf" and mimetype == "application/pdf" and content.startswith(b"%PDF")


def test_a_credit_note_sends_no_receipt(team, django_capture_on_commit_callbacks):
    invoice = invoice_issue_for_purchase(purchase=make_purchase(workspace=team.workspace))
    with django_capture_on_commit_callbacks(execute=True):
        credit_note_issue_for_refund(invoice=invoice, amount_cents=500, reason="goodwill", key="r1")
    assert mail.outbox == []
