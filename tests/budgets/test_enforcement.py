"""Budgets hold exactly under concurrency: 40 real threads authorizing at once against a limit that
affords 7 runs at the per-run cap. Each thread has its own database connection."""


import pytest

from tests.concurrency import run_at_once
from billing.models import Membership, credits
from budgets.models import WorkspaceBudget
from usage.errors import RunRefused
from usage.models import Agent, Run
from usage.services import run_authorize

THREADS = 40


def _authorize_concurrently(membership_id: int, agent: str) -> list[str]:
    """40 threads released together authorize; returns 'ok' or the refusal code of each."""
    def worker(n):
        membership = Membership.objects.select_related("workspace__plan", "workspace__budget").get(pk=membership_id)
        try:
            run_authorize(membership=membership, workflow="wf", agent=agent, model="gpt-4o",
                          public_id=f"c{n}", body_hash=str(n))
            return "ok"
        except RunRefused as refusal:
            return refusal.code

    outcomes, errors = run_at_once(worker, THREADS)
    assert errors == []
    return outcomes


def _expect_seven(outcomes: list[str], code: str, workspace) -> None:
    assert len(outcomes) == THREADS
    assert outcomes.count("ok") == 7
    assert outcomes.count(code) == THREADS - 7
    runs = Run.objects.filter(workspace=workspace)
    assert runs.count() == 7 and sum(run.reserved for run in runs) == credits(70)
    wallet = workspace.wallet
    wallet.refresh_from_db()
    assert wallet.reserved == credits(70) and wallet.running_runs == 7


@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_seven_runs_through_an_agent_day_budget(team):
    Agent.objects.create(workspace=team.workspace, name="bot", max_per_run=credits(10), max_per_day=credits(70))
    outcomes = _authorize_concurrently(team.membership(team.member).pk, "bot")
    _expect_seven(outcomes, "agent_daily_budget_exceeded", team.workspace)


@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_seven_runs_through_the_workspace_hard_limit(team):
    WorkspaceBudget.objects.filter(workspace=team.workspace).update(monthly_limit=credits(70))
    Agent.objects.create(workspace=team.workspace, name="bot")  # defaults: 10 per run, 100 per day
    outcomes = _authorize_concurrently(team.membership(team.member).pk, "bot")
    _expect_seven(outcomes, "budget_exhausted", team.workspace)


@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_seven_runs_through_a_member_budget(team):
    Membership.objects.filter(workspace=team.workspace, user=team.member).update(monthly_budget=credits(70))
    Agent.objects.create(workspace=team.workspace, name="bot")
    outcomes = _authorize_concurrently(team.membership(team.member).pk, "bot")
    _expect_seven(outcomes, "member_budget_exceeded", team.workspace)


@pytest.mark.django_db
def test_it_reserves_the_smallest_remaining_limit(team):
    Agent.objects.create(workspace=team.workspace, name="bot", max_per_run=credits(10), max_per_day=credits(25))
    membership = team.membership(team.member)
    reserved = [run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o").run.reserved
                for _ in range(3)]
    assert reserved == [credits(10), credits(10), credits(5)]
    with pytest.raises(RunRefused) as refusal:
        run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o")
    assert refusal.value.code == "agent_daily_budget_exceeded"
    assert "daily budget" in refusal.value.message


@pytest.mark.django_db
def test_it_ignores_the_workspace_budget_when_the_hard_limit_is_off(team):
    WorkspaceBudget.objects.filter(workspace=team.workspace).update(monthly_limit=credits(5), hard_limit_enabled=False)
    membership = team.membership(team.member)
    run = run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o").run
    assert run.reserved == credits(10)
