import pytest
from django.urls import reverse

from billing.models import Purchase
from tests.factories import PASSWORD
from usage.services import NodeInput, run_authorize, run_complete


@pytest.fixture
def community(settings):
    settings.BILLING_EDITION = "community"


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["billing:buy", "billing:plans"])
def test_it_explains_billing_is_cloud_only(client, team, community, page):
    assert client.login(email=team.owner.email, password=PASSWORD)
    response = client.get(reverse(page, kwargs={"slug": "acme"}))
    assert response.status_code == 200
    assert b"Billing is a Cloud-only feature" in response.content
    assert b"Buy Builder" not in response.content


@pytest.mark.django_db
def test_it_refuses_purchases_and_plan_changes(client, team, community):
    assert client.login(email=team.owner.email, password=PASSWORD)
    assert client.post(reverse("billing:buy", kwargs={"slug": "acme"}), {"pack": "builder"}).status_code == 403
    assert client.post(reverse("billing:plans", kwargs={"slug": "acme"}), {"plan": "pro", "action": "downgrade"}).status_code == 403
    assert Purchase.objects.count() == 0
    team.workspace.refresh_from_db()
    assert team.workspace.scheduled_plan_id is None


@pytest.mark.django_db
def test_runs_cost_zero_credits(team, community):
    auth = run_authorize(membership=team.membership(team.owner), workflow="wf", agent="bot", model="claude-opus-4")
    run = run_complete(workspace=team.workspace, public_id=auth.run.public_id, status="succeeded",
                       nodes=[NodeInput("n", "claude-opus-4", 1_000_000, 1_000_000, (("web_search", 3),))])
    assert run.credits == 0
    team.workspace.wallet.refresh_from_db()
    assert team.workspace.wallet.reserved == 0


@pytest.mark.django_db
def test_it_applies_no_plan_rate_limit_in_community_edition(team, community):
    from usage.tokens import token_create

    team.workspace.plan_id = "free"  # 10 requests per minute on Cloud
    team.workspace.save(update_fields=["plan"])
    token = token_create(membership=team.membership(team.owner), name="engine").raw
    from django.test import Client

    client = Client()
    statuses = {client.get("/v1/billing/balance", HTTP_AUTHORIZATION=f"Bearer {token}").status_code for _ in range(12)}
    assert statuses == {200}
