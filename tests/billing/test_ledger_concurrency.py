"""50 real threads race to reserve against a balance that affords exactly 10 reservations."""


import pytest

from tests.concurrency import run_at_once
from billing.ledger import credits_adjust
from billing.models import Membership, Wallet, credits
from operations.reconcile import reconcile_workspace
from billing.services import user_get_or_create
from budgets.workspaces import workspace_create
from usage.errors import RunError
from usage.models import Agent, Run
from usage.services import run_authorize


@pytest.mark.django_db(transaction=True)
def test_it_grants_exactly_ten_of_fifty_concurrent_reservations():
    owner = user_get_or_create(email="race@example.com", password="pw-race-123")
    # Enterprise: no monthly grant, 20 concurrent runs; 100 purchased credits = 10 runs of 10.
    workspace = workspace_create(slug="race", name="Race", owner=owner, plan_id="enterprise")
    credits_adjust(workspace=workspace, amount=credits(100), reason="ten runs' worth")
    Agent.objects.create(workspace=workspace, name="bot", max_per_run=credits(10), max_per_day=credits(10_000),
                         max_per_month=credits(10_000))
    def reserve(n):
        membership = Membership.objects.select_related("workspace__plan").get(workspace__slug="race", user=owner)
        try:
            run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id=f"r{n}")
            return "ok"
        except RunError as refusal:
            return refusal.code

    outcomes, errors = run_at_once(reserve, 50)
    assert errors == []

    assert len(outcomes) == 50
    assert outcomes.count("ok") == 10
    assert set(outcomes) - {"ok"} == {"insufficient_credits"}
    wallet = Wallet.objects.get(workspace=workspace)
    assert wallet.reserved == credits(100) and wallet.available == 0 and wallet.running_runs == 10
    assert Run.objects.filter(workspace=workspace).count() == 10
    assert reconcile_workspace(workspace=workspace) == []
