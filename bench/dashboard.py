"""Usage page and /v1/usage p95 with 5M runs, against the same with 50k runs."""

from .common import p95, report, reset_business_data, setup_django, timings
from .data import bench_workspace, generate_runs


def run(*, quick: bool = False) -> None:
    setup_django(RATE_LIMIT_ENABLED="false")
    reset_business_data()
    from django.test import Client

    small_n, large_n = (5_000, 500_000) if quick else (50_000, 5_000_000)
    samples = 20 if quick else 60
    results = {}
    for label, count in (("small", small_n), ("large", large_n)):
        workspace, membership, token = bench_workspace(f"dash-{label}")
        print(f"dashboard: generating {count:,} runs for {label} ...", flush=True)
        print(f"  generated in {generate_runs(workspace=workspace, membership=membership, count=count):.1f}s", flush=True)
        client = Client()
        client.force_login(membership.user)
        page = f"/w/{workspace.slug}/settings/billing/usage/"
        client.get(page)  # warm
        page_p95 = p95(timings(client, page, samples))
        api_p95 = p95(timings(client, "/v1/usage", samples, HTTP_AUTHORIZATION=f"Bearer {token}"))
        results[label] = (page_p95, api_p95)
        print(f"  {label} ({count:,} runs): page p95 {page_p95 * 1000:.1f} ms, /v1/usage p95 {api_p95 * 1000:.1f} ms",
              flush=True)
    (small_page, small_api), (large_page, large_api) = results["small"], results["large"]
    worst = max(large_page / small_page, large_api / small_api)
    report("dashboard", max(large_page, large_api) * 1000, "ms p95", max(small_page, small_api) * 1000,
           "ratio <= 1.5", ratio=worst,
           extra=f"page {large_page * 1000:.1f}/{small_page * 1000:.1f} ms, api {large_api * 1000:.1f}/{small_api * 1000:.1f} ms")
