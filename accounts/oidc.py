"""The OpenID Connect conversation with a workspace's identity provider, on authlib's Django client
(docs/security.md "Single sign-on").

authlib does the protocol: the authorization URL (response_type=code, state, nonce, PKCE S256),
the state kept in the session and removed at its first use (a replayed callback finds nothing),
the code exchange, and the ID token's verification (signature against the provider's JWKS, then
iss, aud, exp, iat, nonce, azp and the claims we ask for). Nothing here parses a token by hand.

What is ours: which provider a sign-in talks to (the workspace's connection, found again from the
state), where requests may go (provider_url_check: https only, never an internal address; plain
http to loopback only when SSO_ALLOW_LOOPBACK, in DEBUG and the tests), bounded timeouts, no
redirects, and a clear message for each way a sign-in can fail."""

import hashlib
import ipaddress
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.django_client import DjangoOAuth2App
from authlib.integrations.django_client.integration import DjangoIntegration
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponseRedirect
from django.urls import reverse
from joserfc import errors as jose_errors
from requests_hardened.ip_filter_adapter import IPFilterAdapter

from .models import SsoConnection
from .secret_box import SecretUnreadable, secret_decrypt

logger = logging.getLogger(__name__)

SCOPE = "openid email profile"
STATE_NAME = "sso"  # authlib keeps each sign-in's state under the session key _state_sso_<state>
# Asymmetric signatures only: a token signed with a shared secret (HS256) or unsigned ("none") is
# refused whatever the provider's discovery document lists.
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
CLOCK_LEEWAY_SECONDS = 60
# A provider's discovery document is kept this long (shared cache): a burst of sign-ins, or someone
# repeating /accounts/sso/, costs the provider one request. Keys (JWKS) are fetched at each callback.
DISCOVERY_CACHE_SECONDS = 300


class SsoFailed(Exception):
    """A sign-in through the provider that cannot go on; `message` is shown on the error page."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def provider_url_check(url: str) -> None:
    """Refuse a provider address the portal must not call: anything but https (plain http only to
    a loopback address, and only with SSO_ALLOW_LOOPBACK), user info, or no host. The address a
    name resolves to is checked at each connection (requests-hardened), so a public name that
    points inside is refused too."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or parts.username is not None or "\\" in url:
        raise SsoFailed(f"{url} is not a usable identity provider address.")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and settings.SSO_ALLOW_LOOPBACK and _loopback(host):
        return
    raise SsoFailed(f"The identity provider must be reached over https:// ({url} is not).")


class _ProviderSession(OAuth2Session):
    """authlib's requests session for one provider: requests-hardened's address filter on every
    connection (no loopback outside development and tests, never a private address), bounded
    timeouts, no redirects, no proxy from the environment, and provider_url_check on every URL."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default_timeout", (settings.SSO_CONNECT_TIMEOUT_SECONDS, settings.SSO_READ_TIMEOUT_SECONDS))
        super().__init__(*args, **kwargs)
        self.trust_env = False
        for prefix, https in (("http://", False), ("https://", True)):
            self.mount(prefix, IPFilterAdapter(is_https_proto=https, allow_loopback=settings.SSO_ALLOW_LOOPBACK))

    def request(self, method, url, withhold_token=False, auth=None, **kwargs):
        provider_url_check(url)
        kwargs["allow_redirects"] = False
        return super().request(method, url, withhold_token=withhold_token, auth=auth, **kwargs)


class _ProviderApp(DjangoOAuth2App):
    client_cls = _ProviderSession


def _json(response) -> dict:
    response.raise_for_status()
    if response.status_code != 200:
        raise ValueError(f"status {response.status_code}")
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def provider_metadata(issuer: str) -> dict:
    """The provider's discovery document (issuer + /.well-known/openid-configuration), checked: its
    issuer is exactly the configured one, and the endpoints we call pass provider_url_check."""
    provider_url_check(issuer)
    cache_key = "sso-discovery:" + hashlib.sha256(issuer.encode()).hexdigest()
    cached = cache.get(cache_key)
    if isinstance(cached, dict):
        return dict(cached)
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with _ProviderSession() as session:
            metadata = _json(session.request("GET", url, withhold_token=True))
    except SsoFailed:
        raise
    except (requests.RequestException, ValueError) as error:
        logger.warning("SSO discovery at %s failed: %r", url, error)
        raise SsoFailed(f"The identity provider at {issuer} could not be reached or did not answer its discovery "
                        f"document. Try again later, or ask the workspace owner to check the issuer URL.", 502) from None
    if metadata.get("issuer") != issuer:
        raise SsoFailed(f"The identity provider's discovery document names the issuer {metadata.get('issuer')!r}, "
                        f"not {issuer}. The workspace owner should enter the issuer exactly as the provider states it.",
                        502)
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(metadata.get(key), str):
            raise SsoFailed(f"The identity provider's discovery document has no {key}.", 502)
        provider_url_check(metadata[key])
    offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    metadata["id_token_signing_alg_values_supported"] = [alg for alg in offered if alg in ID_TOKEN_ALGORITHMS]
    if not metadata["id_token_signing_alg_values_supported"]:
        raise SsoFailed("The identity provider signs ID tokens only with algorithms the portal does not accept "
                        "(an asymmetric one such as RS256 or ES256 is needed).", 502)
    cache.set(cache_key, metadata, DISCOVERY_CACHE_SECONDS)
    return dict(metadata)


def _app(connection: SsoConnection, metadata: dict) -> _ProviderApp:
    try:
        client_secret = secret_decrypt(connection.client_secret_encrypted)
    except SecretUnreadable as error:
        raise SsoFailed(str(error), 503) from None
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    auth_method = "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
    return _ProviderApp(DjangoIntegration(STATE_NAME), name=STATE_NAME, client_id=connection.client_id,
                        client_secret=client_secret,
                        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256",
                                       "token_endpoint_auth_method": auth_method},
                        **metadata)


def sso_redirect_uri() -> str:
    """The one callback address every workspace registers with its provider."""
    return settings.SITE_URL + reverse("accounts:sso_callback")


def sso_authorization_redirect(request, *, connection: SsoConnection, email: str, next_url: str):
    """A 302 to the provider's authorization endpoint; the state, nonce and PKCE verifier stay in
    this browser's session, with the connection the callback must use."""
    app = _app(connection, provider_metadata(connection.issuer))
    redirect_uri = sso_redirect_uri()
    found = app.create_authorization_url(redirect_uri, login_hint=email)
    app.save_authorize_data(request, redirect_uri=redirect_uri, connection_id=connection.pk, next=next_url, **found)
    return HttpResponseRedirect(found["url"])


