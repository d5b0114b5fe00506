"""The simulator's own model of the money (issue 25 part 2): what every bucket, hold and purchase
should be, in plain Python integers, written from SPEC sections 2 and 3 and docs/plans.md rather
than from the code under test. The machine (machine.py) moves the real services and this model
side by side and compares them after every step.

It reads nothing from the product but the period boundaries (billing.periods decides them; this
model checks they are contiguous) and the seeded catalogue's numbers, which it restates here."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

NANOS = 10**9
DAY = timedelta(days=1)

# SPEC section 2: credits per 1M tokens, so nanocredits per token = rate x 1000.
MODEL_RATES = {  # model id: (input, output) nanocredits per token
    "gpt-4o": (5_000, 15_000),
    "gpt-4o-mini": (300, 1_200),
    "claude-sonnet-4": (6_000, 30_000),
    "gemini-2.0-flash": (150, 600),
    "ollama": (0, 0),
}
TOOL_RATES = {"web_search": NANOS // 100, "code_interpreter": 3 * NANOS // 100, "unpriced_tool": 0}

# SPEC section 3.
PLANS = {  # id: (monthly credits in nanos, price in cents, concurrent runs, member cap, sort order)
    "free": (50 * NANOS, 0, 1, 1, 0),
    "pro": (1_000 * NANOS, 2_900, 5, 10, 1),
    "team": (5_000 * NANOS, 9_900, 20, None, 2),
    "enterprise": (0, None, 20, None, 3),
}
PACKS = {  # id: (credits, bonus, price cents)
    "starter": (100 * NANOS, 0, 500),
    "builder": (500 * NANOS, 25 * NANOS, 2_000),
    "pro": (2_000 * NANOS, 150 * NANOS, 7_500),
    "team": (10_000 * NANOS, 1_000 * NANOS, 35_000),
}
AGENT_DEFAULTS = (10 * NANOS, 100 * NANOS, 1_000 * NANOS)  # per run, per UTC day, per billing period
RUN_MAX = 100_000 * NANOS  # settings.RUN_MAX_CREDITS
OVERDRAFT_MAX = 1_000 * NANOS  # settings.OVERDRAFT_MAX_CREDITS: a workspace owes at most this much
TTL = timedelta(seconds=3600)  # settings.RESERVATION_TTL_SECONDS


def node_cost(model: str, input_tokens: int, output_tokens: int, tools=()) -> int:
    rate_in, rate_out = MODEL_RATES[model]
    return input_tokens * rate_in + output_tokens * rate_out + sum(TOOL_RATES[name] * calls for name, calls in tools)


def days_left(*, period_start: datetime, period_end: datetime, at: datetime) -> tuple[int, int]:
    """docs/plans.md: whole UTC days left, the day in progress counting; and the period's days."""
    period_days = max(round((period_end - period_start) / DAY), 1)
    left = period_end - at
    whole = left // DAY + (1 if left % DAY else 0)
    return min(max(whole, 1), period_days), period_days


def prorate_cents(cents: int, days: int, period_days: int) -> int:
    return (2 * cents * days + period_days) // (2 * period_days)  # half up, integers only


@dataclass
class RunModel:
    public_id: str
    member: str  # owner / admin / member
    agent: str
    day: object  # the UTC date of the authorization
    period_start: datetime
    created_at: datetime
    reserved: int
    via: str  # api / service: a replay uses the same door
    open: bool = True  # holds its reservation
    completed: bool = False
    cost: int = 0
    status: str = "running"
    body: dict | None = None  # the last request body (for replays)
    retired: bool = False  # its month's detail was dropped (retention)


@dataclass
class AutoRechargeModel:
    enabled: bool = False
    threshold: int = 0
    pack: str = "builder"
    ceiling: int = 3
    card: str = ""  # "", succeeds, declines
    paused: bool = False
    armed: bool = True
    # attempts: key -> dict(status, tries, next_try_at, period_start)
    attempts: list = field(default_factory=list)
    to_pay: list = field(default_factory=list)  # crossings enqueued in this step (paid after commit)

    @property
    def active(self) -> bool:
        return self.enabled and not self.paused and self.card != ""


