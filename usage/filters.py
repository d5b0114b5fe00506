"""The one run filter of the Usage page, GET /v1/runs, GET /v1/usage and both CSV exports.

The same six fields everywhere (`from`, `to`, `agent`, `model`, `status`, `tag`), applied in one
place. `tag` (issue 29) is a cost tag `key:value` of the run; the daily rollups do not keep tags, so
like `status` it is answered from the runs and their nodes.
The days are UTC days of a date field: the runs table asks when a run started (`created_at`; a
running run has no completion yet), the figures and the CSV ask when it was charged
(`completed_at`, the day its charge landed). The model filter matches the model of a node for
per-node rows (CSV, rollups) and the run's model for the runs list."""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone as dt_timezone

STARTED, CHARGED = "created_at", "completed_at"


def day_bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """[start 00:00, day after end 00:00) in UTC."""
    low = datetime.combine(start, time.min, tzinfo=dt_timezone.utc) if start else None
    high = datetime.combine(end + timedelta(days=1), time.min, tzinfo=dt_timezone.utc) if end else None
    return low, high


@dataclass(frozen=True)
class RunFilter:
    start: date | None = None  # first UTC day, inclusive
    end: date | None = None  # last UTC day, inclusive
    agent: str = ""
    model: str = ""
    status: str = ""
    tag: tuple[str, str] | None = None  # (key, value): runs whose cost tags include it
    # Runs authorized in the billing period that started at this instant (Run.period_start): the
    # "this period" view, which equals the period counters; the days above then only bound the chart.
    period_start: datetime | None = None

    @classmethod
    def from_data(cls, data: Mapping, *, workspace=None) -> "RunFilter":
        """From validated input keyed like the query string (a form's `from_` is accepted too).
        `period=current` (with `workspace`) selects the runs of the workspace's current period."""
        period = workspace.period_start if workspace is not None and data.get("period") == "current" else None
        tag = data.get("tag") or None
        return cls(start=data.get("from") or data.get("from_"), end=data.get("to"), agent=data.get("agent") or "",
                   model=data.get("model") or "", status=data.get("status") or "", tag=tuple(tag) if tag else None,
                   period_start=period)

    def with_range(self, start: date | None, end: date | None) -> "RunFilter":
        return replace(self, start=start, end=end)

    def for_days(self, start: date, end: date) -> "RunFilter":
        """The same agent, model and status over the UTC days [start, end], whatever period was chosen."""
        return replace(self, start=start, end=end, period_start=None)

    def for_period(self, period_start: datetime) -> "RunFilter":
        return replace(self, period_start=period_start)

    @property
    def narrows_runs(self) -> bool:
        """True when agent, model, status or tag is set (the date range aside)."""
        return bool(self.agent or self.model or self.status or self.tag)

    @property
    def needs_runs(self) -> bool:
        """True when the daily rollups cannot answer (they keep neither status nor tags)."""
        return bool(self.status or self.tag)

    @property
    def tag_text(self) -> str:
        return f"{self.tag[0]}:{self.tag[1]}" if self.tag else ""

    def as_query(self) -> dict:
        if self.period_start:
            query = {"period": "current", "agent": self.agent, "model": self.model, "status": self.status,
                     "tag": self.tag_text}
        else:
            query = {"from": self.start.isoformat() if self.start else "", "to": self.end.isoformat() if self.end else "",
                     "agent": self.agent, "model": self.model, "status": self.status, "tag": self.tag_text}
        return {k: v for k, v in query.items() if v}

    def apply(self, queryset, *, date_field: str = STARTED, run: str = "", model_field: str = "model_id"):
        """Filter a queryset of runs (run="") or of rows that point at a run (run="run__")."""
        if self.period_start:
            queryset = queryset.filter(**{f"{run}period_start": self.period_start})
        low, high = day_bounds(self.start, self.end) if not self.period_start else (None, None)
        if low:
            queryset = queryset.filter(**{f"{run}{date_field}__gte": low})
        if high:
            queryset = queryset.filter(**{f"{run}{date_field}__lt": high})
        if self.agent:
            queryset = queryset.filter(**{f"{run}agent__name": self.agent})
        if self.model:
            queryset = queryset.filter(**{model_field: self.model})
        if self.status:
            queryset = queryset.filter(**{f"{run}status": self.status})
        if self.tag:
            queryset = queryset.filter(**{f"{run}tags__contains": {self.tag[0]: self.tag[1]}})
        return queryset
