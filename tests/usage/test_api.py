"""Every v1 endpoint and every error code of SPEC section 7."""

import json
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from billing.models import LedgerEntry, Wallet, credits
from budgets.ratelimit import LimiterUnavailable, RateLimitDecision
from usage.models import DeveloperToken, Run
from usage.tokens import token_create, token_revoke

from .conftest import TWO_NODES, Api, authorize


def wallet_of(workspace):
    wallet = Wallet.objects.get(workspace=workspace)
    return wallet.monthly, wallet.purchased, wallet.reserved, wallet.running_runs


@pytest.mark.django_db
def test_it_answers_ping_with_rate_limit_headers(api):
    response = api.get("/v1/ping")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "workspace": "acme"}
    assert response["X-RateLimit-Limit"] == "300"
    assert int(response["X-RateLimit-Remaining"]) <= 299
    assert "X-RateLimit-Reset" in response


@pytest.mark.django_db
def test_it_returns_the_balance(api, team):
    authorize(api)
    body = api.get("/v1/billing/balance").json()
    assert body["workspace"] == "acme" and body["plan"] == "team" and body["edition"] == "cloud"
    assert body["balance"] == "5000" and body["reserved"] == "10" and body["available"] == "4990"
    assert body["buckets"] == {"monthly": "5000", "purchased": "0"}
    assert body["used_this_period"] == "0"
    assert body["budget"] == {"monthly_limit": None, "used": "10", "percent": None, "state": "none"}
    assert body["rate_limit"] == {"requests_per_minute": 300, "concurrent_runs": 20}
    assert set(body["period"]) == {"start", "end"}


@pytest.mark.django_db
def test_it_lists_rates_in_force(api):
    body = api.get("/v1/billing/rates").json()
    models = {m["id"]: m for m in body["models"]}
    assert models["gpt-4o"]["input_per_million"] == "5" and models["gpt-4o"]["output_per_million"] == "15"
    assert models["gpt-4o-mini"]["input_per_million"] == "0.3"
    assert {"name": "web_search", "per_call": "0.01"} in body["tools"]


@pytest.mark.django_db
def test_it_authorizes_with_max_output_tokens(api):
    response = authorize(api, estimated_input_tokens=1_000_000, max_output_tokens=10**9)
    assert response.status_code == 201
    body = response.json()
    # 10 credits reserved; 1M input at 5/M = 5 credits; 5 credits / 15 per M output = 333,333 tokens
    assert body["reserved"] == "10" and body["max_output_tokens"] == 333_333
    assert body["id"] == "r-1" and body["expires_at"].endswith("Z")


@pytest.mark.django_db
def test_it_replays_authorize_with_the_same_answer(api):
    first = authorize(api)
    second = authorize(api)
    assert second.status_code == first.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Run.objects.count() == 1


@pytest.mark.django_db
def test_it_refuses_the_same_id_with_another_body(api):
    authorize(api)
    response = authorize(api, model="gpt-4o-mini")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"


@pytest.mark.django_db
def test_it_completes_and_serves_the_run(api, team):
    authorize(api)
    response = api.post("/v1/runs/r-1/complete", TWO_NODES)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded" and body["credits"] == "0.16956" and body["reserved"] == "10"
    assert body["member"] == "member@acme.test" and body["workflow"] == "support" and body["agent"] == "triage"
    assert body["over_reservation"] is False and body["completed_at"]
    assert body["nodes"][0] == {"name": "classify", "model": "gpt-4o-mini", "input_tokens": 12000,
                                "output_tokens": 800, "cached_input_tokens": 0, "cache_write_tokens": 0,
                                "reasoning_tokens": 0, "token_credits": "0.00456", "tool_credits": "0",
                                "credits": "0.00456", "tools": []}
    assert api.get("/v1/runs/r-1").json() == body
    replay = api.post("/v1/runs/r-1/complete", TWO_NODES)
    assert replay.status_code == 200 and replay.json() == body
    assert LedgerEntry.objects.filter(kind="charge", workspace=team.workspace).count() == 1
    conflict = api.post("/v1/runs/r-1/complete", {**TWO_NODES, "status": "failed"})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_conflict"


