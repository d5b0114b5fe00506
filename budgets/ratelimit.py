"""Per-workspace request rate limits for /v1/ (SPEC section 3). Contract (implemented by the budgets work):

    limiter_check(*, workspace) -> RateLimitDecision
        Counts one request for the workspace against workspace.requests_per_minute in a shared atomic
        Redis script (exact sliding window across processes); raises LimiterUnavailable when Redis
        cannot be reached (the API answers 503 then: fail closed).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until a slot frees up / the window resets
    retry_after: int  # whole seconds >= 1 when refused, else 0


class LimiterUnavailable(Exception):
    pass


def limiter_check(*, workspace) -> RateLimitDecision:
    limit = workspace.requests_per_minute
    return RateLimitDecision(allowed=True, limit=limit, remaining=limit, reset_seconds=60, retry_after=0)
