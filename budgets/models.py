"""Budget settings (the workspace's, and each agent's limits), the spend counters that enforce them,
and fired alerts."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models import Workspace, credits, new_webhook_secret


class Agent(models.Model):
    """Created on first use by name. Its three budgets default to the product page's 10/100/1,000."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=200)
    max_per_run = models.BigIntegerField(default=credits(10))  # nanocredits
    max_per_day = models.BigIntegerField(default=credits(100))  # nanocredits per UTC day
    max_per_month = models.BigIntegerField(default=credits(1000))  # nanocredits per billing period
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "usage_agent"  # moved from the usage app; the table stayed
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="agent_name_per_workspace"),
            models.CheckConstraint(
                condition=Q(max_per_run__gt=0) & Q(max_per_day__gt=0) & Q(max_per_month__gt=0),
                name="agent_budgets_positive",
            ),
        ]

    def __str__(self):
        return self.name


class WorkspaceBudget(models.Model):
    """The workspace's monthly budget and its three alert levels (SPEC section 4)."""

    WARNING, CRITICAL, HARD_LIMIT = "warning", "critical", "hard_limit"
    LEVELS = [(WARNING, "Warning"), (CRITICAL, "Critical"), (HARD_LIMIT, "Hard limit")]
    THRESHOLDS = {WARNING: 80, CRITICAL: 95, HARD_LIMIT: 100}

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, primary_key=True, related_name="budget")
    monthly_limit = models.BigIntegerField(null=True, blank=True)  # nanocredits per period; None: no budget
    warning_enabled = models.BooleanField(default=True)
    critical_enabled = models.BooleanField(default=True)
    hard_limit_enabled = models.BooleanField(default=True)  # stop executions at 100%
    webhook_url = models.URLField(blank=True, max_length=500)
    webhook_secret = models.CharField(max_length=80, default=new_webhook_secret)

    def __str__(self):
        return f"Budget of {self.workspace_id}"

    def level_enabled(self, level: str) -> bool:
        return getattr(self, f"{level}_enabled")

    def state(self, used: int) -> str:
        """Where `used` stands on this budget's ladder (see budget_level)."""
        return budget_level(used=used, limit=self.monthly_limit)


# The lowest threshold: below it no alert can fire, which spares a completion the alert check
# (budgets_alert_due, budgets/sql/limits.sql, is given it).
ALERT_FROM_PERCENT = min(WorkspaceBudget.THRESHOLDS.values())


def levels_reached(*, used: int, limit: int | None) -> list[str]:
    """The levels of the 80/95/100% ladder that `used` has reached, lowest first. Integer maths
    (used * 100 >= limit * threshold), so 79.99% is not 80%."""
    if not limit or limit <= 0:
        return []
    return [level for level, threshold in WorkspaceBudget.THRESHOLDS.items() if used * 100 >= limit * threshold]


def budget_level(*, used: int, limit: int | None) -> str:
    """The one ladder for every budget (workspace, agent, member) on pages, in the API, the banner
    and the alerts: "none" without a limit, else the highest level reached ("warning", "critical",
    "hard_limit") or "ok"."""
    if not limit or limit <= 0:
        return "none"
    reached = levels_reached(used=used, limit=limit)
    return reached[-1] if reached else "ok"


class SpendCounter(models.Model):
    """Charged and reserved nanocredits for one scope in one window, kept in the same transaction as
    every reservation and charge (reconcile checks reserved >= 0: a CHECK constraint would refuse the
    negative increment rows of INSERT ... ON CONFLICT before the conflict is seen). Budget checks read these under the wallet lock, so concurrent
    authorizations of one workspace are serialised and can never together pass a limit."""

    WORKSPACE, AGENT, MEMBER, TOKEN = "workspace", "agent", "member", "token"
    PERIOD, DAY = "period", "day"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, db_index=False, related_name="+")  # leads one_counter
    scope = models.CharField(max_length=16)  # workspace | agent | member | token
    scope_id = models.BigIntegerField()  # workspace id, agent id, membership id or developer token id
    span = models.CharField(max_length=8)  # period | day
    span_start = models.DateTimeField()  # period start, or the UTC day at 00:00
    charged = models.BigIntegerField(default=0)
    reserved = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "scope", "scope_id", "span", "span_start"], name="one_counter"),
        ]

    @property
    def used(self) -> int:
        return self.charged + self.reserved


class BudgetAlert(models.Model):
    """A threshold that fired, once per scope, level and period (database-unique)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="alerts")
    scope = models.CharField(max_length=16)  # workspace | agent | member
    scope_id = models.BigIntegerField()
    level = models.CharField(max_length=16, choices=WorkspaceBudget.LEVELS)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    threshold_percent = models.IntegerField()
    used = models.BigIntegerField()
    limit = models.BigIntegerField()
    fired_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-fired_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "scope", "scope_id", "level", "period_start"], name="alert_once_per_period")
        ]
