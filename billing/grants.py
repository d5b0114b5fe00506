"""Period grants: roll every workspace whose billing period has ended (SPEC section 3, docs/plans.md).

For each such workspace: apply the change scheduled for the period end (a downgrade, or a
cancellation back to Free), move the period on, expire the monthly bucket's remainder and grant the
new period's credits. The job does this set-based, one short transaction per chunk of workspaces
(`period_chunk_roll`: a handful of statements for the whole chunk instead of a handful per
workspace); `workspace_period_roll` does the same for one workspace, and is what a chunk falls back
to when the database refuses it (a deadlock, a key taken meanwhile).

Safe to run twice, concurrently and after a crash: workspaces are picked under row locks (SKIP
LOCKED, so two runners share the work), their periods re-checked under those locks, their wallets
locked before the grant keys are checked, and the grant's ledger key (workspace + period start) is
unique in the database. A crash rolls back its whole chunk; the next run finds it still due.

Which periods:
- Free, and paid plans without a Stripe subscription (test checkout, `set_plan`, Enterprise billed
  by hand): monthly from the workspace's creation day (billing.periods), so Jan 31 -> Feb 28/29 ->
  Mar 31 does not drift.
- A Stripe subscription: Stripe's period, set by invoice.paid. If Stripe's period is over and no
  invoice.paid arrived within STRIPE_GRACE, the job rolls it anyway onto the next contiguous
  month (Stripe's next period starts where the last ended, so a late invoice.paid computes the
  same grant key and grants nothing twice; it then corrects the period end).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

import psycopg
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from .access_versions import access_versions_bump
from .audit import audit_event
from .ledger import MONTHLY, monthly_rollover
from .models import AuditEvent, LedgerEntry, Plan, Wallet, Workspace
from .periods import add_months, monthly_period_containing
from .recharge_trigger import wallet_watch

STRIPE_GRACE = timedelta(hours=24)


@dataclass
class GrantsReport:
    due: int = 0
    rolled: int = 0
    skipped: int = 0  # rolled by someone else meanwhile, or locked by a concurrent runner


def next_period(*, workspace: Workspace, now: datetime) -> tuple[datetime, datetime]:
    """The period that follows workspace.period_end and contains `now`."""
    old_end = workspace.period_end
    if workspace.stripe_subscription_id:
        start, months = old_end, 1
        end = add_months(old_end, months)
        while end <= now:
            months += 1
            start, end = end, add_months(old_end, months)
        return start, end
    start, end = monthly_period_containing(workspace.created_at, now)
    # After a Stripe period (not aligned with the creation day) the first Free period starts where
    # the paid one ended, so periods never overlap.
    return max(start, old_end), end


def due_workspaces(*, now: datetime):
    return Workspace.objects.filter(
        Q(period_end__lte=now, stripe_subscription_id="") | Q(period_end__lte=now - STRIPE_GRACE)
    )


def _is_due(ws: Workspace, now: datetime) -> bool:
    """due_workspaces' condition, re-checked on a row read under its lock."""
    return ws.period_end <= now and (not ws.stripe_subscription_id or ws.period_end <= now - STRIPE_GRACE)


def _apply_period_end(ws: Workspace, plans: dict[str, Plan]) -> Plan:
    """The change scheduled for the period end, on the in-memory row; returns the old plan."""
    ws.plan = plans[ws.plan_id]
    ws.scheduled_plan = plans[ws.scheduled_plan_id] if ws.scheduled_plan_id else None
    old_plan = ws.plan
    if ws.cancel_at_period_end:
        ws.plan_switch(plans["free"])
        ws.stripe_subscription_id = ""
    elif ws.scheduled_plan_id:
        ws.plan_switch(ws.scheduled_plan)
    ws.scheduled_plan, ws.cancel_at_period_end = None, False
    return old_plan


def _plan_change_event(ws: Workspace, old_plan: Plan) -> AuditEvent:
    return audit_event(workspace_id=ws.pk, actor=None, action="plan.change", before={"plan": old_plan.pk},
                       after={"plan": ws.plan.pk, "reason": "scheduled for the period end"})


