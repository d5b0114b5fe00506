"""Single sign-on per workspace (issue 32, docs/security.md): its settings, which password logins
it refuses, and who it signs in. The conversation with the provider is accounts.oidc.

Rules, each written once here:
- SSO is an Enterprise feature (sso_available); a workspace that leaves Enterprise keeps its
  settings, but they sign no one in and refuse no password until it is back.
- A domain belongs to one workspace only (SsoDomain.domain is unique).
- The provider vouches for addresses of the workspace's domains only, verified by it
  (email_verified), and never for staff: an account that belongs to other workspaces must join this
  one by invitation before SSO signs it in, so one workspace's provider cannot open another's.
- "SSO required" refuses the password of the workspace's members at those domains; the owner
  keeps it (break-glass, audited). People of the domain who are not members are not affected.
"""

import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.members import MemberLimitReached
from billing.audit import audit_record
from billing.models import AuditEvent, Membership, User, Workspace, email_canonical
from billing.services import member_add

from .models import SsoConnection, SsoDomain
from .oidc import SsoFailed, VerifiedIdentity, provider_url_check
from .secret_box import secret_encrypt

MAX_DOMAINS = 20
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$|"
                     r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+xn--[a-z0-9-]{1,59}$")
ALLOWED = "allowed"
REFUSED = "refused"
BREAK_GLASS = "break_glass"


class SsoError(ValueError):
    """A settings change or sign-in that is not allowed; the message is shown to the person."""


def sso_available(workspace: Workspace) -> bool:
    """SSO is part of Enterprise (the custom plan)."""
    return workspace.plan.is_custom


def email_domain(email: str) -> str:
    return email_canonical(email).rpartition("@")[2]


def domains_parse(text: str | list[str]) -> list[str]:
    """E-mail domains from a comma, space or line separated list: lower case, ASCII (an
    internationalised domain in its xn-- form), at most MAX_DOMAINS; SsoError names a bad one."""
    items = text if isinstance(text, list) else re.split(r"[\s,;]+", text or "")
    domains = []
    for item in items:
        domain = email_canonical(item).lstrip("@").rstrip(".")
        if not domain:
            continue
        if not _DOMAIN.match(domain):
            raise SsoError(f"{item.strip()!r} is not an e-mail domain (like example.com).")
        if domain not in domains:
            domains.append(domain)
    if len(domains) > MAX_DOMAINS:
        raise SsoError(f"At most {MAX_DOMAINS} domains.")
    return domains


def _state(connection: SsoConnection | None) -> dict:
    """What the audit log shows of a connection: everything but the secret."""
    if connection is None:
        return {}
    return {"enabled": connection.enabled, "issuer": connection.issuer, "client_id": connection.client_id,
            "domains": connection.domain_names, "required": connection.required,
            "default_role": connection.default_role}


def sso_settings_set(*, workspace: Workspace, actor: User | None, issuer: str, client_id: str,
                     client_secret: str | None, domains: list[str], required: bool,
                     default_role: str = Membership.MEMBER, enabled: bool = True) -> SsoConnection:
    """Create or change the workspace's SSO connection (the Security page, the admin and
    `manage.py set_sso`); `client_secret` None or "" keeps the stored one. Turning SSO on needs
    Enterprise; turning it off never does. Audited as sso.settings_set with before and after (the
    secret only as "changed")."""
    issuer = (issuer or "").strip()
    client_id = (client_id or "").strip()
    if default_role not in (Membership.MEMBER, Membership.ADMIN):
        raise SsoError("People who arrive through SSO are members or admins.")
    if enabled:
        if not sso_available(workspace):
            raise SsoError(f"Single sign-on is part of the Enterprise plan; {workspace.name} is on "
                           f"{workspace.plan.name}. Contact sales to move to Enterprise.")
        if not issuer or not client_id:
            raise SsoError("Enter the issuer URL and the client id.")
        if not domains:
            raise SsoError("Enter at least one e-mail domain whose people sign in through SSO.")
    if issuer:
        if len(issuer) > 300:
            raise SsoError("The issuer URL is too long (300 characters at most).")
        try:
            provider_url_check(issuer)
        except SsoFailed as error:
            raise SsoError(error.message) from None
    if len(client_id) > 255 or (client_secret and len(client_secret) > 1000):
        raise SsoError("The client id or secret is too long.")
    try:
        with transaction.atomic():
            Workspace.objects.select_for_update(of=("self",)).get(pk=workspace.pk)
            connection = SsoConnection.objects.filter(workspace=workspace).first()
            before = _state(connection)
            if connection is None:
                if not client_secret:
                    raise SsoError("Enter the client secret.")
                connection = SsoConnection(workspace=workspace)
            taken = SsoDomain.objects.filter(domain__in=domains).exclude(connection__workspace=workspace) \
                .select_related("connection__workspace").first()
            if taken:
                raise SsoError(f"{taken.domain} already signs in through another workspace; a domain belongs to "
                               f"one workspace only.")
            connection.enabled, connection.required, connection.default_role = enabled, required, default_role
            connection.issuer = issuer or connection.issuer
            connection.client_id = client_id or connection.client_id
            if client_secret:
                connection.client_secret_encrypted = secret_encrypt(client_secret)
            connection.updated_at, connection.updated_by = timezone.now(), actor
            connection.save()
            connection.domains.exclude(domain__in=domains).delete()
            for domain in domains:
                SsoDomain.objects.get_or_create(connection=connection, domain=domain)
            after = _state(connection)
            audit_record(workspace_id=workspace.pk, actor=actor, action="sso.settings_set", before=before,
                         after={**after, "client_secret_changed": bool(client_secret)})
    except IntegrityError:  # a concurrent save claimed one of the domains first
        raise SsoError("One of these domains was just claimed by another workspace.") from None
    return connection


