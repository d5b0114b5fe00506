"""Month partitions for runs and run nodes, created ahead and retired whole.

usage_run is partitioned by RANGE (created_at) and usage_runnode by RANGE (run_created_at), one
partition per UTC month (`usage_run_p2026_11`), plus a DEFAULT partition that catches a row whose
month was not created yet (a stopped beat, a clock far off): a charge is never refused for want of
a partition. partitions_create_ahead() creates the coming months and moves any such rows from the
default partition into their month.

Retention (run_detail_retire) drops whole months: `DROP TABLE` of one partition is a catalog
operation, not a DELETE, so it takes milliseconds whatever the month holds. It never touches the
ledger, invoices, the daily rollups or RunKey.

django-postgres-extra was considered: its partitioned models need its own database backend
(psqlextra.backend) in place of the project's (config/postgresql). pg_partman needs a server
extension in every environment. A beat job and plain DDL need neither."""

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone as dt_timezone

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from .models import DroppedRunMonth, Run

logger = logging.getLogger(__name__)

# (table, partition column): nodes follow their run's month so both drop together.
PARTITIONED = (("usage_run", "created_at"), ("usage_runnode", "run_created_at"))


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _utc(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=dt_timezone.utc)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month.year:04d}_{month.month:02d}"


# --- The one-time conversion (migration usage 0005) ---------------------------------------------

def table_convert_to_partitioned(schema_editor, *, table: str, column: str, months_ahead: int = 3) -> None:
    """Rebuild a plain table as one partitioned by month of `column`, keeping its rows, columns,
    identity sequence, check and foreign-key constraints and indexes (same names, so later
    migrations find them). The primary key becomes (id, column): PostgreSQL requires the
    partition key in every unique constraint of a partitioned table."""
    old = f"{table}_plain"
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)", [table])
        indexes = cursor.fetchall()
        cursor.execute("SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
                       "WHERE conrelid = %s::regclass AND contype IN ('c', 'f', 'u', 'p')", [table])
        constraints = cursor.fetchall()
        cursor.execute(f"ALTER TABLE {table} RENAME TO {old}")
        for name, _ in indexes:
            cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{name[:50]}_plain"')
        for name, _, kind in constraints:
            if kind in ("u", "p"):  # their index carries the name, and index names are schema-wide
                cursor.execute(f'ALTER TABLE {old} RENAME CONSTRAINT "{name}" TO "{name[:50]}_plain"')
        cursor.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING STORAGE) "
                       f"PARTITION BY RANGE ({column})")
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{table}_pkey" PRIMARY KEY (id, {column})')
        for name, definition, kind in constraints:
            if kind != "p":
                cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        cursor.execute(f"SELECT min({column}) FROM {old}")
        oldest = cursor.fetchone()[0]
        today = timezone.now().date()
        first = month_start(oldest.astimezone(dt_timezone.utc).date() if oldest else today)
        month = first
        while month <= month_add(month_start(today), months_ahead):
            _partition_create(cursor, table, column, month)
            month = month_add(month, 1)
        cursor.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
        # Check the copied rows' foreign keys now: deferred checks would block CREATE INDEX below.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"INSERT INTO {table} SELECT * FROM {old}")
        for _, definition in indexes:  # after the rows: one sort per index instead of row-by-row upkeep
            cursor.execute(definition)
        cursor.execute(f"DROP TABLE {old}")
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                       f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")


# --- Creating months ahead --------------------------------------------------------------------

def _partition_exists(cursor, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return cursor.fetchone()[0]


def _partition_create(cursor, table: str, column: str, month: date) -> bool:
    """Create one month's partition. Rows of that month already caught by the default partition
    move into it in the same transaction (PostgreSQL refuses to create the partition otherwise)."""
    name = partition_name(table, month)
    if _partition_exists(cursor, name):
        return False
    low, high = _utc(month), _utc(month_add(month, 1))
    default = f"{table}_default"
    stray = False
    if _partition_exists(cursor, default):
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {column} >= %s AND {column} < %s)", [low, high])
        stray = cursor.fetchone()[0]
    if not stray:
        cursor.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM (%s) TO (%s)", [low, high])
        return True
    cursor.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)")
    cursor.execute(f"INSERT INTO {name} SELECT * FROM {default} WHERE {column} >= %s AND {column} < %s", [low, high])
    cursor.execute(f"DELETE FROM {default} WHERE {column} >= %s AND {column} < %s", [low, high])
    cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [low, high])
    logger.warning("Moved %s rows of %s from the default partition into %s", table, month, name)
    return True


