"""SQL statements per authorize and per complete, authentication included, independent of node count
(SPEC section 11, the `queries` bench): authorize <= 10, complete <= 12."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from usage.models import Agent, DeveloperToken, Workflow

from .conftest import authorize


def statements(context) -> int:
    """Statements as a served request makes them: the test's own transaction turns the request's
    BEGIN and COMMIT into savepoints, so those two count in place of the savepoints."""
    return 2 + sum(1 for q in context.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT")))


@pytest.mark.django_db
@pytest.mark.parametrize("node_count", [1, 100])
def test_it_authorizes_and_completes_in_a_bounded_number_of_statements(node_count, api, team):
    # Steady state: the workflow and agent exist, and the token was used within the minute.
    Workflow.objects.create(workspace=team.workspace, name="support")
    Agent.objects.create(workspace=team.workspace, name="triage")
    DeveloperToken.objects.update(last_used_at=timezone.now())
    for warm_up in ("r-a", "r-b"):  # a process learns a token's workspace first, then caches it
        assert authorize(api, run_id=warm_up).status_code == 201
    with CaptureQueriesContext(connection) as authorize_queries:
        assert authorize(api).status_code == 201
    nodes = [{"name": f"n{i}", "model": "gpt-4o" if i % 2 else "gpt-4o-mini", "input_tokens": 100, "output_tokens": 10,
              "tools": [{"name": "web_search", "calls": 1}]} for i in range(node_count)]
    for node in nodes[::2]:  # token classes ride in the same statements (issue 28)
        node.update(cached_input_tokens=60, cache_write_tokens=10, reasoning_tokens=5)
    with CaptureQueriesContext(connection) as complete_queries:
        response = api.post("/v1/runs/r-1/complete", {"status": "succeeded", "nodes": nodes})
    assert response.status_code == 200 and len(response.json()["nodes"]) == node_count
    assert statements(authorize_queries) <= 10, [q["sql"][:90] for q in authorize_queries.captured_queries]
    assert statements(complete_queries) <= 12, [q["sql"][:90] for q in complete_queries.captured_queries]