@dataclass(frozen=True)
class VerifiedIdentity:
    connection: SsoConnection
    email: str
    name: str
    subject: str
    next_url: str


_CLAIM_MESSAGES = {
    "aud": "The ID token was issued for another application (its audience is not this workspace's client id).",
    "iss": "The ID token was issued by another identity provider than the workspace's.",
    "nonce": "The ID token does not belong to this sign-in (its nonce differs).",
    "email_verified": "The identity provider has not verified this e-mail address.",
    "email": "The identity provider did not share an e-mail address (the email scope).",
    "azp": "The ID token was issued for another application (authorized party).",
}


def _claim_message(error: jose_errors.ClaimError) -> str:
    for claim in str(error.claim).split(","):
        if claim in _CLAIM_MESSAGES:
            return _CLAIM_MESSAGES[claim]
    return f"The ID token's {error.claim} claim is not valid for this sign-in."


def sso_callback_verify(request) -> VerifiedIdentity:
    """Finish a sign-in at the callback: the state must be one this session started and has not
    used; the code is exchanged (with the PKCE verifier) and the ID token verified. Raises SsoFailed
    naming the problem; the state is spent either way, so a callback works once."""
    state = request.GET.get("state", "")[:200]
    framework = DjangoIntegration(STATE_NAME)
    data = framework.get_state_data(request.session, state) if state else None
    try:
        if not data or not isinstance(data, dict) or "connection_id" not in data:
            raise SsoFailed("This sign-in was already completed, has expired, or was started in another browser. "
                            "Start again from the sign-in page.")
        connection = SsoConnection.objects.select_related("workspace__plan").filter(pk=data["connection_id"]).first()
        if connection is None or not connection.enabled:
            raise SsoFailed("Single sign-on was turned off for this workspace meanwhile.")
        app = _app(connection, provider_metadata(connection.issuer))
        claims_options = {
            "iss": {"essential": True, "value": connection.issuer},
            "aud": {"essential": True, "value": connection.client_id},
            "exp": {"essential": True},
            "email": {"essential": True},
            "email_verified": {"essential": True, "value": True},
        }
        try:
            token = app.authorize_access_token(request, claims_options=claims_options, leeway=CLOCK_LEEWAY_SECONDS)
        except MismatchingStateError:
            raise SsoFailed("This sign-in was already completed or has expired. Start again from the sign-in page.") \
                from None
        except OAuthError as error:
            logger.info("SSO provider error for %s: %r", connection.issuer, error)
            description = f"{error.error}: {error.description}" if error.description else str(error.error)
            raise SsoFailed(f"The identity provider did not sign you in ({description[:200]}).") from None
        except jose_errors.ExpiredTokenError:
            raise SsoFailed("The identity provider's ID token has expired. Start again from the sign-in page.") \
                from None
        except jose_errors.ClaimError as error:
            logger.warning("SSO ID token claims refused for %s: %r", connection.issuer, error)
            raise SsoFailed(_claim_message(error)) from None
        except jose_errors.JoseError as error:
            logger.warning("SSO ID token refused for %s: %r", connection.issuer, error)
            raise SsoFailed("The ID token's signature could not be verified against the identity provider's keys.") \
                from None
        except AuthlibBaseError as error:
            logger.warning("SSO failed for %s: %r", connection.issuer, error)
            raise SsoFailed(f"The identity provider's answer could not be used ({error}).") from None
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            logger.warning("SSO token exchange with %s failed: %r", connection.issuer, error)
            raise SsoFailed("The identity provider could not be reached to finish the sign-in. Try again.", 502) \
                from None
        userinfo = token.get("userinfo")
        if not userinfo:
            raise SsoFailed("The identity provider did not return an ID token.")
        return VerifiedIdentity(connection=connection, email=str(userinfo["email"]),
                                name=str(userinfo.get("name") or "")[:300], subject=str(userinfo.get("sub")),
                                next_url=str(data.get("next") or ""))
    finally:
        if state:
            framework.clear_state_data(request.session, state)
