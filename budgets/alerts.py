"""Budget alerts: fired once per scope, level and period; resolved when usage falls below.

Scopes and levels (SPEC section 4; this project's decisions where the SPEC is silent):
- workspace: its monthly budget, each of warning 80% / critical 95% / hard limit 100% only when
  switched on in Settings -> Billing -> Alerts;
- agent: its per-period budget (max per month). Day budgets reset daily and raise no alert;
- member: a member's monthly budget, for members that have one.
The workspace's Warning and Critical switches apply to agent and member scopes too (one place
decides how noisy a workspace wants to be). Agent and member budgets always stop runs at 100%, so
their hard-limit alert always fires; the workspace's Hard limit switch governs only the workspace
budget.

"Fire" inserts a BudgetAlert row; the database's unique (workspace, scope, scope id, level, period)
constraint makes concurrent checks fire each alert once. Notifications (e-mail to owner and
admins, the signed webhook) are Celery tasks enqueued on commit."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.access_versions import redis_client
from billing.models import Workspace
from billing.money import nanos_to_str

from . import tasks
from .counters import WORKSPACE
from .models import BudgetAlert, WorkspaceBudget, levels_reached
from .selectors import ScopeUsage, budget_scopes, scope_labels
from .webhooks import webhook_body

logger = logging.getLogger(__name__)

FIRED, RESOLVED = "fired", "resolved"


@dataclass(frozen=True)
class AlertChange:
    alert: BudgetAlert
    state: str  # fired | resolved
    used: int
    limit: int


ALERT_CHECK_DELAY_SECONDS = 2
# With Redis: the workspaces whose thresholds are due for a check, and the mark that a drain of that
# set is scheduled. The mark's lifetime only matters if a scheduled drain is lost (the periodic sweep
# catches up meanwhile): a drain deletes it before it takes the set.
DUE_KEY = "lf:alert-checks:due"
ARMED_KEY = "lf:alert-checks:armed"
ARMED_SECONDS = 30
DRAIN_CHUNK = 100


def alerts_check_later(*, workspace_id: int) -> None:
    """After a charge commits, check the workspace's thresholds in a Celery task, within
    ALERT_CHECK_DELAY_SECONDS.

    Charges share checks: publishing one task per charge cost more CPU than the charge's own
    bookkeeping. With Redis, the workspace joins a set of due workspaces, and whichever charge finds
    no drain scheduled schedules one for all of them, ALERT_CHECK_DELAY_SECONDS ahead: one round
    trip per charge, one task per interval for every workspace. Without Redis (one machine), the
    first charge of a workspace schedules its check and leaves a mark in the cache for as long; a
    charge that finds the mark adds nothing, because the scheduled check runs after it committed.
    With eager Celery (tests, the demo seed) a check runs at once, so each charge gets its own.
    `robust`: the charge has committed; if Redis or the broker is down, the periodic sweep catches up."""
    def schedule():
        if tasks.check_alerts.app.conf.task_always_eager:
            tasks.check_alerts.delay(workspace_id)
        elif settings.REDIS_URL:
            if _due_mark(workspace_id):
                tasks.check_due_alerts.apply_async(countdown=ALERT_CHECK_DELAY_SECONDS)
        elif cache.add(f"lf:alert-check:{workspace_id}", 1, timeout=ALERT_CHECK_DELAY_SECONDS):
            tasks.check_alerts.apply_async((workspace_id,), countdown=ALERT_CHECK_DELAY_SECONDS)

    transaction.on_commit(schedule, robust=True)


def _due_mark(workspace_id: int) -> bool:
    """Add the workspace to the due set and set the drain's mark unless it is set, in one round trip
    (Redis runs the two in this order). True when this call set it: the caller schedules the drain.
    A workspace added while the mark is set is in the set before the scheduled drain deletes the
    mark and takes the set, whatever the clocks say."""
    pipe = redis_client().pipeline(transaction=False)
    pipe.sadd(DUE_KEY, workspace_id)
    pipe.set(ARMED_KEY, 1, nx=True, ex=ARMED_SECONDS)
    return bool(pipe.execute()[1])


def alerts_check_due(*, chunk: int = DRAIN_CHUNK) -> int:
    """The drain: check the thresholds of the workspaces marked due, up to `chunk` of them, and hand
    any left to another task first, so that several workers share a large batch. Returns how many
    were checked. One workspace's failure is logged and does not hold up the others' checks (the
    periodic sweep checks it again); a workspace deleted meanwhile is skipped."""
    pipe = redis_client().pipeline(transaction=False)
    pipe.delete(ARMED_KEY)  # a charge from now on schedules the next drain
    pipe.spop(DUE_KEY, chunk)
    due = sorted(int(workspace_id) for workspace_id in pipe.execute()[1])
    if len(due) == chunk:
        tasks.check_due_alerts.delay()
    for workspace_id in due:
        try:
            alerts_check(workspace_id=workspace_id)
        except Workspace.DoesNotExist:
            continue
        except Exception:
            logger.exception("Alert check of workspace %s failed; the periodic sweep checks it again", workspace_id)
    return len(due)


def alerts_on_refusal(*, workspace, code: str, agent_id: int | None = None, membership_id: int | None = None) -> None:
    """A run refused at a hard limit raises the hard-limit alert (SPEC section 4): the refusal means
    used >= limit, so the check fires it (once per period, like any alert)."""
    scope = {"budget_exhausted": ("workspace", workspace.pk),
             "agent_monthly_budget_exceeded": ("agent", agent_id),
             "member_budget_exceeded": ("member", membership_id)}.get(code)
    if scope is None:
        return
    # Refusals come in bursts once a limit binds: enqueue a check only until the alert exists.
    fired = BudgetAlert.objects.filter(workspace=workspace, scope=scope[0], scope_id=scope[1],
                                       level=WorkspaceBudget.HARD_LIMIT, period_start=workspace.period_start)
    if not fired.exists():
        alerts_check_later(workspace_id=workspace.pk)


def _level_applies(budget: WorkspaceBudget, scope: ScopeUsage, level: str) -> bool:
    if level == WorkspaceBudget.HARD_LIMIT and scope.scope != WORKSPACE:
        return True
    return budget.level_enabled(level)


def alerts_check(*, workspace_id: int, now=None) -> list[AlertChange]:
    """Fire every threshold that usage has reached and resolve every open alert it no longer
    reaches (budget raised, level switched off, scope without a budget, or a new period). Returns
    the changes; their notifications go out after commit. Safe to run concurrently and repeatedly."""
    now = now or timezone.now()
    workspace = Workspace.objects.select_related("budget").get(pk=workspace_id)
    budget = workspace.budget
    scopes = budget_scopes(workspace=workspace)
    usage = {scope.key: scope for scope in scopes}
    existing = set(BudgetAlert.objects.filter(workspace=workspace, period_start=workspace.period_start)
                   .values_list("scope", "scope_id", "level"))
    changes: list[AlertChange] = []
    reached = set()
    for scope in scopes:
        for level in levels_reached(used=scope.used, limit=scope.limit):
            percent = WorkspaceBudget.THRESHOLDS[level]
            if not _level_applies(budget, scope, level):
                continue
            reached.add((scope.scope, scope.scope_id, level))
            if (scope.scope, scope.scope_id, level) in existing:
                continue  # fired already in this period (and maybe resolved since): at most once
            try:
                with transaction.atomic():
                    alert = BudgetAlert.objects.create(
                        workspace=workspace, scope=scope.scope, scope_id=scope.scope_id, level=level,
                        period_start=workspace.period_start, period_end=workspace.period_end,
                        threshold_percent=percent, used=scope.used, limit=scope.limit, fired_at=now)
            except IntegrityError:
                continue  # a concurrent check fired it first
            changes.append(AlertChange(alert, FIRED, scope.used, scope.limit))
    for alert in BudgetAlert.objects.filter(workspace=workspace, resolved_at__isnull=True):
        current = alert.period_start == workspace.period_start
        if current and (alert.scope, alert.scope_id, alert.level) in reached:
            continue
        # Conditional update: of two concurrent checks only one resolves (and notifies).
        if BudgetAlert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(resolved_at=now):
            alert.resolved_at = now
            scope = usage.get((alert.scope, alert.scope_id)) if current else None
            changes.append(AlertChange(alert, RESOLVED, scope.used if scope else (alert.used if current else 0),
                                       scope.limit if scope else alert.limit))
    for change in changes:
        transaction.on_commit(lambda change=change: alert_notify(change=change, webhook_url=budget.webhook_url),
                              robust=True)
    return changes


def alert_payload(*, change: AlertChange, workspace: Workspace, label: str) -> dict:
    """The webhook's JSON, exactly as SPEC section 4 lists it."""
    alert = change.alert
    at = alert.resolved_at if change.state == RESOLVED else alert.fired_at
    payload = {
        "event": "budget.alert",
        "state": change.state,
        "level": alert.level,
        "scope": alert.scope,
        "workspace": workspace.slug,
    }
    if alert.scope == "agent":
        payload["agent"] = label
    if alert.scope == "member":
        payload["member"] = label
    payload.update({
        "threshold_percent": alert.threshold_percent,
        "used": nanos_to_str(change.used),
        "limit": nanos_to_str(change.limit),
        "period": {"start": alert.period_start.isoformat(), "end": alert.period_end.isoformat()},
        "at": at.isoformat(),
    })
    return payload


def alert_notify(*, change: AlertChange, webhook_url: str = "") -> None:
    """Enqueue the e-mail and, if configured, the webhook for one change (called on commit)."""
    alert = change.alert
    tasks.send_alert_email.delay(alert.pk, change.state, change.used, change.limit)
    if webhook_url:
        workspace = alert.workspace
        label = scope_labels(workspace=workspace, alerts=[alert]).get((alert.scope, alert.scope_id), "")
        body = webhook_body(alert_payload(change=change, workspace=workspace, label=label))
        tasks.deliver_alert_webhook.delay(workspace.pk, body.decode())
