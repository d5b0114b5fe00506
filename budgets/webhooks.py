"""The signed outbound alert webhook (SPEC section 4).

Receivers verify a delivery like this (the recipe shown on the Alerts page):

    import hashlib, hmac
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, request.headers["X-LF-Signature"])

where `raw_body` is the request body exactly as received (bytes), before any JSON parsing.

Outbound calls cannot reach inside: see webhook_url_check and _send."""

import hashlib
import hmac
import json
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests_hardened import Config, Manager
from requests_hardened.ip_filter import InvalidIPAddress, get_ip_address
from urllib3.exceptions import LocationParseError
from urllib3.util import Url, parse_url

SIGNATURE_HEADER = "X-LF-Signature"
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
MAX_RESPONSE_BYTES = 64 * 1024  # we only need the status; a receiver cannot make us read more


def webhook_sign(*, secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_verify(*, secret: str, body: bytes, signature: str) -> bool:
    """The documented recipe, for receivers and tests."""
    return hmac.compare_digest(webhook_sign(secret=secret, body=body), signature or "")


def webhook_body(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=False).encode()


class WebhookFailed(Exception):
    """A delivery that may succeed later (network error, timeout, 5xx, 429): retried with backoff."""


class WebhookRefused(Exception):
    """The URL may not be called (an internal address, a bad scheme): permanent, never retried."""


def _allow_private() -> bool:
    return bool(getattr(settings, "ALERT_WEBHOOK_ALLOW_PRIVATE", False))


def _as_sent(url: str) -> Url:
    """The URL as the sender reads it: requests hands it to urllib3's parser, which differs from
    urllib.parse on odd input (for `http://127.0.0.1:18299\\@example.com/` urllib.parse sees the host
    example.com, urllib3 connects to 127.0.0.1). User info (`user@host`) is refused altogether: no
    receiver needs it, and it is where the two parsers disagree."""
    if "\\" in url or urlsplit(url).username is not None:
        raise WebhookRefused("The webhook URL may not contain a user name, a password or a backslash (user@host).")
    try:
        sent = parse_url(url)
    except LocationParseError:
        raise WebhookRefused("The webhook URL is not a valid URL.") from None
    if sent.auth is not None:
        raise WebhookRefused("The webhook URL may not contain a user name, a password or a backslash (user@host).")
    return sent


def webhook_url_check(url: str) -> None:
    """Refuse, when a URL is saved, what the sender would refuse: a scheme other than http(s), user
    info, or a host that is or resolves to a loopback, private, link-local, multicast, reserved or
    unspecified address (IPv4 and IPv6; requests-hardened's filter decides). A name that does not
    resolve now is accepted: the sender resolves it again, and checks it, at every delivery."""
    parts = _as_sent(url)
    if parts.scheme not in ("http", "https") or not parts.host:
        raise WebhookRefused("The webhook URL must start with https:// (or http://) and name a host.")
    if _allow_private():
        return
    host = parts.host.strip("[]")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        get_ip_address(host, port, allow_loopback=False)
    except InvalidIPAddress as error:
        raise WebhookRefused(_refusal(host, error)) from None
    except (socket.gaierror, UnicodeError, ValueError):
        return


def _refusal(host: str, error: Exception) -> str:
    address = str(error) or host
    where = f"{host} is" if address == host else f"{host} resolves to {address},"
    return (f"{where} an internal address (loopback, private, link-local, multicast "
            f"or reserved). Alert webhooks go to public addresses only; self-hosters can allow their own "
            f"network with ALERT_WEBHOOK_ALLOW_PRIVATE=true.")


@dataclass(frozen=True)
class Delivery:
    url: str
    headers: dict
    data: bytes

    def get_header(self, name: str) -> str | None:
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)


def _send(delivery: Delivery) -> int:
    """The network edge (tests stub it): requests-hardened resolves the host once and connects to
    that checked address (no DNS rebinding), follows no redirect, and times out; we read at most
    MAX_RESPONSE_BYTES of the answer."""
    manager = Manager(Config(
        ip_filter_enable=not _allow_private(), ip_filter_allow_loopback_ips=False, never_redirect=True,
        default_timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
        user_agent_override="LenserFight-Billing-Webhook/1",
    ))
    with manager.get_session() as session:
        session.trust_env = False  # no proxy from the environment: the filter must see the real target
        response = session.post(delivery.url, data=delivery.data, headers=delivery.headers, stream=True)
        try:
            response.raw.read(MAX_RESPONSE_BYTES, decode_content=False)
        finally:
            response.close()
        return response.status_code


def webhook_post(*, url: str, secret: str, body: bytes) -> int:
    """POST one signed delivery and return the receiver's status. A 3xx is returned, not followed;
    a 4xx will not get better by retrying (the receiver refused it). Raises WebhookRefused for a URL
    that may not be called and WebhookFailed for what a retry may fix."""
    webhook_url_check(url)
    delivery = Delivery(url=url, data=body, headers={
        "Content-Type": "application/json", SIGNATURE_HEADER: webhook_sign(secret=secret, body=body)})
    try:
        status = _send(delivery)
    except InvalidIPAddress as error:
        raise WebhookRefused(_refusal((_as_sent(url).host or url).strip("[]"), error)) from None
    except (requests.RequestException, OSError) as error:
        raise WebhookFailed(f"{url}: {error.__class__.__name__}: {error}") from error
    if status >= 500 or status == 429:
        raise WebhookFailed(f"{url} answered {status}")
    return status
