"""When credits run out at the current rate (issue 15): the Overview and /v1/billing/balance.

The rate is the Usage page's daily average (usage_summary: this period's charges over the days
elapsed), so the forecast and the dashboard read the same figures. No usage, no date.

A forecast looks at most HORIZON_DAYS ahead: a workspace that spends a fraction of a credit a day
would otherwise "run out" millions of days from now, past the last date Python can hold (issue 25).
Beyond the horizon there is no date, only `beyond_horizon`: "more than a year"."""

from dataclasses import dataclass
from datetime import date, timedelta

from django.utils import timezone

from billing.models import AutoRecharge, Wallet, Workspace

from .selectors import usage_summary

HORIZON_DAYS = 365


@dataclass(frozen=True)
class CreditForecast:
    daily_average: int  # nanocredits per day, this period
    runs_out_on: date | None  # available reaches zero at that rate
    next_auto_recharge_on: date | None  # available falls below the auto-recharge threshold
    beyond_horizon: bool = False  # there is usage, and available lasts more than HORIZON_DAYS at that rate

    @property
    def sentence(self) -> str:
        if self.next_auto_recharge_on:
            return f"At the current rate, the next auto-recharge is around {self.next_auto_recharge_on:%b} " \
                   f"{self.next_auto_recharge_on.day}, {self.next_auto_recharge_on.year}."
        if self.runs_out_on:
            return f"At the current rate, credits run out on {self.runs_out_on:%b} {self.runs_out_on.day}, " \
                   f"{self.runs_out_on.year}."
        if self.beyond_horizon:
            return "At the current rate, credits last more than a year."
        return ""


def credit_forecast(*, workspace: Workspace, today: date | None = None) -> CreditForecast:
    today = today or timezone.now().date()
    rate = usage_summary(workspace=workspace, start=today, end=today, today=today).daily_average
    if rate <= 0:
        return CreditForecast(0, None, None)
    wallet = Wallet.objects.get(workspace_id=workspace.pk)
    available = wallet.available
    runs_out = _day_within_horizon(today, max(available, 0) // rate)
    auto = AutoRecharge.objects.filter(pk=workspace.pk).first()
    next_recharge = None
    if auto is not None and auto.is_active:
        next_recharge = _day_within_horizon(today, max(available - auto.threshold, 0) // rate)
    return CreditForecast(rate, runs_out, next_recharge, beyond_horizon=runs_out is None)


def _day_within_horizon(today: date, days: int) -> date | None:
    """`today + days`, or None past the horizon (the only date sum here that user data can stretch)."""
    return today + timedelta(days=days) if days <= HORIZON_DAYS else None
