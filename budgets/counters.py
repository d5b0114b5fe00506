"""Spend counters: what each budget scope has charged and holds in reserve, per window.

A run counts in counters fixed at authorization: the workspace's period, the agent's UTC day, the
agent's period and the member's period, and, for a run authorized with a developer token, the
token's UTC day and the token's period (issue 29). Reservations and charges move them all by the same
amounts, inside the charge path's locked call (budgets_run_counters_add, budgets/sql/limits.sql);
the pages read them through budgets/selectors.py."""

from datetime import datetime, time, timezone as dt_timezone

from .models import SpendCounter

WORKSPACE, AGENT, MEMBER, TOKEN = SpendCounter.WORKSPACE, SpendCounter.AGENT, SpendCounter.MEMBER, SpendCounter.TOKEN
PERIOD, DAY = SpendCounter.PERIOD, SpendCounter.DAY


def day_start(day) -> datetime:
    """The start of a UTC day, as an agent's day counter names it."""
    return datetime.combine(day, time.min, tzinfo=dt_timezone.utc)
