"""The invoice as the purchase service issues it: inside the payment's transaction, PDF after commit."""

import pytest

from invoices.models import Invoice


@pytest.mark.django_db(transaction=True)
def test_it_invoices_a_manual_purchase_and_credits_a_refund():
    from buying.purchases import purchase_record_manual, purchase_refund
    from tests.factories import make_workspace

    team = make_workspace(slug="flow")
    purchase = purchase_record_manual(workspace=team.workspace, pack_id="pro", reference="wire-1", actor=team.owner)
    purchase_record_manual(workspace=team.workspace, pack_id="pro", reference="wire-1", actor=team.owner)
    invoice = Invoice.objects.get(purchase=purchase)
    assert invoice.total_cents == 7500 and invoice.lines.count() == 2
    assert invoice.pdf_rendered_at is not None  # rendered by the task after commit
    purchase_refund(purchase=purchase, amount_cents=7500, key="r1", reason="Duplicate payment", actor=team.owner)
    purchase_refund(purchase=purchase, amount_cents=7500, key="r1", reason="Duplicate payment", actor=team.owner)
    invoice.refresh_from_db()
    note = invoice.credit_notes.get()
    assert invoice.status == Invoice.REFUNDED and note.total_cents == -7500
    assert invoice.pdf_rendered_at is not None and note.pdf_rendered_at is not None
