"""Enforcement: the limits a run meets (SPEC sections 2 to 4), and what a refusal says.

The rule itself runs inside PostgreSQL, under the wallet lock, in the same statement as the run's
authorization or the growth of its hold: budgets_run_reservation in budgets/sql/limits.sql decides the
reservation, min(requested, agent and token max per run, available, every remaining budget), or the
limit that refuses the run, and reads every input after the lock (issue 9). It is the only
implementation of the rule. This module holds the refusal codes it returns, the code and status each
one answers with in the API, and the messages people read."""

from dataclasses import dataclass

from billing.money import nanos_display

INSUFFICIENT_CREDITS = "insufficient_credits"
BUDGET_EXHAUSTED = "budget_exhausted"
AGENT_DAILY = "agent_daily_budget_exceeded"
AGENT_MONTHLY = "agent_monthly_budget_exceeded"
AGENT_RUN = "agent_run_budget_exceeded"  # an extension would take the hold past the agent's max per run
MEMBER_BUDGET = "member_budget_exceeded"
CONCURRENCY_LIMIT = "concurrency_limit"
# A developer token's limits (issue 29). The database names which one binds; the API answers each of
# the three credit limits with one code, token_budget_exceeded, and names the limit in the message
# and in the error's `limit` field.
TOKEN_DAILY = "token_daily_budget_exceeded"
TOKEN_MONTHLY = "token_monthly_budget_exceeded"
TOKEN_RUN = "token_run_budget_exceeded"
TOKEN_BUDGET = "token_budget_exceeded"
MODEL_NOT_ALLOWED = "model_not_allowed"
TOKEN_EXPIRED = "token_expired"
TOKEN_REVOKED = "token_revoked"
REFUSAL_CODES = (INSUFFICIENT_CREDITS, BUDGET_EXHAUSTED, AGENT_DAILY, AGENT_MONTHLY, AGENT_RUN, MEMBER_BUDGET,
                 CONCURRENCY_LIMIT, TOKEN_DAILY, TOKEN_MONTHLY, TOKEN_RUN, MODEL_NOT_ALLOWED, TOKEN_EXPIRED,
                 TOKEN_REVOKED)
# The token limit each database code names: the field a person sets on the Tokens page.
TOKEN_LIMIT_FIELDS = {TOKEN_DAILY: "max_credits_per_day", TOKEN_MONTHLY: "max_credits_per_month",
                      TOKEN_RUN: "max_credits_per_run"}


@dataclass(frozen=True)
class Refusal:
    code: str  # the API's code
    message: str
    status: int = 402
    retry_after: int | None = None  # seconds, for the concurrency limit (429)
    limit: str | None = None  # the token limit that binds (max_credits_per_day, ...), for token refusals


def refusal_message(code: str, remaining: int) -> str:
    left = nanos_display(max(remaining, 0))
    return {
        INSUFFICIENT_CREDITS: f"Not enough credits: {left} available. Buy credits or wait for the next period's grant.",
        BUDGET_EXHAUSTED: "The workspace's monthly budget is used up (hard limit at 100%). Raise the budget on Settings -> Billing -> Alerts.",
        AGENT_DAILY: f"This agent's daily budget is used up ({left} left today, UTC).",
        AGENT_MONTHLY: f"This agent's budget for this billing period is used up ({left} left).",
        AGENT_RUN: "This run already holds the agent's maximum per run; it cannot reserve more.",
        MEMBER_BUDGET: f"Your member budget for this billing period is used up ({left} left).",
    }[code]


def _token_label(token) -> str:
    """How a refusal names a token: token “engine” (lf_AbCdEfG…)."""
    return f"token “{token.name}” ({token.prefix}…)" if token is not None else "the run's developer token"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _token_message(code: str, remaining: int, token) -> str:
    left = nanos_display(max(remaining, 0))
    field = TOKEN_LIMIT_FIELDS[code]
    limit = getattr(token, field, None) if token is not None else None
    of = f" of {nanos_display(limit)} credits" if limit else ""
    return {
        TOKEN_DAILY: f"{_sentence(_token_label(token))} has used its daily limit{of} (max_credits_per_day; {left} left today, "
                     "UTC). Ask an owner or admin to raise it on Settings -> Developer tokens, or wait for tomorrow.",
        TOKEN_MONTHLY: f"{_sentence(_token_label(token))} has used its limit for this billing period{of} "
                       f"(max_credits_per_month; {left} left).",
        TOKEN_RUN: f"This run already holds the most that {_token_label(token)} allows per run{of} "
                   "(max_credits_per_run).",
    }[code]


def refusal_from_database(*, code: str, remaining: int | None, running: int | None, allowed: int | None,
                          token=None, model: str = "") -> Refusal:
    """The answer to a refusal budgets_run_reservation returned: its code, with what is left of the
    limit that binds, or for the concurrency limit how many runs run and how many may. `token` is
    the developer token whose limits the run meets (anything with name, prefix, expires_at and the
    max_credits_* fields), to name it and its limit in the message."""
    if code == CONCURRENCY_LIMIT:
        return Refusal(CONCURRENCY_LIMIT, f"{running} runs are already running; your plan allows {allowed} at once.",
                       status=429, retry_after=1)
    if code in TOKEN_LIMIT_FIELDS:
        return Refusal(TOKEN_BUDGET, _token_message(code, remaining or 0, token), limit=TOKEN_LIMIT_FIELDS[code])
    if code == MODEL_NOT_ALLOWED:
        allowed_models = ", ".join(getattr(token, "allowed_models", None) or [])
        return Refusal(MODEL_NOT_ALLOWED, f"{_sentence(_token_label(token))} may not use model {model!r}"
                                          + (f"; it may use {allowed_models}." if allowed_models else "."),
                       status=403, limit="allowed_models")
    if code == TOKEN_EXPIRED:
        when = getattr(token, "expires_at", None)
        return Refusal(TOKEN_EXPIRED, f"{_sentence(_token_label(token))} expired"
                                      + (f" on {when:%Y-%m-%d %H:%M} UTC." if when else "."),
                       status=401, limit="expires_at")
    if code == TOKEN_REVOKED:
        return Refusal(TOKEN_REVOKED, "This token was revoked.", status=401)
    return Refusal(code, refusal_message(code, remaining))
