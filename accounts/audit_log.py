"""The audit log as owners and admins read it: one selector feeds the Settings -> Audit log page and
its CSV, so both list the same rows for the same filters (newest first on the page, keyset-paged;
oldest first in the CSV, in chunks). The rows are written by billing.audit."""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone as dt_timezone

from django.db.models import QuerySet

from billing.models import AuditEvent, Workspace
from billing.spreadsheet import neutralise

PAGE_SIZE = 50
CSV_CHUNK_ROWS = 2000
CSV_HEADER = ["id", "time", "actor", "actor_email", "ip", "action", "before", "after"]

# What a change concerns (the part of its action before the dot), as the kind filter offers it.
KINDS = [
    ("member", "Members and roles"), ("invitation", "Invitations"), ("workspace", "Workspace and ownership"),
    ("token", "Developer tokens"), ("budget", "Budgets and alerts"), ("agent", "Agent budgets"),
    ("plan", "Plans"), ("purchase", "Purchases"), ("auto_recharge", "Auto-recharge"),
    ("billing_details", "Billing details"), ("credits", "Staff adjustments"), ("sso", "Single sign-on"),
    ("two_factor", "Two-factor sign-in"), ("sales", "Sales enquiries"),
]
STAFF, SYSTEM = AuditEvent.STAFF, AuditEvent.SYSTEM


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""  # "user:<id>", "staff", "system" or "" for everyone
    kind: str = ""  # one of KINDS, or ""
    start: date | None = None  # UTC day, inclusive
    end: date | None = None

    def as_query(self) -> dict:
        query = {"actor": self.actor, "kind": self.kind,
                 "from": self.start.isoformat() if self.start else "", "to": self.end.isoformat() if self.end else ""}
        return {k: v for k, v in query.items() if v}


def audit_filtered(*, workspace: Workspace, filters: AuditFilters) -> QuerySet:
    events = AuditEvent.objects.filter(workspace=workspace)
    if filters.actor in (STAFF, SYSTEM):
        events = events.filter(actor_kind=filters.actor)
    elif filters.actor.startswith("user:"):
        events = events.filter(actor_kind=AuditEvent.USER, actor_id=int(filters.actor[5:]))
    if filters.kind:
        events = events.filter(action__startswith=f"{filters.kind}.")
    if filters.start:
        events = events.filter(created_at__gte=datetime.combine(filters.start, time.min, tzinfo=dt_timezone.utc))
    if filters.end:
        events = events.filter(created_at__lt=datetime.combine(filters.end + timedelta(days=1), time.min,
                                                               tzinfo=dt_timezone.utc))
    return events


def audit_actors(*, workspace: Workspace) -> list[tuple[str, str]]:
    """The actor filter's choices: every person who appears in this workspace's log, then staff and
    the system."""
    people = (AuditEvent.objects.filter(workspace=workspace, actor_kind=AuditEvent.USER, actor__isnull=False)
              .values_list("actor_id", "actor__email").distinct().order_by("actor__email"))
    return [(f"user:{pk}", email) for pk, email in people] + [(STAFF, "Staff"), (SYSTEM, "System")]


def actor_label(event: AuditEvent) -> str:
    """A person by name (their account may be gone), or "Staff" (never which staff member), or "System"."""
    if event.actor_kind == STAFF:
        return "Staff"
    if event.actor_kind == SYSTEM:
        return "System"
    return event.actor.display_name if event.actor_id else "A deleted account"


@dataclass
class AuditPage:
    events: list[AuditEvent]
    older: int | None  # ?before=<id>
    newer: int | None  # ?after=<id>


def audit_page(*, workspace: Workspace, filters: AuditFilters, before: int | None = None,
               after: int | None = None) -> AuditPage:
    """One page, newest first, keyset-paged on id (ids follow insertion, as created_at does)."""
    base = audit_filtered(workspace=workspace, filters=filters)
    events = base.select_related("actor")
    if after is not None:
        page = list(reversed(events.filter(id__gt=after).order_by("id")[:PAGE_SIZE]))
    else:
        if before is not None:
            events = events.filter(id__lt=before)
        page = list(events.order_by("-id")[:PAGE_SIZE])
    has_newer = bool(page) and (before is not None or after is not None) and base.filter(id__gt=page[0].id).exists()
    has_older = bool(page) and base.filter(id__lt=page[-1].id).exists()
    for event in page:
        event.by = actor_label(event)
        event.changes = field_changes(event)
    return AuditPage(events=page, older=page[-1].id if page and has_older else None,
                     newer=page[0].id if page and has_newer else None)


def field_changes(event: AuditEvent) -> list[tuple[str, object, object]]:
    """(field, before, after) for the fields the page shows: each field either side names, in the
    order written, except those the change left as they were (the CSV keeps every field)."""
    names = [name for name in dict.fromkeys([*event.before, *event.detail])
             if not (name in event.before and name in event.detail and event.before[name] == event.detail[name])]
    return [(name, event.before.get(name, ""), event.detail.get(name, "")) for name in names]


def _json(fields: dict) -> str:
    return json.dumps(fields, ensure_ascii=False, sort_keys=True, default=str) if fields else ""


def audit_csv_rows(*, workspace: Workspace, filters: AuditFilters) -> Iterator[bytes]:
    """The log as CSV, oldest first, before and after as JSON; text neutralised against formulas."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    events = audit_filtered(workspace=workspace, filters=filters).select_related("actor").order_by("id")
    for count, event in enumerate(events.iterator(chunk_size=CSV_CHUNK_ROWS), start=1):
        email = event.actor.email if event.actor_id and event.actor_kind == AuditEvent.USER else ""
        writer.writerow([
            event.pk, event.created_at.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            neutralise(actor_label(event)), neutralise(email), event.ip or "", event.action,
            neutralise(_json(event.before)), neutralise(_json(event.detail)),
        ])
        if count % 200 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
