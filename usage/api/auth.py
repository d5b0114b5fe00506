"""Bearer developer tokens. The token's hash is looked up on every request in one query that also
loads the membership, workspace, plan, budget and user; nothing is cached, so a revoked token stops
working at once on every process."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from usage.models import TOKEN_PREFIX, DeveloperToken, hash_token

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
        tokens = (
            DeveloperToken.objects.select_related(
                "membership__workspace__plan", "membership__workspace__budget", "membership__user")
            .filter(token_hash=hash_token(raw))
            .order_by()[:1]  # token_hash is unique: .first() would add the default ORDER BY for nothing
        )
        token = tokens[0] if tokens else None
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise AuthenticationFailed("This token was revoked.")
        if token.membership.removed_at is not None:  # removed or left: revoked too, this is a second lock
            raise AuthenticationFailed("This token was revoked.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            DeveloperToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token.membership.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class DeveloperTokenScheme(OpenApiAuthenticationExtension):
    """Shows the Bearer scheme in /v1/docs/ (the Authorize button takes the lf_ token)."""

    target_class = DeveloperTokenAuthentication
    name = "DeveloperToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "lf_...",
                "description": "A developer token from Settings -> Developer tokens (or `manage.py create_token`)."}
