"""Account operations that span layers: sign-up (a user and a personal workspace with its first
credits) and the end of a membership (billing marks it removed, usage's tokens are revoked, in one
transaction)."""

import re

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from billing.access_versions import access_versions_bump
from billing.members import member_leave as _member_leave, member_remove as _member_remove
from billing.models import Membership, User, Workspace
from budgets.workspaces import workspace_create
from usage.models import DeveloperToken


class SignupThrottled(Exception):
    def __init__(self, retry_after: int):
        super().__init__("Too many sign-ups from this address; try again later.")
        self.retry_after = retry_after


class EmailTaken(ValueError):
    pass


def signup_attempt_count(*, ip: str, limit: int, window_seconds: int = 3600) -> None:
    """Count one sign-up attempt from `ip`; SignupThrottled past `limit` per fixed window. The
    counter is a cache key (Redis in production), so every web process shares it."""
    now = int(timezone.now().timestamp())
    window = now // window_seconds
    key = f"signup-attempts:{ip}:{window}"
    cache.add(key, 0, timeout=window_seconds + 60)
    try:
        attempts = cache.incr(key)
    except ValueError:  # evicted between add and incr: start again
        cache.set(key, 1, timeout=window_seconds + 60)
        attempts = 1
    if attempts > limit:
        raise SignupThrottled(retry_after=max(1, (window + 1) * window_seconds - now))


def _personal_slug(email: str) -> str:
    base = slugify(re.sub(r"[._+]", "-", email.split("@")[0]))[:40].strip("-") or "workspace"
    slug, n = base, 1
    while Workspace.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def account_signup(*, email: str, password: str, name: str = "") -> Workspace:
    """A new user (password already validated by the form) with a personal workspace on Free that
    receives its first period's credits at once. Exactly one personal workspace: the user row and
    the workspace commit together, and the e-mail is unique in the database."""
    email = User.objects.normalize_email(email).strip().lower()
    for _ in range(3):  # a slug taken by a concurrent sign-up: pick the next one
        try:
            with transaction.atomic():
                if User.objects.filter(email=email).exists():
                    raise EmailTaken(email)
                first, _, last = (name or "").strip().partition(" ")
                user = User.objects.create_user(email=email, password=password, first_name=first[:150],
                                                last_name=last[:150])
                return personal_workspace_create(user=user)
        except IntegrityError:
            if User.objects.filter(email=email).exists():
                raise EmailTaken(email) from None
    raise IntegrityError("Could not pick a free workspace address.")


def personal_workspace_create(*, user: User) -> Workspace:
    """A personal workspace on Free for `user`, with its first period's credits."""
    label = user.get_full_name() or user.email.split("@")[0]
    return workspace_create(slug=_personal_slug(user.email), name=f"{label} (personal)", owner=user,
                            plan_id="free", kind=Workspace.PERSONAL, actor=user)


def _tokens_revoke(membership: Membership) -> int:
    revoked = DeveloperToken.objects.filter(membership_id=membership.pk, revoked_at__isnull=True) \
        .update(revoked_at=timezone.now())
    # Every process's API token cache sees it at the token's next request (usage.api.token_cache).
    access_versions_bump(workspace_ids=[membership.workspace_id])
    return revoked


def member_remove(*, membership: Membership, actor: Membership) -> Membership:
    """Remove someone: they lose the workspace's pages at once and their tokens get 401 at once.
    Their runs, usage and charges stay in the workspace's history."""
    with transaction.atomic():
        membership = _member_remove(membership=membership, actor=actor)
        _tokens_revoke(membership)
    return membership


def member_leave(*, membership: Membership) -> Membership:
    with transaction.atomic():
        membership = _member_leave(membership=membership)
        _tokens_revoke(membership)
    return membership
