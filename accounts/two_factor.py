"""Two-factor sign-in (issue 32, docs/security.md) on django-otp: a TOTP authenticator app
(otp_totp: RFC 6238, codes used once, failures throttled with a growing delay) and ten recovery
codes (otp_static: each works once). Nothing here computes a code.

A person with a confirmed authenticator is asked for a code after their password or SSO
(accounts.views.two_factor_verify_view); the session then counts as verified (django_otp.login),
which is what a workspace requiring two-factor for its owners and admins checks
(billing.tenancy.membership_for)."""

import base64

import django_otp
import segno
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.audit import audit_event, audit_record
from billing.models import AuditEvent, Membership, User, Workspace

RECOVERY_CODE_COUNT = 10
DEVICE_NAME = "Authenticator app"


class TwoFactorError(ValueError):
    """A change that is not allowed; the message is shown to the person."""


def two_factor_enabled(user: User) -> bool:
    return django_otp.user_has_device(user, confirmed=True)


def _audit(user: User, action: str, detail: dict | None = None) -> None:
    """A person's own second factor belongs to no workspace: the change is written to the log of
    every workspace they belong to (so an owner sees an admin turn theirs off), or once without one."""
    workspace_ids = list(Membership.objects.filter(user=user).values_list("workspace_id", flat=True)) or [None]
    AuditEvent.objects.bulk_create([audit_event(workspace_id=workspace_id, actor=user, action=action,
                                                after={"email": user.email, **(detail or {})})
                                    for workspace_id in workspace_ids])


def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """A new, unconfirmed authenticator with a fresh secret (an earlier unconfirmed one is dropped)."""
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        raise TwoFactorError("You already have an authenticator app. Remove it first to set up another.")
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def totp_pending(*, user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).first()


def totp_secret_text(device: TOTPDevice) -> str:
    """The secret as people type it into an authenticator app: base32, in groups of four."""
    secret = base64.b32encode(device.bin_key).decode()
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def totp_qr_data_uri(device: TOTPDevice) -> str:
    """The otpauth:// address as a QR code (an SVG data: URI, allowed by the page's CSP)."""
    return segno.make(device.config_url, error="m").svg_data_uri(scale=4, border=2)


def _recovery_codes_replace(user: User) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(user=user, defaults={"name": "Recovery codes"})
    if not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def totp_enrolment_confirm(*, user: User, token: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the pending authenticator with a code it shows; returns it with new recovery codes
    (shown once). TwoFactorError for a wrong code."""
    token = "".join((token or "").split())
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
        if device is None:
            raise TwoFactorError("Start the set-up again: no authenticator is waiting for a code.")
        if not device.verify_token(token):
            raise TwoFactorError("That code is not the one your authenticator app shows now. Check the app's clock "
                                 "and try the newest code.")
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _recovery_codes_replace(user)
        _audit(user, "two_factor.enrol", {"method": "totp"})
    return device, codes


def recovery_codes_regenerate(*, user: User) -> list[str]:
    if not two_factor_enabled(user):
        raise TwoFactorError("Set up an authenticator app first.")
    with transaction.atomic():
        codes = _recovery_codes_replace(user)
        _audit(user, "two_factor.recovery_codes_regenerate")
    return codes


def recovery_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def two_factor_verify(*, user: User, token: str):
    """The device that accepts `token` (a 6-digit code from the app, or a recovery code), else None.
    django-otp verifies against one device at a time, under a row lock, with its throttling."""
    token = "".join((token or "").split()).lower()
    if not token or len(token) > 16:
        return None
    kind = TOTPDevice if token.isdigit() else StaticDevice
    for device in kind.objects.devices_for_user(user, confirmed=True):
        verified = django_otp.verify_token(user, device.persistent_id, token)
        if verified is not None:
            return verified
    return None


def two_factor_throttled(user: User) -> bool:
    """Whether django-otp's growing delay after wrong codes is running for the user's authenticator."""
    device = TOTPDevice.objects.devices_for_user(user, confirmed=True).first()
    return device is not None and not device.verify_is_allowed()[0]


def _requiring_workspaces(user: User) -> list[Workspace]:
    return [m.workspace for m in Membership.objects.select_related("workspace").filter(
        user=user, role__in=(Membership.OWNER, Membership.ADMIN), workspace__two_factor_required=True)]


def two_factor_remove(*, user: User, token: str) -> None:
    """Remove the authenticator and the recovery codes, given a current code. Refused while a
    workspace the person owns or administers requires two-factor."""
    requiring = _requiring_workspaces(user)
    if requiring:
        names = ", ".join(workspace.name for workspace in requiring)
        raise TwoFactorError(f"{names} requires two-factor authentication for owners and admins; it stays on.")
    if two_factor_verify(user=user, token=token) is None:
        raise TwoFactorError("That code is not valid. Enter the code your app shows, or a recovery code.")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        _audit(user, "two_factor.remove")


def two_factor_requirement_set(*, workspace: Workspace, required: bool, actor: User | None) -> Workspace:
    """Require (or stop requiring) two-factor for the workspace's owners and admins. The owner turns
    it on only with an authenticator of their own, so they are not locked out of their Security
    page; `actor` None is staff or a script."""
    if actor is not None:
        role = Membership.objects.filter(workspace=workspace, user=actor).values_list("role", flat=True).first()
        if role != Membership.OWNER:
            raise TwoFactorError("Only the owner can change the two-factor requirement.")
        if required and not two_factor_enabled(actor):
            raise TwoFactorError("Set up your own authenticator app first (Two-factor authentication), then require "
                                 "it for the workspace.")
    with transaction.atomic():
        locked = Workspace.objects.select_for_update(of=("self",)).get(pk=workspace.pk)
        before = locked.two_factor_required
        if before != required:
            Workspace.objects.filter(pk=workspace.pk).update(two_factor_required=required)
            audit_record(workspace_id=workspace.pk, actor=actor, action="two_factor.requirement_set",
                         before={"two_factor_required": before}, after={"two_factor_required": required})
    workspace.two_factor_required = required
    return workspace
