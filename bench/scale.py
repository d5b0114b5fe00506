"""Month partitions at size: N runs (default 20M) over 13 months, against the same figures at 50k
runs in the same run.

    python -m bench scale [--runs N] [--quick] [--reuse]

The two sizes live in two databases (BENCH_DATABASE_URL, default lf_scale_bench, and a sibling
lf_scale_small; Redis db 8), so that they are measured in alternating rounds (small, large, small,
large, ...): this machine's speed drifted by 20-30% during the half hour that generating 20M runs
takes, and a baseline measured before the generation against a figure measured after it compared
two machines. Each round runs in a fresh process against one database. Prints, at 50k and at N:
- authorize + complete pairs per second through /v1/ (in-process client, sequential; ratio >= 0.9);
- Usage page and /v1/usage p95 (ratio <= 1.5);
- one past month's CSV export (seconds, rows) and how many partitions its EXPLAIN reads;
- the time to drop the oldest month (retention), and the table sizes, so bytes per run are known.

`--reuse` keeps the large database of an earlier run (topped up to N runs) instead of generating it
again (half an hour for 20M); its oldest month is then not dropped again."""

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lf_scale_bench")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")

from .common import ROOT, p95, report, reset_business_data, setup_django, timings  # noqa: E402
from .data import MODELS, RATES, ROLLUP_ADD, bench_workspace  # noqa: E402

LARGE_DB = os.environ["BENCH_DATABASE_URL"]
SMALL_DB = LARGE_DB.rsplit("/", 1)[0] + "/lf_scale_small"
MONTHS = 13
WORKSPACES = 10  # runs spread evenly; the first workspace is the one measured
BATCH = 500_000
GENERATED = "gen\\_%"  # LIKE pattern of the generated runs' client ids


def _generate(*, workspaces: list[dict], start_index: int, count: int, span_days: int) -> None:
    """`count` finished one-node runs with keys and rollups, numbered from start_index, spread
    over span_days before now and over the workspaces, in batches with progress output."""
    from django.db import connection, transaction

    models_sql = "ARRAY[" + ",".join(f"'{m}'" for m in MODELS) + "]"
    in_rates = "ARRAY[" + ",".join(str(RATES[m][0]) for m in MODELS) + "]::bigint[]"
    out_rates = "ARRAY[" + ",".join(str(RATES[m][1]) for m in MODELS) + "]::bigint[]"
    ws = workspaces
    params = {"ws": [w["id"] for w in ws], "wf": [w["workflow"] for w in ws], "agent": [w["agent"] for w in ws],
              "member": [w["member"] for w in ws], "span": span_days * 86400}
    done, started = 0, time.perf_counter()
    while done < count:
        size = min(BATCH, count - done)
        low = start_index + done + 1
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE new_runs (id bigint, created_at timestamptz) ON COMMIT DROP")
            cursor.execute(f"""
                WITH inserted AS (
                INSERT INTO usage_run (workspace_id, public_id, workflow_id, agent_id, member_id, model_id, status,
                    reserved, credits, over_reservation, input_tokens, output_tokens, day, period_start, created_at,
                    expires_at, released_at, completed_at, authorize_hash, complete_hash)
                SELECT (%(ws)s::bigint[])[k], 'gen_' || g, (%(wf)s::bigint[])[k], (%(agent)s::bigint[])[k],
                    (%(member)s::bigint[])[k], ({models_sql})[1 + g %% 5],
                    CASE WHEN g %% 23 = 0 THEN 'failed' ELSE 'succeeded' END, 0,
                    tin * ({in_rates})[1 + g %% 5] + tout * ({out_rates})[1 + g %% 5], false, tin, tout,
                    (ts AT TIME ZONE 'UTC')::date, date_trunc('month', ts), ts, ts + interval '1 hour',
                    ts + interval '3 seconds', ts + interval '3 seconds', '', ''
                FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS g,
                     LATERAL (SELECT now() - interval '1 hour' - ((g * 7919) %% %(span)s) * interval '1 second' AS ts,
                                     1 + (g %% cardinality(%(ws)s::bigint[]))::int AS k,
                                     500 + (g * 37) %% 4000 AS tin, 100 + (g * 53) %% 1500 AS tout) AS x
                RETURNING id, created_at)
                INSERT INTO new_runs SELECT id, created_at FROM inserted
            """, {**params, "low": low, "high": low + size - 1})
            cursor.execute(f"""
                INSERT INTO usage_runnode (run_id, run_created_at, position, name, model_id, input_tokens,
                    output_tokens, input_nanos_per_token, output_nanos_per_token, token_credits, tool_credits, credits,
                    tools)
                SELECT r.id, r.created_at, 0, 'generate', r.model_id, r.input_tokens, r.output_tokens,
                    ({in_rates})[array_position({models_sql}, r.model_id::text)],
                    ({out_rates})[array_position({models_sql}, r.model_id::text)], r.credits, 0, r.credits, '[]'::jsonb
                FROM usage_run r JOIN new_runs n ON n.id = r.id AND n.created_at = r.created_at
            """)
            cursor.execute("""
                INSERT INTO usage_runkey (workspace_id, public_id, run_id, run_created_at)
                SELECT r.workspace_id, r.public_id, r.id, r.created_at
                FROM usage_run r JOIN new_runs n ON n.id = r.id AND n.created_at = r.created_at
            """)
            cursor.execute("""
                INSERT INTO usage_dailyusage (workspace_id, day, agent_id, model_id, member_id, period_start, credits,
                    input_tokens, output_tokens, runs)
                SELECT workspace_id, (completed_at AT TIME ZONE 'UTC')::date, agent_id, model_id, member_id,
                    r.period_start, sum(credits), sum(input_tokens), sum(output_tokens), count(*)
                FROM usage_run r JOIN new_runs n ON n.id = r.id AND n.created_at = r.created_at
                GROUP BY 1, 2, 3, 4, 5, 6
            """ + ROLLUP_ADD)
        done += size
        elapsed = time.perf_counter() - started
        print(f"  generated {done:,} of {count:,} runs ({done / elapsed:,.0f} runs/s, {elapsed:.0f}s)", flush=True)


