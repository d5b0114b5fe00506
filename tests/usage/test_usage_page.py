"""The Usage page and the per-run page, per persona; the page agrees with /v1/usage and the CSV."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.money import nanos_display, nanos_to_decimal
from usage.export import export_rows
from usage.filters import RunFilter
from usage.selectors import default_range, usage_summary
from usage.services import NodeInput
from usage.tokens import token_create

from tests.factories import PASSWORD

from .conftest import TWO_NODES, Api, authorize
from .test_export import make_run, parse

URL = "/w/acme/settings/billing/usage/"


def login(client, user, password=PASSWORD):
    assert client.login(email=user.email, password=password)


@pytest.fixture
def runs(team):
    now = timezone.now().replace(microsecond=0)
    start = team.workspace.period_start
    make_run(team, "early", when=max(start, now - timedelta(days=1)), nodes=[NodeInput("n", "claude-opus-4", 10_000, 2_000)])
    make_run(team, "late", when=now - timedelta(minutes=5), agent="writer",
             nodes=[NodeInput("a", "gpt-4o", 5000, 500, (("web_search", 3),)), NodeInput("b", "gpt-4o-mini", 10, 10)])
    return now


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["owner", "admin", "member"])
def test_it_shows_usage_to_every_member(persona, client, team, runs):
    login(client, getattr(team, persona))
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    for label in ("Available", "Charged this period", "Daily average", "Projected", "Spend by model", "Spend by agent",
                  "<svg", "Export CSV", "Savings"):
        assert label in html
    assert "/w/acme/runs/late/" in html and "writer" in html


@pytest.mark.django_db
def test_it_hides_usage_from_outsiders(client, team, outsider):
    login(client, outsider, "pw-outsider-1")
    assert client.get(URL).status_code == 404
    assert client.get("/w/acme/runs/late/").status_code == 404
    assert client.get("/w/acme/settings/tokens/").status_code == 404


@pytest.mark.django_db
def test_it_sends_anonymous_visitors_to_login(client, team):
    for url in (URL, "/w/acme/runs/x/", "/w/acme/settings/tokens/", URL + "export.csv"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_its_figures_equal_the_api_and_the_csv(client, team, runs):
    login(client, team.member)
    html = client.get(URL).content.decode()
    api = Api(token_create(membership=team.membership(team.owner)).raw).get("/v1/usage").json()
    start, end = default_range(team.workspace)
    summary = usage_summary(workspace=team.workspace, start=start, end=end)

    def shown(testid):
        return re.search(rf'data-testid="{testid}">([^<]+)<', html).group(1)

    assert shown("available") == nanos_display(summary.available) and api["available"] == str(nanos_to_decimal(summary.available).normalize())
    assert shown("period-used") == nanos_display(summary.period_used)
    assert shown("daily-average") == nanos_display(summary.daily_average)
    assert shown("projected") == nanos_display(summary.projected)
    assert Decimal(api["this_period"]) == nanos_to_decimal(summary.period_used)
    assert Decimal(api["daily_average"]) == nanos_to_decimal(summary.daily_average)
    assert Decimal(api["projected"]) == nanos_to_decimal(summary.projected)
    rows = parse(export_rows(workspace=team.workspace, filters=RunFilter(start=start, end=end)))
    csv_total = sum(Decimal(row[6]) for row in rows[1:])
    assert csv_total == Decimal(api["this_period"]) == Decimal(api["range_total"]) > 0
    assert sum(Decimal(day["credits"]) for day in api["daily"]) == csv_total


@pytest.mark.django_db
def test_it_filters_and_paginates_runs(client, team, runs):
    for index in range(30):
        make_run(team, f"bulk-{index:02d}", when=runs - timedelta(seconds=index))
    login(client, team.member)
    first = client.get(URL).content.decode()
    assert 'data-testid="next-page"' in first and "bulk-00" in first
    cursor = re.search(r'cursor=([^"&]+)"', first).group(1)
    second = client.get(URL + "?cursor=" + cursor).content.decode()
    assert "bulk-29" in second and "bulk-00" not in second
    filtered = client.get(URL, {"agent": "writer"}).content.decode()
    assert "/runs/late/" in filtered and "/runs/bulk-01/" not in filtered
    assert "agent=writer" in re.search(r'href="([^"]*export\.csv[^"]*)"', filtered).group(1)
    assert client.get(URL, {"from": "nonsense", "cursor": "###"}).status_code == 200


@pytest.mark.django_db
def test_it_shows_empty_states(client, team):
    login(client, team.member)
    html = client.get(URL).content.decode()
    assert "No runs match these filters" in html and "No spend in these days" in html


@pytest.mark.django_db
def test_the_run_page_prices_node_by_node(client, team, runs):
    login(client, team.member)
    response = client.get("/w/acme/runs/late/")
    assert response.status_code == 200
    html = response.content.decode()
    # a: 5000*5/M + 500*15/M = 0.0325 + 3 searches 0.03; b: 10*0.3/M + 10*1.2/M = 0.000015
    assert "web_search × 3" in html and "0.062515" in html
    assert "Rates used" in html and "The same tokens on other models" in html
    for name in ("Claude Opus 4", "Gemini 2.0 Flash", "GPT-4o-mini"):
        assert name in html
    assert client.get("/w/acme/runs/nope/").status_code == 404


@pytest.mark.django_db
def test_the_api_run_the_page_and_the_csv_agree(client, team):
    api = Api(token_create(membership=team.membership(team.member)).raw)
    authorize(api)
    body = api.post("/v1/runs/r-1/complete", TWO_NODES).json()
    login(client, team.member)
    html = client.get("/w/acme/runs/r-1/").content.decode()
    assert f"Exactly {body['credits']} credits" in html
    rows = parse(export_rows(workspace=team.workspace, filters=RunFilter()))
    assert sum(Decimal(r[6]) for r in rows[1:]) == Decimal(body["credits"])


@pytest.mark.django_db
def test_the_run_and_agent_pages_light_their_menu_item_and_agent_budgets_is_in_the_menu(client, team):
    """Issue 30: Agent budgets had no place in the sidebar; the agent and run pages lit no item; run
    pages were titled "Run run_...". """
    import re

    from budgets.models import Agent
    from usage.services import run_authorize

    run_authorize(membership=team.membership(team.member), workflow="Ticket routing", agent="bot", model="gpt-4o",
                  public_id="run_abc123")
    client.login(email=team.member.email, password=PASSWORD)
    agent = Agent.objects.get(workspace=team.workspace, name="bot")

    def active(path):
        html = client.get(path).content.decode()
        return re.findall(r'class="active" aria-current="page">([^<]+)<', html), html

    assert active("/w/acme/runs/run_abc123/")[0] == ["Usage"]
    items, html = active(f"/w/acme/agents/{agent.pk}/settings/budget/")
    assert items == ["Agent budgets"] and ">Agent budgets</a>" in html
    title = re.search(r"<title>([^<]+)</title>", client.get("/w/acme/runs/run_abc123/").content.decode()).group(1)
    assert title.startswith("Ticket routing, ") and "Run run_" not in title
