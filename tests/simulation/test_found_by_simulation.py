"""Defects the money simulator found, each pinned by the shortest sequence that showed it."""

import pytest

from billing.ledger import credits_adjust
from billing.models import Purchase, Wallet, credits
from buying.purchases import purchase_record_manual, purchase_refund
from operations.reconcile import reconcile_workspace
from tests.factories import make_workspace


@pytest.mark.django_db
def test_it_reconciles_a_purchased_bucket_below_zero_after_a_refund_of_spent_credits():
    """docs/refunds.md: a refund of credits already spent takes the purchased bucket below zero. That
    is no ledger problem, yet reconcile reported one (it only excused over-reservation runs)."""
    workspace = make_workspace(plan="pro", slug="refunded").workspace
    purchase = purchase_record_manual(workspace=workspace, pack_id="starter", reference="wire-1")
    credits_adjust(workspace=workspace, amount=-credits(100), reason="the pack's credits, spent")
    purchase_refund(purchase=Purchase.objects.get(pk=purchase.pk), amount_cents=500, key="full")
    assert Wallet.objects.get(workspace=workspace).purchased == -credits(100)
    assert reconcile_workspace(workspace=workspace) == []