def _settle() -> None:
    """Vacuum and analyze what generation wrote, then checkpoint, before either size is measured:
    otherwise autovacuum of the fresh rows and the checkpoint of their WAL run during the
    measurement, and the larger size pays for them and the smaller does not."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) usage_run, usage_runnode, usage_runkey, usage_dailyusage")
        cursor.execute("CHECKPOINT")
    print(f"  vacuumed, analyzed and checkpointed in {time.perf_counter() - started:.0f}s", flush=True)


def _throughput(client, token: str, pairs: int) -> float:
    """authorize + complete pairs per second, sequential."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    complete = {"status": "succeeded", "nodes": [
        {"name": "a", "model": "gpt-4o-mini", "input_tokens": 1200, "output_tokens": 300},
        {"name": "b", "model": "gpt-4o", "input_tokens": 800, "output_tokens": 200}]}
    started = time.perf_counter()
    for _ in range(pairs):
        run_id = uuid.uuid4().hex
        first = client.post("/v1/runs", {"id": run_id, "workflow": "wf", "agent": "bench-agent",
                                          "model": "gpt-4o-mini"}, content_type="application/json", **headers)
        second = client.post(f"/v1/runs/{run_id}/complete", complete, content_type="application/json", **headers)
        assert first.status_code == 201 and second.status_code == 200, (first.content, second.content)
    return pairs / (time.perf_counter() - started)


def _count(*, generated_only: bool) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        if generated_only:
            cursor.execute("SELECT count(*) FROM usage_run WHERE public_id LIKE %s", [GENERATED])
        else:
            cursor.execute("SELECT count(*) FROM usage_run")
        return cursor.fetchone()[0]


def _month_export(workspace) -> tuple[float, int, int, int]:
    """Stream one whole past month's CSV; the partitions its first window's plan reads."""
    from usage.export import _copy_windows, _rows_queryset, export_rows
    from usage.filters import RunFilter
    from usage.partitions import month_add, month_start, run_partitions

    first = month_add(month_start(date.today()), -3)
    last = month_add(first, 1) - timedelta(days=1)
    filters = RunFilter(start=first, end=last)
    started = time.perf_counter()
    rows = sum(chunk.count(b"\n") for chunk in export_rows(workspace=workspace, filters=filters)) - 1
    seconds = time.perf_counter() - started
    low, high = _copy_windows(workspace, filters, "default")[-1]
    plan = _rows_queryset(workspace, filters, "default").filter(run__completed_at__gte=low,
                                                                   run__completed_at__lt=high).explain()
    read = sum(1 for month, _ in run_partitions() if f"usage_run_p{month:%Y_%m}" in plan)
    return seconds, rows, read, len(run_partitions())


def _sizes() -> dict[str, int]:
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for table in ("usage_run", "usage_runnode", "usage_runkey", "usage_dailyusage", "billing_ledgerentry"):
            cursor.execute("SELECT CASE WHEN c.relkind = 'p' THEN (SELECT sum(pg_total_relation_size(t.relid)) "
                           "FROM pg_partition_tree(c.oid) t) ELSE pg_total_relation_size(c.oid) END "
                           "FROM pg_class c WHERE c.relname = %s", [table])
            sizes[table] = int(cursor.fetchone()[0])
        cursor.execute("SELECT count(*) FROM billing_ledgerentry")
        sizes["ledger_rows"] = cursor.fetchone()[0]
    return sizes


