"""Period grants/s for 10,000 workspaces through the service (billing.grants.period_grants_run),
against the same set-based statements in raw SQL (psycopg, one transaction per chunk of 500), in
four alternating slices of 2,500."""

import time
from datetime import timedelta

from .common import BENCH_DB, report, reset_business_data, setup_django

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
        # What autovacuum would have done by the time a real job runs (CI's PostgreSQL runs without
        # it): without statistics the planner takes freshly filled tables for empty ones, and the
        # dead versions the earlier slices' updates left would stay in every index it reads.
        cursor.execute("VACUUM (ANALYZE) billing_workspace, billing_wallet, billing_ledgerentry")
        # And a checkpoint, so that one started by what ran before (the charge bench's writes) does
        # not land on one side's slice: both start from the same clean state.
        cursor.execute("CHECKPOINT")


def _raw_sql_grants(conn, prefix: str, new_start, new_end, chunk: int = 500) -> int:
    """The service's set-based statements, by hand (psycopg, one transaction per chunk of 500): pick
    the chunk, lock its workspaces and wallets, read which grants exist, then insert every ledger
    entry and update every wallet and workspace of the chunk in one statement each. `conn` stays
    open across slices, as the service's connection does (psycopg prepares repeated statements);
    parameters and results travel in binary, as the service's do."""
    done = 0
    last_id = 0
    while True:
        ids = [row[0] for row in conn.execute(
            "SELECT id FROM billing_workspace WHERE slug LIKE %b AND period_end <= %b AND id > %b ORDER BY id LIMIT %b",
            (prefix + "%", new_start, last_id, chunk), binary=True)]
        if not ids:
            break
        last_id = ids[-1]
        with conn.transaction():
            ids = [row[0] for row in conn.execute(
                "SELECT id FROM billing_workspace WHERE id = ANY(%b) AND period_end <= %b ORDER BY id "
                "FOR UPDATE SKIP LOCKED", (ids, new_start), binary=True)]
            wallets = {row[0]: row[1:] for row in conn.execute(
                "SELECT workspace_id, monthly, purchased, reserved FROM billing_wallet WHERE workspace_id = ANY(%b) "
                "ORDER BY workspace_id FOR UPDATE", (ids,), binary=True)}
            keys = {pk: f"grant:{pk}:{new_start.isoformat()}" for pk in ids}
            granted = {row[0] for row in conn.execute(
                "SELECT idempotency_key FROM billing_ledgerentry WHERE idempotency_key = ANY(%b)",
                (list(keys.values()),), binary=True)}
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
                FROM unnest(%b::bigint[], %b::varchar[], %b::bigint[], %b::bigint[], %b::bigint[], %b::varchar[],
                            %b::varchar[]) AS e(ws, kind, amount, after, balance, reason, key)""",
                [list(column) for column in zip(*entries)] if entries else [[]] * 7)
            conn.execute("""
                UPDATE billing_wallet AS w SET monthly = v.monthly, updated_at = now()
                FROM unnest(%b::bigint[], %b::bigint[]) AS v(workspace_id, monthly)
                WHERE w.workspace_id = v.workspace_id AND w.workspace_id = ANY(%b)""",
                (ids, [monthly_after[pk] for pk in ids], ids))
            conn.execute("""
                UPDATE billing_workspace SET period_start = %b, period_end = %b WHERE id = ANY(%b)""",
                (new_start, new_end, ids))
            done += len(ids)
    return done


def run(*, quick: bool = False) -> None:
    """In alternating slices (raw SQL, then the service, on fresh due workspaces each), so that a
    drift of the machine's speed during the run weighs on the figure and the baseline alike."""
    setup_django()
    reset_business_data()
    import psycopg
    from django.db.models import Count
    from django.utils import timezone

    from billing.grants import period_grants_run
    from billing.models import LedgerEntry
    from billing.periods import add_months

    count, slices = (500, 2) if quick else (10_000, 4)
    now = timezone.now().replace(microsecond=0)
    old_start = add_months(now, -1) - timedelta(days=1)
    old_end = add_months(old_start, 1)
    raw_seconds = service_seconds = 0.0
    raw_done = 0
    raw_connection = psycopg.connect(BENCH_DB)
    # Warm both paths first (psycopg prepares a statement on its fifth run on a connection; the
    # first chunks of either would otherwise be measured cold), on workspaces not counted.
    _make_due_workspaces("raw-warm-", 3000, old_start, old_end)
    _raw_sql_grants(raw_connection, "raw-warm-", old_end, add_months(old_start, 2))
    _make_due_workspaces("svc-warm-", 3000, old_start, old_end)
    period_grants_run(now=now)
    for index in range(slices):
        size = count // slices
        _make_due_workspaces(f"raw-{index}-", size, old_start, old_end)
        _make_due_workspaces(f"svc-{index}-", size, old_start, old_end)
        started = time.perf_counter()
        done = _raw_sql_grants(raw_connection, f"raw-{index}-", old_end, add_months(old_start, 2))
        raw_round = time.perf_counter() - started
        started = time.perf_counter()
        period_grants_run(now=now)
        service_round = time.perf_counter() - started
        print(f"  slice {index + 1}: raw SQL {done / raw_round:,.1f}/s, service {size / service_round:,.1f}/s", flush=True)
        raw_done, raw_seconds, service_seconds = raw_done + done, raw_seconds + raw_round, service_seconds + service_round
    raw_connection.close()
    raw_rate = raw_done / raw_seconds
    print(f"  raw SQL: {raw_done} grants, {raw_rate:,.1f}/s", flush=True)
    service = LedgerEntry.objects.filter(kind="grant", workspace__slug__regex=r"^svc-[0-9]")
    granted = service.filter(idempotency_key__contains=old_end.isoformat()).values("workspace").distinct().count()
    twice = service.values("workspace").annotate(n=Count("id")).filter(n__gt=2).count()
    period_grants_run(now=now)  # a second run must grant nothing more
    again = service.count()
    rate = granted / service_seconds
    print(f"  service: {granted} workspaces granted, {rate:,.1f}/s; workspaces with an extra grant: {twice}; "
          f"grants after a second run: {again} (expected {2 * count})", flush=True)
    report("grants", rate, "grants/s", raw_rate, ">= 0.50; exactly one grant each",
           extra=f"exactly once: {granted == count and twice == 0 and again == 2 * count}")
