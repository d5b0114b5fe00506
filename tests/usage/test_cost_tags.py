"""Cost tags on runs (issue 29): validated, stored and returned, part of the idempotency body, a run
filter everywhere (API, Usage page, CSV), and a grouping of /v1/usage whose groups sum exactly to
its total under every filter."""

import csv
import io
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.test import Client

from billing.models import Wallet
from tests.factories import PASSWORD
from usage.models import Run
from usage.services import NodeInput, run_authorize, run_complete

from .conftest import authorize


def _complete(api, run_id, *, model="gpt-4o", input_tokens=10_000, output_tokens=1_000, status="succeeded"):
    return api.post(f"/v1/runs/{run_id}/complete", {"status": status, "nodes": [
        {"name": "n", "model": model, "input_tokens": input_tokens, "output_tokens": output_tokens}]})


@pytest.mark.django_db
def test_tags_are_stored_and_returned_with_the_run(api):
    tags = {"customer": "acme", "feature": "deep research", "env.region": "eu-west-1"}
    response = authorize(api, "r-1", tags=tags)
    assert response.status_code == 201 and response.json()["tags"] == tags
    assert Run.objects.get(public_id="r-1").tags == tags
    assert api.get("/v1/runs/r-1").json()["tags"] == tags
    assert _complete(api, "r-1").json()["tags"] == tags
    assert authorize(api, "r-2").json()["tags"] == {}


@pytest.mark.django_db
def test_tags_are_part_of_the_idempotency_body(api):
    assert authorize(api, "r-1", tags={"customer": "acme"}).status_code == 201
    replay = authorize(api, "r-1", tags={"customer": "acme"})
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    conflict = authorize(api, "r-1", tags={"customer": "globex"})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_conflict"
    assert authorize(api, "r-1").status_code == 409  # without the tags: another body too
    assert Run.objects.count() == 1


@pytest.mark.parametrize("tags, problem", [
    ({"Customer": "acme"}, "tag key"), ({"": "x"}, "tag key"), ({"a" * 41: "x"}, "tag key"),
    ({"cust omer": "x"}, "tag key"), ({"customer": ""}, "1 to 100"), ({"customer": "x" * 101}, "1 to 100"),
    ({"customer": "a\nb"}, "printable"), ({"customer": "nul\x00"}, "printable"), ({"customer": "\u200b"}, "printable"),
    ({"customer": 7}, "string value"), ({"customer": None}, "string value"), ({"customer": ["a"]}, "string value"),
    ({f"k{i}": "v" for i in range(11)}, "at most 10"), (["customer", "acme"], "object"), ("customer:acme", "object"),
])
@pytest.mark.django_db
def test_bad_tags_are_400_and_change_nothing(api, team, tags, problem):
    response = authorize(api, "r-1", tags=tags)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["message"].startswith("tags") and problem in error["message"]
    assert not Run.objects.exists() and Wallet.objects.get(workspace=team.workspace).reserved == 0


@pytest.mark.django_db
def test_ten_tags_of_the_longest_keys_and_values_are_taken(api):
    tags = {f"{i}{'k' * 39}": "é" * 100 for i in range(10)}
    assert authorize(api, "r-1", tags=tags).json()["tags"] == tags


@pytest.mark.django_db
def test_runs_are_filtered_by_a_tag(api):
    authorize(api, "r-1", tags={"customer": "acme", "env": "prod"})
    authorize(api, "r-2", tags={"customer": "globex"})
    authorize(api, "r-3")
    authorize(api, "r-4", tags={"customer": "acme:eu"})  # a value may hold a colon
    ids = lambda query: [r["id"] for r in api.get("/v1/runs", {"tag": query}).json()["results"]]  # noqa: E731
    assert ids("customer:acme") == ["r-1"]
    assert ids("customer:acme:eu") == ["r-4"]
    assert ids("env:prod") == ["r-1"]
    assert ids("customer:nobody") == []
    for bad in ("customer", "Customer:acme", ":acme", "customer:"):
        response = api.get("/v1/runs", {"tag": bad})
        assert response.status_code == 400 and "tag" in response.json()["error"]["message"], bad


@pytest.fixture
def tagged(api, team):
    """Finished runs for two customers and none, on two models and two agents, one failed, and one
    still running (it holds credits but has cost nothing yet)."""
    authorize(api, "a-1", tags={"customer": "acme"})
    _complete(api, "a-1")
    authorize(api, "a-2", tags={"customer": "acme", "env": "prod"}, agent="writer")
    _complete(api, "a-2", model="gpt-4o-mini", input_tokens=333_333, output_tokens=777)
    authorize(api, "g-1", tags={"customer": "globex"})
    _complete(api, "g-1", status="failed", input_tokens=123_457, output_tokens=0)
    authorize(api, "n-1")
    _complete(api, "n-1", model="claude-sonnet-4", input_tokens=31_337, output_tokens=4_242)
    authorize(api, "n-2", agent="writer", tags={"env": "prod"})
    _complete(api, "n-2", input_tokens=1, output_tokens=1)
    authorize(api, "open", tags={"customer": "acme"})
    return api


FILTERS = [{}, {"agent": "triage"}, {"agent": "writer"}, {"model": "gpt-4o"}, {"model": "gpt-4o-mini"},
           {"status": "failed"}, {"status": "succeeded"}, {"tag": "customer:acme"}, {"tag": "env:prod"},
           {"tag": "customer:acme", "model": "gpt-4o"}, {"from": "2000-01-01"}]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: "&".join(f"{k}={v}" for k, v in f.items()) or "none")
