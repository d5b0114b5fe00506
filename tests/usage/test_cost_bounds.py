"""A completion whose cost is absurd is refused with 400 and charges nothing; the run stays open."""

import pytest

from billing.models import LedgerEntry, Wallet
from usage.models import Run

from .conftest import TWO_NODES, authorize

HUGE = 10**12


def _complete(api, nodes, run_id="r-1"):
    return api.post(f"/v1/runs/{run_id}/complete", {"status": "succeeded", "nodes": nodes})


def _state(workspace):
    wallet = Wallet.objects.get(workspace=workspace)
    return wallet.balance, wallet.reserved, wallet.running_runs, LedgerEntry.objects.filter(workspace=workspace).count()


@pytest.mark.django_db
@pytest.mark.parametrize("nodes", [
    pytest.param([{"name": "n", "model": "gpt-4o", "input_tokens": 0, "output_tokens": 0,
                   "tools": [{"name": "code_interpreter", "calls": HUGE}]}], id="one-node-10^12-tool-calls"),
    pytest.param([{"name": f"n{i}", "model": "claude-opus-4", "input_tokens": HUGE, "output_tokens": HUGE}
                  for i in range(60)], id="60-opus-nodes-overflowing-bigint"),
    pytest.param([{"name": f"n{i}", "model": "claude-opus-4", "input_tokens": HUGE, "output_tokens": HUGE}
                  for i in range(51)], id="51-opus-nodes-that-fit-bigint"),
])
def test_it_refuses_an_over_the_top_completion_and_charges_nothing(api, team, nodes):
    assert authorize(api).status_code == 201
    before = _state(team.workspace)
    response = _complete(api, nodes)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_request"
    assert "at most 100,000 credits" in response.json()["error"]["message"]
    assert "Retry-After" not in response
    assert _state(team.workspace) == before
    run = Run.objects.get(public_id="r-1")
    assert run.completed_at is None and run.status == Run.RUNNING and run.released_at is None
    # The run stays open: a correct completion still charges it once.
    assert _complete(api, TWO_NODES["nodes"]).status_code == 200
    assert Wallet.objects.get(workspace=team.workspace).balance < before[0]


@pytest.mark.django_db
def test_it_charges_a_run_right_at_the_maximum(api, team, settings):
    settings.RUN_MAX_CREDITS = 60  # gpt-4o output: 15 credits per 1M tokens; 4M tokens = 60 credits
    authorize(api)
    nodes = [{"name": "n", "model": "gpt-4o", "input_tokens": 0, "output_tokens": 4_000_000}]
    assert _complete(api, nodes).json()["credits"] == "60"
    authorize(api, run_id="r-2")
    nodes[0]["output_tokens"] += 1
    assert _complete(api, nodes, run_id="r-2").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_concurrent_overruns_leave_a_debt_no_larger_than_the_overdraft_bound(team, settings):
    """Each run is reserved at most 10 credits (the agent's per-run cap) and costs far more; eight
    completing together would owe thousands. The workspace owes OVERDRAFT_MAX_CREDITS at most: the
    runs are charged their full cost and what passes the bound is written off, exactly once."""
    from operations.reconcile import reconcile_workspace
    from tests.concurrency import run_at_once
    from usage.tokens import token_create

    from .conftest import Api

    settings.OVERDRAFT_MAX_CREDITS = 100
    api = Api(token_create(membership=team.membership(team.member)).raw)
    for i in range(8):
        assert authorize(api, run_id=f"r-{i}").status_code == 201
    balance = Wallet.objects.get(workspace=team.workspace).balance
    per_run_credits = -(-(balance // 10**9 + 1_000) // 8 // 15) * 15  # a multiple of 15 credits
    nodes = [{"name": "n", "model": "gpt-4o", "input_tokens": 0, "output_tokens": per_run_credits // 15 * 10**6}]

    answers, errors = run_at_once(lambda i: _complete(Api(api.token), nodes, run_id=f"r-{i}").status_code, 8)

    assert errors == [] and answers == [200] * 8
    cost = 8 * per_run_credits * 10**9
    wallet = Wallet.objects.get(workspace=team.workspace)
    assert wallet.balance == -100 * 10**9 and wallet.reserved == 0 and wallet.running_runs == 0
    assert [run.credits for run in Run.objects.filter(workspace=team.workspace)] == [per_run_credits * 10**9] * 8
    entries = LedgerEntry.objects.filter(workspace=team.workspace)
    assert -sum(entries.filter(kind="charge").values_list("amount", flat=True)) == cost
    write_offs = entries.filter(kind="write_off")
    assert sum(write_offs.values_list("amount", flat=True)) == cost - balance - 100 * 10**9
    assert all(entry.bucket == "purchased" and entry.run_id for entry in write_offs)
    assert entries.order_by("-id").first().balance_after == -100 * 10**9
    assert reconcile_workspace(workspace=team.workspace) == []
    # A replay of a completion charges and writes off nothing more.
    assert _complete(api, nodes, run_id="r-0").status_code == 200
    assert LedgerEntry.objects.filter(workspace=team.workspace).count() == entries.count()
