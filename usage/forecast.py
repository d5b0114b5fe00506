"""When credits run out at the current rate (issue 15): the Overview and /v1/billing/balance.

The rate is the Usage page's daily average (usage_summary: this period's charges over the days
elapsed), so the forecast and the dashboard read the same figures. No usage, no date.

A forecast looks at most HORIZON_DAYS ahead: a workspace that spends a fraction of a credit a day
would otherwise "run out" millions of days from now, past the last date Python can hold (issue 25).
Beyond the horizon there is no date, only `beyond_horizon`: "more than a year"."""

from dataclasses import dataclass
from datetime import date, timedelta

from django.utils import timezone

from billing.money import nanos_display

from billing.models import AutoRecharge, AutoRechargeAttempt, Wallet, Workspace
from billing.recharge_trigger import COUNTED

from .selectors import usage_summary

HORIZON_DAYS = 365


@dataclass(frozen=True)
class CreditForecast:
    daily_average: int  # nanocredits per day, this period
    runs_out_on: date | None  # available reaches zero at that rate
    next_auto_recharge_on: date | None  # available falls below the auto-recharge threshold
    beyond_horizon: bool = False  # there is usage, and available lasts more than HORIZON_DAYS at that rate
    # Why an active auto-recharge cannot fire when credits next fall, by its own rule (docs/auto-recharge.md):
    # "rearm": it fired and waits for available credits to be back above the threshold; "ceiling": this
    # period's ceiling is reached. Then next_auto_recharge_on is None.
    auto_recharge_waits: str = ""
    threshold: int = 0
    ceiling: int = 0
    period_end: date | None = None

    @property
    def sentence(self) -> str:
        if self.next_auto_recharge_on:
            return f"At the current rate, the next auto-recharge is around {_day(self.next_auto_recharge_on)}."
        runs_out = ""
        if self.runs_out_on:
            runs_out = f"At the current rate, credits run out on {_day(self.runs_out_on)}."
        elif self.beyond_horizon:
            runs_out = "At the current rate, credits last more than a year."
        if self.auto_recharge_waits == "rearm":
            return (f"Auto-recharge already fired below {nanos_display(self.threshold)} credits and fires again only "
                    f"after available credits are back above that (a purchase, or the next period's credits). "
                    + runs_out).strip()
        if self.auto_recharge_waits == "ceiling":
            return (f"Auto-recharge reached its ceiling of {self.ceiling} this period; none until the period renews "
                    f"on {_day(self.period_end)}. " + runs_out).strip()
        return runs_out


def _day(day: date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


def credit_forecast(*, workspace: Workspace, today: date | None = None) -> CreditForecast:
    today = today or timezone.now().date()
    rate = usage_summary(workspace=workspace, start=today, end=today, today=today).daily_average
    if rate <= 0:
        return CreditForecast(0, None, None)
    wallet = Wallet.objects.get(workspace_id=workspace.pk)
    available = wallet.available
    runs_out = _day_within_horizon(today, max(available, 0) // rate)
    auto = AutoRecharge.objects.filter(pk=workspace.pk).first()
    next_recharge, waits, ceiling = None, "", 0
    if auto is not None and auto.is_active:
        # The trigger's own rule (billing.recharge_trigger): a crossing fires only while armed, and
        # counts against this period's ceiling.
        used = AutoRechargeAttempt.objects.filter(workspace=workspace, period_start=workspace.period_start,
                                                  status__in=COUNTED).count()
        if used >= auto.max_per_period:
            waits, ceiling = "ceiling", auto.max_per_period
        elif not wallet.auto_recharge_armed:
            waits = "rearm"
        else:
            next_recharge = _day_within_horizon(today, max(available - auto.threshold, 0) // rate)
    return CreditForecast(rate, runs_out, next_recharge, beyond_horizon=runs_out is None, auto_recharge_waits=waits,
                          threshold=auto.threshold if auto else 0, ceiling=ceiling,
                          period_end=workspace.period_end.date())


def _day_within_horizon(today: date, days: int) -> date | None:
    """`today + days`, or None past the horizon (the only date sum here that user data can stretch)."""
    return today + timedelta(days=days) if days <= HORIZON_DAYS else None
