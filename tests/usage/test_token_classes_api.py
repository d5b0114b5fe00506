"""Token classes through the API (issue 28): complete takes cached input, cache write and reasoning
tokens, or a provider's usage object; the subset rules and unknown fields are 400 with nothing
charged; the run and the rates carry the classes."""

import json
from pathlib import Path

import pytest

from billing.models import Wallet, credits
from operations.reconcile import reconcile_workspace
from usage.api.serializers import CompleteIn
from usage.api.views import _validated
from usage.models import Run, RunNode
from usage.services import request_hash

from .conftest import authorize

FIXTURES = Path(__file__).parent / "fixtures"


def usage_object(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def complete(api, run_id, *nodes):
    return api.post(f"/v1/runs/{run_id}/complete", {"status": "succeeded", "nodes": list(nodes)})


def charged(team) -> int:
    wallet = Wallet.objects.get(workspace=team.workspace)
    return wallet.monthly + wallet.purchased


@pytest.mark.django_db
def test_it_charges_cached_tokens_at_the_cached_rate(api, team):
    # The report: a Sonnet node with 600,000 of its 1,000,000 input tokens cached was charged
    # as if all were plain input (9 credits).
    assert authorize(api, model="claude-sonnet-4").status_code == 201
    response = complete(api, "r-1", {"name": "agent", "model": "claude-sonnet-4", "input_tokens": 1_000_000,
                                     "cached_input_tokens": 600_000, "output_tokens": 100_000})
    assert response.status_code == 200, response.content
    node = response.json()["nodes"][0]
    # 400,000 x 6 + 600,000 x 0.6 + 100,000 x 30, per 1M = 2.4 + 0.36 + 3
    assert response.json()["credits"] == "5.76" and node["token_credits"] == "5.76"
    assert (node["cached_input_tokens"], node["cache_write_tokens"], node["reasoning_tokens"]) == (600_000, 0, 0)


@pytest.mark.django_db
def test_it_charges_a_node_with_all_four_classes_exactly(api, team):
    before = charged(team)
    assert authorize(api, model="claude-opus-4").status_code == 201
    response = complete(api, "r-1", {"name": "agent", "model": "claude-opus-4", "input_tokens": 100_000,
                                     "cached_input_tokens": 60_000, "cache_write_tokens": 30_000,
                                     "output_tokens": 20_000, "reasoning_tokens": 5_000})
    assert response.status_code == 200, response.content
    # 10,000 x 30 + 60,000 x 3 + 30,000 x 37.5 + 20,000 x 150 (reasoning at the output rate), per 1M
    expected = credits("0.3") + credits("0.18") + credits("1.125") + credits("3")
    assert response.json()["credits"] == "4.605"
    assert before - charged(team) == expected
    node = RunNode.objects.get()
    assert (node.cached_input_nanos_per_token, node.cache_write_nanos_per_token, node.reasoning_nanos_per_token) == (
        3000, 37500, 150000)
    assert reconcile_workspace(workspace=team.workspace) == []
    # The run's API answer carries the classes per node.
    detail = api.get("/v1/runs/r-1").json()["nodes"][0]
    assert (detail["cached_input_tokens"], detail["cache_write_tokens"], detail["reasoning_tokens"]) == (
        60_000, 30_000, 5_000)


@pytest.mark.django_db
def test_a_node_without_classes_validates_to_the_same_body_so_replays_keep_their_hash():
    body = {"status": "succeeded", "nodes": [{"name": "a", "model": "gpt-4o", "input_tokens": 5, "output_tokens": 1,
                                              "tools": [{"name": "web_search", "calls": 1}]}]}
    assert request_hash(_validated(CompleteIn, body)) == request_hash(body)


@pytest.mark.django_db
@pytest.mark.parametrize("node, field", [
    ({"input_tokens": 100, "output_tokens": 10, "cached_input_tokens": 101}, "exceed input_tokens"),
    ({"input_tokens": 100, "output_tokens": 10, "cached_input_tokens": 60, "cache_write_tokens": 41},
     "exceed input_tokens"),
    ({"input_tokens": 100, "output_tokens": 10, "reasoning_tokens": 11}, "exceed output_tokens"),
])
def test_it_refuses_classes_that_exceed_their_parent_and_charges_nothing(api, team, node, field):
    assert authorize(api).status_code == 201
    before = charged(team)
    response = complete(api, "r-1", {"name": "fine", "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1},
                        {"name": "bad", "model": "gpt-4o", **node})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and field in error["message"] and "nodes.1" in error["message"]
    assert charged(team) == before and not RunNode.objects.exists()
    assert Run.objects.get().status == Run.RUNNING


@pytest.mark.django_db
@pytest.mark.parametrize("path, body, named", [
    ("/v1/runs", {"workflow": "w", "agent": "a", "model": "gpt-4o", "estimated_output_tokens": 5},
     "estimated_output_tokens"),
    ("/v1/runs/r-1/complete", {"status": "succeeded", "nodes": [], "note": "x"}, "note"),
    ("/v1/runs/r-1/complete", {"status": "succeeded", "nodes": [
        {"name": "n", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 1, "cached_tokens": 5}]},
     "nodes.0.cached_tokens"),
    ("/v1/runs/r-1/complete", {"status": "succeeded", "nodes": [
        {"name": "n", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 1,
         "tools": [{"name": "web_search", "calls": 1, "cost": 3}]}]},
     "nodes.0.tools.0.cost"),
])
def test_it_refuses_unknown_fields_naming_them(api, team, path, body, named):
    assert authorize(api).status_code == 201
    before = charged(team)
    response = api.post(path, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["message"].startswith(f"{named}: unknown field")
    assert charged(team) == before and not RunNode.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("usage_format, fixture, classes, cost", [  # cost: the worked examples in docs/usage-and-api.md
    # openai: prompt_tokens includes the cached tokens, completion_tokens the reasoning ones.
    ("openai", "openai_chat_completion_usage.json",
     {"input_tokens": 2006, "cached_input_tokens": 1920, "output_tokens": 300, "reasoning_tokens": 192}, "0.00973"),
    # anthropic: input_tokens excludes cache reads and writes, so they are added.
    ("anthropic", "anthropic_messages_usage.json",
     {"input_tokens": 21 + 186898 + 1188, "cached_input_tokens": 186898, "cache_write_tokens": 1188,
      "output_tokens": 393}, "0.1329648"),
    # gemini: candidatesTokenCount excludes thoughtsTokenCount, which Google bills as output.
    ("gemini", "gemini_usage_metadata.json",
     {"input_tokens": 12000, "cached_input_tokens": 8000, "output_tokens": 450 + 1200, "reasoning_tokens": 1200},
     "0.001894"),
])
def test_a_provider_usage_object_is_charged_what_the_same_tokens_as_classes_are(
        api, team, usage_format, fixture, classes, cost):
    model = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4", "gemini": "gemini-2.0-flash"}[usage_format]
    assert authorize(api, run_id="as-usage", model=model).status_code == 201
    assert authorize(api, run_id="as-classes", model=model).status_code == 201
    before = charged(team)
    by_usage = complete(api, "as-usage", {"name": "n", "model": model, "usage_format": usage_format,
                                          "usage": usage_object(fixture)})
    assert by_usage.status_code == 200, by_usage.content
    middle = charged(team)
    by_classes = complete(api, "as-classes", {"name": "n", "model": model, **classes})
    assert by_classes.status_code == 200, by_classes.content
    assert by_usage.json()["credits"] == by_classes.json()["credits"] == cost
    assert before - middle == middle - charged(team)
    node = by_usage.json()["nodes"][0]
    for name in ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens"):
        assert node[name] == classes.get(name, 0), name
    assert reconcile_workspace(workspace=team.workspace) == []


@pytest.mark.django_db
@pytest.mark.parametrize("node, named", [
    ({"usage_format": "gemini", "usage": {"prompt_token_count": 100, "candidates_token_count": 5}},
     "usage: usage.promptTokenCount is required"),
    ({"usage_format": "openai", "usage": {"prompt_tokens": "100", "completion_tokens": 5}},
     "usage: usage.prompt_tokens must be a whole number"),
    ({"usage_format": "openai", "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                                          "prompt_tokens_details": {"cached_tokens": 11}}}, "exceed input_tokens"),
    ({"usage_format": "anthropic"}, "usage: This field is required"),
    ({"usage_format": "anthropic", "usage": {"input_tokens": 1, "output_tokens": 1}, "input_tokens": 1},
     "input_tokens: send either"),
    ({"usage_format": "mistral", "usage": {}}, "usage_format:"),
    ({}, "input_tokens: This field is required"),
])
def test_it_refuses_a_usage_object_it_cannot_price(api, team, node, named):
    assert authorize(api).status_code == 201
    before = charged(team)
    response = complete(api, "r-1", {"name": "n", "model": "gpt-4o", **node})
    assert response.status_code == 400, response.content
    assert named in response.json()["error"]["message"]
    assert charged(team) == before


@pytest.mark.django_db
def test_it_sizes_max_output_tokens_with_the_cached_input_rate(api, team):
    plain = authorize(api, run_id="plain", estimated_input_tokens=1_000_000).json()
    cached = authorize(api, run_id="cached", estimated_input_tokens=1_000_000,
                       estimated_cached_input_tokens=1_000_000).json()
    assert plain["reserved"] == cached["reserved"] == "10"  # the agent's default max per run
    # gpt-4o: 10 - 1M x 5 = 5 credits at 15 per 1M; cached: 10 - 1M x 2.5 = 7.5 credits.
    assert (plain["max_output_tokens"], cached["max_output_tokens"]) == (333_333, 500_000)


@pytest.mark.django_db
def test_it_refuses_more_cached_input_than_input_at_authorize(api, team):
    response = authorize(api, estimated_input_tokens=10, estimated_cached_input_tokens=11)
    assert response.status_code == 400 and "estimated_cached_input_tokens" in response.json()["error"]["message"]
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_it_lists_every_class_rate(api):
    models = {model["id"]: model for model in api.get("/v1/billing/rates").json()["models"]}
    sonnet = models["claude-sonnet-4"]
    assert (sonnet["input_per_million"], sonnet["cached_input_per_million"], sonnet["cache_write_per_million"],
            sonnet["output_per_million"], sonnet["reasoning_per_million"]) == ("6", "0.6", "7.5", "30", "30")
    gpt = models["gpt-4o"]
    assert (gpt["cached_input_per_million"], gpt["cache_write_per_million"]) == ("2.5", "5")  # write: the input rate
    assert models["gemini-2.0-flash"]["cached_input_per_million"] == "0.038"