def workspace_period_roll(*, workspace_id: int, now: datetime, plans: dict[str, Plan] | None = None) -> bool:
    """Roll one workspace if its period is over; False when there was nothing (left) to do.
    `plans` (id -> Plan) lets a job that rolls thousands of workspaces read the plans once."""
    plans = plans if plans is not None else {plan.pk: plan for plan in Plan.objects.all()}
    with transaction.atomic():
        ws = Workspace.objects.select_for_update(skip_locked=True).filter(pk=workspace_id).first()
        if ws is None or not _is_due(ws, now):
            return False  # locked by a concurrent runner, already rolled, or a Stripe period in its grace
        old_start = ws.period_start
        old_plan = _apply_period_end(ws, plans)
        if ws.plan.pk != old_plan.pk:
            _plan_change_event(ws, old_plan).save()
        ws.period_start, ws.period_end = next_period(workspace=ws, now=now)
        ws.save(update_fields=["plan", "stripe_subscription_id", "custom_monthly_credits", "custom_requests_per_minute",
                               "custom_concurrent_runs", "scheduled_plan", "cancel_at_period_end", "period_start",
                               "period_end"])
        monthly_rollover(workspace=ws, old_period_start=old_start, new_period_start=ws.period_start,
                         new_credits=ws.monthly_credits)
    return True


# The chunk's writes: one statement each, whatever the chunk's size (arrays, not one row per statement;
# Django's bulk_create spent most of the job preparing values row by row). Each UPDATE also names its
# rows by `= ANY(ids)`: joined to unnest() alone, PostgreSQL hashes the whole table for every chunk.
# Parameters go in binary (%b): as text, psycopg quotes every array element in Python, 2.2 ms for 500
# timestamps.
_LEDGER_INSERT = """
    INSERT INTO billing_ledgerentry (workspace_id, kind, bucket, amount, bucket_balance_after, balance_after, reason,
        idempotency_key, created_at)
    SELECT e.workspace_id, e.kind, %b, e.amount, e.bucket_after, e.balance_after, e.reason, e.key, %b
    FROM unnest(%b::bigint[], %b::varchar[], %b::bigint[], %b::bigint[], %b::bigint[], %b::varchar[], %b::varchar[])
        WITH ORDINALITY AS e(workspace_id, kind, amount, bucket_after, balance_after, reason, key, position)
    ORDER BY e.position"""
_WALLETS_UPDATE = """
    UPDATE billing_wallet AS w SET monthly = v.monthly, updated_at = %b
    FROM unnest(%b::bigint[], %b::bigint[]) AS v(workspace_id, monthly)
    WHERE w.workspace_id = v.workspace_id AND w.workspace_id = ANY(%b)"""
_PERIODS_UPDATE = """
    UPDATE billing_workspace AS w SET period_start = v.period_start, period_end = v.period_end
    FROM unnest(%b::bigint[], %b::timestamptz[], %b::timestamptz[]) AS v(id, period_start, period_end)
    WHERE w.id = v.id AND w.id = ANY(%b)"""
# Only the workspaces with a change scheduled for the period end (a few, usually).
_SCHEDULED_UPDATE = """
    UPDATE billing_workspace AS w SET plan_id = v.plan_id, stripe_subscription_id = v.subscription,
        custom_monthly_credits = v.monthly, custom_requests_per_minute = v.rpm, custom_concurrent_runs = v.concurrent,
        scheduled_plan_id = NULL, cancel_at_period_end = false
    FROM unnest(%b::bigint[], %b::varchar[], %b::varchar[], %b::bigint[], %b::integer[], %b::integer[])
        AS v(id, plan_id, subscription, monthly, rpm, concurrent)
    WHERE w.id = v.id AND w.id = ANY(%b)"""