@pytest.mark.django_db
def test_the_tag_groups_of_usage_sum_exactly_to_its_total_under_every_filter(tagged, filters):
    if "from" in filters:
        filters = {**filters, "from": (datetime.now(dt_timezone.utc) - timedelta(days=1)).date().isoformat()}
    plain = tagged.get("/v1/usage", filters).json()
    body = tagged.get("/v1/usage", {**filters, "group_by": "tag:customer"}).json()
    assert body["group_by"] == "tag:customer"
    groups = body["by_tag"]
    total = sum(Decimal(group["credits"]) for group in groups)
    assert total == Decimal(body["range_total"]) == Decimal(plain["range_total"])
    if "from" not in filters:  # this period: the groups also sum to this period's charged credits
        assert total == Decimal(body["this_period"])
    # Every finished run in the selection counts in exactly one group (the model filter of the
    # figures matches a node's model; the runs list's matches the model a run was authorized for).
    finished = tagged.get("/v1/runs", {k: v for k, v in filters.items() if k not in ("from", "model")}).json()["results"]
    expected_runs = {r["id"] for r in finished if r["status"] != "running"
                     and (not filters.get("model") or any(n["model"] == filters["model"] for n in r["nodes"]))}
    assert sum(group["runs"] for group in groups) == len(expected_runs)
    values = [group["value"] for group in groups]
    assert len(values) == len(set(values))


@pytest.mark.django_db
def test_usage_grouped_by_a_tag_names_each_value_and_the_runs_without_it(tagged):
    body = tagged.get("/v1/usage", {"group_by": "tag:customer"}).json()
    by_value = {group["value"]: group for group in body["by_tag"]}
    assert set(by_value) == {"acme", "globex", None}
    assert by_value["acme"]["runs"] == 2 and by_value["globex"]["runs"] == 1 and by_value[None]["runs"] == 2
    assert body["by_tag"][-1]["value"] is None  # the runs without the key come last
    assert "by_tag" not in tagged.get("/v1/usage").json()
    for bad in ("customer", "tag:", "tag:Customer", "model"):
        response = tagged.get("/v1/usage", {"group_by": bad})
        assert response.status_code == 400 and "group_by" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_a_tag_key_that_looks_like_an_index_or_a_path_groups_by_its_own_value(api):
    authorize(api, "r-1", tags={"0": "zero", "a__b": "path"})
    _complete(api, "r-1")
    assert api.get("/v1/usage", {"group_by": "tag:0"}).json()["by_tag"][0]["value"] == "zero"
    assert api.get("/v1/usage", {"group_by": "tag:a__b"}).json()["by_tag"][0]["value"] == "path"


def _rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.django_db
def test_the_detailed_csv_has_a_tags_column_neutralised_like_every_text_cell(api):
    authorize(api, "r-1", tags={"customer": "=HYPERLINK(\"http://evil\")", "note": "a, \"quoted\""})
    _complete(api, "r-1")
    authorize(api, "r-2")
    _complete(api, "r-2")
    rows = {row["run_id"]: row for row in _rows(api.get("/v1/usage/export.csv", {"columns": "detailed"}))}
    assert rows["r-2"]["tags"] == ""
    cell = rows["r-1"]["tags"]
    assert cell.startswith("{") and not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    import json
    assert json.loads(cell) == {"customer": "=HYPERLINK(\"http://evil\")", "note": "a, \"quoted\""}
    default = _rows(api.get("/v1/usage/export.csv"))
    assert "tags" not in default[0]


@pytest.mark.django_db
def test_the_csv_follows_the_tag_filter(api):
    authorize(api, "r-1", tags={"customer": "acme"})
    _complete(api, "r-1")
    authorize(api, "r-2", tags={"customer": "globex"})
    _complete(api, "r-2")
    rows = _rows(api.get("/v1/usage/export.csv", {"tag": "customer:acme", "columns": "detailed"}))
    assert [row["run_id"] for row in rows] == ["r-1"]


@pytest.mark.django_db
def test_the_usage_page_filters_by_tag_and_shows_spend_by_tag_escaped(team):
    membership = team.membership(team.member)
    evil = "<script>alert(1)</script>"
    for run_id, tags in (("r-1", {"customer": evil}), ("r-2", {"customer": "globex"}), ("r-3", {})):
        run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id=run_id, tags=tags)
        run_complete(workspace=team.workspace, public_id=run_id, status="succeeded",
                     nodes=[NodeInput("n", "gpt-4o", 200_000, 0)])
    client = Client()
    client.login(email=team.member.email, password=PASSWORD)
    page = client.get("/w/acme/settings/billing/usage/", {"by_tag": "customer"})
    html = page.content.decode()
    assert page.status_code == 200 and "Spend by tag" in html
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count('data-testid="by-tag"') == 3 and "(no customer tag)" in html
    filtered = client.get("/w/acme/settings/billing/usage/", {"tag": "customer:globex", "by_tag": "customer"})
    html = filtered.content.decode()
    assert html.count('data-testid="by-tag"') == 1 and 'data-value="globex"' in html
    assert 'data-testid="range-total" title="1 credits"' in html
    bad = client.get("/w/acme/settings/billing/usage/", {"tag": "nope"})
    assert bad.status_code == 200 and "tag filter must be written key:value" in bad.content.decode()
