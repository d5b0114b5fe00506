"""SQL statements per authorize and per complete, whole request including authentication, with 1
node and with 100 nodes: the count must not grow with the nodes."""

import json
import uuid

from .common import report, reset_business_data, setup_django
from .data import bench_workspace


def _count(client, method, path, body, token) -> tuple[int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(path, data=json.dumps(body), content_type="application/json",
                                           HTTP_AUTHORIZATION=f"Bearer {token}")
    return response.status_code, len(captured.captured_queries)


def run(*, quick: bool = False) -> None:
    setup_django()
    reset_business_data()
    from django.test import Client

    _, _, token = bench_workspace("queries")
    client = Client()
    counts = {}
    for nodes in (1, 100):
        for attempt in range(2):  # the first run creates the workflow and agent; measure the steady state
            run_id = uuid.uuid4().hex
            authorize = {"id": run_id, "workflow": "wf", "agent": "agent", "model": "gpt-4o-mini"}
            complete = {"status": "succeeded", "nodes": [
                {"name": f"n{i}", "model": "gpt-4o-mini", "input_tokens": 10, "output_tokens": 10,
                 "tools": [{"name": "web_search", "calls": 1}]} for i in range(nodes)]}
            status_a, queries_a = _count(client, "post", "/v1/runs", authorize, token)
            status_c, queries_c = _count(client, "post", f"/v1/runs/{run_id}/complete", complete, token)
            assert (status_a, status_c) == (201, 200), (status_a, status_c)
        counts[nodes] = (queries_a, queries_c)
        print(f"  {nodes:>3} node(s): authorize {queries_a} statements, complete {queries_c} statements", flush=True)
    (a1, c1), (a100, c100) = counts[1], counts[100]
    report("queries", a100 + c100, "statements", a1 + c1, "ratio 1.00; authorize <= 10, complete <= 12",
           extra=f"authorize {a1}->{a100}, complete {c1}->{c100}")
