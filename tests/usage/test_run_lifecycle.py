import pytest

from billing.models import LedgerEntry, credits
from usage.models import DailyUsage, Run
from usage.services import NodeInput, run_authorize, run_complete, run_expire


@pytest.mark.django_db
def test_it_reserves_then_charges_monthly_first(team):
    membership = team.membership(team.member)
    auth = run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", body_hash="a")
    wallet = team.workspace.wallet
    wallet.refresh_from_db()
    assert auth.run.reserved == credits(10)
    assert wallet.reserved == credits(10) and wallet.running_runs == 1
    run = run_complete(workspace=team.workspace, public_id=auth.run.public_id, status="succeeded", body_hash="b",
                       nodes=[NodeInput("n1", "gpt-4o", 1_000_000, 100_000, (("web_search", 2),))])
    # 1M input * 5 + 0.1M output * 15 = 6.5 credits, plus 2 searches at 0.01
    assert run.credits == credits("6.52")
    wallet.refresh_from_db()
    assert wallet.reserved == 0 and wallet.running_runs == 0
    assert wallet.monthly == credits(5000) - credits("6.52")
    assert LedgerEntry.objects.filter(run=run).count() == 1
    assert DailyUsage.objects.get(workspace=team.workspace).credits == credits("6.52")


@pytest.mark.django_db
def test_a_replayed_complete_charges_once(team):
    membership = team.membership(team.owner)
    auth = run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o-mini", public_id="r1", body_hash="a")
    nodes = [NodeInput("n1", "gpt-4o-mini", 1000, 1000)]
    first = run_complete(workspace=team.workspace, public_id="r1", status="succeeded", nodes=nodes, body_hash="b")
    second = run_complete(workspace=team.workspace, public_id="r1", status="succeeded", nodes=nodes, body_hash="b")
    assert first.credits == second.credits == 1000 * 300 + 1000 * 1200
    assert LedgerEntry.objects.filter(kind="charge").count() == 1
    assert auth.run.pk == first.pk


@pytest.mark.django_db
def test_an_expired_run_is_released_and_a_late_complete_still_charges_once(team):
    membership = team.membership(team.owner)
    auth = run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="r2", body_hash="a")
    assert run_expire(run=auth.run)
    wallet = team.workspace.wallet
    wallet.refresh_from_db()
    assert wallet.reserved == 0 and wallet.running_runs == 0
    run = run_complete(workspace=team.workspace, public_id="r2", status="succeeded",
                       nodes=[NodeInput("n", "gpt-4o", 10, 10)], body_hash="b")
    wallet.refresh_from_db()
    assert run.credits == 200_000 and wallet.reserved == 0 and wallet.running_runs == 0
    assert Run.objects.get(pk=run.pk).status == "succeeded"
