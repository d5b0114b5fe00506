"""Hostile input always gets a clear 4xx (JSON on /v1/), never a 500 or a 503."""

import json
import logging

import pytest

from billing.models import Purchase, Workspace
from usage.models import Run

from tests.factories import PASSWORD

from .conftest import TWO_NODES, authorize

DEEP = "[" * 1000 + "]" * 1000


def _assert_api_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == code
    return response.json()["error"]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize("body", [DEEP, '{"nodes":' + DEEP + "}", '{"a":' * 1000 + "1" + "}" * 1000,
                                  '{"workflow":' + "[" * 30 + "]" * 30 + "}"])
def test_deeply_nested_json_is_a_400_on_authorize_and_complete(api, body):
    _assert_api_error(api.post("/v1/runs", raw=body), 400, "invalid_request")
    authorize(api)
    _assert_api_error(api.post("/v1/runs/r-1/complete", raw=body), 400, "invalid_request")
    assert Run.objects.get(public_id="r-1").completed_at is None


@pytest.mark.django_db
def test_an_unexpected_exception_on_the_api_is_a_logged_json_500_with_a_request_id(api, monkeypatch, caplog):
    def boom(**kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("usage.api.views.run_detail", boom)
    api.client.raise_request_exception = False
    with caplog.at_level(logging.ERROR):
        response = api.get("/v1/runs/r-1")
    message = _assert_api_error(response, 500, "internal_error")
    request_id = response.json()["error"]["request_id"]
    assert request_id in message and response["X-Request-Id"] == request_id
    assert any(request_id in record.getMessage() and record.exc_info for record in caplog.records)


@pytest.mark.django_db
def test_an_unknown_api_url_is_a_json_404(api):
    _assert_api_error(api.get("/v1/nope"), 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["to=9999-12-31", "from=0001-01-01", "from=1999-12-31", "to=2100-01-01"])
@pytest.mark.parametrize("path", ["/v1/runs", "/v1/usage", "/v1/usage/export.csv"])
def test_out_of_range_dates_are_a_400_on_the_api(api, path, query):
    message = _assert_api_error(api.get(f"{path}?{query}"), 400, "invalid_request")
    assert "between 2000-01-01 and 2099-12-31" in message


@pytest.mark.django_db
def test_the_usage_page_shows_a_form_error_for_an_out_of_range_date(client, team):
    client.login(email=team.owner.email, password=PASSWORD)
    response = client.get("/w/acme/settings/billing/usage/?to=9999-12-31")
    assert response.status_code == 200
    assert "Enter a date between 2000-01-01 and 2099-12-31" in response.content.decode()


@pytest.mark.django_db
def test_the_csv_download_refuses_bad_dates_before_the_first_byte(client, team):
    client.login(email=team.owner.email, password=PASSWORD)
    response = client.get("/w/acme/settings/billing/usage/export.csv?to=9999-12-31")
    assert response.status_code == 400 and not response.streaming
    assert "between 2000-01-01 and 2099-12-31" in response.content.decode()


@pytest.mark.django_db
def test_the_csv_download_with_dates_at_the_bounds_streams_completely(client, api, team):
    authorize(api)
    api.post("/v1/runs/r-1/complete", TWO_NODES)
    client.login(email=team.owner.email, password=PASSWORD)
    response = client.get("/w/acme/settings/billing/usage/export.csv?from=2000-01-01&to=2099-12-31")
    body = b"".join(response.streaming_content).decode()
    assert response.status_code == 200 and body.count("\n") == 3  # header + two node rows
    response = api.get("/v1/usage/export.csv?from=2000-01-01&to=2099-12-31")
    assert b"".join(response.streaming_content).decode().count("\n") == 3


@pytest.mark.django_db
def test_nul_bytes_in_paths_are_404(client, api, team):
    client.login(email=team.owner.email, password=PASSWORD)
    assert client.get("/w/acme/runs/%00/").status_code == 404
    _assert_api_error(api.get("/v1/runs/%00"), 404, "not_found")
    _assert_api_error(api.post("/v1/runs/%00/complete", TWO_NODES), 404, "not_found")


@pytest.mark.django_db
def test_nul_bytes_in_forms_are_400_and_change_nothing(client, team):
    client.login(email=team.owner.email, password=PASSWORD)
    assert client.post("/w/acme/settings/billing/buy/", {"pack": "\x00"}).status_code == 400
    assert client.post("/w/acme/settings/billing/plans/", {"plan": "\x00", "action": "upgrade"}).status_code == 400
    assert client.get("/w/acme/settings/billing/usage/?agent=%00").status_code == 400
    assert not Purchase.objects.exists()
    assert Workspace.objects.get(pk=team.workspace.pk).plan_id == "team"


@pytest.mark.django_db
def test_nul_bytes_in_api_json_strings_are_400(api):
    body = {"id": "r-\u0000", "workflow": "w", "agent": "a", "model": "gpt-4o"}
    _assert_api_error(api.post("/v1/runs", body), 400, "invalid_request")
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_a_refused_body_leaves_nothing_behind_for_the_next_request(api):
    """A thread validates every request with the same input serializer (usage.api.views._serializer):
    what one body got wrong, or left out, must not show up in the next one's answer or charge."""
    assert authorize(api, run_id="first").status_code == 201
    bad_node = {"name": "answer", "model": "gpt-4o", "input_tokens": "20000", "output_tokens": 3000}
    message = _assert_api_error(api.post("/v1/runs/first/complete", {"status": "succeeded", "nodes": [bad_node]}),
                                400, "invalid_request")
    assert "input_tokens" in message and "whole number" in message
    done = api.post("/v1/runs/first/complete", TWO_NODES)
    assert done.status_code == 200, done.content
    assert [node["name"] for node in done.json()["nodes"]] == ["classify", "answer"]
    assert done.json()["nodes"][1]["tools"] and not done.json()["nodes"][0]["tools"]

    message = _assert_api_error(api.post("/v1/runs", {"id": "second", "workflow": "support", "model": "gpt-4o"}),
                                400, "invalid_request")
    assert "agent" in message
    second = authorize(api, run_id="second", estimated_input_tokens=1000)
    assert second.status_code == 201, second.content
    third = api.post("/v1/runs", {"workflow": "support", "agent": "triage", "model": "gpt-4o"})
    assert third.status_code == 201 and third.json()["id"] not in ("first", "second")  # no id left over


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/runs", "/v1/runs/r-1/complete"])
def test_it_refuses_a_form_body_on_the_api_before_any_work(api, team, path):
    """A multipart or urlencoded POST was a 500: the NUL-byte check read the form, and the API view
    then read the consumed body (issue 25)."""
    from django.test import Client

    from billing.models import Wallet

    authorize(api)
    before = Wallet.objects.get(workspace=team.workspace).balance
    anonymous = Client().post(path, {"id": "r-2", "workflow": "w", "agent": "a", "model": "gpt-4o"})
    assert "Content-Type: application/json" in _assert_api_error(anonymous, 400, "invalid_request")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api.token}"}
    multipart = Client().post(path, {"id": "r-2", "status": "succeeded"}, **headers)
    _assert_api_error(multipart, 400, "invalid_request")
    urlencoded = Client().post(path, "id=r-2&status=succeeded", content_type="application/x-www-form-urlencoded",
                               **headers)
    _assert_api_error(urlencoded, 400, "invalid_request")
    assert Run.objects.filter(public_id="r-2").count() == 0
    assert Run.objects.get(public_id="r-1").completed_at is None
    assert Wallet.objects.get(workspace=team.workspace).balance == before
