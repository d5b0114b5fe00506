"""The run lifecycle as one PL/pgSQL call per phase (issue 26; usage/sql/runs.sql): what a served
request sends to PostgreSQL, and the migrations that install the functions."""

from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test.utils import CaptureQueriesContext

from billing.models import Wallet, credits
from billing.sql import sql_file_sha256
from operations.reconcile import reconcile_workspace
from usage.models import Run
from usage.services import NodeInput, run_authorize, run_complete, run_expire

ROOT = Path(__file__).resolve().parents[2]
NODE = [NodeInput(name="n", model="gpt-4o", input_tokens=100_000, output_tokens=0)]  # 0.5 credits


def _statements(action) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        action()
    return [query["sql"] for query in captured.captured_queries]


@pytest.mark.django_db(transaction=True)
def test_each_phase_holds_the_wallet_lock_for_one_statement(team):
    """Outside a transaction, as the API calls them: authorize and expire are one statement each, and
    a completion one read (the run, its names and the rates) and one call that writes everything.
    Nothing else runs while the wallet is locked, so no BEGIN or COMMIT round trip either."""
    membership = team.membership(team.owner)
    run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="warm-up")
    authorize = _statements(lambda: run_authorize(membership=membership, workflow="wf", agent="bot",
                                                  model="gpt-4o", public_id="r1"))
    complete = _statements(lambda: run_complete(workspace=team.workspace, public_id="r1", status="succeeded",
                                                nodes=NODE))
    run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="r2")
    expire = _statements(lambda: run_expire(run=Run.objects.get(public_id="r2")))[1:]  # after the test's own get
    assert [sql.split("(")[0] for sql in authorize] == ["SELECT * FROM usage_run_authorize"]
    # (The budget alert check runs after commit: here at once, as the tests run Celery eagerly.)
    assert complete[1].startswith("SELECT * FROM usage_run_complete(")
    assert "FROM usage_run_for_completion(" in complete[0]  # a read: it locks nothing
    assert [sql.split("(")[0] for sql in expire] == ["SELECT * FROM usage_run_expire"]
    wallet = Wallet.objects.get(workspace=team.workspace)
    assert wallet.running_runs == 1 and wallet.reserved == credits(10)  # warm-up still holds
    assert reconcile_workspace(workspace=team.workspace) == []


def _installing_migrations() -> dict[str, tuple[str, str]]:
    """Each SQL file, with the newest migration that installs it and the hash that migration names."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    newest: dict[str, tuple[tuple, str, str]] = {}
    for key in loader.graph.leaf_nodes():
        for app_label, name in loader.graph.forwards_plan(key):
            for operation in loader.graph.nodes[(app_label, name)].operations:
                path, sha256 = getattr(operation, "sql_file", (None, None))
                if path:
                    newest[path] = max(newest.get(path, ((), "", "")), ((app_label, name), f"{app_label}.{name}", sha256))
    return {path: (migration, sha256) for path, (_, migration, sha256) in newest.items()}


def test_every_sql_file_is_installed_by_a_migration_that_names_its_current_text():
    """A change to a function file ships with a new migration that runs it again (CREATE OR REPLACE),
    or existing databases would keep the old rules while the code expects the new ones."""
    files = sorted(str(path.relative_to(ROOT)) for path in ROOT.glob("*/sql/*.sql"))
    installed = _installing_migrations()
    assert sorted(installed) == files
    for path, (migration, sha256) in installed.items():
        assert sha256 == sql_file_sha256(path), (
            f"{path} changed since {migration} installed it: add a migration with "
            f"sql_file_install({path!r}, sha256={sql_file_sha256(path)!r})")


@pytest.mark.django_db(transaction=True)
def test_a_failure_inside_the_call_leaves_no_part_of_it(team):
    """The completion's writes are one statement: when its last writes fail (here a trigger refuses
    the ledger entries), the run, its nodes, the counters and the wallet stay as they were, and the
    next completion charges once."""
    membership = team.membership(team.owner)
    run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="r1")
    before = Wallet.objects.get(workspace=team.workspace)
    with connection.cursor() as cursor:
        cursor.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN RAISE EXCEPTION 'ledger refused'; END $$")
        cursor.execute("CREATE TRIGGER refuse BEFORE INSERT ON billing_ledgerentry FOR EACH ROW EXECUTE FUNCTION refuse()")
    try:
        with pytest.raises(Exception, match="ledger refused"):
            run_complete(workspace=team.workspace, public_id="r1", status="succeeded", nodes=NODE)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse ON billing_ledgerentry")
            cursor.execute("DROP FUNCTION refuse()")
    run = Run.objects.get(public_id="r1")
    assert run.completed_at is None and run.released_at is None and not run.nodes.exists()
    wallet = Wallet.objects.get(workspace=team.workspace)
    assert (wallet.balance, wallet.reserved, wallet.running_runs) == (before.balance, before.reserved, 1)
    assert reconcile_workspace(workspace=team.workspace) == []
    done = run_complete(workspace=team.workspace, public_id="r1", status="succeeded", nodes=NODE)
    assert done.credits == credits("0.5")
    assert Wallet.objects.get(workspace=team.workspace).balance == before.balance - credits("0.5")
    assert reconcile_workspace(workspace=team.workspace) == []


def test_the_forecast_counts_the_attempts_the_trigger_counts():
    """One ceiling rule, written twice (SQL under the lock, Python for the forecast): they agree."""
    from pathlib import Path

    from billing.recharge_trigger import COUNTED

    sql = (Path(__file__).resolve().parents[2] / "billing/sql/wallet.sql").read_text()
    counted = "AND status IN (" + ", ".join(f"'{status}'" for status in COUNTED) + ");"
    assert counted in sql
