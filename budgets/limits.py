"""Enforcement: the one rule that decides, under the wallet lock, how much a run may reserve or
which limit refuses it (SPEC sections 2 to 4).

The reservation is min(agent max per run, available, every remaining budget); if that is not
positive the run is refused with the code of the limit that binds. Every input is read here, after
the caller took the wallet lock, in the same transaction (issue 9): a budget lowered, an agent
limit changed or a period rolled while the request waited for the lock binds it."""

from dataclasses import dataclass
from datetime import datetime

from billing.models import Membership, Wallet, concurrent_runs_allowed
from billing.money import nanos_display
from billing.sql import sql_row

from .counters import RunCounters, counters_used
from .models import Agent

INSUFFICIENT_CREDITS = "insufficient_credits"
BUDGET_EXHAUSTED = "budget_exhausted"
AGENT_DAILY = "agent_daily_budget_exceeded"
AGENT_MONTHLY = "agent_monthly_budget_exceeded"
MEMBER_BUDGET = "member_budget_exceeded"
CONCURRENCY_LIMIT = "concurrency_limit"


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    retry_after: int | None = None  # seconds, for the concurrency limit (429)


@dataclass(frozen=True)
class Reservation:
    amount: int  # nanocredits to hold
    period_start: datetime  # the workspace's billing period, as read under the lock
    counters: RunCounters  # the four counters the run counts in


@dataclass(frozen=True)
class LimitInputs:
    """Every input of the decision but the wallet and the counters, as read under the lock."""
    period_start: datetime
    concurrent_runs: int
    workspace_limit: int | None  # the monthly budget, when its hard limit is on; else None
    member_budget: int | None  # None: no member budget, or the member was removed
    agent_max_per_run: int
    agent_max_per_day: int
    agent_max_per_month: int


def refusal_message(code: str, remaining: int) -> str:
    left = nanos_display(max(remaining, 0))
    return {
        INSUFFICIENT_CREDITS: f"Not enough credits: {left} available. Buy credits or wait for the next period's grant.",
        BUDGET_EXHAUSTED: "The workspace's monthly budget is used up (hard limit at 100%). Raise the budget on Settings -> Billing -> Alerts.",
        AGENT_DAILY: f"This agent's daily budget is used up ({left} left today, UTC).",
        AGENT_MONTHLY: f"This agent's budget for this billing period is used up ({left} left).",
        MEMBER_BUDGET: f"Your member budget for this billing period is used up ({left} left).",
    }[code]


# One statement, fixed text (billing.sql): the agent's limits, its workspace's period and plan caps,
# the workspace budget and the member's budget.
LIMIT_INPUTS = """
    SELECT w.period_start, w.custom_concurrent_runs, p.concurrent_runs, b.monthly_limit, b.hard_limit_enabled,
           (SELECT m.monthly_budget FROM billing_membership m WHERE m.id = %s AND m.removed_at IS NULL),
           a.max_per_run, a.max_per_day, a.max_per_month
    FROM usage_agent a
    JOIN billing_workspace w ON w.id = a.workspace_id
    JOIN billing_plan p ON p.id = w.plan_id
    LEFT JOIN budgets_workspacebudget b ON b.workspace_id = w.id
    WHERE a.id = %s"""


def limit_inputs_read(*, membership: Membership, agent_id: int) -> LimitInputs:
    """Call under the wallet lock: in READ COMMITTED each statement sees what committed before it
    started, so nothing read here is older than the lock."""
    row = sql_row(LIMIT_INPUTS, [membership.pk, agent_id])
    if row is None:
        raise Agent.DoesNotExist(f"No agent {agent_id}.")
    (period_start, custom_concurrent, plan_concurrent, monthly_limit, hard_limit_enabled, member_budget,
     max_per_run, max_per_day, max_per_month) = row
    return LimitInputs(
        period_start=period_start,
        concurrent_runs=concurrent_runs_allowed(custom=custom_concurrent, plan=plan_concurrent),
        workspace_limit=monthly_limit if hard_limit_enabled else None,
        member_budget=member_budget, agent_max_per_run=max_per_run, agent_max_per_day=max_per_day,
        agent_max_per_month=max_per_month,
    )


def run_reservation_decide(*, wallet: Wallet, membership: Membership, agent_id: int, day,
                           enforce: bool = True) -> Reservation | Refusal:
    """Call with `wallet` locked (billing.ledger.wallet_lock). Returns what the run may reserve, or
    the limit that refuses it. `enforce=False` (Community Edition: no platform credits, no plan
    limits) reserves nothing and refuses nothing."""
    inputs = limit_inputs_read(membership=membership, agent_id=agent_id)
    counters = RunCounters.for_run(workspace_id=wallet.workspace_id, agent_id=agent_id, member_id=membership.pk,
                                   day=day, period_start=inputs.period_start)
    if not enforce:
        return Reservation(0, inputs.period_start, counters)
    if wallet.running_runs >= inputs.concurrent_runs:
        return Refusal(CONCURRENCY_LIMIT, f"{wallet.running_runs} runs are already running; your plan allows "
                                          f"{inputs.concurrent_runs} at once.", retry_after=1)
    if wallet.available <= 0:
        return Refusal(INSUFFICIENT_CREDITS, refusal_message(INSUFFICIENT_CREDITS, wallet.available))
    used = counters_used(workspace_id=wallet.workspace_id, keys=counters.keys)
    limits = [(INSUFFICIENT_CREDITS, wallet.available)]
    if inputs.workspace_limit is not None:
        limits.append((BUDGET_EXHAUSTED, inputs.workspace_limit - used[counters.workspace_period]))
    if inputs.member_budget is not None:
        limits.append((MEMBER_BUDGET, inputs.member_budget - used[counters.member_period]))
    limits.append((AGENT_MONTHLY, inputs.agent_max_per_month - used[counters.agent_period]))
    limits.append((AGENT_DAILY, inputs.agent_max_per_day - used[counters.agent_day]))
    code, remaining = min(limits, key=lambda limit: limit[1])  # the first listed wins a tie
    if remaining <= 0:
        return Refusal(code, refusal_message(code, remaining))
    return Reservation(min(inputs.agent_max_per_run, remaining), inputs.period_start, counters)
