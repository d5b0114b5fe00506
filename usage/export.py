"""The usage CSV (SPEC section 6): one row per finished run and model, streamed.

    date,workflow,agent,model,input_tokens,output_tokens,credits,status

`date` is the run's completed_at (when it was charged) in ISO 8601 UTC, `credits` the exact decimal
of the run's nodes on that model (tool charges included), so the column sums to the ledger's
charges for the same days. Text cells starting with = + - @, tab or CR get a leading apostrophe
(spreadsheet formula injection).

The rows are formatted in SQL and streamed by `COPY (...) TO STDOUT` (the export bench compares
against raw COPY), so memory stays flat. The SQL formats each cell as billing.money and
billing.spreadsheet do in Python (the tests hold the two to the same bytes)."""

from collections.abc import Iterator
from datetime import date, datetime, timedelta

from django.db import connections
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.text import slugify
from django.db.models import Max, Min, Sum
from psycopg import sql

from billing.models import Workspace
from billing.replica import current_read_alias
from billing.money import nanos_to_str
from billing.spreadsheet import FORMULA_STARTS, neutralise  # noqa: F401 (re-exported)

from .models import DailyUsage, Run, RunNode
from .filters import CHARGED, RunFilter, day_bounds
from .selectors import detail_kept_from, detail_notice

HEADER = ["date", "workflow", "agent", "model", "input_tokens", "output_tokens", "credits", "status"]
# `?columns=detailed` (issue 28) appends these to the default columns, which keep their places.
DETAILED = ["run_id", "member", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "token_credits",
            "tool_credits", "tags"]
COLUMN_SETS = ("default", "detailed")
CHUNK_ROWS = 2000


def header(detailed: bool = False) -> list[str]:
    return HEADER + DETAILED if detailed else HEADER


def _rows_queryset(workspace: Workspace, filters: RunFilter, using: str = "default", detailed: bool = False):
    """RunNode grouped by run and model, for runs that were charged (completed_at set)."""
    nodes = RunNode.objects.using(using).filter(run__workspace=workspace, run__completed_at__isnull=False)
    nodes = filters.apply(nodes, date_field=CHARGED, run="run__")
    _, high = day_bounds(filters.start, filters.end)
    if high and not filters.period_start:
        # A run starts before it is charged: the bound on the partition keys lets PostgreSQL skip
        # every later month of runs and of nodes (partition pruning).
        nodes = nodes.filter(run__created_at__lt=high, run_created_at__lt=high)
    extra_values = ["run__public_id", "run__member__user__email", "run__tags"] if detailed else []
    extra_sums = dict(cached_input_tokens=Sum("cached_input_tokens"), cache_write_tokens=Sum("cache_write_tokens"),
                      reasoning_tokens=Sum("reasoning_tokens"), token_credits=Sum("token_credits"),
                      tool_credits=Sum("tool_credits")) if detailed else {}
    return (
        nodes.values("run_id", "model_id", "run__completed_at", "run__workflow__name", "run__agent__name",
                     "run__status", *extra_values)
        .annotate(input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"), credits=Sum("credits"),
                  **extra_sums)
        .order_by("run__completed_at", "run_id", "model_id")
    )


def csv_cell(text: str) -> str:
    """A text cell quoted exactly as PostgreSQL's COPY ... CSV quotes it (so the rollup rows read
    like the COPY rows): when it holds a comma, a quote, CR or LF, is empty (COPY's NULL is the empty
    string) or is the end-of-data marker."""
    if text == "" or text == "\\." or any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _sql_text(expression: str) -> str:
    """The SQL twin of neutralise()."""
    return (f"CASE WHEN left({expression}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') "
            f"THEN '''' || {expression} ELSE {expression} END")


def _sql_credits(expression: str) -> str:
    """The SQL twin of billing.money.nanos_to_str for a bigint of nanocredits."""
    expression = f"({expression})"
    return (
        f"CASE WHEN {expression} % 1000000000 = 0 THEN ({expression} / 1000000000)::text "
        f"ELSE (CASE WHEN {expression} < 0 THEN '-' ELSE '' END) || (abs({expression}) / 1000000000)::text || '.' "
        f"|| rtrim(lpad((abs({expression}) % 1000000000)::text, 9, '0'), '0') END"
    )


