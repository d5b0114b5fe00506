"""Every input of a limit decision is read after the wallet lock (issue 9 section 1).

Each test pauses an authorize exactly where the old code went wrong: this test's connection holds
the workspace's wallet lock, the authorize (in its own thread and connection, with the membership
loaded before, as token authentication loads it) waits for that lock, and meanwhile the world
changes. When the lock is released the authorize must decide on the new world."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from billing.grants import workspace_period_roll
from billing.ledger import wallet_lock
from billing.models import Workspace, credits
from operations.reconcile import reconcile_workspace
from budgets.counters import PERIOD, WORKSPACE
from budgets.models import SpendCounter
from budgets.services import budget_set
from tests.concurrency import InThread, wait_until_blocked
from tests.factories import make_workspace
from usage.errors import RunRefused
from usage.models import Run
from usage.services import NodeInput, run_authorize, run_complete

HALF_A_CREDIT = [NodeInput(name="n", model="gpt-4o", input_tokens=100_000, output_tokens=0)]  # 5 credits / 1M


def _authorize_while_locked(membership, change, **kwargs) -> InThread:
    """Hold the wallet lock, start an authorize that waits for it, apply `change`, release."""
    with transaction.atomic():
        wallet_lock(membership.workspace_id)
        waiting = InThread(lambda: run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o",
                                                 public_id="late", **kwargs))
        wait_until_blocked()
        change()
    return waiting


@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_waiting_run_when_the_budget_was_lowered_meanwhile(team):
    budget_set(workspace=team.workspace, monthly_limit=credits(100), warning=True, critical=True, hard_limit=True,
               webhook_url="", actor=team.owner)
    membership = team.membership(team.member)  # loaded before the change, as token authentication does
    run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="first")
    run_complete(workspace=team.workspace, public_id="first", status="succeeded", nodes=HALF_A_CREDIT)

    def lower_the_budget():
        budget_set(workspace=team.workspace, monthly_limit=credits("0.1"), warning=True, critical=True,
                   hard_limit=True, webhook_url="", actor=team.owner)

    waiting = _authorize_while_locked(membership, lower_the_budget)
    with pytest.raises(RunRefused) as refusal:
        waiting.result()
    assert refusal.value.code == "budget_exhausted"
    assert not Run.objects.filter(public_id="late").exists()
    wallet = team.workspace.wallet
    wallet.refresh_from_db()
    assert wallet.reserved == 0 and wallet.running_runs == 0


@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_waiting_run_when_the_agent_limit_was_lowered_meanwhile(team):
    from usage.models import Agent

    agent = Agent.objects.create(workspace=team.workspace, name="bot")
    membership = team.membership(team.member)
    run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="first")
    run_complete(workspace=team.workspace, public_id="first", status="succeeded", nodes=HALF_A_CREDIT)
    waiting = _authorize_while_locked(
        membership, lambda: Agent.objects.filter(pk=agent.pk).update(max_per_day=credits("0.5")))
    with pytest.raises(RunRefused) as refusal:
        waiting.result()
    assert refusal.value.code == "agent_daily_budget_exceeded"


@pytest.mark.django_db(transaction=True)
def test_it_counts_a_waiting_run_in_the_period_that_started_meanwhile():
    team = make_workspace(now=timezone.now() - timedelta(days=40))  # its first period is over
    workspace = team.workspace
    old_start = workspace.period_start
    membership = team.membership(team.member)
    now = timezone.now()

    waiting = _authorize_while_locked(
        membership, lambda: workspace_period_roll(workspace_id=workspace.pk, now=now), now=now)
    run = waiting.result().run
    workspace.refresh_from_db()
    assert workspace.period_start > old_start
    assert run.period_start == workspace.period_start
    # The hold counts in the new period's workspace counter: "used this period" shows it.
    counter = SpendCounter.objects.get(workspace=workspace, scope=WORKSPACE, span=PERIOD,
                                       span_start=workspace.period_start)
    assert counter.reserved == run.reserved > 0
    assert reconcile_workspace(workspace=workspace) == []


@pytest.mark.django_db
def test_reconcile_reports_a_run_counted_in_a_period_that_had_already_ended():
    team = make_workspace(now=timezone.now() - timedelta(days=40))
    workspace = team.workspace
    old_start = workspace.period_start
    assert workspace_period_roll(workspace_id=workspace.pk, now=timezone.now())
    workspace = Workspace.objects.get(pk=workspace.pk)
    run = run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o").run
    # What the old code did: the run and its counters stamped with the period it read before the roll.
    Run.objects.filter(pk=run.pk).update(period_start=old_start)
    SpendCounter.objects.filter(workspace=workspace, span=PERIOD).update(span_start=old_start)
    problems = reconcile_workspace(workspace=workspace)
    assert any(run.public_id in problem and "period" in problem for problem in problems), problems