class _DueRow:
    """The columns of a workspace that rolling it reads (next_period, _apply_period_end, the grant),
    with the same attribute names as Workspace: a chunk reads hundreds of rows, and building model
    instances for them cost about as much as the baseline's whole chunk."""

    FIELDS = ("id", "plan_id", "scheduled_plan_id", "cancel_at_period_end", "stripe_subscription_id",
              "custom_monthly_credits", "custom_requests_per_minute", "custom_concurrent_runs", "period_start",
              "period_end", "created_at")
    __slots__ = FIELDS + ("_plans",)

    def __init__(self, row, plans: dict[str, Plan]):
        for name, value in zip(self.FIELDS, row):
            setattr(self, name, value)
        self._plans = plans

    @property
    def pk(self) -> int:
        return self.id

    @property
    def plan(self) -> Plan:
        return self._plans[self.plan_id]

    @plan.setter
    def plan(self, plan: Plan) -> None:
        self.plan_id = plan.pk

    @property
    def scheduled_plan(self) -> Plan | None:
        return self._plans[self.scheduled_plan_id] if self.scheduled_plan_id else None

    @scheduled_plan.setter
    def scheduled_plan(self, plan: Plan | None) -> None:
        self.scheduled_plan_id = plan.pk if plan else None

    monthly_credits = Workspace.monthly_credits  # the model's own rules
    plan_switch = Workspace.plan_switch


_LOCK_DUE = f"""
    SELECT {", ".join(_DueRow.FIELDS)} FROM billing_workspace WHERE id = ANY(%b) ORDER BY id FOR UPDATE SKIP LOCKED"""


def period_chunk_roll(*, workspace_ids: list[int], now: datetime, plans: dict[str, Plan]) -> int:
    """Roll the due workspaces among `workspace_ids` in one transaction; returns how many rolled.
    The same rule as workspace_period_roll and billing.ledger.monthly_rollover, set-based: lock the
    workspaces (skipping those another runner holds) and their wallets, read which grants exist,
    then write every ledger entry, wallet, workspace and audit event of the chunk at once."""
    at = timezone.now()
    with transaction.atomic(), _array_cursor() as cursor:
        cursor.execute(_LOCK_DUE, [list(workspace_ids)])
        workspaces = [ws for ws in (_DueRow(row, plans) for row in cursor.fetchall()) if _is_due(ws, now)]
        if not workspaces:
            return 0
        ids = [ws.pk for ws in workspaces]
        # Every writer of a wallet takes its lock; in id order, like every multi-wallet writer.
        cursor.execute("SELECT workspace_id, monthly, purchased, reserved, auto_recharge_threshold, "
                       "auto_recharge_armed, auto_recharge_crossings FROM billing_wallet "
                       "WHERE workspace_id = ANY(%b) ORDER BY workspace_id FOR UPDATE", [ids])
        wallets = {row[0]: list(row[1:]) for row in cursor.fetchall()}
        events, entries, rows, scheduled, old_starts = [], [], [], [], {}
        for ws in workspaces:
            old_starts[ws.pk] = ws.period_start
            if ws.cancel_at_period_end or ws.scheduled_plan_id:
                scheduled.append(ws)
            old_plan = _apply_period_end(ws, plans)
            if ws.plan.pk != old_plan.pk:
                events.append(_plan_change_event(ws, old_plan))
            ws.period_start, ws.period_end = next_period(workspace=ws, now=now)
            rows.append(ws)
        keys = {ws.pk: _grant_key(ws) for ws in rows}
        cursor.execute("SELECT idempotency_key FROM billing_ledgerentry WHERE idempotency_key = ANY(%b)",
                       [list(keys.values())])
        granted = {row[0] for row in cursor.fetchall()}
        for ws in rows:
            if keys[ws.pk] in granted:
                continue  # granted already (invoice.paid came first): the period still moves on
            monthly, purchased, reserved = wallets[ws.pk][:3]
            # billing.ledger.monthly_rollover's postings: what running runs hold does not expire.
            expiring = max(monthly - max(reserved, 0), 0)
            if expiring:
                monthly -= expiring
                entries.append((ws.pk, LedgerEntry.EXPIRY, -expiring, monthly, monthly + purchased,
                                "Unused monthly credits expired at the period end",
                                f"expiry:{ws.pk}:{old_starts[ws.pk].isoformat()}"))
            monthly += ws.monthly_credits
            entries.append((ws.pk, LedgerEntry.GRANT, ws.monthly_credits, monthly, monthly + purchased,
                            f"{ws.plan.name} plan credits for the period", keys[ws.pk]))
            wallets[ws.pk][0] = monthly
        if entries:
            cursor.execute(_LEDGER_INSERT, [MONTHLY, at, *(list(column) for column in zip(*entries))])
        cursor.execute(_WALLETS_UPDATE, [at, ids, [wallets[pk][0] for pk in ids], ids])
        cursor.execute(_PERIODS_UPDATE, [ids, [ws.period_start for ws in rows], [ws.period_end for ws in rows], ids])
        if scheduled:
            cursor.execute(_SCHEDULED_UPDATE, [
                [ws.pk for ws in scheduled], [ws.plan_id for ws in scheduled],
                [ws.stripe_subscription_id for ws in scheduled], [ws.custom_monthly_credits for ws in scheduled],
                [ws.custom_requests_per_minute for ws in scheduled], [ws.custom_concurrent_runs for ws in scheduled],
                [ws.pk for ws in scheduled]])
        AuditEvent.objects.bulk_create(events)
        # Auto-recharge's trigger watches every wallet write, these included (billing.recharge_trigger):
        # only the few wallets with a threshold, after their rows were written.
        for pk, (monthly, purchased, reserved, threshold, armed, crossings) in wallets.items():
            if threshold is not None:
                wallet_watch(Wallet(workspace_id=pk, monthly=monthly, purchased=purchased, reserved=reserved,
                                    auto_recharge_threshold=threshold, auto_recharge_armed=armed,
                                    auto_recharge_crossings=crossings))
        # Cached API tokens carry the workspace row. A large chunk moves the version of every
        # workspace at once (one counter instead of hundreds): each token then reloads once.
        if len(ids) > 50:
            access_versions_bump(everything=True)
        else:
            access_versions_bump(workspace_ids=ids)
    return len(rows)


