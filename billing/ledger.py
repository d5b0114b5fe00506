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
from .sql import columns, instance_from_row, rows_insert, sql_row, sql_write

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
    """The wallet row, locked until the surrounding transaction ends. Fixed SQL (billing.sql): every
    run takes this lock twice."""
    row = sql_row(f"SELECT {columns(Wallet, 'w')} FROM billing_wallet w WHERE w.workspace_id = %s FOR UPDATE",
                  [workspace_id])
    if row is None:
        raise Wallet.DoesNotExist(f"No wallet for workspace {workspace_id}.")
    return instance_from_row(Wallet, row)


def _wallet_save(wallet: Wallet, *fields: str) -> None:
    """Write `fields` of a wallet locked by the caller, and its updated_at (what save(update_fields)
    does, as fixed SQL for the charge path)."""
    wallet.updated_at = timezone.now()
    fields += ("updated_at",)
    sql_write("billing_wallet",
              f"UPDATE billing_wallet SET {', '.join(f'{name} = %s' for name in fields)} WHERE workspace_id = %s",
              [getattr(wallet, name) for name in fields] + [wallet.workspace_id])


def post(*, wallet: Wallet, postings: list[Posting], actor=None, run=None, purchase=None, at=None) -> list[LedgerEntry]:
    """Apply postings to a wallet locked by the caller: one ledger entry each, then save the buckets.

    Zero postings are skipped: the ledger records changes, not non-events."""
    entries = _apply(wallet=wallet, postings=postings, actor=actor, run=run, purchase=purchase, at=at)
    _wallet_save(wallet, "monthly", "purchased")
    wallet_watch(wallet)
    return entries


def hold_place(*, wallet: Wallet, amount: int) -> None:
    """A run's hold: `amount` more reserved and one more running run. Not a ledger entry (SPEC
    section 2): the buckets do not change, `available` does. Wallet locked by the caller."""
    wallet.reserved += amount
    wallet.running_runs += 1
    _wallet_save(wallet, "reserved", "running_runs")
    wallet_watch(wallet)  # a hold can take available below the auto-recharge threshold


def hold_release(*, wallet: Wallet, amount: int) -> None:
    """The end of a run's hold without a charge (the sweeper expired it). Wallet locked by the caller."""
    wallet.reserved -= amount
    wallet.running_runs -= 1
    _wallet_save(wallet, "reserved", "running_runs")
    wallet_watch(wallet)  # a released hold can re-arm auto-recharge


def run_charge_post(*, wallet: Wallet, run, cost: int, release_hold: bool, at=None) -> list[LedgerEntry]:
    """Charge a finished run (monthly bucket first, then purchased) and, if its hold is still open,
    release it: the charge entries and one wallet write. Wallet locked by the caller."""
    if release_hold:
        wallet.reserved -= run.reserved
        wallet.running_runs -= 1
    entries = _apply(wallet=wallet, postings=charge_postings(wallet=wallet, cost=cost, key_prefix=f"run:{run.pk}:charge",
                                                             reason=f"Run {run.public_id}"), run=run, at=at)
    _wallet_save(wallet, "monthly", "purchased", "reserved", "running_runs")
    wallet_watch(wallet)
    return entries


def _apply(*, wallet: Wallet, postings: list[Posting], actor=None, run=None, purchase=None, at=None) -> list[LedgerEntry]:
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
    rows_insert(LedgerEntry, entries)
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
