"""Billing periods. Free workspaces roll monthly from their creation day; paid ones follow Stripe."""

import calendar
from datetime import datetime


def add_months(anchor: datetime, months: int) -> datetime:
    """The anchor's day-of-month `months` later, clamped to the month's end (Jan 31 -> Feb 28/29 -> Mar 31)."""
    month_index = anchor.month - 1 + months
    year, month = anchor.year + month_index // 12, month_index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def monthly_period_containing(anchor: datetime, moment: datetime) -> tuple[datetime, datetime]:
    """The [start, end) monthly period, counted from `anchor`, that contains `moment`."""
    months = (moment.year - anchor.year) * 12 + (moment.month - anchor.month)
    months = max(months, 0)
    start = add_months(anchor, months)
    while start > moment and months > 0:
        months -= 1
        start = add_months(anchor, months)
    end = add_months(anchor, months + 1)
    while end <= moment:
        months += 1
        start, end = end, add_months(anchor, months + 1)
    return start, end
