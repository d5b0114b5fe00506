"""Period grants: roll every workspace whose billing period has ended (SPEC section 3, docs/plans.md).

For each such workspace, in its own short transaction: apply the change scheduled for the period
end (a downgrade, or a cancellation back to Free), move the period on, expire the monthly bucket's
remainder and grant the new period's credits. Safe to run twice, concurrently and after a crash:
a workspace is picked under a row lock (SKIP LOCKED, so two runners share the work), its period is
re-checked under that lock, and the grant's ledger key (workspace + period start) is unique in the
database.

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

from django.db import transaction
from django.db.models import Q

from .ledger import monthly_rollover
from .models import AuditEvent, Plan, Workspace
from .periods import add_months, monthly_period_containing

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


def workspace_period_roll(*, workspace_id: int, now: datetime, plans: dict[str, Plan] | None = None) -> bool:
    """Roll one workspace if its period is over; False when there was nothing (left) to do.
    `plans` (id -> Plan) lets a job that rolls thousands of workspaces read the plans once."""
    plans = plans if plans is not None else {plan.pk: plan for plan in Plan.objects.all()}
    with transaction.atomic():
        ws = Workspace.objects.select_for_update(skip_locked=True).filter(pk=workspace_id).first()
        if ws is None or ws.period_end > now:
            return False  # locked by a concurrent runner, or already rolled
        ws.plan = plans[ws.plan_id]
        ws.scheduled_plan = plans[ws.scheduled_plan_id] if ws.scheduled_plan_id else None
        if ws.stripe_subscription_id and ws.period_end > now - STRIPE_GRACE:
            return False
        old_start, old_plan = ws.period_start, ws.plan
        if ws.cancel_at_period_end:
            ws.plan_switch(plans["free"])
            ws.stripe_subscription_id = ""
        elif ws.scheduled_plan_id:
            ws.plan_switch(ws.scheduled_plan)
        if ws.plan.pk != old_plan.pk:
            AuditEvent.objects.create(workspace=ws, action="plan.change",
                                      detail={"from": old_plan.pk, "to": ws.plan.pk, "reason": "scheduled for the period end"})
        ws.scheduled_plan, ws.cancel_at_period_end = None, False
        ws.period_start, ws.period_end = next_period(workspace=ws, now=now)
        ws.save(update_fields=["plan", "stripe_subscription_id", "custom_monthly_credits", "custom_requests_per_minute",
                               "custom_concurrent_runs", "scheduled_plan", "cancel_at_period_end", "period_start",
                               "period_end"])
        monthly_rollover(workspace=ws, old_period_start=old_start, new_period_start=ws.period_start,
                         new_credits=ws.monthly_credits)
    return True


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
        for workspace_id in ids:
            report.due += 1
            if workspace_period_roll(workspace_id=workspace_id, now=now, plans=plans):
                report.rolled += 1
            else:
                report.skipped += 1
        last_id = ids[-1]
        if progress:
            progress(f"{report.due} due, {report.rolled} rolled, {report.skipped} skipped")
    return report