@dataclass
class WorkspaceModel:
    slug: str
    kind: str
    plan: str
    members: list  # persona names
    period_start: datetime
    period_end: datetime
    custom_monthly: int | None = None
    scheduled: str | None = None
    cancel_at_period_end: bool = False
    monthly: int = 0
    purchased: int = 0
    runs: dict = field(default_factory=dict)  # public id -> RunModel
    granted_this_period: int = 0
    workspace_limit: int | None = None  # the monthly budget when its hard limit is on
    member_budgets: dict = field(default_factory=dict)  # persona -> nanos
    agents: dict = field(default_factory=dict)  # name -> (per run, per day, per month)
    purchases: dict = field(default_factory=dict)  # purchase pk -> dict(pack, credits, bonus, cents, refunded_cents)
    plan_invoiced_cents: int = 0  # this period's upgrade invoices, as the rule says they should total
    paid_plan_this_period: str = "free"  # the most expensive plan paid for in this period
    paid_plans_seen: set = field(default_factory=set)  # plans (or Enterprise allowances) upgraded to this period
    auto: AutoRechargeModel = field(default_factory=AutoRechargeModel)

    # --- figures --------------------------------------------------------------------------------
    @property
    def reserved(self) -> int:
        return sum(run.reserved for run in self.runs.values() if run.open)

    @property
    def running(self) -> int:
        return sum(1 for run in self.runs.values() if run.open)

    @property
    def available(self) -> int:
        return self.monthly + self.purchased - self.reserved

    @property
    def monthly_credits(self) -> int:
        if self.custom_monthly is not None and self.plan == "enterprise":
            return self.custom_monthly
        return PLANS[self.plan][0]

    def used(self, *, period_start, member=None, agent=None, day=None) -> int:
        """A spend counter: charged plus held of the runs stamped with that period (and day)."""
        total = 0
        for run in self.runs.values():
            if run.period_start != period_start or (member and run.member != member) or (
                    agent and run.agent != agent) or (day and run.day != day):
                continue
            total += (run.cost if run.completed else 0) + (run.reserved if run.open else 0)
        return total

    # --- the reservation rule (SPEC section 2 and 4) ----------------------------------------------
    def decide(self, *, member: str, agent: str, day) -> tuple[str, int]:
        """("ok", amount) or (refusal code, 0)."""
        if self.running >= PLANS[self.plan][2]:
            return "concurrency_limit", 0
        if self.available <= 0:
            return "insufficient_credits", 0
        per_run, per_day, per_month = self.agents.get(agent, AGENT_DEFAULTS)
        period = self.period_start
        limits = [("insufficient_credits", self.available)]
        if self.workspace_limit is not None:
            limits.append(("budget_exhausted", self.workspace_limit - self.used(period_start=period)))
        if member in self.member_budgets:
            limits.append(("member_budget_exceeded",
                           self.member_budgets[member] - self.used(period_start=period, member=member)))
        limits.append(("agent_monthly_budget_exceeded", per_month - self.used(period_start=period, agent=agent)))
        limits.append(("agent_daily_budget_exceeded", per_day - self.used(period_start=period, agent=agent, day=day)))
        code, remaining = min(limits, key=lambda limit: limit[1])
        if remaining <= 0:
            return code, 0
        return "ok", min(per_run, remaining)

    # --- balance changes --------------------------------------------------------------------------
    def charge(self, cost: int) -> None:
        """Monthly first, then purchased; what would leave the workspace owing more than
        OVERDRAFT_MAX is written off back into purchased (never more than this charge)."""
        from_monthly = min(cost, max(self.monthly, 0))
        self.monthly -= from_monthly
        self.purchased -= cost - from_monthly
        self.purchased += min(cost, max(-OVERDRAFT_MAX - (self.monthly + self.purchased), 0))

    def roll(self, *, new_start, new_end, at) -> None:
        """The period end: the scheduled change, the expiry of the unheld monthly remainder, the grant."""
        if self.cancel_at_period_end:
            self.plan, self.custom_monthly = "free", None
        elif self.scheduled:
            if self.scheduled != self.plan:
                self.custom_monthly = None
            self.plan = self.scheduled
        self.scheduled, self.cancel_at_period_end = None, False
        self.monthly -= max(self.monthly - max(self.reserved, 0), 0)
        self.period_start, self.period_end = new_start, new_end
        self.monthly += self.monthly_credits
        self.granted_this_period = self.monthly_credits
        self.plan_invoiced_cents = 0
        self.paid_plan_this_period = self.plan if PLANS[self.plan][1] else "free"
        self.paid_plans_seen = set()
        self.watch(at=at)

    def upgrade_credits(self, *, new_monthly: int, old_monthly: int, at) -> int:
        """docs/plans.md: the difference of the two allowances for the days left, never taking this
        period's grants above the new plan's allowance."""
        if new_monthly <= old_monthly:
            return 0
        days, period_days = days_left(period_start=self.period_start, period_end=self.period_end, at=at)
        prorated = new_monthly * days // period_days - old_monthly * days // period_days
        return max(min(prorated, new_monthly - self.granted_this_period), 0)

    # --- auto-recharge (docs/auto-recharge.md) --------------------------------------------------------
    def watch(self, *, at) -> None:
        """What billing.recharge_trigger does after every wallet write, restated."""
        auto = self.auto
        if not auto.active:
            return
        if self.available >= auto.threshold:
            auto.armed = True
            return
        if not auto.armed:
            return
        auto.armed = False
        if any(a["status"] in ("pending", "retrying") for a in auto.attempts):
            return
        used = sum(1 for a in auto.attempts if a["period_start"] == self.period_start
                   and a["status"] in ("pending", "retrying", "succeeded", "requires_action"))
        attempt = {"status": "pending" if used < auto.ceiling else "skipped", "tries": 0, "next_try_at": None,
                   "period_start": self.period_start, "pack": auto.pack}
        auto.attempts.append(attempt)
        if attempt["status"] == "pending":
            auto.to_pay.append(attempt)

    def pay(self, attempt: dict, *, at) -> None:
        """One try of an in-flight attempt with the test card (buying.auto_recharge)."""
        auto = self.auto
        if attempt["status"] not in ("pending", "retrying"):
            return
        if not auto.enabled:
            attempt["status"] = "failed"
            return
        attempt["tries"] += 1
        if auto.card == "succeeds":
            attempt["status"] = "succeeded"
            credits, bonus, _ = PACKS[attempt["pack"]]
            self.purchased += credits + bonus
            self.watch(at=at)
        elif attempt["tries"] < 3:
            attempt["status"], attempt["next_try_at"] = "retrying", at + (
                timedelta(minutes=5) if attempt["tries"] == 1 else timedelta(minutes=30))
        else:
            attempt["status"] = "failed"
            auto.paused, auto.armed = True, True
