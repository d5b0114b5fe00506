"""The signed outbound alert webhook (SPEC section 4).

Receivers verify a delivery like this (the recipe shown on the Alerts page):

    import hashlib, hmac
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, request.headers["X-LF-Signature"])

where `raw_body` is the request body exactly as received (bytes), before any JSON parsing."""

import hashlib
import hmac
import json
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

SIGNATURE_HEADER = "X-LF-Signature"
TIMEOUT_SECONDS = 10


def webhook_sign(*, secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_verify(*, secret: str, body: bytes, signature: str) -> bool:
    """The documented recipe, for receivers and tests."""
    return hmac.compare_digest(webhook_sign(secret=secret, body=body), signature or "")


def webhook_body(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=False).encode()


class WebhookFailed(Exception):
    """A delivery that may succeed later (network error, timeout, 5xx, 429): retried with backoff."""


def webhook_post(*, url: str, secret: str, body: bytes) -> int:
    """POST one delivery. The network edge: tests stub `urlopen` here."""
    request = Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "User-Agent": "LenserFight-Billing-Webhook/1",
        SIGNATURE_HEADER: webhook_sign(secret=secret, body=body),
    })
    try:
        with urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status
    except HTTPError as error:
        if error.code >= 500 or error.code == 429:
            raise WebhookFailed(f"{url} answered {error.code}") from error
        return error.code  # a 4xx will not get better by retrying: give up, the receiver refused it
    except (URLError, TimeoutError, OSError) as error:
        raise WebhookFailed(f"{url}: {error}") from error
