"""Spend counters: what each budget scope has charged and holds in reserve, per window.

A run counts in four counters fixed at authorization: the workspace's period, the agent's UTC day,
the agent's period and the member's period. Reservations and charges move all four by the same
amounts in one statement."""

from dataclasses import dataclass
from datetime import datetime, time, timezone as dt_timezone

from billing.sql import placeholders, sql_rows
from billing.upsert import upsert_add

from .models import SpendCounter

WORKSPACE, AGENT, MEMBER = SpendCounter.WORKSPACE, SpendCounter.AGENT, SpendCounter.MEMBER
PERIOD, DAY = SpendCounter.PERIOD, SpendCounter.DAY


def day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=dt_timezone.utc)


@dataclass(frozen=True)
class CounterKey:
    scope: str
    scope_id: int
    span: str
    span_start: datetime


@dataclass(frozen=True)
class RunCounters:
    workspace_period: CounterKey
    agent_day: CounterKey
    agent_period: CounterKey
    member_period: CounterKey

    @classmethod
    def for_run(cls, *, workspace_id: int, agent_id: int, member_id: int, day, period_start: datetime) -> "RunCounters":
        return cls(
            CounterKey(WORKSPACE, workspace_id, PERIOD, period_start),
            CounterKey(AGENT, agent_id, DAY, day_start(day)),
            CounterKey(AGENT, agent_id, PERIOD, period_start),
            CounterKey(MEMBER, member_id, PERIOD, period_start),
        )

    @property
    def keys(self) -> list[CounterKey]:
        return [self.workspace_period, self.agent_day, self.agent_period, self.member_period]


def counters_used(*, workspace_id: int, keys: list[CounterKey]) -> dict[CounterKey, int]:
    """charged + reserved for each key (0 for a counter not yet created), in one query of fixed text
    (billing.sql; the authorize hot path). It asks for the keys' ids and window starts (a few rows at
    most) and the exact keys are picked here: simpler than an OR of four conditions."""
    used = {key: 0 for key in keys}
    scope_ids = sorted({key.scope_id for key in keys})
    span_starts = sorted({key.span_start for key in keys})
    rows = sql_rows(
        "SELECT scope, scope_id, span, span_start, charged, reserved FROM budgets_spendcounter "
        f"WHERE workspace_id = %s AND scope_id IN ({placeholders(len(scope_ids))}) "
        f"AND span_start IN ({placeholders(len(span_starts))})",
        [workspace_id, *scope_ids, *span_starts])
    for scope, scope_id, span, span_start, charged, reserved in rows:
        key = CounterKey(scope, scope_id, span, span_start)
        if key in used:
            used[key] = charged + reserved
    return used


def counters_add(*, workspace_id: int, keys: list[CounterKey], charged: int = 0, reserved: int = 0) -> None:
    """Add to each counter (creating it), atomically in the database. Call under the wallet lock."""
    if not charged and not reserved:
        return
    rows = [
        {"workspace": workspace_id, "scope": k.scope, "scope_id": k.scope_id, "span": k.span,
         "span_start": k.span_start, "charged": charged, "reserved": reserved}
        for k in keys
    ]
    upsert_add(SpendCounter, rows, unique=["workspace", "scope", "scope_id", "span", "span_start"], add=["charged", "reserved"])
