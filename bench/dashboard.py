"""Usage page and /v1/usage p95 with 5M runs, against the same with 50k runs.

Both workspaces are generated first, then vacuumed, analyzed and checkpointed (CI's PostgreSQL runs
without autovacuum), then measured in alternating rounds (small, large, small, ...), so that a
change in the machine's speed during the run weighs on the figure and on its baseline alike.
Measured in blocks right after each generation, the same code gave ratios from 0.47 to 1.46."""

from .common import p95, report, reset_business_data, setup_django, timings
from .data import bench_workspace, generate_runs

ROUNDS = 4


def run(*, quick: bool = False) -> None:
    setup_django(RATE_LIMIT_ENABLED="false")
    reset_business_data()
    from django.db import connection
    from django.test import Client

    small_n, large_n = (5_000, 500_000) if quick else (50_000, 5_000_000)
    samples = 20 if quick else 60
    sides = {}
    for label, count in (("small", small_n), ("large", large_n)):
        workspace, membership, token = bench_workspace(f"dash-{label}")
        print(f"dashboard: generating {count:,} runs for {label} ...", flush=True)
        print(f"  generated in {generate_runs(workspace=workspace, membership=membership, count=count):.1f}s", flush=True)
        client = Client()
        client.force_login(membership.user)
        sides[label] = (client, f"/w/{workspace.slug}/settings/billing/usage/", token)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) usage_run, usage_runnode, usage_runkey, usage_dailyusage")
        cursor.execute("CHECKPOINT")
    measured = {label: ([], []) for label in sides}
    for client, page, token in sides.values():
        client.get(page)  # warm
        client.get("/v1/usage", HTTP_AUTHORIZATION=f"Bearer {token}")
    for _ in range(ROUNDS):
        for label, (client, page, token) in sides.items():
            pages, apis = measured[label]
            pages.extend(timings(client, page, samples // ROUNDS))
            apis.extend(timings(client, "/v1/usage", samples // ROUNDS, HTTP_AUTHORIZATION=f"Bearer {token}"))
    results = {label: (p95(pages), p95(apis)) for label, (pages, apis) in measured.items()}
    for label, count in (("small", small_n), ("large", large_n)):
        page_p95, api_p95 = results[label]
        print(f"  {label} ({count:,} runs): page p95 {page_p95 * 1000:.1f} ms, /v1/usage p95 {api_p95 * 1000:.1f} ms",
              flush=True)
    (small_page, small_api), (large_page, large_api) = results["small"], results["large"]
    worst = max(large_page / small_page, large_api / small_api)
    report("dashboard", max(large_page, large_api) * 1000, "ms p95", max(small_page, small_api) * 1000,
           "ratio <= 1.5", ratio=worst,
           extra=f"page {large_page * 1000:.1f}/{small_page * 1000:.1f} ms, api {large_api * 1000:.1f}/{small_api * 1000:.1f} ms")
