"""One error format for the whole API: {"error": {"code": "...", "message": "..."}} (SPEC section 7).

Business refusals (usage.errors.RunError) carry their own code and status; DRF's own exceptions
and infrastructure failures are mapped here, so no input ever produces a 500 with an HTML page."""

import logging

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from budgets.ratelimit import LimiterUnavailable
from usage.errors import RunError

API_BODY_NOT_JSON = "Send the body as JSON with Content-Type: application/json."

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An API answer with an explicit code; raise it from views and authentication."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.status_code = status
        self.error_code = code
        self.message = message
        self.retry_after = retry_after


def error_response(status: int, code: str, message: str, *, retry_after: int | None = None,
                   detail: dict | None = None) -> Response:
    """`detail`: more fields of the error object, such as the token limit a refusal names."""
    response = Response({"error": {"code": code, "message": message, **(detail or {})}}, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(max(1, int(retry_after)))
    return response


def _redis_errors() -> tuple:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a requirement
        return ()
    return (RedisConnectionError, RedisTimeoutError)


def _first_message(detail) -> str:
    """DRF validation details as one readable sentence: 'nodes.0.input_tokens: must be ...'."""
    def walk(value, path):
        if isinstance(value, dict):
            for key, inner in value.items():
                found = walk(inner, path + [str(key)])
                if found:
                    return found
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                found = walk(inner, path + ([str(index)] if isinstance(inner, (dict, list)) else []))
                if found:
                    return found
        elif value:
            field = ".".join(p for p in path if p != "non_field_errors")
            return f"{field}: {value}" if field else str(value)
        return ""

    return walk(detail, []) or "Invalid request."


def exception_handler(exc, context):
    if isinstance(exc, ApiError):
        response = error_response(exc.status_code, exc.error_code, exc.message, retry_after=exc.retry_after)
        if exc.status_code == 401:
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    if isinstance(exc, RunError):
        response = error_response(exc.status, exc.code, exc.message, retry_after=exc.retry_after, detail=exc.detail)
        if exc.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    if isinstance(exc, RequestDataTooBig):
        return error_response(413, "payload_too_large", "The request body is over 1 MB.")
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        response = error_response(401, "unauthorized", str(exc.detail))
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    if isinstance(exc, (Http404, exceptions.NotFound)):
        return error_response(404, "not_found", "Not found.")
    if isinstance(exc, exceptions.ValidationError):
        return error_response(400, "invalid_request", _first_message(exc.detail))
    if isinstance(exc, exceptions.ParseError):
        return error_response(400, "invalid_request", f"The body is not valid JSON: {exc.detail}")
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return error_response(400, "invalid_request", API_BODY_NOT_JSON)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return error_response(405, "method_not_allowed", str(exc.detail))
    if isinstance(exc, exceptions.PermissionDenied):
        return error_response(403, "forbidden", str(exc.detail))
    if isinstance(exc, exceptions.Throttled):
        return error_response(429, "rate_limited", str(exc.detail), retry_after=exc.wait or 1)
    if isinstance(exc, exceptions.APIException):
        return error_response(exc.status_code, "invalid_request", str(exc.detail))
    # Fail closed: without the database or Redis nothing can be authorized or charged safely.
    if isinstance(exc, LimiterUnavailable) or isinstance(exc, (OperationalError, InterfaceError) + _redis_errors()):
        logger.warning("API dependency unavailable: %r", exc)
        return error_response(503, "service_unavailable", "A backing service is unreachable; retry shortly.",
                              retry_after=5)
    if isinstance(exc, DatabaseError):
        logger.exception("Database error in the API")
        return error_response(503, "service_unavailable", "The database could not complete the request; retry shortly.",
                              retry_after=5)
    return None  # a real bug: let Django log it and answer 500
