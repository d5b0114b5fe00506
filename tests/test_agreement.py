"""One truth on every screen (issue 10 section 5): a workspace with runs on both sides of a period
boundary, a run that straddles it, running runs, a purchase, a budget and a mid-period plan upgrade.
Every "this period" figure of the pages and the API is the same to the nanocredit, before and after
the upgrade; every invoice line equals its ledger entries; and the upgrade's invoice and ledger
grant are what the Plans page quoted (buying/prorations.py, the one rule)."""

import re
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from html import unescape

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from billing.grants import workspace_period_roll
from billing.models import LedgerEntry, Plan, Wallet, Workspace, credits
from billing.money import nanos_display, nanos_to_str, price_display
from budgets.selectors import period_spend, period_used
from budgets.services import budget_set
from buying.prorations import plan_change_quote
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


def _assert_every_figure_agrees(client, workspace: Workspace, api: Api, expect_banner: bool = True):
    """Reads every "this period" figure of the API, the CSV and the pages, and the balance, and
    asserts they are one figure each. Returns the period spend they all equal. The alert banner,
    when there is one (always, with `expect_banner`), says the same. Also the simulator's reader
    (tests/simulation)."""
    workspace = Workspace.objects.get(pk=workspace.pk)
    spend = period_spend(workspace=workspace)
    charged = Run.objects.filter(workspace=workspace, period_start=workspace.period_start,
                                 completed_at__isnull=False).aggregate(s=Sum("credits"))["s"] or 0
    assert spend.charged == charged

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

    # The balance: the API, the wallet and the ledger's last running balance are one figure.
    wallet = Wallet.objects.get(workspace=workspace)
    last = LedgerEntry.objects.filter(workspace=workspace).order_by("-id").first()
    assert balance["balance"] == nanos_to_str(wallet.balance) == nanos_to_str(last.balance_after)
    assert balance["available"] == nanos_to_str(wallet.available)

    # The pages: Usage, Alerts (and its banner), Overview.
    base = f"/w/{workspace.slug}/settings/billing"
    usage_page = client.get(f"{base}/usage/").content.decode()
    assert _figure(usage_page, "period-used") == nanos_display(spend.charged)
    assert _figure(usage_page, "period-held") == nanos_display(spend.held)
    alerts_page = client.get(f"{base}/alerts/").content.decode()
    breakdown = (f"{nanos_display(spend.charged)} charged + {nanos_display(spend.held)} held = "
                 f"{nanos_display(spend.used)}")
    assert breakdown in alerts_page or (not expect_banner and "no monthly budget set" in alerts_page
                                        and breakdown.split(" = ")[0] in alerts_page)
    if expect_banner or 'role="alert"' in alerts_page:
        assert breakdown in alerts_page.split('role="alert"')[1]  # the banner says the same
    overview = client.get(f"{base}/").content.decode()
    assert nanos_display(wallet.available) in overview
    return spend


def _assert_every_invoice_line_equals_its_ledger_entries(workspace: Workspace):
    """A pack's invoice delivers its purchase's ledger entries; this period's upgrade invoices deliver
    this period's upgrade grants (ledger key upgrade:<workspace>:<period start>:...)."""
    workspace = Workspace.objects.get(pk=workspace.pk)
    invoices = Invoice.objects.filter(workspace=workspace, kind=Invoice.INVOICE)
    for invoice in invoices.filter(purchase__isnull=False):
        delivered = invoice.lines.aggregate(s=Sum("credits"))["s"]
        assert delivered == LedgerEntry.objects.filter(purchase_id=invoice.purchase_id).aggregate(s=Sum("amount"))["s"]
    upgrades = invoices.filter(purchase__isnull=True, period_end=workspace.period_end)
    granted = LedgerEntry.objects.filter(
        workspace=workspace, kind=LedgerEntry.GRANT,
        idempotency_key__startswith=f"upgrade:{workspace.pk}:{workspace.period_start.isoformat()}:")
    assert (sum(line.credits for invoice in upgrades for line in invoice.lines.all())
            == (granted.aggregate(s=Sum("amount"))["s"] or 0))


