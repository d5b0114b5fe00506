"""Budget settings, the spend counters that enforce them, and fired alerts."""

from django.db import models
from django.utils import timezone

from billing.models import Workspace, new_webhook_secret


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


class SpendCounter(models.Model):
    """Charged and reserved nanocredits for one scope in one window, kept in the same transaction as
    every reservation and charge (reconcile checks reserved >= 0: a CHECK constraint would refuse the
    negative increment rows of INSERT ... ON CONFLICT before the conflict is seen). Budget checks read these under the wallet lock, so concurrent
    authorizations of one workspace are serialised and can never together pass a limit."""

    WORKSPACE, AGENT, MEMBER = "workspace", "agent", "member"
    PERIOD, DAY = "period", "day"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=16)  # workspace | agent | member
    scope_id = models.BigIntegerField()  # workspace id, agent id or membership id
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