def sso_connection_for_email(email: str) -> SsoConnection | None:
    """The connection that signs in `email`'s domain, when it is on and its workspace may use it."""
    found = SsoDomain.objects.select_related("connection__workspace__plan").filter(domain=email_domain(email)).first()
    if found is None:
        return None
    connection = found.connection
    return connection if connection.enabled and sso_available(connection.workspace) else None


def sso_password_policy(user: User) -> tuple[str, SsoConnection | None]:
    """Whether `user` may sign in with a password: REFUSED for a member (not the owner) of a
    workspace that requires SSO for the user's domain, BREAK_GLASS for its owner, else ALLOWED."""
    connection = sso_connection_for_email(user.email)
    if connection is None or not connection.required:
        return ALLOWED, None
    role = Membership.objects.filter(workspace_id=connection.workspace_id, user=user).values_list("role", flat=True) \
        .first()
    if role is None:
        return ALLOWED, None
    return (BREAK_GLASS if role == Membership.OWNER else REFUSED), connection


def sso_break_glass_record(*, connection: SsoConnection, user: User, ip: str) -> AuditEvent:
    return audit_record(workspace_id=connection.workspace_id, actor=user, action="sso.break_glass_login",
                        after={"email": user.email, "ip": ip,
                               "note": "the owner signed in with a password while SSO is required"})


def sso_member_sign_in(*, identity: VerifiedIdentity) -> Membership:
    """The membership a verified identity signs in as: an existing member, or someone new to the
    workspace who joins just in time with the connection's default role, within the plan's member
    cap (billing.services.member_add). SsoError says why someone may not."""
    connection = identity.connection
    email = email_canonical(identity.email)
    if email_domain(email) not in connection.domain_names:
        raise SsoError(f"The identity provider vouched for {email}, which is not an address of this workspace's "
                       f"domains.")
    if not sso_available(connection.workspace) or not connection.enabled:
        raise SsoError("Single sign-on is not available for this workspace.")
    with transaction.atomic():
        user = User.objects.select_for_update().filter(email=email).first()
        if user is not None:
            if not user.is_active:
                raise SsoError("This account is deactivated.")
            if user.is_staff or user.is_superuser:
                raise SsoError("Staff accounts sign in with their password, never through a workspace's SSO.")
            membership = Membership.objects.select_related("workspace").filter(
                workspace=connection.workspace, user=user).first()
            if membership is not None:
                return membership
            if Membership.objects.filter(user=user).exists():
                raise SsoError(f"{email} already has an account in other workspaces. Ask an owner or admin of "
                               f"{connection.workspace.name} to invite it; once it has joined, SSO signs it in.")
        else:
            first, _, last = identity.name.strip().partition(" ")
            try:
                with transaction.atomic():
                    user = User.objects.create_user(email=email, password=None, first_name=first[:150],
                                                    last_name=last[:150])
            except IntegrityError:  # the same person's other tab got there first
                raise SsoError("You were signed up in another window a moment ago: start again to sign in.") from None
        try:
            return member_add(workspace=connection.workspace, user=user, role=connection.default_role, actor=user,
                              via="sso")
        except MemberLimitReached as error:
            raise SsoError(f"{connection.workspace.name} is full: {error}") from None
