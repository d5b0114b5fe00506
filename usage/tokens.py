"""Developer tokens: created (the raw token is returned once and never stored), revoked, listed.

Only the SHA-256 of a token is kept. Members manage their own tokens; owners and admins see and
revoke every token of the workspace."""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from billing.access_versions import access_versions_bump
from billing.audit import audit_record
from billing.models import Membership

from .models import DeveloperToken, hash_token


@dataclass
class NewToken:
    token: DeveloperToken
    raw: str  # shown to the user once; only its hash is stored


def token_create(*, membership: Membership, name: str = "", actor=None) -> NewToken:
    raw = DeveloperToken.generate()
    with transaction.atomic():
        token = DeveloperToken.objects.create(
            membership=membership, name=(name or "").strip()[:100] or "API token",
            token_hash=hash_token(raw), prefix=raw[:10],
        )
        audit_record(workspace_id=membership.workspace_id, actor=actor or membership.user, action="token.create",
                     after={"token_id": token.pk, "name": token.name, "prefix": token.prefix,
                            "member": membership.user.email})
    return NewToken(token=token, raw=raw)


def token_revoke(*, token: DeveloperToken, actor=None, now=None) -> DeveloperToken:
    """Revoking is immediate everywhere: the workspace's access version moves, and every process's
    token cache (usage.api.token_cache) compares it on each request."""
    now = now or timezone.now()
    with transaction.atomic():
        if DeveloperToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
            # Every process's token cache sees this at its next request with the token.
            access_versions_bump(workspace_ids=[token.membership.workspace_id])
            audit_record(workspace_id=token.membership.workspace_id, actor=actor, action="token.revoke",
                         before={"token_id": token.pk, "name": token.name, "revoked": False},
                         after={"token_id": token.pk, "name": token.name, "revoked": True})
    token.refresh_from_db()
    return token


def tokens_visible_to(*, membership: Membership):
    """Owner and admins see every token of the workspace; a member sees only their own."""
    tokens = DeveloperToken.objects.filter(membership__workspace_id=membership.workspace_id).select_related(
        "membership__user")
    if not membership.can_manage_billing:
        tokens = tokens.filter(membership=membership)
    return tokens.order_by("revoked_at", "-created_at")  # active first (NULLs sort first ascending in PG)