# The inner (ORM-built) query's columns, in values()-then-annotate() order, renamed positionally.
_COPY_COLUMNS = "c_run, c_model, c_completed, c_workflow, c_agent, c_status, c_input, c_output, c_credits"
_COPY_DETAILED_COLUMNS = ("c_run, c_model, c_completed, c_workflow, c_agent, c_status, c_public_id, c_member, "
                          "c_tags, c_input, c_output, c_credits, c_cached, c_write, c_reasoning, c_token_credits, "
                          "c_tool_credits")


def _sql_tags(expression: str) -> str:
    """A run's cost tags as one text cell: the JSON object (keys in jsonb's order), empty without
    any, neutralised like every text cell (tag values are user data)."""
    text = f"(CASE WHEN {expression} = '{{}}'::jsonb THEN '' ELSE {expression}::text END)"
    return _sql_text(text)


FIRST_WINDOW = timedelta(days=1)


def _copy_windows(workspace: Workspace, filters: RunFilter, using: str = "default") -> list[tuple[datetime, datetime]]:
    """Consecutive time windows covering the runs to export, the first one day long and each next
    one four times as long. Sorting all rows before the first one is sent would hold a million-run
    download back for seconds; a day's rows are sorted at once, and the growth keeps the number
    of queries (each one scanning the nodes) logarithmic in the time span."""
    low, high = day_bounds(filters.start, filters.end)
    charged = Run.objects.using(using).filter(workspace=workspace, completed_at__isnull=False)
    first, last = charged.aggregate(first=Min("completed_at"), last=Max("completed_at")).values()
    if first is None:
        return []
    end = last + timedelta(microseconds=1)
    low, high = max(low, first) if low else first, min(high, end) if high else end
    windows, start, length = [], low, FIRST_WINDOW
    while start < high:
        windows.append((start, min(start + length, high)))
        start, length = start + length, length * 4
    return windows


def _copy_rows(workspace: Workspace, filters: RunFilter, using: str, detailed: bool = False) -> Iterator[bytes]:
    connection = connections[using]
    connection.ensure_connection()
    for low, high in _copy_windows(workspace, filters, using):
        # The ORM writes the grouping query with its filters (one definition of the rows for both
        # paths); the outer SELECT formats each cell exactly as the Python path does.
        rows = _rows_queryset(workspace, filters, using, detailed).filter(run__completed_at__gte=low,
                                                                          run__completed_at__lt=high)
        grouped, params = rows.query.sql_with_params()
        extra = (f", {_sql_text('g.c_public_id')}, {_sql_text('g.c_member')}, g.c_cached::bigint, g.c_write::bigint, "
                 f"g.c_reasoning::bigint, {_sql_credits('g.c_token_credits::bigint')}, "
                 f"{_sql_credits('g.c_tool_credits::bigint')}, {_sql_tags('g.c_tags')}") if detailed else ""
        outer = (
            "SELECT to_char(g.c_completed AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
            f"{_sql_text('g.c_workflow')}, {_sql_text('g.c_agent')}, {_sql_text('g.c_model')}, "
            f"g.c_input::bigint, g.c_output::bigint, {_sql_credits('g.c_credits::bigint')}, {_sql_text('g.c_status')}"
            f"{extra} FROM ({connection.ops.compose_sql(grouped, params)}) "
            f"AS g({_COPY_DETAILED_COLUMNS if detailed else _COPY_COLUMNS}) "
            "ORDER BY g.c_completed, g.c_run, g.c_model"
        )
        with connection.connection.cursor() as cursor:
            with cursor.copy(sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv)").format(sql.SQL(outer))) as copy:
                for data in copy:
                    yield bytes(data)


