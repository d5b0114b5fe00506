"""Enforcement: the limits a run meets (SPEC sections 2 to 4), and what a refusal says.

The rule itself runs inside PostgreSQL, under the wallet lock, in the same statement as the run's
authorization: budgets_run_reservation in budgets/sql/limits.sql decides the reservation,
min(agent max per run, available, every remaining budget), or the limit that refuses the run, and
reads every input after the lock (issue 9). It is the only implementation of the rule. This module
holds the refusal codes it returns and the messages people read."""

from dataclasses import dataclass

from billing.money import nanos_display

INSUFFICIENT_CREDITS = "insufficient_credits"
BUDGET_EXHAUSTED = "budget_exhausted"
AGENT_DAILY = "agent_daily_budget_exceeded"
AGENT_MONTHLY = "agent_monthly_budget_exceeded"
MEMBER_BUDGET = "member_budget_exceeded"
CONCURRENCY_LIMIT = "concurrency_limit"
REFUSAL_CODES = (INSUFFICIENT_CREDITS, BUDGET_EXHAUSTED, AGENT_DAILY, AGENT_MONTHLY, MEMBER_BUDGET,
                 CONCURRENCY_LIMIT)


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    retry_after: int | None = None  # seconds, for the concurrency limit (429)


def refusal_message(code: str, remaining: int) -> str:
    left = nanos_display(max(remaining, 0))
    return {
        INSUFFICIENT_CREDITS: f"Not enough credits: {left} available. Buy credits or wait for the next period's grant.",
        BUDGET_EXHAUSTED: "The workspace's monthly budget is used up (hard limit at 100%). Raise the budget on Settings -> Billing -> Alerts.",
        AGENT_DAILY: f"This agent's daily budget is used up ({left} left today, UTC).",
        AGENT_MONTHLY: f"This agent's budget for this billing period is used up ({left} left).",
        MEMBER_BUDGET: f"Your member budget for this billing period is used up ({left} left).",
    }[code]


def refusal_from_database(*, code: str, remaining: int | None, running: int | None, allowed: int | None) -> Refusal:
    """The answer to a refusal budgets_run_reservation returned: its code, with what is left of the
    limit that binds, or for the concurrency limit how many runs run and how many may."""
    if code == CONCURRENCY_LIMIT:
        return Refusal(CONCURRENCY_LIMIT, f"{running} runs are already running; your plan allows {allowed} at once.",
                       retry_after=1)
    return Refusal(code, refusal_message(code, remaining))
