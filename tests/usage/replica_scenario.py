"""Run by tests/usage/test_replica.py in a subprocess whose DATABASE_URL is a throwaway primary and
DATABASE_REPLICA_URL its streaming replica (scripts/replica-cluster.sh): the project's own settings,
router and views against a real replica. Prints one JSON object of observations; the test asserts.

    python -m tests.usage.replica_scenario DIR
"""

import json
import os
import subprocess
import sys
import time


def main(cluster_dir: str) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.db import connections
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from billing.replica import replica_state, replica_state_forget
    from tests.factories import make_workspace
    from usage.services import NodeInput, run_authorize, run_complete

    _schema_create()
    team = make_workspace(slug="replica")
    membership = team.membership(team.owner)

    def run(public_id: str) -> None:
        run_authorize(membership=membership, workflow="wf", agent="agent", model="gpt-4o-mini", public_id=public_id)
        run_complete(workspace=membership.workspace, public_id=public_id, status="succeeded",
                     nodes=[NodeInput("step", "gpt-4o-mini", 1000, 200)])

    def caught_up() -> bool:
        replica_state_forget()
        state = replica_state()
        return state.up and state.lag_seconds == 0

    def wait(condition, seconds: float = 20.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.1)
        return False

    run("before-pause")
    observed = {"caught_up": wait(caught_up)}
    client = Client()
    client.force_login(team.owner)
    usage_url = reverse("usage:usage", kwargs={"slug": "replica"})
    csv_url = reverse("usage:export", kwargs={"slug": "replica"})

    def get(url, replica_up=True):
        # Capturing opens a connection, which a stopped replica refuses: then count nothing there.
        with (CaptureQueriesContext(connections["replica"]) if replica_up else _Nothing()) as on_replica, \
                CaptureQueriesContext(connections["default"]) as on_primary:
            response = client.get(url)
            body = b"".join(response.streaming_content) if response.streaming else response.content
        return {"status": response.status_code, "read_from": response.get("X-Read-From"), "body": body.decode(),
                "replica_queries": len(on_replica.captured_queries),
                "replica_writes": [q["sql"] for q in on_replica.captured_queries
                                   if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))],
                "primary_queries": len(on_primary.captured_queries)}

    page = get(usage_url)
    observed["healthy"] = {**page, "body": None, "shows_run": "before-pause" in page["body"]}
    csv = get(csv_url)
    observed["healthy_csv"] = {**csv, "body": None, "rows": csv["body"].count("\n")}

    # Writes go to the primary even inside a replica-reading process: the money path.
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        run("while-healthy")
    observed["money_path_replica_queries"] = len(on_replica.captured_queries)

    # Freeze the replica: what it serves is then visibly older than the primary.
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_pause()")
    run("after-pause")
    page = get(usage_url)
    observed["paused"] = {**page, "body": None, "shows_old_run": "before-pause" in page["body"],
                          "shows_new_run": "after-pause" in page["body"]}

    # A page write (a token) answers with the WAL cookie: the next page waits for the replica,
    # which is paused, so it reads the primary and sees everything.
    response = client.post(reverse("usage:tokens", kwargs={"slug": "replica"}), {"name": "ci"})
    observed["post_sets_cookie"] = response.status_code in (200, 302) and "lf_wal" in response.cookies
    page = get(usage_url)
    observed["after_own_write"] = {**page, "body": None, "shows_new_run": "after-pause" in page["body"]}
    client.cookies.pop("lf_wal", None)

    # Past the lag bound: the primary.
    time.sleep(1.2)
    with override_settings(REPLICA_MAX_LAG_SECONDS=1, REPLICA_CHECK_SECONDS=0):
        page = get(usage_url)
    observed["lagging"] = {**page, "body": None, "shows_new_run": "after-pause" in page["body"]}

    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_resume()")
    observed["resumed_caught_up"] = wait(caught_up)

    # Replica down: pages still answer, from the primary.
    connections["replica"].close()
    subprocess.run([os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "replica-cluster.sh"),
                    "stop-replica", cluster_dir], check=True)
    replica_state_forget()
    started = time.monotonic()
    page = get(usage_url, replica_up=False)
    observed["stopped"] = {**page, "body": None, "shows_new_run": "after-pause" in page["body"],
                           "seconds": round(time.monotonic() - started, 2)}
    csv = get(csv_url, replica_up=False)
    observed["stopped_csv"] = {**csv, "body": None, "rows": csv["body"].count("\n")}
    return observed


def _schema_create() -> None:
    """The tables straight from the models, the charge path's functions from their files (what their
    migrations run), and the seeded catalogue. This test is about routing, not migrations
    (tests/usage/test_partitions.py migrates); running every migration, dj-stripe's included, on the
    fresh cluster takes minutes on a busy machine, this takes seconds."""
    import importlib
    from pathlib import Path

    from django.apps import apps
    from django.db import connection

    with connection.schema_editor() as editor:
        for model in apps.get_models():
            if model._meta.managed and not model._meta.proxy:
                editor.create_model(model)
    with connection.cursor() as cursor:
        for path in sorted(Path(__file__).resolve().parents[2].glob("*/sql/*.sql")):
            cursor.execute(path.read_text())
    importlib.import_module("billing.migrations.0003_seed_catalog").seed(apps, None)
    importlib.import_module("billing.migrations.0009_token_classes").seed_class_rates(apps, None)


class _Nothing:
    captured_queries = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    result = main(sys.argv[1])
    print("OBSERVED " + json.dumps(result))
