"""When credits run out at the current rate (issue 15): the Overview and /v1/billing/balance.

The rate is the Usage page's daily average (usage_summary: this period's charges over the days
elapsed), so the forecast and the dashboard read the same figures. No usage, no date."""

from dataclasses import dataclass
from datetime import date, timedelta

from django.utils import timezone

from billing.models import AutoRecharge, Wallet, Workspace

from .selectors import usage_summary


@dataclass(frozen=True)
class CreditForecast:
    daily_average: int  # nanocredits per day, this period
    runs_out_on: date | None  # available reaches zero at that rate
    next_auto_recharge_on: date | None  # available falls below the auto-recharge threshold

    @property
    def sentence(self) -> str:
        if self.next_auto_recharge_on:
            return f"At the current rate, the next auto-recharge is around {self.next_auto_recharge_on:%b} " \
                   f"{self.next_auto_recharge_on.day}, {self.next_auto_recharge_on.year}."
        if self.runs_out_on:
            return f"At the current rate, credits run out on {self.runs_out_on:%b} {self.runs_out_on.day}, " \
                   f"{self.runs_out_on.year}."
        return ""


def credit_forecast(*, workspace: Workspace, today: date | None = None) -> CreditForecast:
    today = today or timezone.now().date()
    rate = usage_summary(workspace=workspace, start=today, end=today, today=today).daily_average
    if rate <= 0:
        return CreditForecast(0, None, None)
    wallet = Wallet.objects.get(workspace_id=workspace.pk)
    available = wallet.available
    runs_out = today + timedelta(days=max(available, 0) // rate)
    auto = AutoRecharge.objects.filter(pk=workspace.pk).first()
    next_recharge = None
    if auto is not None and auto.is_active:
        next_recharge = today + timedelta(days=max(available - auto.threshold, 0) // rate)
    return CreditForecast(rate, runs_out, next_recharge)