def _rollup_rows(workspace: Workspace, filters: RunFilter, kept_from: date, using: str,
                 detailed: bool = False) -> Iterator[bytes]:
    """Days whose run detail retention dropped: one row per day, agent and model from the daily
    rollups, status `daily_total`, date as YYYY-MM-DD and workflow empty (rollups do not keep it).
    The credits column still sums to the ledger's charges. Rollups carry no status, so a status
    filter leaves them out (and the current period is always within the kept detail). Detailed:
    one row per member too, run_id empty, the token classes from the rollups, and token_credits,
    tool_credits and tags empty (rollups keep only the credits' sum, and no tags; a tag filter
    leaves them out as a status filter does)."""
    if filters.needs_runs or filters.period_start or (filters.start and filters.start >= kept_from):
        return
    rows = DailyUsage.objects.using(using).filter(workspace=workspace, day__lt=kept_from)
    if filters.start:
        rows = rows.filter(day__gte=filters.start)
    if filters.end:
        rows = rows.filter(day__lte=filters.end)
    if filters.agent:
        rows = rows.filter(agent__name=filters.agent)
    if filters.model:
        rows = rows.filter(model_id=filters.model)
    keys = ["day", "agent__name", "model_id"] + (["member__user__email"] if detailed else [])
    sums = dict(i=Sum("input_tokens"), o=Sum("output_tokens"), c=Sum("credits"))
    if detailed:
        sums.update(ci=Sum("cached_input_tokens"), cw=Sum("cache_write_tokens"), r=Sum("reasoning_tokens"))
    grouped = rows.values(*keys).annotate(**sums).order_by(*keys)
    for row in grouped.iterator(chunk_size=CHUNK_ROWS):
        cells = [row["day"].isoformat(), csv_cell(""), csv_cell(neutralise(row["agent__name"])),
                 csv_cell(neutralise(row["model_id"])), str(row["i"]), str(row["o"]), nanos_to_str(row["c"]),
                 "daily_total"]
        if detailed:
            cells += [csv_cell(""), csv_cell(neutralise(row["member__user__email"])), str(row["ci"]), str(row["cw"]),
                      str(row["r"]), csv_cell(""), csv_cell(""), csv_cell("")]
        yield (",".join(cells) + "\n").encode()


def export_rows(*, workspace: Workspace, filters: RunFilter, kept_from: date | None = None,
                using: str = "default", detailed: bool = False) -> Iterator[bytes]:
    """The CSV as a stream of byte chunks, header first, read from database `using` (the
    request's read alias: the stream runs after the view returned). Before kept_from (retention)
    the rows are the daily rollups; see _rollup_rows. `detailed` appends the DETAILED columns."""
    yield (",".join(header(detailed)) + "\n").encode()
    if kept_from:
        yield from _rollup_rows(workspace, filters, kept_from, using, detailed)
    yield from _copy_rows(workspace, filters, using, detailed)


def csv_file_name(*, workspace: Workspace, filters: RunFilter, detailed: bool = False) -> str:
    """The download's name says what is in it: the days (or the period) and each filter, e.g.
    usage-acme-2026-11-17-to-2026-12-07-agent-code-reviewer-status-failed.csv."""
    if filters.period_start:
        days = f"period-{filters.period_start:%Y-%m-%d}"
    else:
        first = filters.start.isoformat() if filters.start else "start"
        last = (filters.end or timezone.now().date()).isoformat()
        days = f"{first}-to-{last}"
    parts = ["usage", workspace.slug, days]
    for name in ("agent", "model", "status", "tag"):
        value = filters.tag_text if name == "tag" else getattr(filters, name)
        if value:
            parts += [name, slugify(value)[:40] or "x"]
    if detailed:
        parts.append("detailed")
    return "-".join(parts) + ".csv"


def csv_response(*, workspace, data) -> StreamingHttpResponse:
    """`data["columns"]`: "detailed" for the detailed export, else the default columns."""
    filters = RunFilter.from_data(data, workspace=workspace)
    kept_from = detail_kept_from()
    response = StreamingHttpResponse(export_rows(workspace=workspace, filters=filters, kept_from=kept_from,
                                                 using=current_read_alias(),
                                                 detailed=data.get("columns") == "detailed"),
                                     content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{csv_file_name(workspace=workspace, filters=filters, detailed=data.get("columns") == "detailed")}"'
    response["Cache-Control"] = "no-store"
    notice = detail_notice(start=filters.start, kept_from=kept_from)
    if notice:
        response["X-Detail-Kept-From"] = kept_from.isoformat()
        response["X-Detail-Notice"] = notice
    return response
