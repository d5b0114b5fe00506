"""Purchases made directly (the purchase service is billing's); invoices then come from our services."""

from django.utils import timezone

from billing.models import CreditPack, Purchase, Workspace


def make_purchase(*, workspace: Workspace, pack_id: str = "builder", user=None) -> Purchase:
    pack = CreditPack.objects.get(pk=pack_id)
    return Purchase.objects.create(
        workspace=workspace, pack=pack, status=Purchase.PAID, source=Purchase.TEST, credits=pack.credits,
        bonus=pack.bonus, amount_cents=pack.price_cents, created_by=user, paid_at=timezone.now(),
    )
