"""The credit forecast of the Overview and GET /v1/billing/balance (usage/forecast.py)."""

import pytest
from django.urls import reverse

from tests.factories import PASSWORD
from tests.usage.conftest import authorize

# 150 gpt-4o-mini input tokens at 0.3 credits per 1M: 0.000045 credits; a full Team wallet lasts
# hundreds of millions of days at that rate, past the last date Python can hold.
TINY_RUN = {"status": "succeeded", "nodes": [{"name": "n", "model": "gpt-4o-mini", "input_tokens": 150,
                                               "output_tokens": 0}]}


def _tiny_run(api):
    assert authorize(api, "tiny", model="gpt-4o-mini").status_code == 201
    assert api.post("/v1/runs/tiny/complete", TINY_RUN).status_code == 200


def test_it_says_more_than_a_year_for_a_workspace_that_uses_little(client, team, owner_api):
    _tiny_run(owner_api)
    response = owner_api.get("/v1/billing/balance")
    assert response.status_code == 200
    assert response.json()["forecast"]["runs_out_on"] is None
    assert response.json()["forecast"]["runs_out_beyond_horizon"] is True
    client.login(email=team.owner.email, password=PASSWORD)
    page = client.get(reverse("billing:overview", kwargs={"slug": team.workspace.slug}))
    assert page.status_code == 200
    assert "credits last more than a year" in page.content.decode()

