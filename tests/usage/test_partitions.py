"""Month partitions (PostgreSQL), exactly-once client run ids across them, and retention."""

import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from billing.models import LedgerEntry, Wallet
from operations.reconcile import reconcile_workspace
from buying.purchases import purchase_record_manual
from invoices.models import Invoice
from usage.errors import IdempotencyConflict
from usage.models import DailyUsage, DroppedRunMonth, Run, RunKey, RunNode
from usage.partitions import month_add, month_start, partition_name, partitions_create_ahead, run_detail_retire
from usage.services import NodeInput, run_authorize, run_complete

from .conftest import Api

ROOT = Path(__file__).resolve().parents[2]
NODES = [NodeInput("step", "gpt-4o-mini", 1000, 200)]


def _partition_of(table: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def _charged_run(membership, public_id: str, at: datetime) -> Run:
    run_authorize(membership=membership, workflow="wf", agent="agent", model="gpt-4o-mini", public_id=public_id, now=at)
    return run_complete(workspace=membership.workspace, public_id=public_id, status="succeeded", nodes=NODES,
                        now=at + timedelta(seconds=5))


def test_it_stores_runs_and_nodes_in_their_month_partition(team):
    run = _charged_run(team.membership(team.member), "r-now", timezone.now())
    month = month_start(run.created_at.date())
    assert _partition_of("usage_run", run.pk) == partition_name("usage_run", month)
    assert _partition_of("usage_runnode", RunNode.objects.get(run_id=run.pk).pk) == partition_name("usage_runnode", month)


def test_it_creates_months_ahead_and_moves_rows_parked_in_the_default_partition(team):
    far = timezone.now() + timedelta(days=400)  # beyond the months created ahead: the default partition
    run = _charged_run(team.membership(team.member), "r-far", far)
    assert _partition_of("usage_run", run.pk) == "usage_run_default"
    created = partitions_create_ahead()
    month = month_start(far.date())
    assert partition_name("usage_run", month) in created and partition_name("usage_runnode", month) in created
    assert _partition_of("usage_run", run.pk) == partition_name("usage_run", month)
    assert _partition_of("usage_runnode", RunNode.objects.get(run_id=run.pk).pk) == partition_name("usage_runnode", month)
    assert partitions_create_ahead() == []  # idempotent
    next_month = month_add(month_start(timezone.now().date()), 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partition_name("usage_run", next_month)])
        assert cursor.fetchone()[0] is not None


def test_a_month_export_reads_only_the_partitions_it_can_hold(team):
    from usage.export import _rows_queryset
    from usage.filters import RunFilter

    today = timezone.now().date()
    start = month_start(today)
    rows = _rows_queryset(team.workspace, RunFilter(start=start, end=today), "default")
    plan = rows.explain()
    later = partition_name("usage_run", month_add(start, 2))
    assert partition_name("usage_run", start) in plan and later not in plan
    assert partition_name("usage_runnode", start) in plan and partition_name("usage_runnode", month_add(start, 2)) not in plan


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_across_a_month_boundary_authorize_and_charge_once(team):
    """Twins of one client id land on both sides of midnight at a month's end: without RunKey each
    month's partition would accept its own copy."""
    membership = team.membership(team.member)
    boundary = datetime.combine(month_start(timezone.now().date()), datetime.min.time(), tzinfo=dt_timezone.utc)
    moments = [boundary - timedelta(milliseconds=50 * (i + 1)) if i % 2 else boundary + timedelta(milliseconds=50 * i)
               for i in range(8)]
    barrier = threading.Barrier(len(moments))
    answers, errors = [], []

    def authorize(at):
        try:
            barrier.wait()
            answers.append(run_authorize(membership=membership, workflow="wf", agent="agent", model="gpt-4o-mini",
                                         public_id="twin", body_hash="same", now=at))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=authorize, args=(at,)) for at in moments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(answer.replayed for answer in answers) == [False] + [True] * 7
    assert len({answer.run.pk for answer in answers}) == 1
    assert Run.objects.filter(workspace=team.workspace, public_id="twin").count() == 1
    assert RunKey.objects.filter(workspace=team.workspace, public_id="twin").count() == 1
    wallet = Wallet.objects.get(workspace=team.workspace)
    assert wallet.running_runs == 1 and wallet.reserved == answers[0].run.reserved

    # The completion replays, across the same boundary: one charge.
    barrier = threading.Barrier(6)

    def complete(at):
        try:
            barrier.wait()
            run_complete(workspace=team.workspace, public_id="twin", status="succeeded", nodes=NODES, body_hash="c",
                         now=at)
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=complete, args=(boundary + timedelta(seconds=i),)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    charges = LedgerEntry.objects.filter(workspace=team.workspace, kind="charge")
    assert charges.count() == 1
    assert RunNode.objects.filter(run__public_id="twin").count() == 1
    wallet.refresh_from_db()
    assert wallet.running_runs == 0 and wallet.reserved == 0


