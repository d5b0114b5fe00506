"""Auto-recharge's trigger: watches a locked wallet after each change (docs/auto-recharge.md).

Every writer of a wallet (authorize, complete, expire, grant and expiry, purchase, refund,
adjustment) calls `wallet_watch` under the wallet lock, after saving it. The threshold and the armed
flag sit on the wallet row the writer already loaded, so the common case costs no query at all.

- available < threshold and armed: one crossing. The wallet is disarmed, the crossing number taken
  (`auto_recharge_crossings`), and one attempt inserted with the DB-unique key
  `auto-recharge:<workspace>:<crossing>` (INSERT ... ON CONFLICT DO NOTHING, which never aborts the
  writer's transaction). A partial unique index keeps at most one attempt in flight per workspace.
  The payment (buying.auto_recharge, a layer above) is enqueued by task name after commit; the
  writer (a run) is never refused or kept waiting for it.
- available >= threshold: re-armed (one UPDATE, only when it was disarmed).
- The ceiling per period is counted here, under the same lock: a crossing past it is recorded as
  skipped and buys nothing.
"""

from celery import current_app
from django.db import transaction

from .models import AutoRecharge, AutoRechargeAttempt, Wallet, Workspace

COUNTED = (AutoRechargeAttempt.PENDING, AutoRechargeAttempt.RETRYING, AutoRechargeAttempt.SUCCEEDED,
           AutoRechargeAttempt.REQUIRES_ACTION)


def wallet_watch(wallet: Wallet) -> AutoRechargeAttempt | None:
    """Call under the wallet lock after the wallet was saved. Returns the attempt a crossing made."""
    threshold = wallet.auto_recharge_threshold
    if threshold is None:
        return None
    if wallet.available >= threshold:
        if not wallet.auto_recharge_armed:
            Wallet.objects.filter(pk=wallet.pk).update(auto_recharge_armed=True)
            wallet.auto_recharge_armed = True
        return None
    if not wallet.auto_recharge_armed:
        return None
    return _cross(wallet)


def _cross(wallet: Wallet) -> AutoRechargeAttempt | None:
    crossing = wallet.auto_recharge_crossings + 1
    Wallet.objects.filter(pk=wallet.pk).update(auto_recharge_armed=False, auto_recharge_crossings=crossing)
    wallet.auto_recharge_armed, wallet.auto_recharge_crossings = False, crossing
    settings_row = AutoRecharge.objects.filter(pk=wallet.workspace_id).first()
    if settings_row is None or not settings_row.is_active:
        return None
    period_start = Workspace.objects.values_list("period_start", flat=True).get(pk=wallet.workspace_id)
    attempts = AutoRechargeAttempt.objects.filter(workspace_id=wallet.workspace_id)
    if attempts.filter(status__in=AutoRechargeAttempt.IN_FLIGHT).exists():
        return None  # one in flight already: its credits re-arm the trigger
    used = attempts.filter(period_start=period_start, status__in=COUNTED).count()
    status = AutoRechargeAttempt.PENDING if used < settings_row.max_per_period else AutoRechargeAttempt.SKIPPED
    key = f"auto-recharge:{wallet.workspace_id}:{crossing}"
    attempt = AutoRechargeAttempt(
        workspace_id=wallet.workspace_id, key=key, status=status, period_start=period_start,
        available_at_trigger=wallet.available, threshold=wallet.auto_recharge_threshold, pack_id=settings_row.pack_id,
        last_error="" if status == AutoRechargeAttempt.PENDING else
        f"The ceiling of {settings_row.max_per_period} auto-recharges this period was reached.",
    )
    AutoRechargeAttempt.objects.bulk_create([attempt], ignore_conflicts=True)
    if status == AutoRechargeAttempt.PENDING:
        transaction.on_commit(lambda: _enqueue(key), robust=True)
    return attempt


# The payment belongs to the buying layer above; the money core names its task instead of importing it.
PAY_TASK = "buying.tasks.auto_recharge_pay"


def _enqueue(key: str) -> None:
    current_app.tasks[PAY_TASK].delay(key)
