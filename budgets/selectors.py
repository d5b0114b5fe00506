"""Reads behind the budget pages, the alert checks and the Billing banner."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from billing.models import Membership, Workspace
from billing.money import nanos_display

from .counters import AGENT, DAY, MEMBER, PERIOD, TOKEN, WORKSPACE, day_start
from .models import Agent, BudgetAlert, SpendCounter, WorkspaceBudget, budget_level


@dataclass(frozen=True)
class ScopeUsage:
    """One budget scope in the current period: what it may spend and what it has used (charged +
    reserved, SPEC section 4)."""

    scope: str  # workspace | agent | member
    scope_id: int
    label: str  # workspace name, agent name or member e-mail
    limit: int
    used: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.scope, self.scope_id)

    @property
    def percent(self) -> int:
        return int(self.used * 100 // self.limit) if self.limit > 0 else 0


@dataclass(frozen=True)
class PeriodSpend:
    """The workspace's current billing period, the instant-to-instant interval [start, end), and what
    it counts: `charged` is what runs authorized in it were charged, `held` what its running runs
    reserve. The one source of every "this period" figure (pages, API, CSV, banner; issue 10)."""

    start: datetime
    end: datetime
    charged: int  # nanocredits
    held: int  # nanocredits

    @property
    def used(self) -> int:
        """What budgets compare with their limit (SPEC section 4): charged + held."""
        return self.charged + self.held


@dataclass(frozen=True)
class BudgetStatus:
    """The workspace budget against this period's spend: what BalanceView, the Alerts page and the
    banner show."""

    limit: int | None  # nanocredits; None: no budget
    spend: PeriodSpend
    hard_limit_enabled: bool

    @property
    def percent(self) -> int | None:
        return self.spend.used * 100 // self.limit if self.limit else None

    @property
    def state(self) -> str:
        return budget_level(used=self.spend.used, limit=self.limit)


def period_spend(*, workspace: Workspace) -> PeriodSpend:
    """Charged and held in the workspace's current period, from its period spend counter (one row)."""
    row = (SpendCounter.objects.filter(workspace=workspace, scope=WORKSPACE, scope_id=workspace.pk, span=PERIOD,
                                       span_start=workspace.period_start).order_by()
           .values_list("charged", "reserved").first())
    charged, held = row or (0, 0)
    return PeriodSpend(start=workspace.period_start, end=workspace.period_end, charged=charged, held=held)


def budget_status(*, workspace: Workspace) -> BudgetStatus:
    budget = workspace.budget
    return BudgetStatus(limit=budget.monthly_limit, spend=period_spend(workspace=workspace),
                        hard_limit_enabled=budget.hard_limit_enabled)


def period_used(*, workspace: Workspace) -> dict[tuple[str, int], int]:
    """charged + reserved per (scope, scope id) in the workspace's current period, in one query."""
    rows = SpendCounter.objects.filter(workspace=workspace, span=PERIOD, span_start=workspace.period_start)
    return {(row.scope, row.scope_id): row.used for row in rows}


def day_used(*, workspace: Workspace, day) -> dict[int, int]:
    """charged + reserved per agent id on one UTC day."""
    rows = SpendCounter.objects.filter(workspace=workspace, scope=AGENT, span=DAY, span_start=day_start(day))
    return {row.scope_id: row.used for row in rows}


@dataclass(frozen=True)
class TokenUse:
    """What runs authorized with one developer token have used (charged + held): on a UTC day and in
    the workspace's current billing period, from the token's spend counters (issue 29)."""

    today: int = 0  # nanocredits
    this_period: int = 0


def token_use(*, workspace: Workspace, token_ids, day) -> dict[int, TokenUse]:
    """TokenUse per token id (tokens without runs are left out), in one query."""
    ids = list(token_ids)
    if not ids:
        return {}
    rows = SpendCounter.objects.filter(workspace=workspace, scope=TOKEN, scope_id__in=ids).filter(
        Q(span=DAY, span_start=day_start(day)) | Q(span=PERIOD, span_start=workspace.period_start)).order_by()
    today, period = {}, {}
    for scope_id, span, charged, reserved in rows.values_list("scope_id", "span", "charged", "reserved"):
        (today if span == DAY else period)[scope_id] = charged + reserved
    return {pk: TokenUse(today.get(pk, 0), period.get(pk, 0)) for pk in set(today) | set(period)}


def budget_scopes(*, workspace: Workspace) -> list[ScopeUsage]:
    """Every scope that has a period budget: the workspace (if it set one), each agent that spent in
    this period (an agent with nothing used cannot be over a threshold) and each member with a budget."""
    used = period_used(workspace=workspace)
    budget = workspace.budget
    scopes = []
    if budget.monthly_limit is not None:
        scopes.append(ScopeUsage(WORKSPACE, workspace.pk, workspace.name, budget.monthly_limit,
                                 used.get((WORKSPACE, workspace.pk), 0)))
    agent_ids = [scope_id for scope, scope_id in used if scope == AGENT]
    for agent in Agent.objects.filter(workspace=workspace, pk__in=agent_ids).only("id", "name", "max_per_month"):
        scopes.append(ScopeUsage(AGENT, agent.pk, agent.name, agent.max_per_month, used[(AGENT, agent.pk)]))
    members = Membership.objects.filter(workspace=workspace, monthly_budget__isnull=False).select_related("user")
    for membership in members:
        scopes.append(ScopeUsage(MEMBER, membership.pk, membership.user.email, membership.monthly_budget,
                                 used.get((MEMBER, membership.pk), 0)))
    return scopes