class _PreparedCursor(psycopg.Cursor):
    """Binds on the server, prepares every statement (Django's connection never prepares) and
    reads results in binary."""

    def execute(self, query, params=None, **kwargs):
        return super().execute(query, params, prepare=True, binary=True, **kwargs)


def _array_cursor() -> _PreparedCursor:
    """A cursor on the open transaction's connection for the chunk's statements, which name their
    rows by arrays of keys. Django's cursors bind on the client, quoting every array element into
    the statement's text, and the planner then plans for the 500 literal ids: on tables of some
    10,000 rows it estimated a sequential scan cheaper than 500 key probes, and compared every row
    with all 500 ids (13-17 ms a statement, O(table) a chunk). Generic plans of prepared statements
    probe the keys whatever the table's size or statistics."""
    connection.ensure_connection()
    cursor = _PreparedCursor(connection.connection)
    cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # this transaction only
    return cursor


def _grant_key(ws: Workspace) -> str:
    return f"grant:{ws.pk}:{ws.period_start.isoformat()}"


def period_grants_run(*, now: datetime, chunk: int = 500, progress: Callable[[str], None] | None = None) -> GrantsReport:
    """Roll every due workspace, `chunk` ids at a time (keyset pagination, so memory stays flat and a
    crashed run simply resumes where the periods still say "due")."""
    report = GrantsReport()
    plans = {plan.pk: plan for plan in Plan.objects.all()}
    last_id = 0
    while True:
        ids = list(due_workspaces(now=now).filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:chunk])
        if not ids:
            break
        report.due += len(ids)
        try:
            rolled = period_chunk_roll(workspace_ids=ids, now=now, plans=plans)
        except DatabaseError:
            # A deadlock with another writer, or a key taken meanwhile: the chunk rolled back whole;
            # do it one workspace at a time (each still exactly once).
            rolled = sum(workspace_period_roll(workspace_id=pk, now=now, plans=plans) for pk in ids)
        report.rolled += rolled
        report.skipped += len(ids) - rolled
        last_id = ids[-1]
        if progress:
            progress(f"{report.due} due, {report.rolled} rolled, {report.skipped} skipped")
    return report
