"""The audit trail: who changed what outside the ledger, from where, with the fields before and after.

Every change to members, roles, invitations, ownership, tokens, budgets, alerts, plans, purchases,
auto-recharge, billing details, security settings and staff adjustments is written here by the one
operation that makes it, in its transaction, through `audit_record`. The request it came from (its
IP address, and whether it was the staff admin) is known to the middleware below, so no operation
takes a request. Rows are append-only: the database refuses to update or delete them (migration
0011), except for the actor's link, which a deleted user's account clears.
"""

import ipaddress
from contextvars import ContextVar
from dataclasses import dataclass

from django.urls import reverse

from .models import AuditEvent

# Never stored, whatever an operation passes: the log shows that a secret changed, not the secret.
SECRET_FIELDS = frozenset({"secret", "webhook_secret", "client_secret", "password", "token", "raw_token"})
CHANGED = "(changed)"


@dataclass(frozen=True)
class RequestOrigin:
    ip: str | None
    staff_site: bool  # the staff admin (/admin/): its actor shows as "staff" to the workspace


_origin: ContextVar[RequestOrigin | None] = ContextVar("audit_origin", default=None)


def audit_origin(get_response):
    """Middleware: the request's IP address and site for the audit rows its operations write.
    REMOTE_ADDR is the client (behind a proxy the deployment sets it from the proxy's header,
    docs/teams.md)."""
    def middleware(request):
        token = _origin.set(RequestOrigin(ip=_ip(request.META.get("REMOTE_ADDR")),
                                          staff_site=request.path.startswith(reverse("admin:index"))))
        try:
            return get_response(request)
        finally:
            _origin.reset(token)

    return middleware


def _ip(value) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _without_secrets(fields: dict | None) -> dict:
    return {name: (CHANGED if name in SECRET_FIELDS and value else value) for name, value in (fields or {}).items()}


def audit_event(*, workspace_id: int | None, actor, action: str, after: dict | None = None,
                before: dict | None = None) -> AuditEvent:
    """The unsaved row (for a bulk insert); `audit_record` saves one."""
    origin = _origin.get()
    kind = (AuditEvent.SYSTEM if actor is None else
            AuditEvent.STAFF if origin is not None and origin.staff_site else AuditEvent.USER)
    return AuditEvent(workspace_id=workspace_id, actor=actor, actor_kind=kind, action=action,
                      ip=origin.ip if origin else None, before=_without_secrets(before),
                      detail=_without_secrets(after))


def audit_record(*, workspace_id: int | None, actor, action: str, after: dict | None = None,
                 before: dict | None = None) -> AuditEvent:
    """Write one audit row: `action` is "<kind>.<verb>" (budget.set, member.role_set, ...); `before`
    and `after` hold only the fields the change concerns."""
    event = audit_event(workspace_id=workspace_id, actor=actor, action=action, after=after, before=before)
    event.save(force_insert=True)
    return event