def partitions_create_ahead(*, months: int | None = None, now: datetime | None = None) -> list[str]:
    """Create the partitions of this month and the next `months` (default
    RUN_PARTITIONS_AHEAD_MONTHS) for runs and nodes, and of any month found in a default
    partition. Idempotent; the Celery beat job calls it daily. Returns the partitions created."""
    months = settings.RUN_PARTITIONS_AHEAD_MONTHS if months is None else months
    this_month = month_start((now or timezone.now()).astimezone(dt_timezone.utc).date())
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        wanted = {month_add(this_month, i) for i in range(months + 1)}
        for table, column in PARTITIONED:
            cursor.execute(f"SELECT DISTINCT date_trunc('month', {column} AT TIME ZONE 'UTC')::date "
                           f"FROM {table}_default")
            wanted |= {row[0] for row in cursor.fetchall()}
        for month in sorted(wanted):
            for table, column in PARTITIONED:
                if _partition_create(cursor, table, column, month):
                    created.append(partition_name(table, month))
    return created


def partitions_create_between(*, first: date, last: date) -> list[str]:
    """Partitions for every month from first to last (inclusive), e.g. before loading history."""
    created, month = [], month_start(first)
    with transaction.atomic(), connection.cursor() as cursor:
        while month <= last:
            for table, column in PARTITIONED:
                if _partition_create(cursor, table, column, month):
                    created.append(partition_name(table, month))
            month = month_add(month, 1)
    return created


def run_partitions() -> list[tuple[date, int]]:
    """The month partitions of usage_run, oldest first, with their estimated row counts."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname, c.reltuples::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                       "WHERE i.inhparent = 'usage_run'::regclass AND c.relname ~ '^usage_run_p[0-9]{4}_[0-9]{2}$'")
        rows = cursor.fetchall()
    return sorted((date(int(name[-7:-3]), int(name[-2:]), 1), max(count, 0)) for name, count in rows)


# --- Retention --------------------------------------------------------------------------------

@dataclass
class RetiredMonth:
    month: date
    runs: int
    credits: int
    drop_seconds: float  # the DROP TABLE statements alone


def retention_cutoff(*, now: datetime | None = None, months: int | None = None) -> date:
    """The first month whose detail is kept: RUN_DETAIL_RETENTION_MONTHS before this one."""
    months = settings.RUN_DETAIL_RETENTION_MONTHS if months is None else months
    return month_add(month_start((now or timezone.now()).astimezone(dt_timezone.utc).date()), -months)


def run_detail_retire(*, now: datetime | None = None, months: int | None = None) -> list[RetiredMonth]:
    """Drop the run and node detail of every month before the retention cutoff whose rollups are
    complete, recording each in DroppedRunMonth. Complete means no run of the month is still open
    (holding a reservation): every charge, and with it the rollup rows written in the same
    transaction, has committed. A month with an open run waits for the sweeper. The ledger,
    invoices, rollups and RunKey rows are never touched."""
    cutoff = retention_cutoff(now=now, months=months)
    partitions_create_ahead(months=0, now=now)  # rows parked in a default partition go to their month first
    candidates = [month for month, _ in run_partitions() if month < cutoff]
    retired = []
    for month in candidates:
        runs = Run.objects.order_by().filter(created_at__gte=_utc(month), created_at__lt=_utc(month_add(month, 1)))
        if runs.filter(released_at__isnull=True).exists():
            logger.warning("Run detail of %s is kept: some of its runs are still open", month)
            continue
        totals = runs.aggregate(n=Count("id"), c=Sum("credits"))
        with transaction.atomic():
            DroppedRunMonth.objects.create(month=month, runs=totals["n"] or 0, credits=totals["c"] or 0)
            started = time.perf_counter()
            with connection.cursor() as cursor:
                for table, _ in reversed(PARTITIONED):  # nodes first
                    cursor.execute(f"DROP TABLE {partition_name(table, month)}")
            elapsed = time.perf_counter() - started
        retired.append(RetiredMonth(month, totals["n"] or 0, totals["c"] or 0, elapsed))
        logger.info("Dropped run detail of %s (%s runs) in %.3fs", month, totals["n"], elapsed)
    return retired

