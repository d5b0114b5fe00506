"""manage.py seed_demo [--if-empty]: a demo with history, built through the real services.

Two workspaces (Acme Team on the Team plan; owner@demo.test's personal Free workspace), four logins,
agents and workflows, ~90 days of runs authorized and completed through usage.services with `now=`
in the past (so reservations, charges, counters and rollups are exactly what production would
hold), period grants and expiries, pack purchases with invoices, a staff adjustment, a monthly
budget on Acme that the current period has used about 85% of (the warning banner, not the hard
limit), two runs still running, two that expired, and a developer token. `manage.py reconcile`
agrees with all of it.

Everything is placed relative to today: Acme's current period started about 20 days ago whatever
the day of the month, and its runs in that period are priced as they are replayed so that charged
plus held lands on USED_TARGET of the budget (tests/operations/test_seed_demo.py checks it on
several days of the month).

History is replayed in time order: before each run the workspace's billing period is rolled forward
to contain the run's time, exactly as the period-grant job would have done then."""

import random
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from config.celery import app as celery_app

from billing.access_versions import access_versions_bump
from billing.ledger import credits_adjust, monthly_rollover
from billing.models import Membership, Workspace, credits
from billing.money import nanos_display
from billing.periods import add_months, monthly_period_containing
from billing.pricing import model_rates_at
from buying.plans import plan_payment_record
from buying.purchases import purchase_record_manual
from billing.services import member_add, user_get_or_create
from budgets.workspaces import workspace_create
from budgets.alerts import alerts_check
from budgets.selectors import period_spend
from budgets.services import agent_budget_set, budget_set, member_budget_set
from usage.errors import RunRefused
from usage.models import Agent, Run
from usage.services import NodeInput, run_authorize, run_complete, run_expire
from usage.tokens import token_create

PASSWORD = "demo12345"
DAYS = 90
ACME_BUDGET = credits(6000)
# The two runs left running hold their agents' max per run (50 credits each).
RUNNING_HOLDS = credits(100)
MEAN_COST_FACTOR = (3 * 1.15 + 0.3) / 4 * 0.97
USED_TARGET = 85  # percent of ACME_BUDGET used (charged + held) when the seed ends: past the 80% warning, under 95%
ACME_AGENTS = {
    # name: (max per run, per day, per month) in credits; Support Triage keeps the product defaults
    "Research Assistant": (50, 400, 3000),
    "Code Reviewer": (50, 400, 3000),
    "Data Analyst": (50, 400, 3000),
    "Support Triage": (10, 100, 1000),
}
# Cost tags on Acme's runs (issue 29): the customer each run was for, so the Usage page's "Spend by
# tag" has something to split. Taken in turn (no draw from the seed's random stream, whose figures
# tests/operations/test_seed_demo.py holds).
ACME_CUSTOMERS = ("globex", "initech", "umbrella", "globex", "hooli", "initech", "globex")
ACME_WORKFLOWS = {
    "Research Assistant": ["Market research", "Competitor digest"],
    "Code Reviewer": ["PR review", "Release notes"],
    "Data Analyst": ["Weekly KPI report", "Churn analysis"],
    "Support Triage": ["Ticket routing"],
}
AGENT_MODELS = {
    "Research Assistant": [("claude-sonnet-4", 5), ("gpt-4o", 3), ("claude-opus-4", 1)],
    "Code Reviewer": [("claude-sonnet-4", 4), ("gpt-4o", 2), ("ollama", 1)],
    "Data Analyst": [("gpt-4o", 4), ("gemini-2.0-flash", 2), ("claude-sonnet-4", 2)],
    "Support Triage": [("gpt-4o-mini", 5), ("gemini-2.0-flash", 3)],
}
TOOLS = {"Research Assistant": "web_search", "Data Analyst": "code_interpreter", "Code Reviewer": "code_interpreter"}
PERSONAL_AGENTS = {"Side project bot": [("gpt-4o-mini", 3), ("gemini-2.0-flash", 2), ("ollama", 1)]}


