"""Credits fields hold what a bigint holds: above it, a form error that says so (never a 500)."""

import pytest

from billing.models import Membership
from budgets.models import WorkspaceBudget
from tests.factories import PASSWORD

TOO_MUCH = "9223372036.854775808"  # one nanocredit above the column
MOST = "9223372036.854775807"


@pytest.fixture
def owner(client, team):
    client.login(email=team.owner.email, password=PASSWORD)
    return client


@pytest.mark.django_db
def test_an_alerts_budget_above_a_bigint_is_a_form_error(owner, team):
    response = owner.post("/w/acme/settings/billing/alerts/", {"monthly_limit": TOO_MUCH})
    assert response.status_code == 200
    assert f"Enter at most {MOST} credits" in response.content.decode()
    assert WorkspaceBudget.objects.get(workspace=team.workspace).monthly_limit is None


@pytest.mark.django_db
def test_the_largest_storable_budget_is_saved(owner, team):
    response = owner.post("/w/acme/settings/billing/alerts/", {"monthly_limit": MOST})
    assert response.status_code == 302
    assert WorkspaceBudget.objects.get(workspace=team.workspace).monthly_limit == 2**63 - 1
    assert owner.get("/w/acme/settings/billing/alerts/").status_code == 200


@pytest.mark.django_db
def test_a_member_budget_above_a_bigint_is_a_form_error(owner, team):
    target = team.membership(team.member)
    response = owner.post("/w/acme/settings/members/", {"action": "budget", "membership": target.pk,
                                                         "monthly_budget": TOO_MUCH})
    assert response.status_code == 200
    assert f"Enter at most {MOST} credits" in response.content.decode()
    assert Membership.objects.get(pk=target.pk).monthly_budget is None


@pytest.mark.django_db
def test_an_agent_budget_above_a_bigint_is_a_form_error(owner, team):
    from usage.models import Agent

    agent = Agent.objects.create(workspace=team.workspace, name="bot")
    response = owner.post(f"/w/acme/agents/{agent.pk}/settings/budget/", {
        "max_per_run": "10", "max_per_day": "100", "max_per_month": TOO_MUCH})
    assert response.status_code == 200
    assert f"Enter at most {MOST} credits" in response.content.decode()
