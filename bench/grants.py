"""Period grants/s for 10,000 workspaces through the service (billing.grants.period_grants_run),
against the same statements in raw SQL (psycopg, one transaction per workspace)."""

import time
from datetime import timedelta

from .common import report, reset_business_data, setup_django

CREDIT = 10**9


def _make_due_workspaces(prefix: str, count: int, period_start, period_end) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO billing_workspace (slug, name, kind, plan_id, created_at, period_start, period_end,
                stripe_customer_id, stripe_subscription_id, cancel_at_period_end, billing_name, billing_address, tax_id)
            SELECT %s || g, %s || g, 'personal', 'free', %s, %s, %s, '', '', false, '', '', ''
            FROM generate_series(1, %s) g
        """, [prefix, prefix, period_start, period_start, period_end, count])
        cursor.execute("""
            INSERT INTO billing_wallet (workspace_id, monthly, purchased, reserved, running_runs, updated_at)
            SELECT id, 12 * %s::bigint, 0, 0, 0, now() FROM billing_workspace WHERE slug LIKE %s
        """, [CREDIT, prefix + "%"])
        cursor.execute("""
            INSERT INTO billing_ledgerentry (workspace_id, kind, bucket, amount, bucket_balance_after, balance_after,
                reason, idempotency_key, created_at)
            SELECT w.id, 'grant', 'monthly', 12 * %s::bigint, 12 * %s::bigint, 12 * %s::bigint, 'seed', 'grant:' || w.id || ':' || %s, %s
            FROM billing_workspace w WHERE slug LIKE %s
        """, [CREDIT, CREDIT, CREDIT, period_start.isoformat(), period_start, prefix + "%"])


def _raw_sql_grants(prefix: str, new_start, new_end) -> int:
    """The service's statements, by hand: lock, check, two ledger rows, wallet, period."""
    import psycopg

    from .common import BENCH_DB

    done = 0
    with psycopg.connect(BENCH_DB) as conn:
        ids = [row[0] for row in conn.execute(
            "SELECT id FROM billing_workspace WHERE slug LIKE %s AND period_end <= %s ORDER BY id",
            (prefix + "%", new_start))]
        conn.commit()
        for workspace_id in ids:
            with conn.transaction():
                monthly, purchased = conn.execute(
                    "SELECT monthly, purchased FROM billing_wallet WHERE workspace_id = %s FOR UPDATE",
                    (workspace_id,)).fetchone()
                key = f"grant:{workspace_id}:{new_start.isoformat()}"
                if conn.execute("SELECT 1 FROM billing_ledgerentry WHERE idempotency_key = %s", (key,)).fetchone():
                    continue
                grant = 50 * CREDIT
                conn.execute("""
                    INSERT INTO billing_ledgerentry (workspace_id, kind, bucket, amount, bucket_balance_after,
                        balance_after, reason, idempotency_key, created_at)
                    VALUES (%s, 'expiry', 'monthly', %s, 0, %s, 'expired', %s, now()),
                           (%s, 'grant', 'monthly', %s, %s, %s, 'grant', %s, now())""",
                    (workspace_id, -monthly, purchased, f"expiry:{workspace_id}:x",
                     workspace_id, grant, grant, grant + purchased, key))
                conn.execute("UPDATE billing_wallet SET monthly = %s, updated_at = now() WHERE workspace_id = %s",
                             (grant, workspace_id))
                conn.execute("UPDATE billing_workspace SET period_start = %s, period_end = %s WHERE id = %s",
                             (new_start, new_end, workspace_id))
                done += 1
    return done


def run(*, quick: bool = False) -> None:
    setup_django()
    reset_business_data()
    from django.utils import timezone

    from billing.grants import period_grants_run
    from billing.models import LedgerEntry
    from billing.periods import add_months

    count = 500 if quick else 10_000
    now = timezone.now().replace(microsecond=0)
    old_start = add_months(now, -1) - timedelta(days=1)
    old_end = add_months(old_start, 1)
    print(f"grants: creating 2 x {count} workspaces due for a new period ...", flush=True)
    _make_due_workspaces("raw-", count, old_start, old_end)
    _make_due_workspaces("svc-", count, old_start, old_end)
    started = time.perf_counter()
    raw_done = _raw_sql_grants("raw-", old_end, add_months(old_start, 2))
    raw_rate = raw_done / (time.perf_counter() - started)
    print(f"  raw SQL: {raw_done} grants, {raw_rate:,.1f}/s", flush=True)
    started = time.perf_counter()
    period_grants_run(now=now)
    service_seconds = time.perf_counter() - started
    granted = LedgerEntry.objects.filter(kind="grant", workspace__slug__startswith="svc-", idempotency_key__contains=old_end.isoformat()).values("workspace").distinct().count()
    twice = (LedgerEntry.objects.filter(kind="grant", workspace__slug__startswith="svc-").values("workspace")
             .annotate(n=__import__("django.db.models", fromlist=["Count"]).Count("id")).filter(n__gt=2).count())
    period_grants_run(now=now)  # a second run must grant nothing more
    again = LedgerEntry.objects.filter(kind="grant", workspace__slug__startswith="svc-").count()
    rate = granted / service_seconds
    print(f"  service: {granted} workspaces granted, {rate:,.1f}/s; workspaces with an extra grant: {twice}; "
          f"grants after a second run: {again} (expected {2 * count})", flush=True)
    report("grants", rate, "grants/s", raw_rate, ">= 0.50; exactly one grant each",
           extra=f"exactly once: {granted == count and twice == 0 and again == 2 * count}")
