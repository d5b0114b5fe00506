"""API helpers for the usage tests: a token per persona and a JSON client."""

import json

import pytest
from django.test import Client

from usage.tokens import token_create


class Api:
    def __init__(self, raw_token: str):
        self.client = Client()
        self.token = raw_token

    def _headers(self, token):
        return {"HTTP_AUTHORIZATION": f"Bearer {token or self.token}"}

    def get(self, path, params=None, token=None):
        return self.client.get(path, params or {}, **self._headers(token))

    def post(self, path, body=None, token=None, content_type="application/json", raw=None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(path, data, content_type=content_type, **self._headers(token))


@pytest.fixture
def api(team):
    """The member's token: runs started with it count against the member."""
    return Api(token_create(membership=team.membership(team.member), name="engine").raw)


@pytest.fixture
def owner_api(team):
    return Api(token_create(membership=team.membership(team.owner), name="owner").raw)


def authorize(api, run_id="r-1", model="gpt-4o", **extra):
    body = {"id": run_id, "workflow": "support", "agent": "triage", "model": model, **extra}
    return api.post("/v1/runs", body)


TWO_NODES = {"status": "succeeded", "nodes": [
    {"name": "classify", "model": "gpt-4o-mini", "input_tokens": 12000, "output_tokens": 800},
    {"name": "answer", "model": "gpt-4o", "input_tokens": 20000, "output_tokens": 3000,
     "tools": [{"name": "web_search", "calls": 2}]},
]}
