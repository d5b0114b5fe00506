"""Business refusals of the run lifecycle, each with the API code and status of SPEC section 7."""


class RunError(Exception):
    code = "invalid_request"
    status = 400

    def __init__(self, message: str, *, retry_after: int | None = None, detail: dict | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.detail = detail or {}


class InvalidRequest(RunError):
    code, status = "invalid_request", 400


class UnknownModel(RunError):
    code, status = "unknown_model", 400


class RunNotFound(RunError):
    code, status = "not_found", 404


class IdempotencyConflict(RunError):
    code, status = "idempotency_conflict", 409


class RunRefused(RunError):
    """402: a credit or budget limit binds; 403 or 401 for what a developer token forbids (a model,
    after its expiry). `code` and `status` are set per instance; `detail` may name the token limit
    that binds ({"limit": "max_credits_per_day"})."""

    status = 402

    def __init__(self, code: str, message: str, *, status: int = 402, **kwargs):
        super().__init__(message, **kwargs)
        self.code = code
        self.status = status


class RunNotRunning(RunError):
    """409: the run was completed or expired; its hold cannot grow."""

    code, status = "run_not_running", 409


class ConcurrencyLimited(RunError):
    code, status = "concurrency_limit", 429


class ServiceUnavailable(RunError):
    code, status = "service_unavailable", 503
