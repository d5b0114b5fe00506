"""One truth on every screen (issue 10 section 5): a workspace with runs on both sides of a period
boundary, a run that straddles it, running runs, a purchase and a budget. Every "this period"
figure of the pages and the API is the same to the nanocredit, and every invoice line equals its
ledger entries.

Not covered here yet: a plan upgrade (its invoice must equal the ledger and what the Plans page
promised; that rule is being rebuilt in the plan-change work)."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from billing.grants import workspace_period_roll
from billing.models import LedgerEntry, Workspace, credits
from billing.money import nanos_display, nanos_to_str
from budgets.selectors import period_spend, period_used
from budgets.services import budget_set
from buying.purchases import purchase_record_manual
from invoices.models import Invoice
from tests.factories import PASSWORD, make_workspace
from tests.usage.conftest import Api
from tests.usage.test_export import parse
from usage.models import Run
from usage.services import NodeInput, run_authorize, run_complete
from usage.tokens import token_create


def _run(team, public_id, *, when, agent, nodes=None, user=None):
    membership = team.membership(user or team.member)
    run_authorize(membership=membership, workflow="wf", agent=agent, model="gpt-4o", public_id=public_id, now=when)
    if nodes is not None:
        run_complete(workspace=team.workspace, public_id=public_id, status="succeeded", now=when + timedelta(minutes=1),
                     nodes=nodes)


def _figure(html: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}"[^>]*>([^<]+)<', html)
    assert match, testid
    return match.group(1).strip()


@pytest.mark.django_db
def test_every_screen_shows_the_same_period_figures(client):
    now = timezone.now().replace(microsecond=0)
    team = make_workspace(now=now - timedelta(days=40))  # the first period ended ~10 days ago
    workspace = team.workspace
    first_end = workspace.period_end
    # Before the boundary: a finished run and one that is still running when the period rolls.
    _run(team, "old-done", when=first_end - timedelta(hours=3), agent="analyst",
         nodes=[NodeInput("n", "gpt-4o", 200_000, 10_000)])
    _run(team, "straddling", when=first_end - timedelta(minutes=30), agent="analyst")
    assert workspace_period_roll(workspace_id=workspace.pk, now=now - timedelta(days=1))
    workspace = Workspace.objects.get(pk=workspace.pk)
    # The straddling run finishes in the new period: it was authorized (and counts) in the old one.
    run_complete(workspace=workspace, public_id="straddling", status="succeeded", now=workspace.period_start + timedelta(minutes=5),
                 nodes=[NodeInput("n", "gpt-4o", 300_000, 0)])
    at = max(workspace.period_start + timedelta(minutes=10), now - timedelta(hours=2))
    _run(team, "new-1", when=at, agent="analyst", nodes=[NodeInput("n", "gpt-4o", 100_000, 20_000)])
    _run(team, "new-2", when=at + timedelta(minutes=1), agent="support",
         nodes=[NodeInput("a", "gpt-4o-mini", 500_000, 50_000), NodeInput("b", "claude-sonnet-4", 1_000, 9_000)],
         user=team.admin)
    _run(team, "new-open", when=at + timedelta(minutes=2), agent="support")  # holds 10 credits
    purchase = purchase_record_manual(workspace=workspace, pack_id="builder", reference="wire-1")
    budget_set(workspace=workspace, monthly_limit=credits(12), warning=True, critical=True, hard_limit=True,
               webhook_url="", actor=team.owner)

    spend = period_spend(workspace=workspace)
    charged = Run.objects.filter(workspace=workspace, period_start=workspace.period_start,
                                 completed_at__isnull=False).aggregate(s=Sum("credits"))["s"]
    assert spend.charged == charged and spend.held == credits(10)

    api = Api(token_create(membership=team.membership(team.owner), name="agree").raw)
    balance = api.get("/v1/billing/balance").json()
    usage = api.get("/v1/usage").json()
    csv_rows = parse(api.get("/v1/usage/export.csv", {"period": "current"}).streaming_content)
    charged_str, held_str = nanos_to_str(spend.charged), nanos_to_str(spend.held)
    assert balance["used_this_period"] == usage["this_period"] == charged_str
    assert usage["held_this_period"] == held_str
    assert balance["budget"]["used"] == nanos_to_str(spend.used)
    assert sum(Decimal(row[6]) for row in csv_rows[1:]) == Decimal(charged_str)
    assert sum(Decimal(day["credits"]) for day in usage["daily"]) == Decimal(charged_str)
    assert Decimal(usage["range_total"]) == Decimal(charged_str)
    # Per agent, the Usage tables equal the agent budget counters (what the Agents page shows).
    agent_counters = period_used(workspace=workspace)
    for row in usage["by_agent"]:
        agent_id = Run.objects.filter(workspace=workspace, agent__name=row["agent"]).values_list("agent_id", flat=True)[0]
        held = Run.objects.filter(agent_id=agent_id, period_start=workspace.period_start,
                                  released_at__isnull=True).aggregate(s=Sum("reserved"))["s"] or 0
        assert Decimal(row["credits"]) == Decimal(nanos_to_str(agent_counters[("agent", agent_id)] - held))

    # The pages: Usage, Alerts (and its banner), Overview.
    assert client.login(email=team.owner.email, password=PASSWORD)
    usage_page = client.get(f"/w/{workspace.slug}/settings/billing/usage/").content.decode()
    assert _figure(usage_page, "period-used") == nanos_display(spend.charged)
    assert _figure(usage_page, "period-held") == nanos_display(spend.held)
    alerts_page = client.get(f"/w/{workspace.slug}/settings/billing/alerts/").content.decode()
    breakdown = (f"{nanos_display(spend.charged)} charged + {nanos_display(spend.held)} held = "
                 f"{nanos_display(spend.used)}")
    assert breakdown in alerts_page
    assert breakdown in alerts_page.split('role="alert"')[1]  # the banner says the same
    overview = client.get(f"/w/{workspace.slug}/settings/billing/").content.decode()
    assert nanos_display(Decimal(balance["available"]) * 10**9 // 1) in overview

    # Every invoice line equals its ledger entries.
    invoice = Invoice.objects.get(purchase=purchase)
    entries = LedgerEntry.objects.filter(purchase=purchase).aggregate(s=Sum("amount"))["s"]
    assert sum(line.credits for line in invoice.lines.all()) == entries == purchase.credits + purchase.bonus