@pytest.mark.django_db
def test_it_lists_runs_with_filters_and_cursor(api):
    for index in range(5):
        authorize(api, run_id=f"r-{index}", model="gpt-4o" if index % 2 else "gpt-4o-mini")
    api.post("/v1/runs/r-1/complete", TWO_NODES)
    page = api.get("/v1/runs", {"limit": 2}).json()
    assert [r["id"] for r in page["results"]] == ["r-4", "r-3"]
    page2 = api.get("/v1/runs", {"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [r["id"] for r in page2["results"]] == ["r-2", "r-1"]
    page3 = api.get("/v1/runs", {"limit": 2, "cursor": page2["next_cursor"]}).json()
    assert [r["id"] for r in page3["results"]] == ["r-0"] and page3["next_cursor"] is None
    assert [r["id"] for r in api.get("/v1/runs", {"status": "succeeded"}).json()["results"]] == ["r-1"]
    assert [r["id"] for r in api.get("/v1/runs", {"model": "gpt-4o"}).json()["results"]] == ["r-3", "r-1"]
    assert api.get("/v1/runs", {"agent": "nobody"}).json()["results"] == []
    today = timezone.now().date().isoformat()
    assert len(api.get("/v1/runs", {"from": today, "to": today}).json()["results"]) == 5
    assert api.get("/v1/runs", {"from": "2000-01-01", "to": "2000-01-02"}).json()["results"] == []
    for bad in ({"status": "weird"}, {"from": "yesterday"}, {"cursor": "!!!"}, {"limit": 0}):
        response = api.get("/v1/runs", bad)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request", bad


@pytest.mark.django_db
def test_it_returns_usage_figures(api):
    authorize(api)
    api.post("/v1/runs/r-1/complete", TWO_NODES)
    body = api.get("/v1/usage").json()
    assert body["this_period"] == "0.16956" and body["range_total"] == "0.16956"
    assert body["available"] == "4999.83044"
    assert body["daily"][-1] == {"date": timezone.now().date().isoformat(), "credits": "0.16956"}
    assert {row["model"] for row in body["by_model"]} == {"gpt-4o", "gpt-4o-mini"}
    assert body["by_agent"][0]["agent"] == "triage" and body["by_agent"][0]["runs"] == 1
    assert set(body["definitions"]) == {"available", "this_period", "daily_average", "projected"}
    assert api.get("/v1/usage", {"from": "2025-02-01", "to": "2025-01-01"}).status_code == 400


@pytest.mark.django_db
def test_it_exports_csv(api):
    authorize(api)
    api.post("/v1/runs/r-1/complete", TWO_NODES)
    response = api.get("/v1/usage/export.csv")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "date,workflow,agent,model,input_tokens,output_tokens,credits,status"
    assert [line.split(",")[3:7] for line in lines[1:]] == [
        ["gpt-4o", "20000", "3000", "0.165"], ["gpt-4o-mini", "12000", "800", "0.00456"]]


# --- 401 / 404


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer lf_nope", "Bearer not-a-token", "Token lf_x", "Bearer a b"])
def test_it_refuses_missing_or_bad_tokens(header, team):
    client = Api("")
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.client.get("/v1/billing/balance", **extra)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.django_db
def test_a_revoked_token_fails_at_once(api):
    assert api.get("/v1/ping").status_code == 200
    token = DeveloperToken.objects.get(name="engine")
    token_revoke(token=token)
    response = api.get("/v1/ping")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert authorize(api).status_code == 401
    assert Run.objects.count() == 0


@pytest.mark.django_db
def test_it_records_last_used_at_most_once_a_minute(api):
    api.get("/v1/ping")
    token = DeveloperToken.objects.get(name="engine")
    first = token.last_used_at
    assert first is not None
    api.get("/v1/ping")
    token.refresh_from_db()
    assert token.last_used_at == first


@pytest.mark.django_db
def test_it_hides_other_workspaces_runs(api, outsider):
    from billing.models import Membership

    authorize(api)
    theirs = Api(token_create(membership=Membership.objects.get(user=outsider)).raw)
    for response in (theirs.get("/v1/runs/r-1"), theirs.post("/v1/runs/r-1/complete", TWO_NODES)):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert theirs.get("/v1/runs").json()["results"] == []
    assert Run.objects.get(public_id="r-1").status == "running"


@pytest.mark.django_db
def test_it_answers_404_for_an_unknown_run(api):
    assert api.get("/v1/runs/nope").json()["error"]["code"] == "not_found"


# --- 400: SPEC section 10, nothing charged


BAD_COMPLETES = {
    "negative tokens": {"status": "succeeded", "nodes": [{"name": "n", "model": "gpt-4o", "input_tokens": -1, "output_tokens": 1}]},
    "fractional tokens": {"status": "succeeded", "nodes": [{"name": "n", "model": "gpt-4o", "input_tokens": 1.5, "output_tokens": 1}]},
    "float tokens": {"status": "succeeded", "nodes": [{"name": "n", "model": "gpt-4o", "input_tokens": 2.0, "output_tokens": 1}]},
    "string tokens": {"status": "succeeded", "nodes": [{"name": "n", "model": "gpt-4o", "input_tokens": "12", "output_tokens": 1}]},
    "non-numeric tokens": {"status": "succeeded", "nodes": [{"name": "n", "model": "gpt-4o", "input_tokens": "many", "output_tokens": 1}]},
    "boolean tokens": {"status": "succeeded", "nodes": [{"name": "n", "model": "gpt-4o", "input_tokens": True, "output_tokens": 1}]},
    "absurd tokens": {"status": "succeeded", "nodes": [{"name": "n", "model": "gpt-4o", "input_tokens": 10**12 + 1, "output_tokens": 1}]},
    "negative tool calls": {"status": "succeeded", "nodes": [{"name": "n", "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1, "tools": [{"name": "web_search", "calls": -2}]}]},
    "too many nodes": {"status": "succeeded", "nodes": [{"name": f"n{i}", "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1} for i in range(1001)]},
    "unknown status": {"status": "exploded", "nodes": []},
    "running status": {"status": "running", "nodes": []},
    "missing nodes": {"status": "succeeded"},
    "nodes not a list": {"status": "succeeded", "nodes": {"a": 1}},
    "node missing model": {"status": "succeeded", "nodes": [{"name": "n", "input_tokens": 1, "output_tokens": 1}]},
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(BAD_COMPLETES))
def test_it_refuses_bad_completions_and_charges_nothing(case, api, team):
    authorize(api)
    before = wallet_of(team.workspace)
    response = api.post("/v1/runs/r-1/complete", BAD_COMPLETES[case])
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["message"]
    assert wallet_of(team.workspace) == before
    assert Run.objects.get(public_id="r-1").completed_at is None
    assert not LedgerEntry.objects.filter(kind="charge").exists()


@pytest.mark.django_db
def test_it_refuses_an_unknown_model_on_complete_and_charges_nothing(api, team):
    authorize(api)
    before = wallet_of(team.workspace)
    response = api.post("/v1/runs/r-1/complete", {"status": "succeeded", "nodes": [
        {"name": "n", "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1},
        {"name": "m", "model": "gpt-9", "input_tokens": 1, "output_tokens": 1}]})
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_model"
    assert wallet_of(team.workspace) == before


BAD_AUTHORIZES = {
    "missing workflow": {"agent": "a", "model": "gpt-4o"},
    "blank agent": {"workflow": "w", "agent": "  ", "model": "gpt-4o"},
    "numeric workflow": {"workflow": 12, "agent": "a", "model": "gpt-4o"},
    "negative estimate": {"workflow": "w", "agent": "a", "model": "gpt-4o", "estimated_input_tokens": -5},
    "fractional max output": {"workflow": "w", "agent": "a", "model": "gpt-4o", "max_output_tokens": 0.5},
    "absurd estimate": {"workflow": "w", "agent": "a", "model": "gpt-4o", "estimated_input_tokens": 10**13},
    "long id": {"id": "x" * 101, "workflow": "w", "agent": "a", "model": "gpt-4o"},
    "id with a slash": {"id": "a/b", "workflow": "w", "agent": "a", "model": "gpt-4o"},
    "numeric id": {"id": 7, "workflow": "w", "agent": "a", "model": "gpt-4o"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(BAD_AUTHORIZES))
def test_it_refuses_bad_authorizations(case, api, team):
    before = wallet_of(team.workspace)
    response = api.post("/v1/runs", BAD_AUTHORIZES[case])
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"
    assert wallet_of(team.workspace) == before and Run.objects.count() == 0


@pytest.mark.django_db
def test_it_refuses_an_unknown_model_on_authorize(api, team):
    response = authorize(api, model="gpt-9")
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_model"
    assert Run.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("raw,content_type", [
    ('{"workflow": "w", ', "application/json"),
    ("[1, 2]", "application/json"),
    ('"text"', "application/json"),
    ("workflow=w&agent=a&model=gpt-4o", "application/x-www-form-urlencoded"),
    ('{"workflow": "w", "agent": "a", "model": "gpt-4o"}', "text/plain"),
])
def test_it_refuses_malformed_bodies(raw, content_type, api, team):
    before = wallet_of(team.workspace)
    response = api.post("/v1/runs", raw=raw, content_type=content_type)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_request"
    assert wallet_of(team.workspace) == before and Run.objects.count() == 0


@pytest.mark.django_db
def test_it_refuses_bodies_over_one_megabyte(api, team):
    authorize(api)
    before = wallet_of(team.workspace)
    body = json.dumps({"status": "succeeded", "nodes": [], "pad": "x" * (1024 * 1024)})
    response = api.post("/v1/runs/r-1/complete", raw=body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert wallet_of(team.workspace) == before


# --- 402 / 429 / 503


@pytest.mark.django_db
def test_it_refuses_with_402_when_a_budget_binds(api, team):
    from usage.models import Agent

    Agent.objects.create(workspace=team.workspace, name="triage", max_per_day=1, max_per_run=1, max_per_month=credits(50))
    authorize(api, run_id="a")
    response = authorize(api, run_id="b")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "agent_daily_budget_exceeded"


@pytest.mark.django_db
def test_it_refuses_with_402_without_credits(api, team):
    from billing.ledger import credits_adjust

    wallet = Wallet.objects.get(workspace=team.workspace)
    Wallet.objects.filter(pk=wallet.pk).update(monthly=0)
    response = authorize(api)
    assert response.status_code == 402 and response.json()["error"]["code"] == "insufficient_credits"
    assert credits_adjust  # the refusal message points to buying credits


@pytest.mark.django_db
def test_it_limits_concurrent_runs_with_429(api, team):
    from billing.models import Workspace

    Workspace.objects.filter(pk=team.workspace.pk).update(custom_concurrent_runs=1)
    assert authorize(api, run_id="one").status_code == 201
    response = authorize(api, run_id="two")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "concurrency_limit"
    assert int(response["Retry-After"]) >= 1


@pytest.mark.django_db
def test_it_rate_limits_with_429_and_retry_after(api):
    refused = RateLimitDecision(allowed=False, limit=300, remaining=0, reset_seconds=12, retry_after=12)
    with mock.patch("usage.api.views.limiter_check", return_value=refused):
        response = authorize(api)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert response["Retry-After"] == "12" and response["X-RateLimit-Remaining"] == "0"
    assert Run.objects.count() == 0


@pytest.mark.django_db
def test_it_fails_closed_when_the_limiter_is_unreachable(api):
    with mock.patch("usage.api.views.limiter_check", side_effect=LimiterUnavailable("down")):
        response = authorize(api)
    assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
    assert Run.objects.count() == 0


@pytest.mark.django_db
def test_it_fails_closed_when_the_database_is_unreachable(api):
    with mock.patch("usage.api.views.run_authorize", side_effect=OperationalError("connection refused")):
        response = authorize(api)
    assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"


@pytest.mark.django_db
def test_it_serves_the_openapi_schema_and_docs(client):
    schema = client.get("/v1/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/v1/runs", "/v1/runs/{run_id}/complete", "/v1/billing/balance", "/v1/usage/export.csv"):
        assert path in text
    assert "web_search" in text and "Idempotent-Replayed" in text
    docs = client.get("/v1/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


@pytest.mark.django_db
def test_it_charges_community_edition_nothing(api, settings, team):
    settings.BILLING_EDITION = "community"
    authorize(api)
    body = api.post("/v1/runs/r-1/complete", TWO_NODES).json()
    assert body["credits"] == "0" and body["nodes"][1]["input_tokens"] == 20000
    assert credits(0) == 0
