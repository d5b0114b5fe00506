"""Reads shared by the Usage page, the v1 API and the CSV export, so the three always agree.

Figures come from the DailyUsage rollups (one row per workspace, UTC day, agent, model and member,
updated in the charge's transaction); the runs table is keyset-paginated. Nothing here scans runs
to compute a figure, so the dashboard costs the same with 50k or 5M runs."""

import base64
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.db.models import Count, F, Func, Q, Sum, TextField, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from billing.models import AIModel, Wallet, Workspace
from billing.pricing import TokenCounts, model_rates_at, price_counts
from budgets.selectors import period_spend

from .filters import CHARGED, STARTED, RunFilter
from .models import Agent, DailyUsage, DroppedRunMonth, Run, RunKey, RunNode
from .partitions import month_add

# One line each, shown under the figures on the Usage page and in the API docs.
DEFINITIONS = {
    "available": "Credits you can spend now: monthly plus purchased credits, minus holds of running runs.",
    "period_used": "Credits charged for runs started in this billing period (from the instant it started); running runs' holds are shown apart.",
    "daily_average": "This period's credits divided by the days elapsed in it, today included.",
    "projected": "This period's credits plus the daily average for each day left until the period ends.",
}


@dataclass
class Spend:
    key: str  # model id or agent name
    label: str
    credits: int
    input_tokens: int
    output_tokens: int
    runs: int
    # Token classes (issue 28): parts of input_tokens and output_tokens.
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_saving: int = 0  # nanocredits prompt caching saved (RunNode.cache_saving summed)


@dataclass
class Caching:
    """Prompt caching over some spend: how much of the input came from the cache, and the credits
    that saved (the same tokens at the plain input rate, minus what they were charged)."""

    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    saved: int  # nanocredits; negative when cache writes cost more than the reads saved

    @property
    def cached_percent(self) -> int | None:
        return None if not self.input_tokens else self.cached_input_tokens * 100 // self.input_tokens

    @classmethod
    def of(cls, spends: list["Spend"]) -> "Caching":
        return cls(sum(s.input_tokens for s in spends), sum(s.cached_input_tokens for s in spends),
                   sum(s.cache_write_tokens for s in spends), sum(s.cache_saving for s in spends))


@dataclass
class Savings:
    cheapest_model: str | None
    cheapest_label: str
    actual: int  # token credits at today's rates on the models used
    cheapest: int  # the same tokens on the cheapest paid model
    input_tokens: int
    output_tokens: int
    caching: "Caching | None" = None  # what prompt caching saved on these tokens (issue 28)

    @property
    def saving(self) -> int:
        return max(self.actual - self.cheapest, 0)


@dataclass(frozen=True)
class TagSpend:
    """Credits and runs for one value of a cost tag key (value None: the runs without that key)."""

    value: str | None
    credits: int
    runs: int


@dataclass
class UsageSummary:
    start: date
    end: date
    available: int
    period_start: date
    period_end: date
    period_used: int  # charged this period (runs authorized in it)
    period_held: int  # held by this period's running runs
    daily_average: int
    projected: int
    range_total: int  # credits charged on the days of [start, end]
    daily: list[tuple[date, int]] = field(default_factory=list)
    by_model: list[Spend] = field(default_factory=list)
    by_agent: list[Spend] = field(default_factory=list)
    definitions: dict = field(default_factory=lambda: DEFINITIONS)
    tag_key: str | None = None  # the cost tag key by_tag splits range_total by (issue 29)
    by_tag: list[TagSpend] | None = None

    @property
    def caching(self) -> Caching:
        """Prompt caching over [start, end] under the filters (the by-model rows summed)."""
        return Caching.of(self.by_model)


def default_range(workspace: Workspace, *, today: date | None = None) -> tuple[date, date]:
    """The current billing period, up to today (UTC)."""
    today = today or timezone.now().date()
    return workspace.period_start.date(), max(today, workspace.period_start.date())


