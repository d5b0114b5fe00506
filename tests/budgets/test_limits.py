"""budgets_run_reservation (budgets/sql/limits.sql) decides every reservation; budgets.models holds the one
80/95/100% ladder."""

from datetime import date

import pytest
from django.db import connection, transaction

from billing.models import Membership, Workspace, credits
from budgets.limits import BUDGET_EXHAUSTED, CONCURRENCY_LIMIT, refusal_from_database
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


def _decide(team, *, token=None, model="gpt-4o", request=None, held=None) -> dict:
    """budgets_run_reservation (budgets/sql/limits.sql) for the member's run of agent "bot", with the
    wallet locked as the charge path locks it: a new run, or with `held` an extension of a run that
    holds that much (in the workspace's current period)."""
    agent = Agent.objects.get_or_create(workspace=team.workspace, name="bot")[0]
    period = Workspace.objects.get(pk=team.workspace.pk).period_start if held is not None else None
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT d.code, d.remaining, d.amount, d.running, d.allowed FROM billing_wallet w, "
                       "budgets_run_reservation(w, %s, %s, %s, %s, %s, now(), %s, %s, %s, false) d "
                       "WHERE w.workspace_id = %s FOR UPDATE OF w",
                       [team.membership(team.member).pk, agent.pk, token.pk if token else None, model, date.today(),
                        request, held, period, team.workspace.pk])
        return dict(zip(["code", "remaining", "amount", "running", "allowed"], cursor.fetchone()))


@pytest.mark.django_db
def test_it_reserves_the_agent_cap_when_nothing_binds_harder(team):
    decision = _decide(team)
    assert decision["code"] is None and decision["amount"] == credits(10)


@pytest.mark.django_db
def test_it_reserves_no_more_than_the_smallest_remaining_budget(team):
    WorkspaceBudget.objects.filter(workspace=team.workspace).update(monthly_limit=credits(50))
    Membership.objects.filter(workspace=team.workspace, user=team.member).update(monthly_budget=credits(3))
    decision = _decide(team)
    assert decision["code"] is None and decision["amount"] == credits(3)


@pytest.mark.django_db
def test_it_names_the_binding_limit_once_a_budget_is_used_up(team):
    WorkspaceBudget.objects.filter(workspace=team.workspace).update(monthly_limit=credits(10))
    run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o")
    decision = _decide(team)
    assert decision["code"] == BUDGET_EXHAUSTED and decision["amount"] is None
    refusal = refusal_from_database(code=decision["code"], remaining=decision["remaining"], running=None, allowed=None)
    assert "monthly budget is used up" in refusal.message


@pytest.mark.django_db
def test_the_first_listed_limit_binds_when_two_are_used_up_alike(team):
    WorkspaceBudget.objects.filter(workspace=team.workspace).update(monthly_limit=credits(10))
    Membership.objects.filter(workspace=team.workspace, user=team.member).update(monthly_budget=credits(10))
    run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o")
    decision = _decide(team)  # both have 0 left: the workspace budget is listed before the member's
    assert (decision["code"], decision["remaining"]) == (BUDGET_EXHAUSTED, 0)


@pytest.mark.django_db
def test_it_refuses_at_the_concurrency_cap_with_the_figures_of_its_message(team):
    Workspace.objects.filter(pk=team.workspace.pk).update(custom_concurrent_runs=1)
    run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o")
    decision = _decide(team)
    assert (decision["code"], decision["running"], decision["allowed"]) == (CONCURRENCY_LIMIT, 1, 1)


@pytest.mark.django_db
def test_an_extension_grows_a_hold_no_further_than_the_agents_max_per_run(team):
    """Issue 29: the per-run maximum is a row of the limits list, counting what the run holds."""
    assert _decide(team, held=credits(7))["amount"] == credits(3)
    assert _decide(team, held=credits(7), request=credits(1))["amount"] == credits(1)
    decision = _decide(team, held=credits(10))
    assert (decision["code"], decision["remaining"]) == ("agent_run_budget_exceeded", 0)


@pytest.mark.django_db
def test_a_new_run_reserves_no_more_than_it_asks_for(team):
    assert _decide(team, request=credits("2.5"))["amount"] == credits("2.5")
    assert _decide(team, request=credits(50))["amount"] == credits(10)


@pytest.mark.django_db
def test_a_tokens_limits_are_rows_of_the_same_decision(team):
    from usage.tokens import TokenLimits, token_create

    token = token_create(membership=team.membership(team.member), name="t",
                         limits=TokenLimits(max_credits_per_run=credits(4), max_credits_per_day=credits(6),
                                            allowed_models=("gpt-4o",))).token
    assert _decide(team, token=token)["amount"] == credits(4)
    assert _decide(team, token=token, model="gpt-4o-mini")["code"] == "model_not_allowed"
    run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o", token=token)
    decision = _decide(team, token=token)
    assert decision["code"] is None and decision["amount"] == credits(2)  # 6 - 4 held today
    run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o", token=token)
    decision = _decide(team, token=token)
    assert (decision["code"], decision["remaining"]) == ("token_daily_budget_exceeded", 0)
