"""budgets.limits decides every reservation; budgets.models holds the one 80/95/100% ladder."""

from datetime import date

import pytest
from django.db import transaction

from billing.ledger import wallet_lock
from billing.models import Membership, credits
from budgets.limits import BUDGET_EXHAUSTED, Refusal, Reservation, run_reservation_decide
from budgets.models import Agent, WorkspaceBudget, budget_level, levels_reached
from usage.services import run_authorize


@pytest.mark.parametrize("used, level", [(0, "ok"), (79_999, "ok"), (80_000, "warning"), (94_999, "warning"),
                                         (95_000, "critical"), (100_000, "hard_limit"), (250_000, "hard_limit")])
def test_it_places_usage_on_the_ladder_with_integer_maths(used, level):
    assert budget_level(used=used, limit=100_000) == level
    assert WorkspaceBudget(monthly_limit=100_000).state(used) == level


def test_it_has_no_level_without_a_limit():
    assert budget_level(used=10**12, limit=None) == "none"
    assert levels_reached(used=10**12, limit=None) == []
    assert levels_reached(used=96, limit=100) == ["warning", "critical"]


def _decide(team):
    agent = Agent.objects.get_or_create(workspace=team.workspace, name="bot")[0]
    with transaction.atomic():
        wallet = wallet_lock(team.workspace.pk)
        return run_reservation_decide(wallet=wallet, membership=team.membership(team.member), agent_id=agent.pk,
                                      day=date.today())


@pytest.mark.django_db
def test_it_reserves_the_agent_cap_when_nothing_binds_harder(team):
    decision = _decide(team)
    assert isinstance(decision, Reservation) and decision.amount == credits(10)


@pytest.mark.django_db
def test_it_reserves_no_more_than_the_smallest_remaining_budget(team):
    WorkspaceBudget.objects.filter(workspace=team.workspace).update(monthly_limit=credits(50))
    Membership.objects.filter(workspace=team.workspace, user=team.member).update(monthly_budget=credits(3))
    decision = _decide(team)
    assert isinstance(decision, Reservation) and decision.amount == credits(3)


@pytest.mark.django_db
def test_it_names_the_binding_limit_once_a_budget_is_used_up(team):
    WorkspaceBudget.objects.filter(workspace=team.workspace).update(monthly_limit=credits(10))
    run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o")
    refusal = _decide(team)
    assert refusal == Refusal(BUDGET_EXHAUSTED, refusal.message)
    assert "monthly budget is used up" in refusal.message