def usage_summary(*, workspace: Workspace, start: date, end: date, today: date | None = None,
                  filters: RunFilter | None = None, tag_key: str | None = None) -> UsageSummary:
    """The four dashboard figures, and for [start, end] narrowed by `filters` the daily series and
    spend by model and agent (these equal the CSV exported with the same filters). With `tag_key`,
    also `by_tag`: that range's credits and runs for each value of the cost tag key, and for the runs
    without it. Every figure of the range then comes from the run nodes, so the groups sum exactly to
    range_total whatever the filters (the rollups, which keep no tags, could differ from the kept
    nodes once retention dropped a month).

    available comes from the wallet (whole workspace); this period's charged and held from the
    period spend counter (budgets.selectors.period_spend, the figure every page and the API show)
    or, with agent/model/status filters, from the same rows narrowed; the rest from the DailyUsage
    rollups (a few hundred rows)."""
    today = today or timezone.now().date()
    wallet = Wallet.objects.get(workspace_id=workspace.pk)
    period_start = workspace.period_start.date()
    period_last = (workspace.period_end - timedelta(microseconds=1)).date()
    spend = period_spend(workspace=workspace)
    period_used, period_held = spend.charged, spend.held
    if filters is not None and filters.narrows_runs:
        # Agent, model or status chosen: this period's figures for those runs only (the same rows
        # as the CSV with period=current and these filters). Without them, the counter above.
        in_period = RunFilter(agent=filters.agent, model=filters.model, status=filters.status, tag=filters.tag,
                              period_start=workspace.period_start)
        period_used = sum(row["c"] for row in _spend_grouped(workspace=workspace, start=start, end=end,
                                                             filters=in_period, group=["model"]))
        open_runs = Run.objects.filter(workspace=workspace, released_at__isnull=True)
        period_held = in_period.apply(open_runs).aggregate(s=Sum("reserved"))["s"] or 0
    elapsed = max((min(today, period_last) - period_start).days + 1, 1)
    remaining = max((period_last - max(today, period_start - timedelta(days=1))).days, 0)
    daily_average = period_used // elapsed
    projected = period_used + daily_average * remaining

    from_runs = tag_key is not None
    daily = daily_series(workspace=workspace, start=start, end=end, filters=filters, from_runs=from_runs)
    by_model = spend_by_model(workspace=workspace, start=start, end=end, filters=filters, from_runs=from_runs)
    by_agent = spend_by_agent(workspace=workspace, start=start, end=end, filters=filters, from_runs=from_runs)
    by_tag = spend_by_tag(workspace=workspace, start=start, end=end, filters=filters, key=tag_key) if from_runs else None
    return UsageSummary(
        start=start, end=end, available=wallet.available, period_start=period_start, period_end=period_last,
        period_used=period_used, period_held=period_held, daily_average=daily_average, projected=projected,
        range_total=sum(credits for _, credits in daily), daily=daily, by_model=by_model, by_agent=by_agent,
        tag_key=tag_key, by_tag=by_tag,
    )


_GROUPS = {"day": ("day", TruncDate("run__completed_at", tzinfo=dt_timezone.utc)), "model": ("model_id", "model_id"),
           "agent": ("agent_id", "run__agent_id"), "agent_name": ("agent__name", "run__agent__name")}


def _spend_grouped(*, workspace: Workspace, start: date, end: date, filters: RunFilter | None, group: list[str],
                   from_runs: bool = False, tag_key: str | None = None):
    """Charged credits, tokens and runs on the UTC days [start, end] (the day each charge landed),
    narrowed by `filters` and grouped by `group` (day, model, agent, agent_name, tag; keys g_<name>;
    "tag" groups by the value of the cost tag `tag_key`, NULL for runs without it).

    With `filters.period_start`, the runs authorized in that period instead of the days (then the
    figures equal the period counters). The daily rollups answer the agent and model filters (a
    few hundred rows); a status or tag filter, a tag grouping, or `from_runs` are answered from the
    run nodes, the same rows the CSV exports."""
    filters = filters or RunFilter()
    if filters.needs_runs or from_runs or "tag" in group:
        rows = filters.with_range(start, end).apply(
            RunNode.objects.filter(run__workspace=workspace, run__completed_at__isnull=False),
            date_field=CHARGED, run="run__")
        runs = Count("run_id", distinct=True)
        saving = Sum(_NODE_CACHE_SAVING)
        column = 1
    else:
        rows = DailyUsage.objects.filter(workspace=workspace)
        if filters.period_start:
            rows = rows.filter(period_start=filters.period_start)
        else:
            rows = rows.filter(day__gte=start, day__lte=end)
        if filters.agent:
            rows = rows.filter(agent__name=filters.agent)
        if filters.model:
            rows = rows.filter(model_id=filters.model)
        runs = Sum("runs")
        saving = Sum("cache_saving")
        column = 0
    groups = {**_GROUPS, "tag": (None, _TagValue(F("run__tags"), Value(tag_key)))} if tag_key else _GROUPS
    values = {f"g_{name}": (F(groups[name][column]) if isinstance(groups[name][column], str) else groups[name][column])
              for name in group}
    return rows.values(**values).annotate(c=Sum("credits"), i=Sum("input_tokens"), o=Sum("output_tokens"),
                                          ci=Sum("cached_input_tokens"), cw=Sum("cache_write_tokens"),
                                          rs=Sum("reasoning_tokens"), cs=saving, r=runs).order_by()