def _last_generated() -> int:
    """The highest generated id number: the keys of dropped runs stay taken (RunKey outlives them)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(substr(public_id, 5)::bigint), 0) FROM usage_runkey WHERE public_id LIKE %s",
                       [GENERATED])
        return cursor.fetchone()[0]


# --- Phases: each runs in its own process against one database (BENCH_DATABASE_URL) ---------------

def phase_prepare(runs: int, reuse: bool) -> dict:
    """`runs` generated runs over 13 months in this database: fresh, or an earlier run's topped up."""
    setup_django(RATE_LIMIT_ENABLED="false")
    from billing.models import Membership, Workspace
    from usage.models import Agent, Workflow
    from usage.partitions import month_add, month_start, partitions_create_between

    span = MONTHS * 30
    have = _count(generated_only=True) if reuse and Workspace.objects.filter(slug="scale-0").exists() else 0
    if have:
        print(f"scale: reusing {have:,} generated runs", flush=True)
        workspaces = []
        for i in range(WORKSPACES):
            workspace = Workspace.objects.get(slug=f"scale-{i}")
            workspaces.append({"id": workspace.pk, "workflow": Workflow.objects.get(workspace=workspace, name="wf").pk,
                               "agent": Agent.objects.get(workspace=workspace, name="bench-agent").pk,
                               "member": Membership.objects.filter(workspace=workspace).first().pk})
        if have < runs:  # over the last 12 months only: never into a month that retention dropped
            _generate(workspaces=workspaces, start_index=_last_generated(), count=runs - have, span_days=span - 31)
    else:
        reset_business_data()
        today = date.today()
        partitions_create_between(first=month_start(today - timedelta(days=span)), last=month_add(month_start(today), 3))
        workspaces = []
        for i in range(WORKSPACES):
            workspace, membership, _ = bench_workspace(f"scale-{i}")
            workflow = Workflow.objects.create(workspace=workspace, name="wf")
            workspaces.append({"id": workspace.pk, "workflow": workflow.pk,
                               "agent": workspace.agents.get(name="bench-agent").pk, "member": membership.pk})
        print(f"scale: generating {runs:,} runs over {MONTHS} months in {WORKSPACES} workspaces ...", flush=True)
        _generate(workspaces=workspaces, start_index=0, count=runs, span_days=span)
    _settle()
    return {"reused": bool(have)}


def phase_measure(pairs: int, samples: int) -> dict:
    """One round on the first workspace: throughput, page and API timings, one past month's CSV."""
    setup_django(RATE_LIMIT_ENABLED="false")
    from django.test import Client

    from billing.models import Workspace
    from usage.models import DeveloperToken, hash_token

    workspace = Workspace.objects.get(slug="scale-0")
    membership = workspace.memberships.first()
    token = DeveloperToken.generate()
    DeveloperToken.objects.create(membership=membership, name="scale bench", token_hash=hash_token(token),
                                  prefix=token[:8])
    client = Client()
    client.force_login(membership.user)
    page, api = f"/w/{workspace.slug}/settings/billing/usage/", {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    # Warm up (imports, templates, caches) so that no round is measured cold.
    _throughput(client, token, 10)
    timings(client, page, 10)
    timings(client, "/v1/usage", 10, **api)
    figures = {"pairs_per_s": _throughput(client, token, pairs), "page": timings(client, page, samples),
               "api": timings(client, "/v1/usage", samples, **api)}
    figures["export_s"], figures["export_rows"], figures["export_partitions"], figures["partitions"] = \
        _month_export(workspace)
    return figures


def phase_finish(drop: bool) -> dict:
    """Table sizes and run count; with `drop`, the time to drop the oldest month."""
    setup_django(RATE_LIMIT_ENABLED="false")
    from usage.partitions import month_start, run_detail_retire, run_partitions

    figures = {"sizes": _sizes(), "runs": _count(generated_only=False)}
    if drop:
        oldest = run_partitions()[0][0]
        this_month = month_start(date.today())
        keep = (this_month.year - oldest.year) * 12 + this_month.month - oldest.month - 1
        retired = run_detail_retire(months=keep)
        if retired:
            figures["dropped"] = {"month": f"{retired[0].month:%Y-%m}", "runs": retired[0].runs,
                                  "ms": retired[0].drop_seconds * 1000}
    return figures


def _phase(database: str, *args) -> dict:
    """Run one phase in a fresh process against `database`, passing its progress lines on as they
    come; its answer is its last line (JSON)."""
    with subprocess.Popen([sys.executable, "-m", "bench.scale", *map(str, args)], cwd=ROOT, text=True,
                          env=dict(os.environ, BENCH_DATABASE_URL=database), stdout=subprocess.PIPE) as proc:
        last = ""
        for line in proc.stdout:
            if last:
                print(last, end="", flush=True)
            last = line
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, proc.args)
    return json.loads(last)


