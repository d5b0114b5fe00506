"""Auto-recharge's trigger: watches a locked wallet after each change (docs/auto-recharge.md).

The rule is one PL/pgSQL function, billing_wallet_watch (billing/sql/wallet.sql): the charge path
calls it inside its own statement, and every other writer of a wallet (grant and expiry, purchase,
refund, adjustment, the auto-recharge settings) calls it here, under the wallet lock, after saving
the wallet. In short:

- available < threshold and armed: one crossing. The wallet is disarmed, the crossing numbered
  (`auto_recharge_crossings`), and one attempt inserted with the DB-unique key
  `auto-recharge:<workspace>:<crossing>` (ON CONFLICT DO NOTHING, which never aborts the writer's
  transaction). A partial unique index keeps at most one attempt in flight per workspace.
  The payment (buying.auto_recharge, a layer above) is enqueued by task name after commit; the
  writer (a run) is never refused or kept waiting for it.
- available >= threshold: re-armed (one UPDATE, only when it was disarmed).
- The ceiling per period is counted there, under the same lock: a crossing past it is recorded as
  skipped and buys nothing.
"""

from celery import current_app
from django.db import transaction

from .models import AutoRechargeAttempt, Wallet
from .sql import sql_row

# The attempts that count against the ceiling per period: the statuses billing_wallet_watch counts
# (billing/sql/wallet.sql); the forecast reads them here. tests/usage/test_run_functions.py checks
# that the two lists agree.
COUNTED = (AutoRechargeAttempt.PENDING, AutoRechargeAttempt.RETRYING, AutoRechargeAttempt.SUCCEEDED,
           AutoRechargeAttempt.REQUIRES_ACTION)


def wallet_watch(wallet: Wallet) -> None:
    """Call under the wallet lock after the wallet was saved. The function reads the row, not this
    copy (whose armed flag and crossings it may change: write them back only from a fresh read)."""
    if wallet.auto_recharge_threshold is None:
        return  # auto-recharge off or paused: nothing to watch, no statement
    (key,) = sql_row("SELECT billing_wallet_watch(%s)", [wallet.workspace_id])
    recharge_enqueue(key)


def recharge_enqueue(key: str | None) -> None:
    """After commit, enqueue the payment of the attempt a crossing made (the key billing_wallet_watch
    returned; None: nothing to pay). `robust`: the writer has committed; a lost enqueue is paid by
    buying's retry sweep."""
    if key:
        transaction.on_commit(lambda: _enqueue(key), robust=True)


# The payment belongs to the buying layer above; the money core names its task instead of importing it.
PAY_TASK = "buying.tasks.auto_recharge_pay"


def _enqueue(key: str) -> None:
    current_app.tasks[PAY_TASK].delay(key)
