"""Bearer developer tokens. A token's hash is looked up in one query that also loads the
membership, workspace, plan, budget and user; each process keeps that in memory
(usage.api.token_cache) and checks it is current in the rate-limit call made anyway: a revoked
token, or any change to those rows, is seen at once on every process (billing.access_versions)."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from billing.access_versions import access_version_get
from budgets.limits import TOKEN_EXPIRED, refusal_from_database
from budgets.ratelimit import AccessChanged, limiter_check
from usage.models import TOKEN_PREFIX, DeveloperToken, hash_token

from . import token_cache
from .errors import ApiError

# last_used_at is written at most once a minute per token: a write per request would make every
# API call (and the no-op baseline) pay an UPDATE for a figure shown to the minute.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class DeveloperTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise AuthenticationFailed("Send the token as 'Authorization: Bearer lf_...'.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token.") from None
        if not raw.startswith(TOKEN_PREFIX):
            raise AuthenticationFailed("Invalid token.")
        token_hash = hash_token(raw)
        token = self._cached(request, token_hash)
        if token is None:
            token = self._load(token_hash)
        if token.revoked_at is not None:
            raise AuthenticationFailed("This token was revoked.")
        if token.membership.removed_at is not None:  # removed or left: revoked too, this is a second lock
            raise AuthenticationFailed("This token was revoked.")
        now = timezone.now()
        if token.is_expired(now):
            # Every call, not only a run's authorization (whose locked decision checks it again).
            refusal = refusal_from_database(code=TOKEN_EXPIRED, remaining=None, running=None, allowed=None, token=token)
            raise ApiError(refusal.status, refusal.code, refusal.message)
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            DeveloperToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
            token_cache.token_cache_touch(token_hash, token)
        return token.membership.user, token

    @staticmethod
    def _load(token_hash: str) -> DeveloperToken:
        """The token and its rows from the database, cached under the access version read first."""
        tokens = (
            DeveloperToken.objects.select_related(
                "membership__workspace__plan", "membership__workspace__budget", "membership__user")
            .filter(token_hash=token_hash)
            .order_by()[:1]  # token_hash is unique: .first() would add the default ORDER BY for nothing
        )
        token = tokens[0] if tokens else None
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        return token

    @staticmethod
    def _cached(request, token_hash: str) -> DeveloperToken | None:
        """The token from this process's cache if its workspace's access version is unchanged, else a
        fresh load (cached when it is safe to). The comparison rides on the rate-limit count, which
        counts only when the versions match; its decision is kept on the request for WorkspaceAPIView."""
        if not token_cache.enabled():
            return None
        hit = token_cache.token_cache_get(token_hash)
        if hit is not None:
            token, seen = hit
            try:
                request._request.rate_limit = limiter_check(workspace=token.membership.workspace, access_version=seen)
                return token
            except AccessChanged as changed:
                version = changed.version
            workspace_id = token.membership.workspace_id
        else:
            workspace_id = token_cache.token_workspace(token_hash)
            version = access_version_get(workspace_id=workspace_id) if workspace_id else None
        # The version was read before the rows: a change committed after it moves it again, so an
        # entry can be older than its version says, never newer. A token's workspace never changes;
        # the first load in a process only learns it, and caches from the second.
        fresh = DeveloperTokenAuthentication._load(token_hash)
        if workspace_id != fresh.membership.workspace_id:
            version = None
        token_cache.token_cache_put(token_hash, fresh, version)
        return fresh

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class DeveloperTokenScheme(OpenApiAuthenticationExtension):
    """Shows the Bearer scheme in /v1/docs/ (the Authorize button takes the lf_ token)."""

    target_class = DeveloperTokenAuthentication
    name = "DeveloperToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "lf_...",
                "description": "A developer token from Settings -> Developer tokens (or `manage.py create_token`)."}
