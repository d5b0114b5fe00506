"""Period grants/s for 10,000 workspaces through the service (billing.grants.period_grants_run),
against the same set-based statements in raw SQL (psycopg, one transaction per chunk of 500)."""

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
            INSERT INTO billing_wallet (workspace_id, monthly, purchased, reserved, running_runs, updated_at,
                auto_recharge_armed, auto_recharge_crossings)
            SELECT id, 12 * %s::bigint, 0, 0, 0, now(), true, 0 FROM billing_workspace WHERE slug LIKE %s
        """, [CREDIT, prefix + "%"])
        cursor.execute("""
            INSERT INTO billing_ledgerentry (workspace_id, kind, bucket, amount, bucket_balance_after, balance_after,
                reason, idempotency_key, created_at)
            SELECT w.id, 'grant', 'monthly', 12 * %s::bigint, 12 * %s::bigint, 12 * %s::bigint, 'seed', 'grant:' || w.id || ':' || %s, %s
            FROM billing_workspace w WHERE slug LIKE %s
        """, [CREDIT, CREDIT, CREDIT, period_start.isoformat(), period_start, prefix + "%"])


def _raw_sql_grants(prefix: str, new_start, new_end, chunk: int = 500) -> int:
    """The service's set-based statements, by hand (psycopg, one transaction per chunk of 500): pick
    the chunk, lock its workspaces and wallets, read which grants exist, then insert every ledger
    entry and update every wallet and workspace of the chunk in one statement each."""
    import psycopg

    from .common import BENCH_DB

    done = 0
    last_id = 0
    with psycopg.connect(BENCH_DB) as conn:
        while True:
            ids = [row[0] for row in conn.execute(
                "SELECT id FROM billing_workspace WHERE slug LIKE %s AND period_end <= %s AND id > %s ORDER BY id LIMIT %s",
                (prefix + "%", new_start, last_id, chunk))]
            if not ids:
                break
            last_id = ids[-1]
            with conn.transaction():
                ids = [row[0] for row in conn.execute(
                    "SELECT id FROM billing_workspace WHERE id = ANY(%s) AND period_end <= %s ORDER BY id "
                    "FOR UPDATE SKIP LOCKED", (ids, new_start))]
                wallets = {row[0]: row[1:] for row in conn.execute(
                    "SELECT workspace_id, monthly, purchased, reserved FROM billing_wallet WHERE workspace_id = ANY(%s) "
                    "ORDER BY workspace_id FOR UPDATE", (ids,))}
                keys = {pk: f"grant:{pk}:{new_start.isoformat()}" for pk in ids}
                granted = {row[0] for row in conn.execute(
                    "SELECT idempotency_key FROM billing_ledgerentry WHERE idempotency_key = ANY(%s)",
                    (list(keys.values()),))}
                grant = 50 * CREDIT
                entries = []  # (workspace, kind, amount, bucket after, balance after, reason, key)
                monthly_after = {}
                for pk in ids:
                    monthly, purchased, reserved = wallets[pk]
                    if keys[pk] in granted:
                        monthly_after[pk] = monthly
                        continue
                    expiring = max(monthly - max(reserved, 0), 0)
                    if expiring:
                        monthly -= expiring
                        entries.append((pk, "expiry", -expiring, monthly, monthly + purchased, "expired", f"expiry:{pk}:x"))
                    monthly += grant
                    entries.append((pk, "grant", grant, monthly, monthly + purchased, "grant", keys[pk]))
                    monthly_after[pk] = monthly
                conn.execute("""
                    INSERT INTO billing_ledgerentry (workspace_id, kind, bucket, amount, bucket_balance_after,
                        balance_after, reason, idempotency_key, created_at)
                    SELECT e.ws, e.kind, 'monthly', e.amount, e.after, e.balance, e.reason, e.key, now()
                    FROM unnest(%s::bigint[], %s::varchar[], %s::bigint[], %s::bigint[], %s::bigint[], %s::varchar[],
                                %s::varchar[]) AS e(ws, kind, amount, after, balance, reason, key)""",
                    [list(column) for column in zip(*entries)] if entries else [[]] * 7)
                conn.execute("""
                    UPDATE billing_wallet AS w SET monthly = v.monthly, updated_at = now()
                    FROM unnest(%s::bigint[], %s::bigint[]) AS v(workspace_id, monthly)
                    WHERE w.workspace_id = v.workspace_id""", (ids, [monthly_after[pk] for pk in ids]))
                conn.execute("""
                    UPDATE billing_workspace SET period_start = %s, period_end = %s WHERE id = ANY(%s)""",
                    (new_start, new_end, ids))
                done += len(ids)
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
