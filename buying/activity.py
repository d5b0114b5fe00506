"""Credit activity: the ledger as people read it. One selector feeds the Overview's latest rows, the
Activity page and its CSV, so the three always list the same entries in the same order.

Ledger order is the order of `LedgerEntry.id`: entries are written under the wallet lock, so id
order is the order in which the balances changed, and each row's `balance_after` follows from the
row before it. The newest entry's `balance_after` is the wallet's balance (reconcile checks it)."""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone as dt_timezone

from django.db.models import Prefetch, QuerySet

from billing.models import LedgerEntry, Workspace
from billing.money import nanos_to_str
from billing.spreadsheet import neutralise
from invoices.models import Invoice

PAGE_SIZE = 50
CSV_CHUNK_ROWS = 2000
CSV_HEADER = ["id", "date", "kind", "bucket", "credits", "bucket_balance_after", "balance_after", "by", "reason",
              "run", "workflow", "agent", "member", "purchase"]


@dataclass(frozen=True)
class LedgerFilters:
    kind: str = ""  # one of LedgerEntry.KINDS, or "" for every kind
    bucket: str = ""  # monthly / purchased / ""
    start: date | None = None  # UTC day of created_at, inclusive
    end: date | None = None

    def as_query(self) -> dict:
        query = {"kind": self.kind, "bucket": self.bucket,
                 "from": self.start.isoformat() if self.start else "", "to": self.end.isoformat() if self.end else ""}
        return {k: v for k, v in query.items() if v}

    @property
    def is_empty(self) -> bool:
        return not self.as_query()


def ledger_filtered(*, workspace: Workspace, filters: LedgerFilters) -> QuerySet:
    entries = LedgerEntry.objects.filter(workspace=workspace)
    if filters.kind:
        entries = entries.filter(kind=filters.kind)
    if filters.bucket:
        entries = entries.filter(bucket=filters.bucket)
    if filters.start:
        entries = entries.filter(created_at__gte=datetime.combine(filters.start, time.min, tzinfo=dt_timezone.utc))
    if filters.end:
        high = datetime.combine(filters.end + timedelta(days=1), time.min, tzinfo=dt_timezone.utc)
        entries = entries.filter(created_at__lt=high)
    return entries


def _with_details(entries: QuerySet) -> QuerySet:
    """What a row names: the actor, the run's workflow, agent and member, the purchase's pack and invoice."""
    return entries.select_related(
        "actor", "run__workflow", "run__agent", "run__member__user", "purchase__pack",
    ).prefetch_related(Prefetch("purchase__invoices", queryset=Invoice.objects.filter(kind=Invoice.INVOICE),
                                to_attr="paid_invoices"))


# A charge whose run retention dropped (usage/partitions.py): the entry keeps its run id and its
# reason ("Run <client id>"); who ran it went with the run's detail.
DROPPED_RUN_ACTOR = "A member (run detail no longer kept)"


def entry_actor(entry: LedgerEntry) -> str:
    """Who caused the entry: the signed-in person (purchase, adjustment, plan change), the member whose
    run was charged, or the system (period grants and expiries)."""
    if entry.actor_id:
        return entry.actor.display_name
    if entry.run_id:
        return entry.run.member.user.display_name if entry.run is not None else DROPPED_RUN_ACTOR
    return "System"


@dataclass
class LedgerPage:
    entries: list[LedgerEntry]
    older: int | None  # ?before=<id> for the next, older page
    newer: int | None  # ?after=<id> for the previous, newer page


def latest_ledger(*, workspace: Workspace, limit: int = 10) -> list[LedgerEntry]:
    """The newest entries, newest first (the Overview)."""
    return ledger_page(workspace=workspace, filters=LedgerFilters(), limit=limit).entries


def ledger_page(*, workspace: Workspace, filters: LedgerFilters, before: int | None = None, after: int | None = None,
                limit: int | None = None) -> LedgerPage:
    """One page of entries, newest first, keyset-paged on id (never a COUNT or an OFFSET)."""
    limit = limit or PAGE_SIZE
    base = ledger_filtered(workspace=workspace, filters=filters)
    entries = _with_details(base)
    if after is not None:
        page = list(reversed(entries.filter(id__gt=after).order_by("id")[:limit]))
    else:
        if before is not None:
            entries = entries.filter(id__lt=before)
        page = list(entries.order_by("-id")[:limit])
    has_newer = bool(page) and (before is not None or after is not None) and base.filter(id__gt=page[0].id).exists()
    has_older = bool(page) and base.filter(id__lt=page[-1].id).exists()
    for entry in page:
        entry.by = entry_actor(entry)
        invoices = getattr(entry.purchase, "paid_invoices", []) if entry.purchase_id else []
        entry.invoice = invoices[0] if invoices else None
    return LedgerPage(entries=page, older=page[-1].id if page and has_older else None,
                      newer=page[0].id if page and has_newer else None)


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ledger_csv_rows(*, workspace: Workspace, filters: LedgerFilters) -> Iterator[bytes]:
    """The ledger as CSV, oldest first (a statement: each balance follows from the row above), in
    chunks, so a long history needs no more memory than a short one. Credits are exact decimals;
    user text is neutralised against spreadsheet formulas."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    entries = ledger_filtered(workspace=workspace, filters=filters).order_by("id").values_list(
        "id", "created_at", "kind", "bucket", "amount", "bucket_balance_after", "balance_after",
        "actor__first_name", "actor__last_name", "actor__email", "reason", "run__public_id", "run__workflow__name",
        "run__agent__name", "run__member__user__first_name", "run__member__user__last_name", "run__member__user__email",
        "purchase_id", "run_id",
    )
    for count, row in enumerate(entries.iterator(chunk_size=CSV_CHUNK_ROWS), start=1):
        (pk, created_at, kind, bucket, amount, bucket_after, balance_after, first, last, email, reason, run,
         workflow, agent, member_first, member_last, member, purchase, run_id) = row
        # The same rule as entry_actor(): the person, else the member whose run was charged, else the system.
        by = (f"{first} {last}".strip() or email) if email else (
            f"{member_first} {member_last}".strip() or member) if member else (
            DROPPED_RUN_ACTOR if run_id else "System")
        writer.writerow([
            pk, _iso_utc(created_at), kind, bucket, nanos_to_str(amount), nanos_to_str(bucket_after),
            nanos_to_str(balance_after), neutralise(by), neutralise(reason), neutralise(run or ""),
            neutralise(workflow or ""), neutralise(agent or ""), neutralise(member or ""), purchase or "",
        ])
        if count % CSV_CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
