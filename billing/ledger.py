"""Balance changes. Each public function is one short transaction that locks the workspace's
wallet row (SELECT ... FOR UPDATE), checks, writes the ledger entries and the new balances, and
commits. Every writer of a wallet takes that lock, so a check made under it cannot go stale, and
the unique idempotency key on each entry makes a replay fail in the database even if a check is
ever missed. Nothing slow (HTTP, e-mail, PDF) runs inside: callers enqueue that on commit."""

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from .models import LedgerEntry, Wallet, Workspace
from .money import nanos_display

MONTHLY, PURCHASED = LedgerEntry.MONTHLY, LedgerEntry.PURCHASED


class LedgerError(Exception):
    code = "ledger_error"


class InsufficientPurchasedCredits(LedgerError):
    code = "insufficient_credits"


@dataclass(frozen=True)
class Posting:
    kind: str
    bucket: str
    amount: int  # signed nanocredits
    key: str
    reason: str
    keep_if_zero: bool = False  # a zero grant still marks its period as granted


def wallet_lock(workspace_id: int) -> Wallet:
    """The wallet row, locked until the surrounding transaction ends."""
    return Wallet.objects.select_for_update().get(workspace_id=workspace_id)


def post(*, wallet: Wallet, postings: list[Posting], actor=None, run=None, purchase=None, at=None) -> list[LedgerEntry]:
    """Apply postings to a wallet locked by the caller: one ledger entry each, then save the wallet
    (with any change the caller made to `reserved` or `running_runs`).

    Zero postings are skipped: the ledger records changes, not non-events."""
    at = at or timezone.now()
    entries = []
    for posting in postings:
        if posting.amount == 0 and not posting.keep_if_zero:
            continue
        if posting.bucket == MONTHLY:
            wallet.monthly += posting.amount
            bucket_after = wallet.monthly
        else:
            wallet.purchased += posting.amount
            bucket_after = wallet.purchased
        entries.append(
            LedgerEntry(
                workspace_id=wallet.workspace_id, kind=posting.kind, bucket=posting.bucket, amount=posting.amount,
                bucket_balance_after=bucket_after, balance_after=wallet.balance, actor=actor, reason=posting.reason,
                idempotency_key=posting.key, run=run, purchase=purchase, created_at=at,
            )
        )
    if entries:
        LedgerEntry.objects.bulk_create(entries)
    wallet.save(update_fields=["monthly", "purchased", "reserved", "running_runs", "updated_at"])
    return entries


def entry_exists(key: str) -> bool:
    return LedgerEntry.objects.filter(idempotency_key=key).exists()


def charge_postings(*, wallet: Wallet, cost: int, key_prefix: str, reason: str) -> list[Posting]:
    """Split a charge: the monthly bucket first, then purchased (which may go below zero by an
    over-reservation; the monthly bucket never does)."""
    from_monthly = min(cost, max(wallet.monthly, 0))
    return [
        Posting(LedgerEntry.CHARGE, MONTHLY, -from_monthly, f"{key_prefix}:monthly", reason),
        Posting(LedgerEntry.CHARGE, PURCHASED, -(cost - from_monthly), f"{key_prefix}:purchased", reason),
    ]


def credits_adjust(*, workspace: Workspace, amount: int, reason: str, actor=None, key: str | None = None) -> LedgerEntry | None:
    """A manual adjustment of the purchased bucket (staff, `grant_credits`). A negative adjustment
    may not take the bucket below zero. With `key`, a repeat returns the first entry."""
    if not reason.strip():
        raise LedgerError("An adjustment needs a reason.")
    if amount == 0:
        raise LedgerError("An adjustment of zero credits changes nothing.")
    key = key or f"adjustment:{uuid.uuid4()}"
    with transaction.atomic():
        wallet = wallet_lock(workspace.pk)
        existing = LedgerEntry.objects.filter(idempotency_key=key).first()
        if existing:
            return existing
        if amount < 0 and wallet.purchased + amount < 0:
            raise InsufficientPurchasedCredits(
                f"The purchased bucket holds only {nanos_display(wallet.purchased)} credits; cannot remove more."
            )
        kind = LedgerEntry.ADJUSTMENT
        (entry,) = post(wallet=wallet, postings=[Posting(kind, PURCHASED, amount, key, reason.strip())], actor=actor)
        return entry


def monthly_rollover(*, workspace: Workspace, old_period_start, new_period_start, new_credits: int, actor=None) -> list[LedgerEntry]:
    """At a period start: the monthly bucket's remainder expires and the new period's credits are
    granted, once per workspace and period (the grant's key is database-unique)."""
    grant_key = f"grant:{workspace.pk}:{new_period_start.isoformat()}"
    with transaction.atomic():
        wallet = wallet_lock(workspace.pk)
        if entry_exists(grant_key):
            return []
        postings = []
        if old_period_start is not None and wallet.monthly:
            postings.append(
                Posting(LedgerEntry.EXPIRY, MONTHLY, -wallet.monthly, f"expiry:{workspace.pk}:{old_period_start.isoformat()}",
                        "Unused monthly credits expired at the period end")
            )
        postings.append(
            Posting(LedgerEntry.GRANT, MONTHLY, new_credits, grant_key,
                    f"{workspace.plan.name} plan credits for the period", keep_if_zero=True)
        )
        return post(wallet=wallet, postings=postings, actor=actor)