class _TagValue(Func):
    """tags ->> key: the value of one cost tag, NULL when the run has no such key. (Django's key
    transforms read a key of digits as an array index, and a key with "__" as a path.)"""

    template = "(%(expressions)s)"
    arg_joiner = " ->> "
    output_field = TextField()


# RunNode.cache_saving in SQL (the rollups store it; the status filter reads nodes).
_NODE_CACHE_SAVING = (
    F("cached_input_tokens") * (F("input_nanos_per_token")
                                - Coalesce(F("cached_input_nanos_per_token"), F("input_nanos_per_token")))
    + F("cache_write_tokens") * (F("input_nanos_per_token")
                                 - Coalesce(F("cache_write_nanos_per_token"), F("input_nanos_per_token"))))


def _spend(key: str, label: str, row: dict) -> Spend:
    return Spend(key, label, row["c"], row["i"], row["o"], row["r"], row["ci"] or 0, row["cw"] or 0, row["rs"] or 0,
                 row["cs"] or 0)


def daily_series(*, workspace: Workspace, start: date, end: date, filters: RunFilter | None = None,
                 from_runs: bool = False) -> list[tuple[date, int]]:
    """Credits charged on each UTC day of [start, end], zero-filled."""
    per_day = {row["g_day"]: row["c"] for row in _spend_grouped(workspace=workspace, start=start, end=end,
                                                                filters=filters, group=["day"], from_runs=from_runs)}
    return [(start + timedelta(days=i), per_day.get(start + timedelta(days=i), 0)) for i in range((end - start).days + 1)]


def spend_by_model(*, workspace: Workspace, start: date, end: date, filters: RunFilter | None = None,
                   from_runs: bool = False) -> list[Spend]:
    names = dict(AIModel.objects.values_list("id", "name"))
    rows = _spend_grouped(workspace=workspace, start=start, end=end, filters=filters, group=["model"],
                          from_runs=from_runs)
    return sorted((_spend(row["g_model"], names.get(row["g_model"], row["g_model"]), row) for row in rows),
                  key=lambda spend: (-spend.credits, spend.key))


def spend_by_agent(*, workspace: Workspace, start: date, end: date, filters: RunFilter | None = None,
                   from_runs: bool = False) -> list[Spend]:
    rows = _spend_grouped(workspace=workspace, start=start, end=end, filters=filters, group=["agent", "agent_name"],
                          from_runs=from_runs)
    return sorted((_spend(str(row["g_agent"]), row["g_agent_name"], row) for row in rows),
                  key=lambda spend: (-spend.credits, spend.label))


def spend_by_tag(*, workspace: Workspace, start: date, end: date, key: str, filters: RunFilter | None = None
                 ) -> list[TagSpend]:
    """Charged credits and runs for each value of the cost tag `key`, and for the runs without it
    (value None, listed last), over the same runs as the other figures: the groups sum exactly to
    the range's total. Most credits first."""
    rows = _spend_grouped(workspace=workspace, start=start, end=end, filters=filters, group=["tag"], tag_key=key)
    spends = [TagSpend(row["g_tag"], row["c"] or 0, row["r"] or 0) for row in rows]
    return sorted(spends, key=lambda spend: (spend.value is None, -spend.credits, spend.value or ""))


def _counts(spend: Spend) -> TokenCounts:
    return TokenCounts(spend.input_tokens, spend.output_tokens, spend.cached_input_tokens, spend.cache_write_tokens,
                       spend.reasoning_tokens)


def savings_for(*, by_model: list[Spend], at: datetime | None = None) -> Savings:
    """This period's tokens at today's rates: on the models used vs all on the cheapest paid model,
    each token class at its own rate (cached tokens stay cached on the other model). Free (BYOK,
    zero-rate) models are left out: their cost is paid to the provider, not to us."""
    rates = model_rates_at(at=at or timezone.now())
    names = dict(AIModel.objects.values_list("id", "name"))
    actual = sum(price_counts(rate=rates[s.key], counts=_counts(s)) for s in by_model if s.key in rates)
    total = TokenCounts(*(sum(getattr(_counts(s), name) for s in by_model)
                          for name in ("input", "output", "cached_input", "cache_write", "reasoning")))
    caching = Caching.of(by_model)
    paid = [rate for rate in rates.values() if rate.input_nanos_per_token or rate.output_nanos_per_token]
    if not paid:
        return Savings(None, "", actual, actual, total.input, total.output, caching)
    cheapest = min(paid, key=lambda r: (price_counts(rate=r, counts=total), r.model_id))
    return Savings(cheapest.model_id, names.get(cheapest.model_id, cheapest.model_id), actual,
                   price_counts(rate=cheapest, counts=total), total.input, total.output, caching)


