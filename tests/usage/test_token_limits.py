"""Limits on a developer token (issue 29): a maximum per run, per UTC day and per billing period,
allowed models and an expiry, enforced in the one locked decision (budgets/sql/limits.sql), with
the token's counters checked by reconcile."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Wallet, credits
from budgets.counters import DAY, PERIOD, TOKEN
from budgets.models import SpendCounter
from operations.reconcile import reconcile_workspace
from tests.concurrency import run_at_once
from usage.errors import RunRefused
from usage.models import DeveloperToken, Run
from usage.services import NodeInput, run_authorize, run_complete
from usage.tokens import TokenLimits, token_create

from .conftest import Api, authorize

ONE_CREDIT = [NodeInput("n", "gpt-4o", 200_000, 0)]  # 200k input tokens at 5/M = 1 credit


def limited(team, user=None, **limits) -> tuple[DeveloperToken, Api]:
    """A token of `user` (the member by default) with `limits`, set as an owner would."""
    created = token_create(membership=team.membership(user or team.member), name="nightly-agent",
                           limits=TokenLimits(**limits), admin_set=True)
    return created.token, Api(created.raw)


@pytest.mark.django_db
def test_it_refuses_a_run_once_the_tokens_daily_limit_binds_and_names_the_token_and_the_limit(team):
    token, api = limited(team, max_credits_per_day=credits(3))
    first = authorize(api, "r-1")
    assert first.status_code == 201 and first.json()["reserved"] == "3"  # the day limit binds before the agent's 10
    response = authorize(api, "r-2")
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "token_budget_exceeded" and error["limit"] == "max_credits_per_day"
    assert "nightly-agent" in error["message"] and token.prefix in error["message"]
    assert "daily limit of 3 credits" in error["message"]
    assert not Run.objects.filter(public_id="r-2").exists()


@pytest.mark.django_db
def test_a_completed_run_frees_what_it_did_not_spend_of_the_tokens_day(team, api):
    token, limited_api = limited(team, max_credits_per_day=credits(3))
    authorize(limited_api, "r-1")
    assert limited_api.post("/v1/runs/r-1/complete", {"status": "succeeded", "nodes": [
        {"name": "n", "model": "gpt-4o", "input_tokens": 200_000, "output_tokens": 0}]}).status_code == 200
    second = authorize(limited_api, "r-2")
    assert second.status_code == 201 and second.json()["reserved"] == "2"  # 3 - 1 charged
    # Another token of the same member is not bound by this one's limit.
    assert authorize(api, "r-3").json()["reserved"] == "10"


@pytest.mark.django_db
def test_the_tokens_period_limit_counts_charged_and_held(team):
    _, api = limited(team, max_credits_per_month=credits(4))
    assert authorize(api, "r-1").json()["reserved"] == "4"
    response = authorize(api, "r-2")
    assert response.status_code == 402
    assert response.json()["error"]["limit"] == "max_credits_per_month"


@pytest.mark.django_db
def test_the_tokens_max_per_run_caps_the_reservation_like_the_agents(team):
    _, api = limited(team, max_credits_per_run=credits("1.5"))
    assert authorize(api, "r-1").json()["reserved"] == "1.5"
    assert authorize(api, "r-2", reserve="1").json()["reserved"] == "1"


@pytest.mark.django_db
def test_it_refuses_a_model_the_token_may_not_use_with_403_and_creates_nothing(team):
    _, api = limited(team, allowed_models=("gpt-4o-mini",))
    response = authorize(api, "r-1", model="claude-opus-4")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "model_not_allowed" and "claude-opus-4" in error["message"]
    assert "gpt-4o-mini" in error["message"]
    assert not Run.objects.filter(public_id="r-1").exists()
    assert Wallet.objects.get(workspace=team.workspace).reserved == 0
    assert authorize(api, "r-2", model="gpt-4o-mini").status_code == 201


@pytest.mark.django_db
def test_an_expired_token_is_refused_with_401_on_every_call(team):
    token, api = limited(team, expires_at=timezone.now() + timedelta(hours=1))
    assert api.get("/v1/billing/balance").status_code == 200
    DeveloperToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for response in (api.get("/v1/billing/balance"), authorize(api, "r-1"), api.get("/v1/runs")):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token_expired"
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_the_locked_decision_refuses_a_token_that_expired_after_authentication(team):
    """Authentication loaded the token before it expired; the decision reads it again under the lock."""
    token, _ = limited(team, expires_at=timezone.now() + timedelta(hours=1))
    DeveloperToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(RunRefused) as refusal:
        run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o",
                      token=token)
    assert (refusal.value.status, refusal.value.code) == (401, "token_expired")
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_the_balance_shows_a_limited_tokens_limits_and_use(team, api):
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    _, limited_api = limited(team, max_credits_per_run=credits(2), max_credits_per_day=credits(5),
                             max_credits_per_month=credits(100), allowed_models=("gpt-4o", "gpt-4o-mini"),
                             expires_at=expires)
    authorize(limited_api, "r-1")
    body = limited_api.get("/v1/billing/balance").json()
    assert body["token"] == {
        "name": "nightly-agent", "prefix": body["token"]["prefix"], "max_credits_per_run": "2",
        "max_credits_per_day": "5", "max_credits_per_month": "100", "used_today": "2", "used_this_period": "2",
        "allowed_models": ["gpt-4o", "gpt-4o-mini"], "expires_at": expires.isoformat().replace("+00:00", "Z")}
    assert api.get("/v1/billing/balance").json()["token"] is None  # a token without limits


@pytest.mark.django_db
def test_runs_count_in_their_tokens_day_and_period_counters_and_reconcile_checks_them(team):
    token, api = limited(team, max_credits_per_day=credits(50))
    authorize(api, "r-1")
    authorize(api, "r-2")
    api.post("/v1/runs/r-1/complete", {"status": "succeeded", "nodes": [
        {"name": "n", "model": "gpt-4o", "input_tokens": 200_000, "output_tokens": 0}]})
    counters = {c.span: (c.charged, c.reserved) for c in SpendCounter.objects.filter(scope=TOKEN, scope_id=token.pk)}
    assert counters == {DAY: (credits(1), credits(10)), PERIOD: (credits(1), credits(10))}
    assert reconcile_workspace(workspace=team.workspace) == []
    # A counter changed by hand (or a charge path that forgot the token) is reported, naming it.
    SpendCounter.objects.filter(scope=TOKEN, scope_id=token.pk, span=DAY).update(charged=0)
    problems = reconcile_workspace(workspace=team.workspace)
    assert len(problems) == 1 and f"token {token.pk} day" in problems[0] and "acme" in problems[0]
    SpendCounter.objects.filter(scope=TOKEN, scope_id=token.pk).delete()
    problems = reconcile_workspace(workspace=team.workspace)
    assert any(f"token {token.pk} period" in p and "missing" in p for p in problems), problems


@pytest.mark.django_db
def test_a_limit_lowered_after_authentication_binds_at_once(team):
    """The token row is read in the locked decision, not from the token authentication cached."""
    token, api = limited(team, max_credits_per_day=credits(100))
    assert authorize(api, "r-1").json()["reserved"] == "10"
    DeveloperToken.objects.filter(pk=token.pk).update(max_credits_per_day=credits(10))  # no cache bump
    assert authorize(api, "r-2").status_code == 402


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_authorizes_on_a_token_reserve_at_most_its_daily_limit(team):
    token, _ = limited(team, max_credits_per_day=credits(5), max_credits_per_run=credits(1))
    membership = team.membership(team.member)

    def start(i):
        try:
            return run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o",
                                 public_id=f"race-{i}", token=token).run.reserved
        except RunRefused as refusal:
            return refusal.code

    results, errors = run_at_once(start, 20)
    assert errors == []
    reserved = [r for r in results if isinstance(r, int)]
    assert sum(reserved) == credits(5) and len(reserved) == 5
    assert sorted(r for r in results if isinstance(r, str)) == ["token_budget_exceeded"] * 15
    assert Wallet.objects.get(workspace=team.workspace).reserved == credits(5)
    assert reconcile_workspace(workspace=team.workspace) == []


@pytest.mark.django_db
def test_limits_apply_in_the_community_edition_only_where_a_token_forbids(team, settings):
    settings.BILLING_EDITION = "community"
    _, api = limited(team, max_credits_per_day=credits(1), allowed_models=("gpt-4o",))
    assert authorize(api, "r-1").status_code == 201 and authorize(api, "r-2").status_code == 201
    assert authorize(api, "r-3", model="gpt-4o-mini").status_code == 403
    run_complete(workspace=team.workspace, public_id="r-1", status="succeeded", nodes=ONE_CREDIT)