def scope_labels(*, workspace: Workspace, alerts) -> dict[tuple[str, int], str]:
    """Names for the scopes of some alerts, in at most two queries."""
    labels = {(WORKSPACE, workspace.pk): workspace.name}
    agent_ids = {a.scope_id for a in alerts if a.scope == AGENT}
    member_ids = {a.scope_id for a in alerts if a.scope == MEMBER}
    if agent_ids:
        labels.update({(AGENT, pk): name for pk, name in Agent.objects.filter(pk__in=agent_ids).values_list("id", "name")})
    if member_ids:
        labels.update({(MEMBER, pk): email for pk, email in
                       Membership.objects.filter(pk__in=member_ids).values_list("id", "user__email")})
    return labels


SCOPE_NOUNS = {WORKSPACE: "Workspace monthly budget", AGENT: "Agent budget", MEMBER: "Member budget"}
LEVEL_NAMES = dict(WorkspaceBudget.LEVELS)


@dataclass(frozen=True)
class BannerItem:
    level: str
    title: str
    message: str


HARD_LIMIT_SENTENCE = " New runs in this scope are refused until the budget is raised or the period ends."


def alert_text(*, alert: BudgetAlert, label: str) -> BannerItem:
    """The words for one alert when it fired (the e-mails): the level and the usage then."""
    noun = SCOPE_NOUNS.get(alert.scope, "Budget")
    subject = noun if alert.scope == WORKSPACE else f"{noun} of {label}"
    title = f"{LEVEL_NAMES.get(alert.level, alert.level)}: {subject} at {alert.threshold_percent}%."
    message = (f"{nanos_display(alert.used)} of {nanos_display(alert.limit)} credits used this billing period "
               f"({alert.period_start:%b %-d} – {alert.period_end:%b %-d}).")
    if alert.level == WorkspaceBudget.HARD_LIMIT:
        message += HARD_LIMIT_SENTENCE
    return BannerItem(alert.level, title, message)


def usage_sentence(*, charged: int, held: int, limit: int) -> str:
    """How a budget comparison reads everywhere: what it counts, and the percentage of the limit."""
    used = charged + held
    return (f"{nanos_display(charged)} charged + {nanos_display(held)} held = {nanos_display(used)} "
            f"of {nanos_display(limit)} credits ({used * 100 // limit}%)")


def banner_text(*, alert: BudgetAlert, label: str, charged: int, held: int, limit: int) -> BannerItem:
    """The banner for an unresolved alert, with today's figures: the percentage used first, then the
    level it reached ("94% of the monthly budget used (warning at 80%)")."""
    noun = SCOPE_NOUNS.get(alert.scope, "Budget").lower()
    subject = f"the {noun}" if alert.scope == WORKSPACE else f"the {noun} of {label}"
    used = charged + held
    level = LEVEL_NAMES.get(alert.level, alert.level).lower()
    title = f"{used * 100 // limit}% of {subject} used ({level} at {alert.threshold_percent}%)."
    message = (f"{usage_sentence(charged=charged, held=held, limit=limit)} this billing period "
               f"({alert.period_start:%b %-d, %H:%M} – {alert.period_end:%b %-d, %H:%M} UTC).")
    if alert.level == WorkspaceBudget.HARD_LIMIT:
        message += HARD_LIMIT_SENTENCE
    return BannerItem(alert.level, title, message)


def active_alerts(*, workspace: Workspace) -> list[BannerItem]:
    """Unresolved alerts of the current period for the Billing banner: the highest level per scope."""
    alerts = list(BudgetAlert.objects.filter(workspace=workspace, period_start=workspace.period_start,
                                             resolved_at__isnull=True).order_by("scope", "scope_id", "-threshold_percent"))
    highest = {}
    for alert in alerts:
        highest.setdefault((alert.scope, alert.scope_id), alert)
    if not highest:
        return []
    labels = scope_labels(workspace=workspace, alerts=highest.values())
    spend = {(scope, scope_id): (charged, held) for scope, scope_id, charged, held in SpendCounter.objects.filter(
        workspace=workspace, span=PERIOD, span_start=workspace.period_start).values_list(
        "scope", "scope_id", "charged", "reserved")}
    limits = {scope.key: scope.limit for scope in budget_scopes(workspace=workspace)}
    items = []
    for key, alert in highest.items():
        charged, held = spend.get(key, (0, 0))
        limit = limits.get(key) or alert.limit
        items.append(banner_text(alert=alert, label=labels.get(key, "?"), charged=charged, held=held, limit=limit))
    return items
