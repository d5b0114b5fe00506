"""Account operations that span layers: sign-up (a user and a personal workspace with its first
credits) and the end of a membership (billing marks it removed, usage's tokens are revoked, in one
transaction)."""

import re

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from billing.access_versions import access_versions_bump
from billing.members import member_leave as _member_leave, member_remove as _member_remove
from billing.models import Membership, User, Workspace, email_canonical
from budgets.workspaces import workspace_create
from usage.models import DeveloperToken

from .tasks import send_password_reset


class Throttled(Exception):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class SignupThrottled(Throttled):
    def __init__(self, retry_after: int):
        super().__init__("Too many sign-ups from this address; try again later.", retry_after)


class EmailTaken(ValueError):
    pass


def attempt_count(*, key: str, limit: int, window_seconds: int = 3600) -> int | None:
    """Count one attempt under `key` in a fixed window; the seconds until the window ends once past
    `limit`, else None. The counter is a cache key (Redis in production), so every web process
    shares it."""
    now = int(timezone.now().timestamp())
    window = now // window_seconds
    key = f"attempts:{key}:{window}"
    cache.add(key, 0, timeout=window_seconds + 60)
    try:
        attempts = cache.incr(key)
    except ValueError:  # evicted between add and incr: start again
        cache.set(key, 1, timeout=window_seconds + 60)
        attempts = 1
    return max(1, (window + 1) * window_seconds - now) if attempts > limit else None


def signup_attempt_count(*, ip: str, limit: int, window_seconds: int = 3600) -> None:
    """Count one sign-up attempt from `ip`; SignupThrottled past `limit` per fixed window."""
    retry_after = attempt_count(key=f"signup:{ip}", limit=limit, window_seconds=window_seconds)
    if retry_after:
        raise SignupThrottled(retry_after=retry_after)


def password_reset_request(*, email: str, ip: str) -> bool:
    """Ask for a reset link for `email`: True when an e-mail job was queued.

    The request does the same work for every address (two counters and one queued job), so its
    answer and its time say nothing about who has an account: the worker looks the account up and
    talks to the mail server (accounts.tasks.send_password_reset). Past the per-IP limit it raises
    Throttled; past the per-address limit nothing is queued and the caller answers as usual, so a
    stranger cannot flood one inbox and the answer still reveals nothing."""
    retry_after = attempt_count(key=f"reset-ip:{ip}", limit=settings.PASSWORD_RESETS_PER_IP_PER_HOUR)
    if retry_after:
        raise Throttled("Too many password reset requests from your network; try again later.", retry_after)
    address = email_canonical(email)
    if attempt_count(key=f"reset-address:{address}", limit=settings.PASSWORD_RESETS_PER_ADDRESS_PER_HOUR):
        return False
    send_password_reset.delay(address)
    return True


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
    email = email_canonical(email)
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