@pytest.mark.django_db
def test_every_screen_shows_the_same_period_figures_before_and_after_an_upgrade(client):
    now = timezone.now().replace(microsecond=0)
    team = make_workspace(plan="pro", now=now - timedelta(days=40))  # the first period ended ~10 days ago
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

    api = Api(token_create(membership=team.membership(team.owner), name="agree").raw)
    assert client.login(email=team.owner.email, password=PASSWORD)
    before = _assert_every_figure_agrees(client, workspace, api)
    assert before.held == credits(10)
    _assert_every_invoice_line_equals_its_ledger_entries(workspace)
    invoice = Invoice.objects.get(purchase=purchase)
    assert sum(line.credits for line in invoice.lines.all()) == purchase.credits + purchase.bonus

    # Mid-period upgrade Pro -> Team, as a person does it: the Plans page's quote, its button, the
    # test checkout (the same services the pages call).
    workspace = Workspace.objects.get(pk=workspace.pk)
    period = (workspace.period_start, workspace.period_end)
    monthly_before = Wallet.objects.get(workspace=workspace).monthly
    quote = plan_change_quote(workspace=workspace, plan=Plan.objects.get(pk="team"), at=timezone.now())
    days, period_days = quote.days_left, quote.days_in_period
    assert 0 < days < period_days
    # The rule written out (docs/plans.md), so a wrong quote cannot agree with itself.
    def prorated(price_cents):
        return int((Decimal(price_cents) * days / period_days).to_integral_value(rounding=ROUND_HALF_UP))

    assert (quote.charge_cents, quote.credit_cents) == (prorated(9900), prorated(2900))
    assert quote.credits_now == credits(5000) * days // period_days - credits(1000) * days // period_days
    plans_url = reverse("billing:plans", kwargs={"slug": workspace.slug})
    plans_page = unescape(client.get(plans_url).content.decode())
    assert _figure(plans_page, "quote-team") == quote.sentence()
    response = client.post(plans_url, {"plan": "team", "action": "upgrade", "expected_cents": str(quote.amount_cents)})
    checkout = unescape(client.get(response.url).content.decode())
    assert _figure(checkout, "quote") == quote.sentence()
    assert client.post(response.url, {"expected_cents": str(quote.amount_cents)}).status_code == 302

    workspace = Workspace.objects.get(pk=workspace.pk)
    assert workspace.plan_id == "team" and (workspace.period_start, workspace.period_end) == period
    grant = LedgerEntry.objects.get(workspace=workspace, kind=LedgerEntry.GRANT, idempotency_key__startswith="upgrade:")
    upgrade = Invoice.objects.get(workspace=workspace, purchase__isnull=True)
    lines = list(upgrade.lines.order_by("position"))
    # To the nanocredit and the cent: the invoice = the ledger = what the Plans page promised.
    assert [line.credits for line in lines] == [grant.amount, 0]
    assert grant.amount == quote.credits_now
    assert [line.amount_cents for line in lines] == [quote.charge_cents, -quote.credit_cents]
    assert upgrade.total_cents == quote.amount_cents
    assert (upgrade.period_start, upgrade.period_end) == (quote.service_start, quote.period_end)
    assert f"{nanos_display(grant.amount)} credits now" in lines[0].description
    promised = _figure(plans_page, "quote-team")
    assert promised.startswith(f"Pay {price_display(upgrade.total_cents)} today for the {days} days left, "
                               f"get {nanos_display(grant.amount)} credits now;")

    # Afterwards every figure still agrees, and the period's usage did not move with the plan.
    after = _assert_every_figure_agrees(client, workspace, api)
    assert (after.charged, after.held) == (before.charged, before.held)
    _assert_every_invoice_line_equals_its_ledger_entries(workspace)
    assert Wallet.objects.get(workspace=workspace).monthly == monthly_before + grant.amount
