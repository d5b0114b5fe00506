"""Developer tokens: created (the raw token is returned once and never stored), revoked, listed, and
limited (issue 29).

Only the SHA-256 of a token is kept. Members manage their own tokens; owners and admins see and
revoke every token of the workspace. A token may carry limits (TokenLimits): owners and admins set
them on any token, and what they set becomes the token's ceiling (DeveloperToken.admin_limits); a
member sets limits on their own tokens, at most that ceiling, so a member can lower an admin's
limit and raise it back, but never past it. The limits are enforced in the run's locked decision
(budgets/sql/limits.sql), not here."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.access_versions import access_versions_bump
from billing.audit import audit_record
from billing.models import AIModel, Membership
from billing.money import nanos_display, nanos_to_str

from .models import DeveloperToken, hash_token

LIMIT_FIELDS = ("max_credits_per_run", "max_credits_per_day", "max_credits_per_month")
LIMIT_NAMES = {"max_credits_per_run": "the maximum per run", "max_credits_per_day": "the daily limit",
               "max_credits_per_month": "the limit per billing period"}


class TokenLimitsInvalid(ValueError):
    """A limit that cannot be set; `field` names the form field it concerns."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class TokenLimits:
    """A token's limits. Credits in nanocredits; None (or no models) is no limit."""

    max_credits_per_run: int | None = None
    max_credits_per_day: int | None = None
    max_credits_per_month: int | None = None
    allowed_models: tuple[str, ...] = field(default=())
    expires_at: datetime | None = None

    @classmethod
    def of(cls, token: DeveloperToken) -> "TokenLimits":
        return cls(token.max_credits_per_run, token.max_credits_per_day, token.max_credits_per_month,
                   tuple(token.allowed_models), token.expires_at)

    @classmethod
    def from_json(cls, data: dict | None) -> "TokenLimits | None":
        if data is None:
            return None
        expires = data.get("expires_at")
        return cls(data.get("max_credits_per_run"), data.get("max_credits_per_day"), data.get("max_credits_per_month"),
                   tuple(data.get("allowed_models") or ()), datetime.fromisoformat(expires) if expires else None)

    def as_json(self) -> dict:
        return {"max_credits_per_run": self.max_credits_per_run, "max_credits_per_day": self.max_credits_per_day,
                "max_credits_per_month": self.max_credits_per_month, "allowed_models": list(self.allowed_models),
                "expires_at": self.expires_at.isoformat() if self.expires_at else None}

    def audit_json(self) -> dict:
        """As the audit log shows them, one short field each: credits as decimal strings, the models
        as one comma-separated string, None for no limit."""
        data = self.as_json()
        for name in LIMIT_FIELDS:
            if data[name] is not None:
                data[name] = nanos_to_str(data[name])
        data["allowed_models"] = ", ".join(self.allowed_models) or None
        return data

    def describe(self) -> list[str]:
        """The limits in words, for the pages and the command line."""
        words = []
        for name, unit in (("max_credits_per_run", "per run"), ("max_credits_per_day", "per UTC day"),
                           ("max_credits_per_month", "per billing period")):
            if getattr(self, name) is not None:
                words.append(f"{nanos_display(getattr(self, name))} credits {unit}")
        if self.allowed_models:
            words.append("models " + ", ".join(self.allowed_models))
        if self.expires_at is not None:
            words.append(f"expires {self.expires_at:%Y-%m-%d %H:%M} UTC")
        return words

    @property
    def any(self) -> bool:
        return any(getattr(self, name) for name in LIMIT_FIELDS) or bool(self.allowed_models) or bool(self.expires_at)

    def check(self, *, now=None) -> None:
        """Each limit on its own: positive credits, known models, an expiry in the future."""
        for name in LIMIT_FIELDS:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise TokenLimitsInvalid(f"Enter more than 0 credits for {LIMIT_NAMES[name]}.", field=name)
        run, day, month = self.max_credits_per_run, self.max_credits_per_day, self.max_credits_per_month
        if run and day and run > day:
            raise TokenLimitsInvalid("The maximum per run cannot exceed the daily limit.", field="max_credits_per_run")
        if day and month and day > month:
            raise TokenLimitsInvalid("The daily limit cannot exceed the limit per billing period.",
                                     field="max_credits_per_day")
        if self.allowed_models:
            known = set(AIModel.objects.filter(id__in=self.allowed_models).values_list("id", flat=True))
            unknown = [model for model in self.allowed_models if model not in known]
            if unknown:
                raise TokenLimitsInvalid(f"Unknown model {unknown[0]!r}; see the rates for the model ids.",
                                         field="allowed_models")
        if self.expires_at is not None and self.expires_at <= (now or timezone.now()):
            raise TokenLimitsInvalid("The expiry must be in the future.", field="expires_at")

    def over(self, ceiling: "TokenLimits") -> tuple[str, str] | None:
        """The first of these limits that would raise one of `ceiling` (an admin's), as (field,
        sentence); None when each is at most the ceiling's."""
        for name in LIMIT_FIELDS:
            top, mine = getattr(ceiling, name), getattr(self, name)
            if top is not None and (mine is None or mine > top):
                return name, (f"An owner or admin set {LIMIT_NAMES[name]} of this token to {nanos_display(top)} "
                              "credits: you may lower it, not raise or remove it.")
        if ceiling.allowed_models and (not self.allowed_models
                                       or not set(self.allowed_models) <= set(ceiling.allowed_models)):
            return "allowed_models", ("An owner or admin limited this token to " + ", ".join(ceiling.allowed_models)
                                      + ": you may remove models from that list, not add any.")
        if ceiling.expires_at is not None and (self.expires_at is None or self.expires_at > ceiling.expires_at):
            return "expires_at", (f"An owner or admin set this token to expire on {ceiling.expires_at:%Y-%m-%d %H:%M} "
                                  "UTC: you may make it expire sooner, not later.")
        return None


