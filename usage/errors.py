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
    """402: a credit or budget limit binds. `code` is set per instance."""

    status = 402

    def __init__(self, code: str, message: str, **kwargs):
        super().__init__(message, **kwargs)
        self.code = code


class ConcurrencyLimited(RunError):
    code, status = "concurrency_limit", 429


class ServiceUnavailable(RunError):
    code, status = "service_unavailable", 503
