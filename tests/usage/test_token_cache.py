"""The per-process token cache (usage.api.token_cache): a repeat request reads no token row, and a
revocation or a change to what the token grants is seen on the very next request, because the
workspace's access version in Redis moved, not because this process forgot anything."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.access_versions import access_versions_bump
from billing.models import credits
from billing.members import member_role_set
from budgets.services import member_budget_set
from usage.api import token_cache
from usage.models import DeveloperToken, hash_token
from usage.tokens import token_create, token_revoke

from .conftest import Api, authorize

pytestmark = [pytest.mark.django_db, pytest.mark.needs_redis]


@pytest.fixture(autouse=True)
def empty_cache():
    token_cache.token_cache_forget()
    yield
    token_cache.token_cache_forget()


def token_queries(context) -> list[str]:
    return [q["sql"] for q in context.captured_queries if '"usage_developertoken"' in q["sql"]
            and q["sql"].lstrip().upper().startswith("SELECT")]


def warm(api: Api) -> None:
    """The first load in a process learns the token's workspace; the second caches it."""
    DeveloperToken.objects.update(last_used_at=timezone.now())
    for _ in range(2):
        assert api.get("/v1/ping").status_code == 200


def test_it_answers_a_repeat_request_without_reading_the_token(api):
    warm(api)
    with CaptureQueriesContext(connection) as context:
        response = api.get("/v1/ping")
    assert response.status_code == 200
    assert token_queries(context) == []
    assert response["X-RateLimit-Remaining"]  # the request was still counted


def test_it_counts_each_cached_request_once_against_the_rate_limit(api):
    warm(api)
    first = int(api.get("/v1/ping")["X-RateLimit-Remaining"])
    second = int(api.get("/v1/ping")["X-RateLimit-Remaining"])
    assert second == first - 1


def test_a_revoked_token_is_refused_on_the_next_request_though_this_process_still_caches_it(api, team):
    warm(api)
    token = DeveloperToken.objects.get(token_hash=hash_token(api.token))
    token_revoke(token=token, actor=team.member)
    assert token_cache.token_cache_get(token.token_hash) is not None  # nothing was forgotten locally
    response = api.get("/v1/ping")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This token was revoked."


def test_a_revoked_token_is_refused_with_the_limiter_off(api, team, settings):
    settings.RATE_LIMIT_ENABLED = False
    warm(api)
    token_revoke(token=DeveloperToken.objects.get(token_hash=hash_token(api.token)), actor=team.member)
    assert api.get("/v1/ping").status_code == 401


def test_a_member_budget_set_while_cached_binds_the_next_run(api, team):
    warm(api)
    member_budget_set(membership=team.membership(team.member), monthly_budget=credits(0) + 1, actor=team.owner)
    assert authorize(api, run_id="r-1").json()["reserved"] == "0.000000001"


def test_a_role_change_is_seen_by_the_next_request(owner_api, api, team):
    warm(api)
    membership = team.membership(team.member)
    member_role_set(membership=membership, role="admin", actor=team.owner)
    cached = token_cache.token_cache_get(hash_token(api.token))
    assert cached[0].membership.role == "member"  # the entry is stale ...
    assert api.get("/v1/ping").status_code == 200
    assert token_cache.token_cache_get(hash_token(api.token))[0].membership.role == "admin"  # ... and was reloaded


def test_a_workspace_saved_elsewhere_is_reloaded(api, team):
    warm(api)
    workspace = team.workspace
    workspace.custom_requests_per_minute = 7
    workspace.save(update_fields=["custom_requests_per_minute"])  # the signal bumps the version
    assert api.get("/v1/ping")["X-RateLimit-Limit"] == "7"


def test_a_bump_for_another_workspace_keeps_the_entry(api, team, outsider):
    warm(api)
    access_versions_bump(workspace_ids=[team.workspace.pk + 10_000])
    with CaptureQueriesContext(connection) as context:
        assert api.get("/v1/ping").status_code == 200
    assert token_queries(context) == []


def test_a_new_token_of_the_same_member_is_its_own_entry(api, team):
    warm(api)
    other = Api(token_create(membership=team.membership(team.member), name="second").raw)
    assert other.get("/v1/ping").status_code == 200
    assert api.get("/v1/ping").status_code == 200


def test_an_entry_older_than_the_time_limit_is_reloaded(api, monkeypatch):
    warm(api)
    monkeypatch.setattr(token_cache, "MAX_AGE_SECONDS", -1)
    with CaptureQueriesContext(connection) as context:
        assert api.get("/v1/ping").status_code == 200
    assert len(token_queries(context)) == 1


def test_with_the_limiter_off_a_repeat_request_still_reads_no_token(api, settings):
    settings.RATE_LIMIT_ENABLED = False
    warm(api)
    with CaptureQueriesContext(connection) as context:
        assert api.get("/v1/ping").status_code == 200
    assert token_queries(context) == []
