"""Enforcement: the one rule that decides, under the wallet lock, how much a run may reserve or
which limit refuses it (SPEC sections 2 to 4).

The reservation is min(agent max per run, available, every remaining budget); if that is not
positive the run is refused with the code of the limit that binds. Every input is read here, after
the caller took the wallet lock, in the same transaction (issue 9): a budget lowered, an agent
limit changed or a period rolled while the request waited for the lock binds it."""

from dataclasses import dataclass

from django.db.models import Subquery

from billing.models import Membership, Wallet
from billing.money import nanos_display

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
    agent: Agent  # as read under the lock, with its workspace (period, plan caps) and budget
    counters: RunCounters  # the four counters the run counts in


def refusal_message(code: str, remaining: int) -> str:
    left = nanos_display(max(remaining, 0))
    return {
        INSUFFICIENT_CREDITS: f"Not enough credits: {left} available. Buy credits or wait for the next period's grant.",
        BUDGET_EXHAUSTED: "The workspace's monthly budget is used up (hard limit at 100%). Raise the budget on Settings -> Billing -> Alerts.",
        AGENT_DAILY: f"This agent's daily budget is used up ({left} left today, UTC).",
        AGENT_MONTHLY: f"This agent's budget for this billing period is used up ({left} left).",
        MEMBER_BUDGET: f"Your member budget for this billing period is used up ({left} left).",
    }[code]


def limit_inputs_read(*, membership: Membership, agent_id: int) -> Agent:
    """The agent with its limits, its workspace (period, plan caps, budget) and the member's budget,
    in one query. Under the wallet lock: in READ COMMITTED each statement sees what committed before
    it started, so nothing read here is older than the lock. Refreshes `membership` in place."""
    member_budget = Membership.objects.filter(pk=membership.pk).values("monthly_budget")[:1]
    agent = (Agent.objects.select_related("workspace__plan", "workspace__budget")
             .annotate(member_monthly_budget=Subquery(member_budget)).order_by().get(pk=agent_id))
    membership.workspace = agent.workspace
    membership.monthly_budget = agent.member_monthly_budget
    return agent


def run_reservation_decide(*, wallet: Wallet, membership: Membership, agent_id: int, day,
                           enforce: bool = True) -> Reservation | Refusal:
    """Call with `wallet` locked (billing.ledger.wallet_lock). Returns what the run may reserve, or
    the limit that refuses it. `enforce=False` (Community Edition: no platform credits, no plan
    limits) reserves nothing and refuses nothing."""
    agent = limit_inputs_read(membership=membership, agent_id=agent_id)
    workspace = agent.workspace
    counters = RunCounters.for_run(workspace_id=workspace.pk, agent_id=agent.pk, member_id=membership.pk, day=day,
                                   period_start=workspace.period_start)
    if not enforce:
        return Reservation(0, agent, counters)
    if wallet.running_runs >= workspace.concurrent_runs:
        return Refusal(CONCURRENCY_LIMIT, f"{wallet.running_runs} runs are already running; your plan allows "
                                          f"{workspace.concurrent_runs} at once.", retry_after=1)
    if wallet.available <= 0:
        return Refusal(INSUFFICIENT_CREDITS, refusal_message(INSUFFICIENT_CREDITS, wallet.available))
    used = counters_used(workspace_id=workspace.pk, keys=counters.keys)
    limits = [(INSUFFICIENT_CREDITS, wallet.available)]
    budget = workspace.budget
    if budget.monthly_limit is not None and budget.hard_limit_enabled:
        limits.append((BUDGET_EXHAUSTED, budget.monthly_limit - used[counters.workspace_period]))
    if membership.monthly_budget is not None:
        limits.append((MEMBER_BUDGET, membership.monthly_budget - used[counters.member_period]))
    limits.append((AGENT_MONTHLY, agent.max_per_month - used[counters.agent_period]))
    limits.append((AGENT_DAILY, agent.max_per_day - used[counters.agent_day]))
    code, remaining = min(limits, key=lambda limit: limit[1])  # the first listed wins a tie
    if remaining <= 0:
        return Refusal(code, refusal_message(code, remaining))
    return Reservation(min(agent.max_per_run, remaining), agent, counters)
