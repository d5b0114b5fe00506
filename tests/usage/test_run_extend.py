"""Holds that grow (issue 29): authorize small with `reserve`, then POST /v1/runs/<id>/extend, in the
same locked decision as authorize against every limit, exactly once per extension key."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Membership, Wallet, credits
from budgets.models import Agent, WorkspaceBudget
from budgets.services import budget_set
from operations.reconcile import reconcile_workspace
from tests.concurrency import run_at_once
from usage.errors import RunNotRunning, RunRefused
from usage.models import DeveloperToken, Run, RunExtension
from usage.services import NodeInput, run_authorize, run_complete, run_expire, run_extend
from usage.tokens import TokenLimits, token_create

from .conftest import Api, authorize


def extend(api, run_id="r-1", key="k-1", credits_="2"):
    return api.post(f"/v1/runs/{run_id}/extend", {"id": key, "credits": credits_})


def wallet(team):
    return Wallet.objects.get(workspace=team.workspace)


@pytest.mark.django_db
def test_a_run_authorized_small_grows_its_hold_before_each_step(api, team):
    first = authorize(api, "r-1", reserve="0.5", estimated_input_tokens=10_000, max_output_tokens=10**9)
    assert first.status_code == 201 and first.json()["reserved"] == "0.5"
    # 0.5 credits - 10k input at 5/M (0.05) = 0.45 credits of output at 15/M = 30,000 tokens.
    assert first.json()["max_output_tokens"] == 30_000
    before = Run.objects.get(public_id="r-1").expires_at
    response = extend(api, credits_="2")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "r-1" and body["status"] == "running" and body["reserved"] == "2.5"
    assert body["extension"] == {"id": "k-1", "requested": "2", "added": "2"}
    assert body["max_output_tokens"] == 163_333  # (2.5 - 0.05) / 15 per M
    run = Run.objects.get(public_id="r-1")
    assert run.reserved == credits("2.5") and run.max_output_tokens == 163_333 and run.expires_at > before
    assert wallet(team).reserved == credits("2.5") and wallet(team).running_runs == 1
    assert reconcile_workspace(workspace=team.workspace) == []


@pytest.mark.django_db
def test_complete_charges_the_cost_and_releases_the_whole_grown_hold(api, team):
    authorize(api, "r-1", reserve="1")
    extend(api, key="k-1", credits_="2")
    extend(api, key="k-2", credits_="3")
    response = api.post("/v1/runs/r-1/complete", {"status": "succeeded", "nodes": [
        {"name": "n", "model": "gpt-4o", "input_tokens": 200_000, "output_tokens": 0}]})
    assert response.status_code == 200 and response.json()["reserved"] == "6"
    assert response.json()["over_reservation"] is False
    w = wallet(team)
    assert w.reserved == 0 and w.running_runs == 0 and w.monthly == credits(4999)
    assert reconcile_workspace(workspace=team.workspace) == []


@pytest.mark.django_db
def test_a_replayed_extension_key_adds_nothing_and_answers_the_same(api, team):
    authorize(api, "r-1", reserve="1")
    first = extend(api, credits_="2")
    again = extend(api, credits_="2")
    assert again.status_code == 200 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    extend(api, key="k-2", credits_="1")
    # Even after a later extension, the replay repeats its own answer.
    assert extend(api, credits_="2.0").json() == first.json()  # the same amount, written differently
    assert Run.objects.get(public_id="r-1").reserved == credits(4)
    assert wallet(team).reserved == credits(4)
    assert RunExtension.objects.count() == 2


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_conflict_and_changes_nothing(api, team):
    authorize(api, "r-1", reserve="1")
    extend(api, credits_="2")
    response = extend(api, credits_="3")
    assert response.status_code == 409 and response.json()["error"]["code"] == "idempotency_conflict"
    assert Run.objects.get(public_id="r-1").reserved == credits(3)


@pytest.mark.django_db
def test_a_hold_never_grows_past_the_agents_max_per_run(api, team):
    authorize(api, "r-1", reserve="8")  # the agent's default max per run is 10
    response = extend(api, credits_="5")
    assert response.status_code == 200 and response.json()["extension"]["added"] == "2"
    assert response.json()["reserved"] == "10"
    refused = extend(api, key="k-2", credits_="1")
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "agent_run_budget_exceeded"
    assert Run.objects.get(public_id="r-1").reserved == credits(10)
    assert not RunExtension.objects.filter(key="k-2").exists()  # a refusal stores no key: it may be retried


@pytest.mark.django_db
def test_a_hold_never_grows_past_the_tokens_max_per_run(team):
    created = token_create(membership=team.membership(team.member), name="capped",
                           limits=TokenLimits(max_credits_per_run=credits(3)), admin_set=True)
    api = Api(created.raw)
    authorize(api, "r-1", reserve="1")
    assert extend(api, credits_="5").json()["reserved"] == "3"
    refused = extend(api, key="k-2", credits_="1")
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "token_budget_exceeded"
    assert refused.json()["error"]["limit"] == "max_credits_per_run"
    assert "capped" in refused.json()["error"]["message"]


@pytest.mark.django_db
def test_a_refused_extension_leaves_the_hold_unchanged(api, team):
    budget_set(workspace=team.workspace, monthly_limit=credits(3), warning=False, critical=False, hard_limit=True,
               webhook_url="", actor=team.owner)
    authorize(api, "r-1", reserve="3")
    before = Run.objects.get(public_id="r-1")
    response = extend(api, credits_="1")
    assert response.status_code == 402 and response.json()["error"]["code"] == "budget_exhausted"
    after = Run.objects.get(public_id="r-1")
    assert (after.reserved, after.expires_at, after.max_output_tokens) == (before.reserved, before.expires_at,
                                                                           before.max_output_tokens)
    assert wallet(team).reserved == credits(3)


@pytest.mark.django_db
def test_the_extension_counts_in_the_agents_daily_budget(api, team):
    authorize(api, "r-1", reserve="1")
    Agent.objects.filter(workspace=team.workspace, name="triage").update(max_per_day=credits("2.5"))
    assert extend(api, credits_="5").json()["extension"]["added"] == "1.5"
    assert extend(api, key="k-2", credits_="5").json()["error"]["code"] == "agent_daily_budget_exceeded"


@pytest.mark.django_db
def test_a_finished_or_expired_run_cannot_grow(api, team):
    authorize(api, "done", reserve="1")
    api.post("/v1/runs/done/complete", {"status": "failed", "nodes": []})
    response = extend(api, "done")
    assert response.status_code == 409 and response.json()["error"]["code"] == "run_not_running"
    assert "completed" in response.json()["error"]["message"]

    authorize(api, "swept", reserve="1")
    run_expire(run=Run.objects.get(public_id="swept"))
    assert extend(api, "swept").json()["error"]["code"] == "run_not_running"

    # Past its expires_at but not swept yet: its hold is about to go; it cannot grow.
    authorize(api, "late", reserve="1")
    Run.objects.filter(public_id="late").update(expires_at=timezone.now() - timedelta(seconds=1))
    late = extend(api, "late")
    assert late.status_code == 409 and "expired" in late.json()["error"]["message"]
    assert wallet(team).reserved == credits(1)


@pytest.mark.django_db
def test_a_replay_after_the_run_finished_still_answers_the_same(api, team):
    authorize(api, "r-1", reserve="1")
    first = extend(api, credits_="2")
    api.post("/v1/runs/r-1/complete", {"status": "succeeded", "nodes": []})
    assert extend(api, credits_="2").json() == first.json()


@pytest.mark.django_db
def test_another_workspaces_run_is_not_found(api, team, outsider):
    authorize(api, "r-1", reserve="1")
    outsider_api = Api(token_create(membership=Membership.objects.get(user=outsider)).raw)
    response = extend(outsider_api, "r-1")
    assert response.status_code == 404
    assert extend(api, "no-such-run").status_code == 404


@pytest.mark.parametrize("body, message", [
    ({"id": "k", "credits": 2}, "decimal string"), ({"id": "k", "credits": "0"}, "more than 0"),
    ({"id": "k", "credits": "-1"}, "decimal string"), ({"id": "k", "credits": "1e3"}, "decimal string"),
    ({"id": "k", "credits": "0.0000000001"}, "decimal string"), ({"credits": "1"}, "id"),
    ({"id": "k/1", "credits": "1"}, "id"), ({"id": "k", "credits": "1", "extra": 1}, "unknown field"),
])
@pytest.mark.django_db
def test_bad_extensions_are_400_and_change_nothing(api, team, body, message):
    authorize(api, "r-1", reserve="1")
    response = api.post("/v1/runs/r-1/extend", body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"
    assert message in response.json()["error"]["message"]
    assert Run.objects.get(public_id="r-1").reserved == credits(1)


@pytest.mark.parametrize("reserve", ["0", "abc", "1.0000000001", 5])
@pytest.mark.django_db
def test_a_bad_reserve_is_400_and_creates_no_run(api, reserve):
    response = authorize(api, "r-1", reserve=reserve)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"
    assert "reserve" in response.json()["error"]["message"]
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_a_reserve_above_every_limit_holds_what_the_limits_allow(api):
    assert authorize(api, "r-1", reserve="999999999999").json()["reserved"] == "10"


@pytest.mark.django_db
def test_without_reserve_nothing_changes(api):
    assert authorize(api, "r-1").json()["reserved"] == "10"


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_extends_under_a_hard_limit_reserve_at_most_what_is_left(team):
    membership = team.membership(team.member)
    for i in range(20):
        run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id=f"r-{i}",
                      reserve=credits("0.25"))
    # 20 x 0.25 = 5 held; the hard limit leaves 5 more.
    budget_set(workspace=team.workspace, monthly_limit=credits(10), warning=False, critical=False, hard_limit=True,
               webhook_url="", actor=team.owner)

    def grow(i):
        try:
            return run_extend(workspace=team.workspace, public_id=f"r-{i}", key="step-2", credits=credits(1)).added
        except RunRefused as refusal:
            return refusal.code

    results, errors = run_at_once(grow, 20)
    assert errors == []
    added = [r for r in results if isinstance(r, int)]
    assert sum(added) == credits(5) and len(added) == 5
    assert sorted(r for r in results if isinstance(r, str)) == ["budget_exhausted"] * 15
    assert wallet(team).reserved == credits(10)
    assert sum(Run.objects.values_list("reserved", flat=True)) == credits(10)
    assert reconcile_workspace(workspace=team.workspace) == []


@pytest.mark.django_db(transaction=True)
def test_a_replayed_extension_key_adds_nothing_even_from_twenty_clients_at_once(team):
    membership = team.membership(team.member)
    run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="r-1",
                  reserve=credits(1))

    def grow(i):
        return run_extend(workspace=team.workspace, public_id="r-1", key="step-2", credits=credits(2), body_hash="h")

    results, errors = run_at_once(grow, 20)
    assert errors == []
    assert sum(not r.replayed for r in results) == 1
    assert {(r.added, r.reserved) for r in results} == {(credits(2), credits(3))}
    assert Run.objects.get(public_id="r-1").reserved == credits(3)
    assert wallet(team).reserved == credits(3)
    assert RunExtension.objects.count() == 1
    assert reconcile_workspace(workspace=team.workspace) == []


@pytest.mark.django_db
def test_the_sweeper_releases_a_grown_hold_whole(team):
    membership = team.membership(team.member)
    run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="r-1",
                  reserve=credits(1))
    run_extend(workspace=team.workspace, public_id="r-1", key="k", credits=credits(2))
    assert run_expire(run=Run.objects.get(public_id="r-1"))
    assert wallet(team).reserved == 0 and wallet(team).running_runs == 0
    late = run_complete(workspace=team.workspace, public_id="r-1", status="succeeded",
                        nodes=[NodeInput("n", "gpt-4o", 1000, 10)])
    assert late.reserved == credits(3)
    assert reconcile_workspace(workspace=team.workspace) == []
    with pytest.raises(RunNotRunning):
        run_extend(workspace=team.workspace, public_id="r-1", key="k-2", credits=credits(1))


@pytest.mark.django_db
def test_an_extension_of_a_run_whose_token_was_limited_since_counts_against_that_tokens_day(team):
    created = token_create(membership=team.membership(team.member), name="engine", admin_set=True)
    api = Api(created.raw)
    authorize(api, "r-1", reserve="1")
    DeveloperToken.objects.filter(pk=created.token.pk).update(max_credits_per_day=credits(2))
    response = extend(api, credits_="5")
    assert response.json()["extension"]["added"] == "1"
    assert WorkspaceBudget.objects.get(workspace=team.workspace).monthly_limit is None