# --- Retention ------------------------------------------------------------------------------

def _months_ago(months: int) -> datetime:
    first = month_add(month_start(timezone.now().date()), -months)
    return datetime.combine(first, datetime.min.time(), tzinfo=dt_timezone.utc) + timedelta(days=3, hours=10)


@pytest.fixture
def aged(team, settings):
    """Runs 15 and 2 months old, a purchase (ledger entries and an invoice)."""
    settings.RUN_DETAIL_RETENTION_MONTHS = 13
    membership = team.membership(team.member)
    old = [_charged_run(membership, f"old-{i}", _months_ago(15) + timedelta(hours=i)) for i in range(3)]
    recent = _charged_run(membership, "recent", _months_ago(2))
    purchase_record_manual(workspace=team.workspace, pack_id="builder", reference="PO-1")
    return old, recent


def test_retention_drops_old_months_and_keeps_rollups_ledger_and_invoices(team, aged):
    old, recent = aged
    rollups = list(DailyUsage.objects.filter(workspace=team.workspace).order_by("id").values_list("id", "credits"))
    ledger = LedgerEntry.objects.filter(workspace=team.workspace).count()
    invoices = Invoice.objects.filter(workspace=team.workspace).count()
    assert invoices >= 1

    retired = run_detail_retire()

    month = month_start(old[0].created_at.date())
    assert [r.month for r in retired] == [month]
    assert retired[0].runs == 3 and retired[0].credits == sum(run.credits for run in old)
    assert retired[0].drop_seconds < 1.0  # a catalog operation, not a DELETE
    assert not Run.objects.filter(public_id__startswith="old-").exists()
    assert not RunNode.objects.filter(run_id__in=[run.pk for run in old]).exists()
    assert Run.objects.filter(pk=recent.pk).exists() and RunNode.objects.filter(run_id=recent.pk).exists()
    assert DroppedRunMonth.objects.get(month=month).runs == 3
    assert list(DailyUsage.objects.filter(workspace=team.workspace).order_by("id")
                .values_list("id", "credits")) == rollups
    assert LedgerEntry.objects.filter(workspace=team.workspace).count() == ledger
    assert LedgerEntry.objects.filter(run_id=old[0].pk, kind="charge").exists()  # the entry keeps its run id
    assert Invoice.objects.filter(workspace=team.workspace).count() == invoices
    # The client's ids stay taken: a replay years later is still a replay, never a second charge.
    with pytest.raises(IdempotencyConflict, match="older than the kept detail"):
        run_authorize(membership=team.membership(team.member), workflow="wf", agent="agent", model="gpt-4o-mini",
                      public_id="old-0")
    assert RunKey.objects.filter(workspace=team.workspace, public_id="old-0").count() == 1
    assert run_detail_retire() == []  # idempotent
    # The charges still reconcile with the runs kept. (Spend counters are left out here: these
    # back-dated runs counted in the workspace's current period, which real runs of that month would not.)
    assert [p for p in reconcile_workspace(workspace=team.workspace) if "charge entries" in p] == []


def test_retention_waits_while_a_run_of_the_month_is_open(team, settings):
    settings.RUN_DETAIL_RETENTION_MONTHS = 13
    membership = team.membership(team.member)
    _charged_run(membership, "old-done", _months_ago(15))
    run_authorize(membership=membership, workflow="wf", agent="agent", model="gpt-4o-mini", public_id="old-open",
                  now=_months_ago(15) + timedelta(hours=1))
    assert run_detail_retire() == []
    assert Run.objects.filter(public_id="old-done").exists()
    assert not DroppedRunMonth.objects.exists()


