"""Request hardening that belongs to no app."""

import logging
import uuid

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponseBadRequest, JsonResponse

from usage.api.errors import API_BODY_NOT_JSON

# dj-stripe 2.11 lets an `X-Djstripe-Webhook-Secret` header replace the real signing secret when
# DEBUG is on (meant for the Stripe CLI). Anyone could then forge a paid checkout. Verification must
# never depend on DEBUG, so the header is dropped before any view sees it.
_STRIPE_SECRET_OVERRIDE = "HTTP_X_DJSTRIPE_WEBHOOK_SECRET"


def drop_stripe_secret_override(get_response):
    def middleware(request):
        request.META.pop(_STRIPE_SECRET_OVERRIDE, None)
        return get_response(request)

    return middleware


def _has_nul(values) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values.getlist(key)) for key in values)


def _is_api(request) -> bool:
    return request.path.startswith("/v1/") and not request.path.startswith(("/v1/docs/", "/v1/schema/"))


def reject_nul_bytes(get_response):
    """NUL bytes in a path, a query or a form: PostgreSQL cannot store or compare them (psycopg
    raises, a 500 or a 503). No page or object has one in its name: 404 for a path, 400 for input.

    The API reads JSON only. A form body sent to it is refused here, before any work, and never
    parsed: reading `request.POST` would consume the stream that the API view then reads as `body`
    (RawPostDataException, a 500 for any multipart POST, issue 25)."""
    def middleware(request):
        if "\x00" in request.path:
            raise Http404("No such page.")
        if _is_api(request) and request.method in ("POST", "PUT", "PATCH") \
                and request.content_type != "application/json" and request.META.get("CONTENT_LENGTH") not in (None, "", "0"):
            return HttpResponseBadRequest(API_BODY_NOT_JSON, content_type="text/plain")
        form_post = not _is_api(request) and request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded", "multipart/form-data")
        try:
            junk = _has_nul(request.GET) or (form_post and _has_nul(request.POST))
        except RequestDataTooBig:
            junk = False  # the view answers 413 itself
        if junk:
            return HttpResponseBadRequest("The request contains a NUL byte.\n", content_type="text/plain")
        return get_response(request)

    return middleware


class ApiErrors:
    """Every /v1/ error is JSON in the documented format {"error": {"code", "message"}}, including
    those Django answers itself (unknown URL, 400 from a middleware) and unexpected exceptions: a
    500 with a request id, logged with the same id so support can find the traceback."""

    CODES = {400: "invalid_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
             413: "payload_too_large", 500: "internal_error"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (_is_api(request) and response.status_code >= 400
                and not response.get("Content-Type", "").startswith("application/json")):
            status = response.status_code
            message = {404: "Not found.", 400: "Bad request."}.get(status, f"HTTP {status}.")
            if response.get("Content-Type", "").startswith("text/plain") and not response.streaming:
                message = response.content.decode(errors="replace").strip() or message
            return self._json(status, self.CODES.get(status, "invalid_request"), message)
        return response

    def process_exception(self, request, exception):
        if not _is_api(request):
            return None
        if isinstance(exception, Http404):
            return self._json(404, "not_found", "Not found.")
        request_id = uuid.uuid4().hex
        logging.getLogger("usage.api").error("Unexpected error in %s %s (request id %s)", request.method,
                                             request.path, request_id, exc_info=exception)
        response = self._json(500, "internal_error",
                              f"An unexpected error occurred; it has been logged. Quote request id {request_id}.",
                              request_id=request_id)
        response["X-Request-Id"] = request_id
        return response

    @staticmethod
    def _json(status: int, code: str, message: str, **extra):
        return JsonResponse({"error": {"code": code, "message": message, **extra}}, status=status)
