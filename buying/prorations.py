"""What a mid-period upgrade costs and gives: one quote, used by the Plans page (what it promises),
the test checkout and the Stripe mirror (what is charged), the invoice (its lines and service
period) and the ledger (the credits granted). docs/plans.md states the rule.

The rule: the billing period never moves on a plan change. An upgrade is billed for the whole UTC
days left in the current period (the day in progress counts as left), as Stripe prorates: the new
plan's price for those days, less the unused part of the old plan's price. It grants the difference
between the two plans' monthly credits for the same days, never taking this period's grants above
the new plan's allowance. From the period end, the new plan's full price and credits apply.

Days, not seconds: the quote a person reads stays the same until midnight UTC, and Stripe, given
`proration_date` = period end minus those days, computes the same fraction."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q, Sum

from billing.models import LedgerEntry, Plan, Workspace
from billing.money import cents_display as price_display_cents, nanos_display, price_display

DAY = timedelta(days=1)


@dataclass(frozen=True)
class PlanChangeQuote:
    workspace_id: int
    old_plan: Plan
    plan: Plan
    at: datetime  # when the quote was made
    period_start: datetime
    period_end: datetime
    days_left: int  # whole UTC days from service_start to period_end
    days_in_period: int
    charge_cents: int  # the new plan's price for the days left
    credit_cents: int  # the unused part of the old plan's price for the same days (0 on Free)
    credits_now: int  # nanocredits granted at once
    monthly_credits: int  # nanocredits per period from period_end on
    # The grant's parts: the new plan's monthly credits for the days left, less the old plan's for the
    # same days (already granted at the period start, unused by definition). credits_now is their
    # difference, capped so this period's grants never pass the new plan's allowance.
    new_credits_for_days: int = 0
    old_credits_for_days: int = 0

    @property
    def amount_cents(self) -> int:
        """Paid today."""
        return max(self.charge_cents - self.credit_cents, 0)

    @property
    def service_start(self) -> datetime:
        """The start of the billed days: also the proration date given to Stripe."""
        return self.period_end - self.days_left * DAY

    @property
    def is_paid_upgrade(self) -> bool:
        return bool(self.plan.price_cents) and self.plan.price_cents > (self.old_plan.price_cents or 0)

    def lines(self) -> list[tuple[str, str]]:
        """The quote itemised as Stripe's invoice preview shows it: (what, amount) rows, short enough
        for a plan card. The next invoice is next_invoice()."""
        days = f"{self.days_left} of {self.days_in_period} days"
        rows = [(f"{self.plan.name}, {days} left", price_display_cents(self.charge_cents))]
        if self.credit_cents:
            rows.append((f"Unused time on {self.old_plan.name}", price_display_cents(-self.credit_cents)))
        rows.append(("Due today", price_display_cents(self.amount_cents)))
        rows.append((f"{self.plan.name} credits for those days", nanos_display(self.new_credits_for_days, signed=True)))
        if self.old_credits_for_days:
            rows.append((f"Less unused {self.old_plan.name} credits", nanos_display(-self.old_credits_for_days, signed=True)))
        capped = self.new_credits_for_days - self.old_credits_for_days - self.credits_now
        if capped > 0:
            rows.append(("Less grants already this period", nanos_display(-capped, signed=True)))
        rows.append(("Credits now", nanos_display(self.credits_now)))
        return rows

    def next_invoice(self) -> str:
        return (f"Next invoice {self.period_end:%b} {self.period_end.day}, {self.period_end.year}: "
                f"{price_display_cents(self.plan.price_cents or 0)} for {self.plan.name}, with "
                f"{nanos_display(self.monthly_credits)} credits.")

    def sentence(self) -> str:
        """What the Plans page promises before the button."""
        days = f"{self.days_left} day{'s' if self.days_left != 1 else ''}"
        return (f"Pay {price_display(self.amount_cents)} today for the {days} left, get "
                f"{nanos_display(self.credits_now)} credits now; from {self.period_end:%b} {self.period_end.day}, "
                f"{self.period_end.year}, {price_display(self.plan.price_cents or 0)} a month with "
                f"{nanos_display(self.monthly_credits)} credits.")


def _prorate_cents(cents: int, days: int, period_days: int) -> int:
    return int((Decimal(cents) * days / period_days).to_integral_value(rounding=ROUND_HALF_UP))


def granted_this_period(*, workspace: Workspace) -> int:
    """Nanocredits granted for the current period: its period grant and earlier upgrades."""
    period = workspace.period_start.isoformat()
    return LedgerEntry.objects.filter(workspace_id=workspace.pk, kind=LedgerEntry.GRANT).filter(
        Q(idempotency_key=f"grant:{workspace.pk}:{period}") | Q(idempotency_key__startswith=f"upgrade:{workspace.pk}:{period}:")
    ).aggregate(total=Sum("amount"))["total"] or 0


def plan_change_quote(*, workspace: Workspace, plan: Plan, at: datetime, monthly_credits: int | None = None,
                      old_plan: Plan | None = None, old_monthly_credits: int | None = None) -> PlanChangeQuote:
    """The quote for moving `workspace` to `plan` at `at` (an upgrade; for a downgrade the amounts are
    zero: it waits for the period end). `monthly_credits` overrides the new plan's (Enterprise);
    `old_plan` / `old_monthly_credits` describe the plan being left when the caller has already
    changed the workspace (inside plan_change)."""
    old_plan = old_plan or workspace.plan
    old_monthly = workspace.monthly_credits if old_monthly_credits is None else old_monthly_credits
    new_monthly = plan.monthly_credits if monthly_credits is None else monthly_credits
    if plan.is_custom and monthly_credits is None and workspace.custom_monthly_credits is not None:
        new_monthly = workspace.custom_monthly_credits
    period_days = max(round((workspace.period_end - workspace.period_start) / DAY), 1)
    left = workspace.period_end - at
    days_left = min(max(-(-left // DAY), 1), period_days)  # ceil, within [1, period]
    upgrade = new_monthly > old_monthly or (plan.price_cents or 0) > (old_plan.price_cents or 0)
    charge = _prorate_cents(plan.price_cents or 0, days_left, period_days) if upgrade else 0
    credit = _prorate_cents(old_plan.price_cents or 0, days_left, period_days) if upgrade else 0
    credits_now = new_for_days = old_for_days = 0
    if new_monthly > old_monthly:
        new_for_days, old_for_days = new_monthly * days_left // period_days, old_monthly * days_left // period_days
        prorated = new_for_days - old_for_days
        credits_now = max(min(prorated, new_monthly - granted_this_period(workspace=workspace)), 0)
    return PlanChangeQuote(
        workspace_id=workspace.pk, old_plan=old_plan, plan=plan, at=at, period_start=workspace.period_start,
        period_end=workspace.period_end, days_left=days_left, days_in_period=period_days, charge_cents=charge,
        credit_cents=credit, credits_now=credits_now, monthly_credits=new_monthly,
        new_credits_for_days=new_for_days, old_credits_for_days=old_for_days,
    )
