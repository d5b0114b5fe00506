"""Fast builders for benchmark data: workspaces with tokens through the real services, and millions
of finished runs (with their nodes and daily rollups) generated inside PostgreSQL."""

import time

CREDIT = 10**9
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "gemini-2.0-flash", "claude-opus-4"]
RATES = {"gpt-4o": (5000, 15000), "gpt-4o-mini": (300, 1200), "claude-sonnet-4": (6000, 30000),
         "gemini-2.0-flash": (150, 600), "claude-opus-4": (30000, 150000)}


# Generated runs add to their daily rollup rows (the same upsert as billing.upsert.upsert_add).
ROLLUP_ADD = """
    ON CONFLICT (workspace_id, day, agent_id, model_id, member_id, period_start) DO UPDATE SET
        credits = usage_dailyusage.credits + EXCLUDED.credits,
        input_tokens = usage_dailyusage.input_tokens + EXCLUDED.input_tokens,
        output_tokens = usage_dailyusage.output_tokens + EXCLUDED.output_tokens,
        runs = usage_dailyusage.runs + EXCLUDED.runs"""


def bench_workspace(slug: str, *, credits: int = 10**7):
    """An Enterprise workspace with room for any load: huge limits, lots of credits, a token."""
    from billing.ledger import credits_adjust
    from billing.models import Membership, Workspace
    from billing.services import user_get_or_create
    from budgets.workspaces import workspace_create
    from usage.models import Agent, DeveloperToken, hash_token

    owner = user_get_or_create(email=f"{slug}@bench.test")  # no password: hashing would dominate setup
    workspace = workspace_create(slug=slug, name=slug, owner=owner, plan_id="enterprise")
    Workspace.objects.filter(pk=workspace.pk).update(custom_requests_per_minute=10**7, custom_concurrent_runs=10**6)
    credits_adjust(workspace=workspace, amount=credits * CREDIT, reason="bench", key=f"bench:{slug}")
    membership = Membership.objects.get(workspace=workspace, user=owner)
    # The load's agent may spend without limit: the bench measures speed, not budgets.
    Agent.objects.create(workspace=workspace, name="bench-agent", max_per_run=10 * CREDIT,
                         max_per_day=10**9 * CREDIT, max_per_month=10**9 * CREDIT)
    raw = DeveloperToken.generate()
    DeveloperToken.objects.create(membership=membership, name="bench", token_hash=hash_token(raw), prefix=raw[:8])
    return workspace, membership, raw


def generate_runs(*, workspace, membership, count: int, days: int = 90, agents: int = 8, label: str = "") -> float:
    """`count` finished one-node runs spread over `days`, with nodes and rollups, in SQL."""
    from django.db import connection, transaction

    from usage.models import Agent, Workflow

    started = time.perf_counter()
    workflow = Workflow.objects.get_or_create(workspace=workspace, name="bench-workflow")[0]
    agent_ids = [Agent.objects.get_or_create(workspace=workspace, name=f"agent-{i}")[0].pk for i in range(agents)]
    models_sql = "ARRAY[" + ",".join(f"'{m}'" for m in MODELS) + "]"
    in_rates = "ARRAY[" + ",".join(str(RATES[m][0]) for m in MODELS) + "]::bigint[]"
    out_rates = "ARRAY[" + ",".join(str(RATES[m][1]) for m in MODELS) + "]::bigint[]"
    params = {"ws": workspace.pk, "wf": workflow.pk, "member": membership.pk, "n": count,
              "span": days * 86400, "agents": agent_ids, "prefix": f"bench{label}_"}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO usage_run (workspace_id, public_id, workflow_id, agent_id, member_id, model_id, status,
                reserved, credits, over_reservation, input_tokens, output_tokens, day, period_start, created_at,
                expires_at, released_at, completed_at, authorize_hash, complete_hash)
            SELECT %(ws)s, %(prefix)s || g, %(wf)s, (%(agents)s::bigint[])[1 + g %% cardinality(%(agents)s::bigint[])],
                %(member)s, ({models_sql})[1 + g %% 5], CASE WHEN g %% 23 = 0 THEN 'failed' ELSE 'succeeded' END,
                0, tin * ({in_rates})[1 + g %% 5] + tout * ({out_rates})[1 + g %% 5], false, tin, tout,
                ts::date, date_trunc('month', now()), ts, ts + interval '1 hour', ts + interval '3 seconds',
                ts + interval '3 seconds', '', ''
            FROM generate_series(1, %(n)s) AS g,
                 LATERAL (SELECT now() - ((g::bigint * 7919) %% %(span)s) * interval '1 second' AS ts,
                                 500 + (g * 37) %% 4000 AS tin, 100 + (g * 53) %% 1500 AS tout) AS x
        """, params)
        cursor.execute(f"""
            INSERT INTO usage_runnode (run_id, run_created_at, position, name, model_id, input_tokens, output_tokens,
                input_nanos_per_token, output_nanos_per_token, token_credits, tool_credits, credits, tools)
            SELECT r.id, r.created_at, 0, 'generate', r.model_id, r.input_tokens, r.output_tokens,
                ({in_rates})[array_position({models_sql}, r.model_id::text)],
                ({out_rates})[array_position({models_sql}, r.model_id::text)], r.credits, 0, r.credits, '[]'::jsonb
            FROM usage_run r WHERE r.workspace_id = %(ws)s AND r.public_id LIKE %(prefix)s || '%%'
        """, params)
        cursor.execute("""
            INSERT INTO usage_runkey (workspace_id, public_id, run_id, run_created_at)
            SELECT workspace_id, public_id, id, created_at
            FROM usage_run WHERE workspace_id = %(ws)s AND public_id LIKE %(prefix)s || '%%'
        """, params)
        cursor.execute("""
            INSERT INTO usage_dailyusage (workspace_id, day, agent_id, model_id, member_id, period_start, credits,
                input_tokens, output_tokens, runs)
            SELECT workspace_id, (completed_at AT TIME ZONE 'UTC')::date, agent_id, model_id, member_id, period_start,
                sum(credits), sum(input_tokens), sum(output_tokens), count(*)
            FROM usage_run WHERE workspace_id = %(ws)s AND public_id LIKE %(prefix)s || '%%'
            GROUP BY 1, 2, 3, 4, 5, 6
        """ + ROLLUP_ADD, params)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE usage_run; ANALYZE usage_runnode; ANALYZE usage_dailyusage")
    return time.perf_counter() - started
