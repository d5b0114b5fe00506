"""Balance changes. Each public function is one short transaction that locks the workspace's
wallet row (SELECT ... FOR UPDATE), checks, writes the ledger entries and the new balances, and
commits. Every writer of a wallet takes that lock, so a check made under it cannot go stale, and
the unique idempotency key on each entry makes a replay fail in the database even if a check is
ever missed. Nothing slow (HTTP, e-mail, PDF) runs inside: callers enqueue that on commit."""

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from .audit import audit_record
from .models import LedgerEntry, Wallet, Workspace
from .money import nanos_display, nanos_to_str
from .recharge_trigger import wallet_watch

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
    """The wallet row, locked until the surrounding transaction ends. (The charge path locks it inside
    its PL/pgSQL call instead: usage/sql/runs.sql.)"""
    return Wallet.objects.select_for_update().get(workspace_id=workspace_id)


def post(*, wallet: Wallet, postings: list[Posting], actor=None, run=None, purchase=None, at=None) -> list[LedgerEntry]:
    """Apply postings to a wallet locked by the caller: one ledger entry each, then save the buckets.

    Zero postings are skipped: the ledger records changes, not non-events. (A run's charge is posted
    by billing_run_charge, billing/sql/wallet.sql, with the same split and keys.)"""
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
    LedgerEntry.objects.bulk_create(entries)
    wallet.save(update_fields=["monthly", "purchased", "updated_at"])
    wallet_watch(wallet)
    return entries


def entry_exists(key: str) -> bool:
    return LedgerEntry.objects.filter(idempotency_key=key).exists()


def credits_adjust(*, workspace: Workspace, amount: int, reason: str, actor=None, key: str | None = None,
                   at=None) -> LedgerEntry:
    """A manual adjustment of the purchased bucket (staff, `grant_credits`). A negative adjustment
    may take neither the bucket nor the available credits (what running runs do not hold) below
    zero. With `key`, a repeat returns the first entry."""
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
        removable = min(wallet.purchased, wallet.available)
        if amount < 0 and removable + amount < 0:
            raise InsufficientPurchasedCredits(
                f"Only {nanos_display(max(removable, 0))} purchased credits are free to remove "
                "(running runs hold the rest, or the bucket holds no more)."
            )
        kind = LedgerEntry.ADJUSTMENT
        (entry,) = post(wallet=wallet, postings=[Posting(kind, PURCHASED, amount, key, reason.strip())], actor=actor,
                        at=at)
        audit_record(workspace_id=workspace.pk, actor=actor, action="credits.adjust",
                     before={"purchased": nanos_to_str(wallet.purchased - amount)},
                     after={"purchased": nanos_to_str(wallet.purchased), "amount": nanos_to_str(amount),
                            "reason": reason.strip(), "entry": entry.pk})
        return entry


def monthly_rollover(*, workspace: Workspace, old_period_start, new_period_start, new_credits: int, actor=None,
                     at=None) -> list[LedgerEntry]:
    """At a period start: the monthly bucket's remainder expires and the new period's credits are
    granted, once per workspace and period (the grant's key is database-unique).

    Credits that running runs hold do not expire: charges take from the monthly bucket first, so
    the holds are paid from it when those runs complete. Expiring them would push the purchased
    bucket below zero for tokens that were authorized while the credits were there. What such a run
    does not use stays in the monthly bucket (at most the holds open at the period end)."""
    grant_key = f"grant:{workspace.pk}:{new_period_start.isoformat()}"
    # No savepoint when nested (the period job's transaction): an error here aborts the caller too.
    with transaction.atomic(savepoint=False):
        wallet = wallet_lock(workspace.pk)
        if entry_exists(grant_key):
            return []
        postings = []
        expiring = max(wallet.monthly - max(wallet.reserved, 0), 0)
        if old_period_start is not None and expiring:
            postings.append(
                Posting(LedgerEntry.EXPIRY, MONTHLY, -expiring, f"expiry:{workspace.pk}:{old_period_start.isoformat()}",
                        "Unused monthly credits expired at the period end")
            )
        postings.append(
            Posting(LedgerEntry.GRANT, MONTHLY, new_credits, grant_key,
                    f"{workspace.plan.name} plan credits for the period", keep_if_zero=True)
        )
        return post(wallet=wallet, postings=postings, actor=actor, at=at)