@dataclass
class NewToken:
    token: DeveloperToken
    raw: str  # shown to the user once; only its hash is stored


def _apply(token: DeveloperToken, limits: TokenLimits) -> None:
    token.max_credits_per_run = limits.max_credits_per_run
    token.max_credits_per_day = limits.max_credits_per_day
    token.max_credits_per_month = limits.max_credits_per_month
    token.allowed_models = list(limits.allowed_models)
    token.expires_at = limits.expires_at


def token_create(*, membership: Membership, name: str = "", limits: TokenLimits | None = None,
                 actor=None, admin_set: bool | None = None) -> NewToken:
    """A new token of `membership`, with `limits` if given. People create their own tokens: the
    limits of an owner's or admin's token are an admin's (its ceiling), a member's are their own to
    change. `admin_set=True` makes them a ceiling whoever the member is (the command line, run by
    operators)."""
    limits = limits or TokenLimits()
    limits.check()
    actor = actor or membership.user
    admin_set = membership.can_manage_billing if admin_set is None else admin_set
    raw = DeveloperToken.generate()
    with transaction.atomic():
        token = DeveloperToken(membership=membership, name=(name or "").strip()[:100] or "API token",
                               token_hash=hash_token(raw), prefix=raw[:10])
        _apply(token, limits)
        if limits.any and admin_set:
            token.admin_limits = limits.as_json()
        token.save(force_insert=True)
        after = {"token_id": token.pk, "name": token.name, "prefix": token.prefix, "member": membership.user.email}
        if limits.any:
            after.update({name: value for name, value in limits.audit_json().items() if value is not None})
        audit_record(workspace_id=membership.workspace_id, actor=actor, action="token.create", after=after)
    return NewToken(token=token, raw=raw)


def token_limits_set(*, token: DeveloperToken, limits: TokenLimits, by: Membership | None, now=None) -> DeveloperToken:
    """Set a token's limits. `by` is the acting membership (None: the system, e.g. the command line):
    an owner or admin sets any token's limits, and they become its ceiling; a member sets their own
    token's, each at most the ceiling an admin set. The change is seen by the next request with the
    token (the row's save moves the workspace's access version, so every process reloads it), and by
    the next run's locked decision at once (it reads the row under the wallet lock)."""
    limits.check(now=now)
    manages = by is None or by.can_manage_billing
    if by is not None and by.workspace_id != token.membership.workspace_id:
        raise TokenLimitsInvalid("This token belongs to another workspace.")
    if not manages and token.membership_id != by.pk:
        raise TokenLimitsInvalid("Only the workspace owner and admins can set limits on other members' tokens.")
    with transaction.atomic():
        # The row as it is now (an admin may have set a ceiling since the caller loaded it).
        token = DeveloperToken.objects.select_for_update().select_related("membership").get(pk=token.pk)
        if not manages:
            ceiling = TokenLimits.from_json(token.admin_limits)
            problem = limits.over(ceiling) if ceiling is not None else None
            if problem:
                raise TokenLimitsInvalid(problem[1], field=problem[0])
        before = TokenLimits.of(token)
        _apply(token, limits)
        if manages:
            token.admin_limits = limits.as_json() if limits.any else None
        token.save(update_fields=[*LIMIT_FIELDS, "allowed_models", "expires_at", "admin_limits"])
        audit_record(workspace_id=token.membership.workspace_id, actor=by.user if by is not None else None,
                     action="token.limits_set",
                     before={"token_id": token.pk, "name": token.name, **before.audit_json()},
                     after={"token_id": token.pk, "name": token.name, **limits.audit_json()})
    return token


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