class Command(BaseCommand):
    help = "Seeds demo workspaces, logins, agents, 90 days of runs, purchases and invoices (password demo12345)."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any workspace exists.")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (the demo is reproducible).")
        parser.add_argument("--days", type=int, default=DAYS, choices=range(30, 367), metavar="30..366",
                            help=f"Days of history (default {DAYS}).")
        parser.add_argument("--token-file", default="",
                            help="Write the developer token to this file (mode 600) instead of printing it.")

    def handle(self, *args, if_empty, seed, days, token_file, **options):
        if Workspace.objects.exists():
            if if_empty:
                self.stdout.write("seed_demo: workspaces exist already; nothing to do.")
                return
            if Workspace.objects.filter(slug__in=["acme", "owner-personal"]).exists():
                raise CommandError("The demo workspaces (acme, owner-personal) exist already.")
        started = time.monotonic()
        self.random = random.Random(seed)
        self.days, self.token_file = days, token_file
        self.now = timezone.now().replace(microsecond=0)
        self.counts = {"runs": 0, "refused": 0, "purchases": 0}
        # Celery tasks enqueued on commit (alert checks after each charge) run inline while seeding,
        # rather than leaving thousands of queued messages behind for the worker.
        was_eager = celery_app.conf.task_always_eager
        celery_app.conf.task_always_eager = True
        try:
            # All or nothing: a failed seed leaves no half-built demo behind for --if-empty to skip.
            with transaction.atomic():
                self._seed()
        finally:
            celery_app.conf.task_always_eager = was_eager
        self.stdout.write(self.style.SUCCESS(
            f"seed_demo: {self.counts['runs']} runs ({self.counts['refused']} refused by a limit), "
            f"{self.counts['purchases']} purchases in {time.monotonic() - started:.1f}s."))

    # --- the story ---------------------------------------------------------------------------------

    def _seed(self):
        # Acme started three periods and ~20 days ago: 90 days of runs fall in four periods and the
        # current one is far enough along for the budget's 80% warning to show.
        created = add_months(self.now - timedelta(days=20), -3) - timedelta(hours=2)
        self.acme_current_start, _ = monthly_period_containing(created, self.now)
        self.stdout.write(f"seed_demo: users and workspaces (created {created:%Y-%m-%d})")
        owner = user_get_or_create(email="owner@demo.test", password=PASSWORD, name="Olivia Owner")
        admin = user_get_or_create(email="admin@demo.test", password=PASSWORD, name="Adam Admin")
        member = user_get_or_create(email="member@demo.test", password=PASSWORD, name="Mia Member")
        staff = user_get_or_create(email="staff@demo.test", password=PASSWORD, name="Sam Staff")
        staff.is_staff = staff.is_superuser = True
        staff.save(update_fields=["is_staff", "is_superuser"])

        acme = self._workspace(slug="acme", name="Acme Team", owner=owner, plan="team", kind=Workspace.TEAM, at=created)
        personal = self._workspace(slug="owner-personal", name="Olivia's workspace", owner=owner, plan="free",
                                   kind=Workspace.PERSONAL, at=created + timedelta(hours=1))
        member_add(workspace=acme, user=admin, role=Membership.ADMIN, actor=owner)
        member_add(workspace=acme, user=member, role=Membership.MEMBER, actor=owner)
        self._budgets(acme, owner)
        member_budget_set(membership=Membership.objects.get(workspace=acme, user=member), monthly_budget=credits(4000),
                          actor=owner)
        self._adjust(acme, credits(500), "Onboarding credit from LenserFight sales", staff, created + timedelta(days=2))

        memberships = {
            acme.pk: [self._membership(acme, user) for user in (owner, admin, member)],
            personal.pk: [self._membership(personal, owner)],
        }
        start_day = (self.now - timedelta(days=self.days)).date()
        # Purchases a number of days ago (a shorter history leaves the older ones out).
        purchases = {(self.now - timedelta(days=ago)).date(): (workspace, pack, actor) for ago, workspace, pack, actor in
                     ((78, acme, "builder", admin), (32, acme, "team", owner), (50, personal, "starter", owner))}
        # Every run's moment first, so that Acme's current period knows how many runs are left to price.
        cutoff = self.now - timedelta(minutes=10)
        schedule = {(workspace.pk, day): self._moments(day, team=workspace is acme, before=cutoff)
                    for offset in range(self.days + 1) for day in [start_day + timedelta(days=offset)]
                    for workspace in (acme, personal)}
        self.acme_runs_left = sum(1 for (pk, _), moments in schedule.items() if pk == acme.pk
                                  for moment in moments if moment >= self.acme_current_start)
        for offset in range(self.days + 1):
            day = start_day + timedelta(days=offset)
            if day in purchases:
                workspace, pack, actor = purchases[day]
                self._purchase(workspace, pack, actor, self._at(day, 6))
            self._day(acme, memberships[acme.pk], ACME_AGENTS, schedule[acme.pk, day], team=True)
            self._day(personal, memberships[personal.pk], PERSONAL_AGENTS, schedule[personal.pk, day], team=False)
            if offset % 10 == 0 or offset == self.days:
                self.stdout.write(f"  {day:%Y-%m-%d}: {self.counts['runs']} runs so far")
        self._roll(acme, self.now)
        self._roll(personal, self.now)
        self._odd_runs(acme, memberships[acme.pk])
        # Each charge queued an alert check for after commit; run at the end of this one transaction
        # they would all re-check the same final state. One check does that work (and its e-mails
        # and webhooks still go out after commit).
        transaction.get_connection().run_on_commit.clear()
        alerts_check(workspace_id=acme.pk)
        self._token(acme, owner)

    def _workspace(self, *, slug, name, owner, plan, kind, at):
        workspace = workspace_create(slug=slug, name=name, owner=owner, plan_id=plan, kind=kind, now=at)
        if workspace.plan.price_cents:  # the first period's payment and its invoice
            plan_payment_record(workspace=workspace, plan=workspace.plan, amount_cents=workspace.plan.price_cents,
                                period_start=workspace.period_start, period_end=workspace.period_end,
                                stripe_invoice_id="", paid_at=at)
        return Workspace.objects.select_related("plan", "budget", "wallet").get(pk=workspace.pk)

    def _membership(self, workspace, user):
        membership = Membership.objects.select_related("user").get(workspace=workspace, user=user)
        membership.workspace = workspace  # one shared object: its period moves as history is replayed
        return membership

    def _budgets(self, acme, owner):
        budget_set(workspace=acme, monthly_limit=ACME_BUDGET, warning=True, critical=True, hard_limit=True,
                   webhook_url="", actor=owner)
        acme.budget.refresh_from_db()
        for name, (per_run, per_day, per_month) in ACME_AGENTS.items():
            agent, _ = Agent.objects.get_or_create(workspace=acme, name=name)
            limits = dict(max_per_run=credits(per_run), max_per_day=credits(per_day), max_per_month=credits(per_month))
            agent_budget_set(agent=agent, actor=owner, **limits)

    # --- periods, purchases, adjustments -----------------------------------------------------------

    def _roll(self, workspace, moment):
        """Move the workspace's period on until it contains `moment`: what the period-grant job did
        then (the monthly remainder expires and the new period's credits are granted, once)."""
        while workspace.period_end <= moment:
            old_start = workspace.period_start
            start, end = monthly_period_containing(workspace.created_at, workspace.period_end)
            if workspace.plan.price_cents:
                # A paid plan: the period's payment grants its credits and issues its invoice.
                plan_payment_record(workspace=workspace, plan=workspace.plan, amount_cents=workspace.plan.price_cents,
                                    period_start=start, period_end=end, stripe_invoice_id="", paid_at=start)
            else:
                with transaction.atomic():
                    Workspace.objects.filter(pk=workspace.pk).update(period_start=start, period_end=end)
                    access_versions_bump(workspace_ids=[workspace.pk])
                    monthly_rollover(workspace=workspace, old_period_start=old_start, new_period_start=start,
                                     new_credits=workspace.monthly_credits, at=start)
            workspace.period_start, workspace.period_end = start, end

    def _purchase(self, workspace, pack_id, actor, at):
        self._roll(workspace, at)
        purchase_record_manual(workspace=workspace, pack_id=pack_id, reference=f"DEMO-{workspace.slug}-{pack_id}",
                               actor=actor, now=at)
        self.counts["purchases"] += 1

    def _adjust(self, workspace, amount, reason, actor, at):
        self._roll(workspace, at)
        credits_adjust(workspace=workspace, amount=amount, reason=reason, actor=actor, key=f"demo:{workspace.slug}:onboarding",
                       at=at)

    # --- runs --------------------------------------------------------------------------------------

    def _at(self, day, hour, minute=0, second=0) -> datetime:
        return timezone.make_aware(datetime.combine(day, datetime.min.time())) + timedelta(
            hours=hour, minutes=minute, seconds=second)

    def _moments(self, day, *, team: bool, before: datetime) -> list[datetime]:
        """The moments of one day's runs (fewer at weekends), in time order, all before `before`."""
        weekend = day.weekday() >= 5
        if team:
            runs = self.random.randint(3, 5) if weekend else self.random.randint(10, 14)
        else:
            runs = self.random.randint(0, 1) if weekend else self.random.randint(1, 2)
        moments = sorted(self._at(day, self.random.randint(7, 21), self.random.randint(0, 59), self.random.randint(0, 59))
                         for _ in range(runs))
        return [moment for moment in moments if moment < before]

    def _day(self, workspace, memberships, agents, moments, *, team: bool):
        for moment, next_moment in zip(moments, moments[1:] + [None]):
            self._roll(workspace, moment)
            agent = self.random.choice(list(agents))
            target = self._target(workspace, moment, weekend=moment.weekday() >= 5, team=team)
            # Runs are replayed one after the other, so each finishes before the next starts and
            # before its period ends: the ledger's order is then also its time order.
            limit = min(m for m in (next_moment, workspace.period_end) if m is not None and m > moment)
            self._run(workspace, self.random.choice(memberships), agent, moment, target, team=team,
                      finish_before=limit)

    def _target(self, workspace, moment, *, weekend: bool, team: bool) -> float:
        """About what a run should cost, in credits. In Acme's current period: what is left to charge
        to reach USED_TARGET of the budget, shared among the runs left, so the period ends near it
        whatever the day of the month (the two running runs' holds are counted in)."""
        if not team:
            return 1.2 * (0.6 if weekend else 1.1) / 1.5
        if moment < self.acme_current_start:
            return 140 * (0.6 if weekend else 1.1) / 11
        goal = ACME_BUDGET * USED_TARGET // 100 - RUNNING_HOLDS
        left = max(goal - period_spend(workspace=workspace).charged, 0) / 1e9
        runs_left = max(self.acme_runs_left, 1)
        self.acme_runs_left -= 1
        # _run multiplies by ~U(0.3, 1.7) and by the agent's factor (1.15, Support Triage 0.3), and a few
        # runs stop early: divide by that mean so the target holds on average.
        return left / runs_left / MEAN_COST_FACTOR

    def _run(self, workspace, membership, agent, moment, target_credits, *, team: bool, status=None,
             finish_before=None):
        models = AGENT_MODELS.get(agent) or PERSONAL_AGENTS[agent]
        model = self.random.choices([m for m, _ in models], weights=[w for _, w in models])[0]
        workflow = self.random.choice(ACME_WORKFLOWS.get(agent, ["Personal notes"]))
        try:
            tags = {"customer": ACME_CUSTOMERS[self.counts["runs"] % len(ACME_CUSTOMERS)]} if team else None
            auth = run_authorize(membership=membership, workflow=workflow, agent=agent, model=model,
                                 estimated_input_tokens=self.random.randint(2, 40) * 1000, now=moment,
                                 tags=tags, body_hash=f"seed-{self.counts['runs']}")
        except RunRefused:
            self.counts["refused"] += 1
            return None
        self.counts["runs"] += 1
        run = auth.run
        if status is None:
            status = self.random.choices(["succeeded", "failed", "cancelled"], weights=[93, 5, 2])[0]
        cost = target_credits * self.random.uniform(0.3, 1.7) * (0.3 if agent == "Support Triage" else 1.15)
        if team and self.random.random() < 0.006:
            cost = 60  # now and then a run overruns its 50-credit reservation (flagged over_reservation)
        if status != "succeeded":
            cost *= self.random.uniform(0.05, 0.5)  # stopped early, the tokens spent are still charged
        nodes = self._nodes(model, cost, agent)
        finished = moment + timedelta(seconds=self.random.randint(5, 600))
        if finish_before is not None:
            finished = max(min(finished, finish_before - timedelta(seconds=1)), moment)
        run_complete(workspace=workspace, public_id=run.public_id, status=status, nodes=nodes,
                     body_hash=f"seed-complete-{run.pk}", now=min(finished, self.now - timedelta(seconds=1)))
        return run

    def _nodes(self, model, cost, agent) -> list[NodeInput]:
        """Nodes whose tokens cost about `cost` credits at today's seeded rates."""
        rates = self._rates()
        count = self.random.choice([1, 1, 2, 3])
        nodes = []
        for index in range(count):
            node_model = model if index == 0 or self.random.random() < 0.6 else "gpt-4o-mini"
            share = cost / count
            rate = rates[node_model]
            if rate.input_nanos_per_token == 0:
                input_tokens, output_tokens = self.random.randint(500, 20000), self.random.randint(200, 4000)
            else:
                input_tokens = int(share * 0.55 * 1e9 / rate.input_nanos_per_token)
                output_tokens = int(share * 0.45 * 1e9 / rate.output_nanos_per_token)
            tools = ()
            tool = TOOLS.get(agent)
            if tool and self.random.random() < 0.4:
                tools = ((tool, self.random.randint(1, 6)),)
            input_tokens = max(input_tokens, 1)
            # The first node re-sends the agent's system prompt and tools: 60% of its input comes from
            # the provider's prompt cache (issue 28), so the Usage and run pages show what caching saves.
            cached = input_tokens * 6 // 10 if index == 0 else 0
            nodes.append(NodeInput(name=["plan", "act", "summarize"][index], model=node_model,
                                   input_tokens=input_tokens, output_tokens=max(output_tokens, 1), tools=tools,
                                   cached_input_tokens=cached))
        return nodes

    def _rates(self):
        if not hasattr(self, "_rate_cache"):
            self._rate_cache = model_rates_at(at=self.now)
        return self._rate_cache

    def _odd_runs(self, acme, memberships):
        """Two runs that timed out (released by the sweeper, never charged) and two still running."""
        ttl = timedelta(hours=1)
        for days_ago in (9, 3):
            moment = self.now - timedelta(days=days_ago, hours=5)
            try:
                auth = run_authorize(membership=memberships[2], workflow="Churn analysis", agent="Data Analyst",
                                     model="gpt-4o", now=moment, body_hash="seed-expired")
            except RunRefused:
                continue
            run_expire(run=auth.run, now=moment + ttl + timedelta(minutes=1))
            self.counts["runs"] += 1
        for minutes_ago, agent, model in ((4, "Research Assistant", "claude-sonnet-4"), (1, "Code Reviewer", "gpt-4o")):
            try:
                run_authorize(membership=memberships[0], workflow=ACME_WORKFLOWS[agent][0], agent=agent, model=model,
                              now=self.now - timedelta(minutes=minutes_ago), body_hash="seed-running")
                self.counts["runs"] += 1
            except RunRefused:
                pass
        still_open = Run.objects.filter(workspace=acme, released_at__isnull=True).count()
        self.stdout.write(f"  {still_open} runs still running in acme")

    def _token(self, acme, owner):
        membership = Membership.objects.get(workspace=acme, user=owner)
        raw = token_create(membership=membership, name="Demo token").raw
        wallet = Workspace.objects.select_related("wallet").get(pk=acme.pk).wallet
        self.stdout.write(f"Acme Team: balance {nanos_display(wallet.balance)} credits "
                          f"(monthly {nanos_display(wallet.monthly)}, purchased {nanos_display(wallet.purchased)}).")
        self.stdout.write("Logins (password demo12345): owner@demo.test, admin@demo.test, member@demo.test, "
                          "staff@demo.test (admin site)")
        if self.token_file:
            # make run prints it once, in its closing banner; nobody else reads the file.
            path = Path(self.token_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(raw + "\n")
            path.chmod(0o600)
            self.stdout.write(f"Developer token for owner@demo.test in acme: written to {path}")
        else:
            self.stdout.write("Developer token for owner@demo.test in acme (shown once):")
            self.stdout.write(raw)
