"""With a real broker, charges share alert checks: with Redis, one drain every
ALERT_CHECK_DELAY_SECONDS checks every workspace charged meanwhile; without it, one delayed check per
workspace. Celery is stubbed at its edge (the publish); Redis is the real one."""

import pytest
from django.test import override_settings

from billing.access_versions import redis_client
from billing.models import credits
from budgets import alerts
from budgets.models import BudgetAlert, WorkspaceBudget
from budgets.services import budget_set
from tests.factories import make_workspace
from usage.services import NodeInput, run_authorize, run_complete


def _charge(team, run_id):
    """0.65 credits (gpt-4o: 100,000 input tokens at 5 per 1M, 10,000 output tokens at 15 per 1M)."""
    membership = team.membership(team.owner)
    run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id=run_id)
    run_complete(workspace=team.workspace, public_id=run_id, status="succeeded",
                 nodes=[NodeInput("n", "gpt-4o", 100_000, 10_000)])


def _charge_each(teams, capture, *, rounds=1):
    """Charge every team `rounds` times, each charge committed (its on-commit scheduling runs)."""
    with capture(execute=True):
        for n, each in enumerate(teams * rounds):
            _charge(each, f"r{n}")


def _with_budget(team, limit="0.75", hard_limit=True):
    """A monthly budget that one charge takes past its 80% warning (refusing runs at 100% when
    hard_limit is on)."""
    budget_set(workspace=team.workspace, monthly_limit=credits(limit), warning=True, critical=True,
               hard_limit=hard_limit, webhook_url="", actor=team.owner)
    return team


def _warned(team) -> bool:
    return BudgetAlert.objects.filter(workspace=team.workspace, level=WorkspaceBudget.WARNING).exists()


@pytest.fixture
def published(monkeypatch):
    """The broker's edge: what the charges would publish, recorded instead of sent."""
    from budgets import tasks

    sent = []
    monkeypatch.setitem(tasks.check_alerts.app.conf, "task_always_eager", False)
    monkeypatch.setattr(tasks.check_alerts, "apply_async", lambda args, countdown: sent.append((args, countdown)))
    monkeypatch.setattr(tasks.check_due_alerts, "apply_async", lambda countdown: sent.append(("drain", countdown)))
    monkeypatch.setattr(tasks.check_due_alerts, "delay", lambda: sent.append(("drain", 0)))
    return sent


@pytest.fixture
def three_teams(team):
    return [_with_budget(team), _with_budget(make_workspace(slug="beta")), _with_budget(make_workspace(slug="gamma"))]


@pytest.fixture
def due_set():
    """The real Redis set of due workspaces, empty before and after the test."""
    redis_client().delete(alerts.DUE_KEY, alerts.ARMED_KEY)
    yield lambda: sorted(int(member) for member in redis_client().smembers(alerts.DUE_KEY))
    redis_client().delete(alerts.DUE_KEY, alerts.ARMED_KEY)


@pytest.mark.needs_redis
@pytest.mark.django_db
def test_one_drain_checks_every_workspace_charged_in_quick_succession(three_teams, published, due_set,
                                                                        django_capture_on_commit_callbacks):
    teams = three_teams
    _charge_each(teams, django_capture_on_commit_callbacks, rounds=2)
    assert published == [("drain", alerts.ALERT_CHECK_DELAY_SECONDS)]  # six charges, one task
    assert due_set() == sorted(each.workspace.pk for each in teams)
    assert not any(_warned(each) for each in teams)  # nothing is checked before the drain runs

    assert alerts.alerts_check_due() == 3
    assert all(_warned(each) for each in teams)
    assert due_set() == []


@pytest.mark.needs_redis
@pytest.mark.django_db
def test_a_charge_after_the_drain_took_the_set_schedules_the_next_one(team, published, due_set,
                                                                        django_capture_on_commit_callbacks):
    from usage.models import Agent

    # Holds of 0.7 credits and charges of 0.65 on a budget of 1.5: the first run stays under 80%
    # (47% with its hold, 43% charged), the second's hold takes the workspace to 90%.
    Agent.objects.create(workspace=team.workspace, name="bot", max_per_run=credits("0.7"), max_per_day=credits(10),
                         max_per_month=credits(100))
    _with_budget(team, "1.5")
    with django_capture_on_commit_callbacks(execute=True):
        _charge(team, "before")
    assert published == [] and due_set() == []  # below every threshold: no alert can change
    with django_capture_on_commit_callbacks(execute=True):
        _charge(team, "first-over")
    alerts.alerts_check_due()
    assert _warned(team)
    with django_capture_on_commit_callbacks(execute=True):
        _charge(team, "after")
    assert published == [("drain", alerts.ALERT_CHECK_DELAY_SECONDS)] * 2
    assert due_set() == [team.workspace.pk]
    alerts.alerts_check_due()
    assert _warned(team)


@pytest.mark.needs_redis
@pytest.mark.django_db
def test_a_batch_larger_than_a_chunk_is_handed_on_to_another_task(three_teams, published, due_set,
                                                                    django_capture_on_commit_callbacks):
    teams = three_teams
    _charge_each(teams, django_capture_on_commit_callbacks)
    assert alerts.alerts_check_due(chunk=2) == 2
    assert published[-1] == ("drain", 0)  # the rest, for another worker, before this one checks its two
    assert len(due_set()) == 1
    assert alerts.alerts_check_due(chunk=2) == 1
    assert all(_warned(each) for each in teams)


@pytest.mark.needs_redis
@pytest.mark.django_db
def test_a_workspace_deleted_before_the_drain_does_not_stop_the_others(team, published, due_set,
                                                                         django_capture_on_commit_callbacks):
    _with_budget(team)
    with django_capture_on_commit_callbacks(execute=True):
        _charge(team, "r")
    redis_client().sadd(alerts.DUE_KEY, team.workspace.pk + 1000)
    assert alerts.alerts_check_due() == 2
    assert _warned(team)


@pytest.mark.django_db
def test_without_redis_each_workspace_gets_one_delayed_check(team, published, django_capture_on_commit_callbacks):
    _with_budget(team, hard_limit=False)  # every charge is past 80%, and none is refused
    with override_settings(REDIS_URL=""), django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            _charge(team, f"r{n}")
    assert published == [((team.workspace.pk,), alerts.ALERT_CHECK_DELAY_SECONDS)]


@pytest.mark.needs_redis
@pytest.mark.django_db
@pytest.mark.parametrize("scope", ["none", "workspace", "agent", "member"])
def test_a_charge_schedules_a_check_only_when_a_budget_it_counts_in_is_near_a_threshold(
        team, published, due_set, django_capture_on_commit_callbacks, scope):
    """A completion's budgets are the workspace's, its agent's and its member's (budgets_alert_due):
    one at 80% or more of its limit after the charge schedules the check; none near, nothing is
    scheduled, and no Redis round trip is made."""
    from billing.models import Membership
    from usage.models import Agent

    if scope == "workspace":
        _with_budget(team)
    elif scope == "agent":
        Agent.objects.create(workspace=team.workspace, name="bot", max_per_run=credits(10), max_per_day=credits(10),
                             max_per_month=credits("0.75"))
    elif scope == "member":
        Membership.objects.filter(pk=team.membership(team.owner).pk).update(monthly_budget=credits("0.75"))
    with django_capture_on_commit_callbacks(execute=True):
        _charge(team, "r")
    expected = [] if scope == "none" else [("drain", alerts.ALERT_CHECK_DELAY_SECONDS)]
    assert published == expected
    assert due_set() == ([] if scope == "none" else [team.workspace.pk])
