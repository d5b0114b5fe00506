"""Filters that filter (issue 10 section 2): the Usage page's chart and tables and /v1/usage follow
the agent, model and status filters and equal the CSV exported with the same filters; the period
figures are the ones every other screen shows (issue 10 section 1)."""

import re
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.utils import timezone

from billing.models import AIModel, credits
from billing.money import credits_to_nanos, nanos_display, nanos_to_str
from budgets.selectors import period_spend
from usage.selectors import Spend, savings_for
from usage.services import NodeInput, run_authorize
from usage.tokens import token_create

from .conftest import Api
from .test_export import make_run, parse

FILTERS = [{}, {"agent": "support"}, {"status": "succeeded"}, {"agent": "support", "status": "succeeded"},
           {"model": "gpt-4o-mini"}, {"agent": "writer", "model": "gpt-4o", "status": "failed"}]


@pytest.fixture
def mixed(team):
    now = timezone.now().replace(microsecond=0) - timedelta(minutes=10)
    when = max(team.workspace.period_start + timedelta(seconds=1), now)
    make_run(team, "s1", when=when, agent="support", nodes=[NodeInput("n", "gpt-4o", 10_000, 1_000)])
    make_run(team, "s2", when=when, agent="support", status="failed",
             nodes=[NodeInput("n", "gpt-4o-mini", 50_000, 9_000), NodeInput("m", "gpt-4o", 7, 3)])
    make_run(team, "w1", when=when, agent="writer", nodes=[NodeInput("n", "claude-sonnet-4", 3_000, 700)])
    make_run(team, "w2", when=when, agent="writer", status="failed", nodes=[NodeInput("n", "gpt-4o", 99, 1)])
    run_authorize(membership=team.membership(team.member), workflow="wf", agent="writer", model="gpt-4o",
                  public_id="open", now=when)
    return Api(token_create(membership=team.membership(team.owner), name="t").raw)


def _csv_total(rows) -> Decimal:
    return sum((Decimal(row[6]) for row in rows[1:]), Decimal(0))


@pytest.mark.django_db
@pytest.mark.parametrize("filters", FILTERS)
def test_it_equals_the_csv_exported_with_the_same_filters(client, team, mixed, filters):
    usage = mixed.get("/v1/usage", filters).json()
    rows = parse(mixed.get("/v1/usage/export.csv", filters).streaming_content)
    total = _csv_total(rows)
    assert Decimal(usage["range_total"]) == total
    assert sum(Decimal(day["credits"]) for day in usage["daily"]) == total
    assert sum(Decimal(row["credits"]) for row in usage["by_model"]) == total
    assert sum(Decimal(row["credits"]) for row in usage["by_agent"]) == total
    # This period's figure follows the same filters: the CSV of this period with them.
    period_rows = parse(mixed.get("/v1/usage/export.csv", {**filters, "period": "current"}).streaming_content)
    assert Decimal(usage["this_period"]) == _csv_total(period_rows)
    if filters.get("agent"):
        assert {row["agent"] for row in usage["by_agent"]} <= {filters["agent"]}
    _assert_the_page_shows_the_csv(client, mixed, filters)


def _exact(html: str, pattern: str) -> list[tuple[str, Decimal]]:
    """(key, exact credits) of each row matched by `pattern`: the last amount cell's tooltip."""
    return [(unescape(key), Decimal(exact)) for key, exact in re.findall(pattern, html, re.S)]


def _assert_the_page_shows_the_csv(client, api, filters):
    """Every figure the Usage page shows under the filters, read against the CSV exported with the
    same filters: a figure shown in two places is the same figure. Savings is read through its one
    selector (savings_for) from the CSV's per-model tokens."""
    assert client.login(email="owner@acme.test", password="correct-horse-9")
    page = client.get("/w/acme/settings/billing/usage/", filters).content.decode()
    rows = parse(api.get("/v1/usage/export.csv", {**filters, "period": "current", "columns": "detailed"})
                 .streaming_content)
    header, rows = rows[0], [dict(zip(rows[0], row)) for row in rows[1:]]
    total = sum((Decimal(row["credits"]) for row in rows), Decimal(0))
    assert Decimal(re.search(r'data-testid="range-total" title="([^ ]+) credits"', page).group(1)) == total
    assert re.search(r'data-testid="period-used">([^<]+)<', page).group(1) == nanos_display(credits_to_nanos(total))
    by_model, by_agent = defaultdict(Decimal), defaultdict(Decimal)
    tokens = defaultdict(lambda: [0, 0, 0, 0, 0])
    for row in rows:
        by_model[row["model"]] += Decimal(row["credits"])
        by_agent[row["agent"]] += Decimal(row["credits"])
        for i, name in enumerate(("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
                                  "reasoning_tokens")):
            tokens[row["model"]][i] += int(row[name])
    cell = r'.*?<span class="amount" title="([^ ]+) credits">[^<]*</span></td></tr>'
    assert dict(_exact(page, r'data-testid="by-model" data-key="([^"]+)"' + cell)) == dict(by_model)
    assert dict(_exact(page, r'data-testid="by-agent" data-key="([^"]+)"' + cell)) == dict(by_agent)
    # The last 90 days: the same filters over the days, whatever the period.
    today = timezone.now().date()
    days = parse(api.get("/v1/usage/export.csv", {**filters, "from": (today - timedelta(days=89)).isoformat(),
                                                   "to": today.isoformat()}).streaming_content)
    assert Decimal(re.search(r'data-testid="total-90" title="([^ ]+) credits"', page).group(1)) == _csv_total(days)
    # Savings: the CSV's tokens per model through the page's one selector.
    names = dict(AIModel.objects.values_list("id", "name"))
    spends = [Spend(model, names.get(model, model), 0, i, o, 0, ci, cw, rs) for model, (i, o, ci, cw, rs) in tokens.items()]
    savings = savings_for(by_model=spends)
    if rows:
        assert re.search(r'data-testid="savings-actual">([^<]+)<', page).group(1) == nanos_display(savings.actual)
        assert re.search(r'data-testid="savings-cheapest">([^<]+)<', page).group(1) == nanos_display(savings.cheapest)
        assert f"the {sum(t[0] for t in tokens.values()):,} input and {sum(t[1] for t in tokens.values()):,} output" in page
    else:
        assert 'data-testid="savings-actual"' not in page


@pytest.mark.django_db
def test_it_narrows_the_tables_to_the_chosen_agent_and_status(team, mixed):
    everything = mixed.get("/v1/usage").json()
    narrowed = mixed.get("/v1/usage", {"agent": "support", "status": "succeeded"}).json()
    assert Decimal(narrowed["range_total"]) < Decimal(everything["range_total"])
    assert [row["agent"] for row in narrowed["by_agent"]] == ["support"]
    assert [row["model"] for row in narrowed["by_model"]] == ["gpt-4o"]


@pytest.mark.django_db
def test_it_reports_charged_and_held_this_period_the_same_in_every_answer(team, mixed):
    spend = period_spend(workspace=team.workspace)
    assert spend.held == credits(10) and spend.charged > 0
    usage = mixed.get("/v1/usage").json()
    balance = mixed.get("/v1/billing/balance").json()
    assert usage["this_period"] == balance["used_this_period"] == nanos_to_str(spend.charged)
    assert usage["held_this_period"] == nanos_to_str(spend.held)
    assert balance["budget"]["used"] == nanos_to_str(spend.charged + spend.held)
    rows = parse(mixed.get("/v1/usage/export.csv").streaming_content)
    assert _csv_total(rows) == Decimal(nanos_to_str(spend.charged))