def test_pages_api_and_csv_say_when_a_range_is_older_than_the_kept_detail(client, team, aged):
    from usage.tokens import token_create

    run_detail_retire()
    old_day = _months_ago(15).date()
    kept_from = month_add(month_start(old_day), 1)
    client.force_login(team.owner)
    page = client.get(reverse("usage:usage", kwargs={"slug": team.workspace.slug}),
                      {"from": old_day.isoformat(), "to": timezone.now().date().isoformat()})
    assert page.status_code == 200
    text = page.content.decode()
    assert "is no longer kept" in text and kept_from.isoformat() in text
    assert "old-0" not in text  # no run rows for the dropped month ...
    total = sum(DailyUsage.objects.filter(workspace=team.workspace, day=old_day + timedelta(days=0))
                .values_list("credits", flat=True))
    assert total > 0  # ... but its rollups still count in the figures (below)
    assert page.context["summary"].range_total == sum(
        DailyUsage.objects.filter(workspace=team.workspace).values_list("credits", flat=True))

    current = client.get(reverse("usage:usage", kwargs={"slug": team.workspace.slug}))
    assert "is no longer kept" not in current.content.decode()

    api = Api(token_create(membership=team.membership(team.owner)).raw)
    usage = api.get("/v1/usage", {"from": old_day.isoformat(), "to": timezone.now().date().isoformat()}).json()
    assert usage["detail_kept_from"] == kept_from.isoformat() and "no longer kept" in usage["notice"]
    assert any(day["credits"] != "0" for day in usage["daily"] if day["date"] < kept_from.isoformat())
    runs = api.get("/v1/runs", {"from": old_day.isoformat()}).json()
    assert "no longer kept" in runs["notice"] and [r["id"] for r in runs["results"]] == ["recent"]
    assert api.get("/v1/usage").json()["notice"] is None

    csv = api.get("/v1/usage/export.csv", {"from": old_day.isoformat(), "to": timezone.now().date().isoformat()})
    body = b"".join(csv.streaming_content).decode().splitlines()
    assert csv["X-Detail-Kept-From"] == kept_from.isoformat()
    totals = [line for line in body if line.endswith(",daily_total")]
    assert totals and all(line.startswith(old_day.strftime("%Y-%m")) for line in totals)
    detail = [line for line in body[1:] if not line.endswith(",daily_total")]
    assert len(detail) == 1 and detail[0].endswith(",succeeded")


def test_a_dropped_runs_page_and_api_say_its_detail_is_no_longer_kept(client, team, aged):
    from usage.tokens import token_create

    run_detail_retire()
    kept_from = month_add(month_start(_months_ago(15).date()), 1)
    client.force_login(team.owner)
    page = client.get(reverse("usage:run", kwargs={"slug": team.workspace.slug, "run_id": "old-1"}))
    assert page.status_code == 404
    text = page.content.decode()
    assert "Run old-1 started on" in text and "is no longer kept" in text and f"{kept_from:%b} {kept_from.day}" in text
    assert reverse("billing:activity", kwargs={"slug": team.workspace.slug}) in text
    unknown = client.get(reverse("usage:run", kwargs={"slug": team.workspace.slug, "run_id": "never-was"}))
    assert unknown.status_code == 404 and "no longer kept" not in unknown.content.decode()
    kept = client.get(reverse("usage:run", kwargs={"slug": team.workspace.slug, "run_id": "recent"}))
    assert kept.status_code == 200

    api = Api(token_create(membership=team.membership(team.owner)).raw)
    answer = api.get("/v1/runs/old-1")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert "is no longer kept" in answer.json()["error"]["message"]
    assert "no longer kept" not in api.get("/v1/runs/never-was").json()["error"]["message"]


def test_the_overview_and_activity_list_charges_of_dropped_runs(client, team, aged):
    run_detail_retire()
    client.force_login(team.owner)
    for name in ("billing:overview", "billing:activity"):
        page = client.get(reverse(name, kwargs={"slug": team.workspace.slug}))
        assert page.status_code == 200, name
        text = page.content.decode()
        assert "Run old-0" in text and "run detail no longer kept" in text  # the charge still names the run
    csv = client.get(reverse("billing:activity_csv", kwargs={"slug": team.workspace.slug}))
    rows = list(__import__("csv").reader(b"".join(csv.streaming_content).decode().splitlines()))
    charge = next(row for row in rows if row[8] == "Run old-0" and row[2] == "charge")
    assert charge[7] == "A member (run detail no longer kept)"  # not "System": a member ran it


# --- Migrating a database with data from the plain tables -------------------------------------