def _summary(rounds: list[dict]) -> dict:
    return {"pairs_per_s": statistics.median(r["pairs_per_s"] for r in rounds),
            "page_p95": p95([t for r in rounds for t in r["page"]]),
            "api_p95": p95([t for r in rounds for t in r["api"]]),
            "export_s": statistics.median(r["export_s"] for r in rounds), "export_rows": rounds[0]["export_rows"],
            "export_partitions": rounds[0]["export_partitions"], "partitions": rounds[0]["partitions"]}


def run(*, quick: bool = False, runs: int | None = None, reuse: bool = False) -> None:
    small, large = (5_000, 200_000) if quick else (50_000, runs or 20_000_000)
    rounds, pairs, samples = (2, 40, 20) if quick else (3, 150, 60)
    _phase(SMALL_DB, "prepare", small, "fresh")
    reused = _phase(LARGE_DB, "prepare", large, "reuse" if reuse else "fresh")["reused"]
    measured = {"small": [], "large": []}
    for index in range(rounds):
        for label, database in (("small", SMALL_DB), ("large", LARGE_DB)):
            figures = _phase(database, "measure", pairs, samples)
            measured[label].append(figures)
            print(f"  round {index + 1}, {label}: {figures['pairs_per_s']:.1f} pairs/s, page p95 "
                  f"{p95(figures['page']) * 1000:.1f} ms, /v1/usage p95 {p95(figures['api']) * 1000:.1f} ms, "
                  f"month CSV {figures['export_rows']:,} rows in {figures['export_s']:.2f}s "
                  f"(plan reads {figures['export_partitions']} of {figures['partitions']} run partitions)", flush=True)
    finish = _phase(LARGE_DB, "finish", "keep" if reused else "drop")
    baseline, figures = _summary(measured["small"]), _summary(measured["large"])

    sizes, total = finish["sizes"], finish["runs"]
    per_run = (sizes["usage_run"] + sizes["usage_runnode"] + sizes["usage_runkey"]) / total
    print(f"scale: {total:,} runs in the large database" + (" (reused)" if reused else ""), flush=True)
    print("scale: table sizes (indexes included): " + ", ".join(
        f"{name} {size / 2**20:,.0f} MiB" for name, size in sizes.items() if name != "ledger_rows"), flush=True)
    print(f"scale: {sizes['usage_run'] / total:.0f} B/run in runs, {sizes['usage_runnode'] / total:.0f} B "
          f"per node, {sizes['usage_runkey'] / total:.0f} B/run in keys: {per_run:.0f} bytes per one-node run; "
          f"ledger {sizes['billing_ledgerentry'] / max(sizes['ledger_rows'], 1):.0f} B per entry", flush=True)
    if "dropped" in finish:
        dropped = finish["dropped"]
        print(f"scale: dropped the oldest month {dropped['month']} ({dropped['runs']:,} runs) in {dropped['ms']:.1f} ms "
              f"(DROP TABLE of its run and node partitions)", flush=True)

    report("scale throughput", figures["pairs_per_s"], "pairs/s", baseline["pairs_per_s"], "ratio >= 0.9",
           extra=f"medians of {rounds} alternating rounds of {pairs} pairs")
    page_ratio = figures["page_p95"] / baseline["page_p95"]
    api_ratio = figures["api_p95"] / baseline["api_p95"]
    report("scale dashboard", max(figures["page_p95"], figures["api_p95"]) * 1000, "ms p95",
           max(baseline["page_p95"], baseline["api_p95"]) * 1000, "ratio <= 1.5", ratio=max(page_ratio, api_ratio),
           extra=f"page {figures['page_p95'] * 1000:.1f}/{baseline['page_p95'] * 1000:.1f} ms ({page_ratio:.2f}), "
                 f"api {figures['api_p95'] * 1000:.1f}/{baseline['api_p95'] * 1000:.1f} ms ({api_ratio:.2f})")
    report("scale month export", figures["export_rows"] / figures["export_s"], "rows/s",
           baseline["export_rows"] / baseline["export_s"], "pruned",
           extra=f"{figures['export_rows']:,} rows in {figures['export_s']:.2f}s vs {baseline['export_rows']:,}; plan "
                 f"reads {figures['export_partitions']} of {figures['partitions']} run partitions")


def _main(phase: str, *args: str) -> None:
    if phase == "prepare":
        answer = phase_prepare(int(args[0]), reuse=args[1] == "reuse")
    elif phase == "measure":
        answer = phase_measure(int(args[0]), int(args[1]))
    else:
        answer = phase_finish(drop=args[0] == "drop")
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    _main(*sys.argv[1:])