# --- The runs table: keyset pagination on (created_at, id), newest first; never a COUNT.

class InvalidCursor(ValueError):
    pass


def encode_cursor(run: Run) -> str:
    return base64.urlsafe_b64encode(f"{run.created_at.isoformat()}|{run.pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, pk = raw.split("|")
        return datetime.fromisoformat(moment), int(pk)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidCursor("The cursor is not one this API returned.") from error


def runs_filtered(*, workspace: Workspace, filters: RunFilter):
    return filters.apply(Run.objects.filter(workspace=workspace), date_field=STARTED)


def runs_page(*, workspace: Workspace, filters: RunFilter, cursor: str | None = None, limit: int = 50,
              with_nodes: bool = False) -> tuple[list[Run], str | None]:
    """One page of runs, newest first, and the cursor of the next page (None on the last)."""
    runs = runs_filtered(workspace=workspace, filters=filters).select_related("workflow", "agent", "member__user", "model")
    if cursor:
        moment, pk = decode_cursor(cursor)
        runs = runs.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=pk))
    if with_nodes:
        runs = runs.prefetch_related("nodes")
    page = list(runs.order_by("-created_at", "-id")[: limit + 1])
    next_cursor = encode_cursor(page[limit - 1]) if len(page) > limit else None
    return page[:limit], next_cursor


def runs_page_newer(*, workspace: Workspace, filters: RunFilter, before: str, limit: int = 50
                    ) -> tuple[list[Run], bool]:
    """The page of runs just newer than the cursor `before` (newest first, like every page), and
    whether there are newer runs still. Keyset pagination backwards: ascending from the cursor."""
    moment, pk = decode_cursor(before)
    runs = (runs_filtered(workspace=workspace, filters=filters).select_related("workflow", "agent", "member__user")
            .filter(Q(created_at__gt=moment) | Q(created_at=moment, id__gt=pk)))
    page = list(runs.order_by("created_at", "id")[: limit + 1])
    return list(reversed(page[:limit])), len(page) > limit


def run_detail(*, workspace: Workspace, public_id: str) -> Run | None:
    return (Run.objects.select_related("workflow", "agent", "member__user", "model", "token")
            .prefetch_related("nodes").for_public_id(workspace=workspace, public_id=public_id).first())


# --- Retention: what the kept run detail covers (usage/partitions.py drops whole months).

def detail_kept_from() -> date | None:
    """The first day whose run and node detail is still kept, or None when nothing was dropped."""
    latest = DroppedRunMonth.objects.order_by("-month").values_list("month", flat=True).first()
    return month_add(latest, 1) if latest else None


def detail_notice(*, start: date | None, kept_from: date | None) -> str | None:
    """The plain sentence shown when a range starts before the kept detail (page, API, CSV header)."""
    if kept_from is None or (start is not None and start >= kept_from):
        return None
    return (f"Run detail before {kept_from:%b} {kept_from.day}, {kept_from.year} is no longer kept "
            f"(runs are kept {settings.RUN_DETAIL_RETENTION_MONTHS} months). Totals for earlier days come from "
            f"the daily rollups, which are kept with the ledger and invoices; individual runs start on "
            f"{kept_from.isoformat()}.")


def run_dropped_notice(*, workspace: Workspace, public_id: str) -> str | None:
    """For an id whose run retention dropped (its RunKey outlives it), the plain sentence the run
    page and GET /v1/runs/{id} answer with; None for an id that never named a run here."""
    started = (RunKey.objects.filter(workspace=workspace, public_id=public_id).order_by()
               .values_list("run_created_at", flat=True).first())
    kept_from = detail_kept_from()
    if started is None or kept_from is None or started.date() >= kept_from:
        return None
    return (f"Run {public_id} started on {started:%Y-%m-%d}. Run detail before {kept_from:%b} {kept_from.day}, "
            f"{kept_from.year} is no longer kept (runs are kept {settings.RUN_DETAIL_RETENTION_MONTHS} months), so "
            f"its nodes are gone. Its charge stays in the ledger (Activity, with the run id) and in the daily "
            f"totals on the Usage page.")


def filter_choices(*, workspace: Workspace) -> dict:
    return {
        "agents": list(Agent.objects.filter(workspace=workspace).order_by("name").values_list("name", flat=True)),
        "models": list(AIModel.objects.values_list("id", "name")),
        "statuses": Run.STATUSES,
    }