def test_it_migrates_plain_runs_and_nodes_with_data_into_partitions(db):
    """A database at the previous migration, with runs and nodes in plain tables, migrates forward:
    every row lands in its month partition, keys and node months are filled in, ids continue."""
    import psycopg

    base = urlparse(os.environ["DATABASE_URL"])
    name = base.path.lstrip("/") + "_migrate"
    admin_url = base._replace(path="/postgres").geturl()
    url = base._replace(path="/" + name).geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "m",
           "LOG_LEVEL": "ERROR"}

    def manage(*args):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]

    old_runs_sql = """
        INSERT INTO usage_workflow (workspace_id, name, created_at) SELECT id, 'wf', now() FROM billing_workspace;
        INSERT INTO usage_agent (workspace_id, name, max_per_run, max_per_day, max_per_month, created_at)
            SELECT id, 'agent', 10, 10, 10, now() FROM billing_workspace;
        INSERT INTO usage_run (workspace_id, public_id, workflow_id, agent_id, member_id, model_id, status, reserved,
            credits, over_reservation, input_tokens, output_tokens, day, period_start, created_at, expires_at,
            released_at, completed_at, authorize_hash, complete_hash)
        SELECT w.id, 'old-' || g, f.id, a.id, m.id, 'gpt-4o-mini', 'succeeded', 0, 1000 * g, false, 10, 5,
            ts::date, ts, ts, ts + interval '1 hour', ts + interval '1 minute', ts + interval '1 minute', '', ''
        FROM billing_workspace w JOIN usage_workflow f ON f.workspace_id = w.id
            JOIN usage_agent a ON a.workspace_id = w.id
            JOIN billing_membership m ON m.workspace_id = w.id AND m.role = 'owner',
            generate_series(1, 40) g, LATERAL (SELECT now() - g * interval '9 days' AS ts) t;
        INSERT INTO usage_runnode (run_id, position, name, model_id, input_tokens, output_tokens,
            input_nanos_per_token, output_nanos_per_token, token_credits, tool_credits, credits, tools)
        SELECT r.id, p, 'n' || p, r.model_id, 5, 2, 100, 200, 500 * (p + 1), 0, 500 * (p + 1), '[]'
        FROM usage_run r, generate_series(0, 1) p;
    """
    after_sql = """
        SELECT (SELECT count(*) FROM usage_run),
               (SELECT count(*) FROM usage_run_default),
               (SELECT count(*) FROM usage_runkey k JOIN usage_run r ON r.id = k.run_id AND r.created_at = k.run_created_at
                  AND r.public_id = k.public_id),
               (SELECT count(*) FROM usage_runnode n JOIN usage_run r ON r.id = n.run_id
                  AND r.created_at = n.run_created_at),
               (SELECT count(DISTINCT tableoid) FROM usage_run),
               (SELECT relkind FROM pg_class WHERE relname = 'usage_run'),
               (SELECT relkind FROM pg_class WHERE relname = 'usage_runnode'),
               (SELECT count(*) FROM usage_run r WHERE tableoid::regclass::text
                  <> 'usage_run_p' || to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY_MM'))
    """
    try:
        # Everything up to the migrations before the partitions (main's schema), then data.
        manage("migrate", "usage", "0004_dailyusage_period_start", "-v0")
        manage("migrate", "billing", "0006_auto_recharge", "-v0")
        manage("migrate", "billing", "-v0")  # every other app at its current schema
        manage("migrate", "budgets", "-v0")
        manage("migrate", "invoices", "-v0")
        manage("migrate", "accounts", "-v0")
        manage("shell", "-c", "from tests.factories import make_workspace; make_workspace(slug='m')")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(old_runs_sql)
            before_max = conn.execute("SELECT max(id) FROM usage_run").fetchone()[0]
        manage("migrate", "usage", "-v0")
        manage("makemigrations", "--check", "--dry-run")
        with psycopg.connect(url, autocommit=True) as conn:
            runs, in_default, keys, nodes, months, run_kind, node_kind, misplaced = conn.execute(after_sql).fetchone()
        assert (run_kind, node_kind) == ("p", "p")
        assert runs == 40 and keys == 40 and nodes == 80 and in_default == 0 and misplaced == 0
        assert months >= 12  # 40 runs 9 days apart: about 12 months, each in its own partition
        # The project works on the migrated tables: a new run is charged, its id continues the sequence.
        manage("shell", "-c", "from tests.usage.test_partitions import _charge_after_migration; "
                              "_charge_after_migration()")
        with psycopg.connect(url, autocommit=True) as conn:
            new_id, credits = conn.execute("SELECT id, credits FROM usage_run WHERE public_id = 'new'").fetchone()
            assert new_id > before_max and credits > 0
            assert conn.execute("SELECT count(*) FROM billing_ledgerentry WHERE run_id = %s", [new_id]).fetchone()[0]
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _charge_after_migration():
    from billing.models import Membership

    membership = Membership.objects.select_related("workspace").get(workspace__slug="m", role="owner")
    _charged_run(membership, "new", timezone.now())
