"""Where people see token classes (issue 28): the run page, the Usage page, /v1/usage and the
savings advisor."""

import pytest
from django.utils import timezone

from billing.models import credits
from usage.selectors import Spend, savings_for
from usage.services import NodeInput, run_authorize, run_complete

from tests.factories import PASSWORD

from .conftest import Api


def cached_run(team, public_id="cached", status="succeeded"):
    run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="claude-sonnet-4",
                  public_id=public_id, body_hash=public_id)
    # 1,000,000 input, 600,000 of them cached: 600,000 x (6 - 0.6) per 1M = 3.24 credits saved.
    return run_complete(workspace=team.workspace, public_id=public_id, status=status, body_hash="c", nodes=[
        NodeInput("agent", "claude-sonnet-4", 1_000_000, 10_000, cached_input_tokens=600_000, reasoning_tokens=4_000),
        NodeInput("plain", "gpt-4o", 1_000, 100)])


@pytest.mark.django_db
def test_the_run_page_shows_the_classes_and_what_caching_saved(client, team):
    cached_run(team)
    client.login(email=team.member.email, password=PASSWORD)
    page = client.get(f"/w/{team.workspace.slug}/runs/cached/").content.decode()
    assert "Prompt caching saved 3.24 credits on this run" in page
    assert "600,000 · 0 · 4,000" in page and "0 · 0 · 0" in page


@pytest.mark.django_db
def test_a_run_without_classes_shows_no_caching_line(client, team):
    run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o",
                  public_id="plain", body_hash="p")
    run_complete(workspace=team.workspace, public_id="plain", status="succeeded", body_hash="c",
                 nodes=[NodeInput("n", "gpt-4o", 10, 1)])
    client.login(email=team.member.email, password=PASSWORD)
    page = client.get(f"/w/{team.workspace.slug}/runs/plain/").content.decode()
    assert "Prompt caching" not in page and "Cached · write · reasoning" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("query, share, saved", [
    ({}, "59%", "3.24"),  # 600,000 of 1,001,000 input tokens
    ({"model": "claude-sonnet-4"}, "60%", "3.24"),
    ({"status": "succeeded"}, "59%", "3.24"),  # answered from the nodes, not the rollups
    ({"model": "gpt-4o"}, "0%", None),
])
def test_the_usage_page_shows_the_cached_share_and_savings_under_the_filters(client, team, query, share, saved):
    cached_run(team)
    client.login(email=team.member.email, password=PASSWORD)
    page = client.get(f"/w/{team.workspace.slug}/settings/billing/usage/", query).content.decode()
    assert f'<span data-testid="cached-share">{share}</span>' in page
    if saved:
        assert f'data-testid="caching-saved">{saved}</strong>' in page
    else:
        assert 'data-testid="caching-saved"' not in page


@pytest.mark.django_db
def test_the_usage_api_reports_prompt_caching(team):
    from usage.tokens import token_create

    cached_run(team)
    api = Api(token_create(membership=team.membership(team.owner)).raw)
    body = api.get("/v1/usage").json()
    assert body["prompt_caching"] == {"input_tokens": 1_001_000, "cached_input_tokens": 600_000,
                                      "cache_write_tokens": 0, "cached_percent": 59, "saved": "3.24"}
    sonnet = next(row for row in body["by_model"] if row["model"] == "claude-sonnet-4")
    assert (sonnet["cached_input_tokens"], sonnet["reasoning_tokens"]) == (600_000, 4_000)


@pytest.mark.django_db
def test_the_savings_advisor_prices_cached_tokens_at_the_cached_rates():
    spend = Spend("claude-sonnet-4", "Claude Sonnet 4", 0, 1_000_000, 0, 1, cached_input_tokens=1_000_000)
    savings = savings_for(by_model=[spend], at=timezone.now())
    assert savings.actual == credits("0.6")  # all cached: 0.6 per 1M, not the input rate of 6
    # The cheapest paid model keeps the tokens cached: gemini-2.0-flash at 0.038 per 1M.
    assert (savings.cheapest_model, savings.cheapest) == ("gemini-2.0-flash", credits("0.038"))


@pytest.mark.django_db
def test_the_usage_page_offers_the_detailed_export_with_its_filters(client, team):
    client.login(email=team.member.email, password=PASSWORD)
    page = client.get(f"/w/{team.workspace.slug}/settings/billing/usage/", {"model": "gpt-4o"}).content.decode()
    assert "model=gpt-4o&amp;columns=detailed" in page and 'data-testid="export-detailed"' in page
