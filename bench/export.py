"""CSV export rows/s for 1M rows through the real page view, its peak memory and first byte, against
`COPY (the same rows) TO STDOUT CSV` through psycopg in the same process."""

import resource
import time

from .common import report, reset_business_data, setup_django
from .data import bench_workspace, generate_runs


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def run(*, quick: bool = False) -> None:
    setup_django()
    reset_business_data()
    from django.db import connection
    from django.test import Client

    from usage.export import _rows_queryset
    from usage.filters import RunFilter

    rows = 50_000 if quick else 1_000_000
    workspace, membership, _ = bench_workspace("export")
    print(f"export: generating {rows:,} runs ...", flush=True)
    print(f"  generated in {generate_runs(workspace=workspace, membership=membership, count=rows):.1f}s", flush=True)

    grouped, params = _rows_queryset(workspace, RunFilter()).query.sql_with_params()
    baseline_sql = "COPY (" + connection.ops.compose_sql(grouped, params) + ") TO STDOUT WITH (FORMAT csv)"
    connection.ensure_connection()
    started = time.perf_counter()
    baseline_bytes = 0
    with connection.connection.cursor() as cursor, cursor.copy(baseline_sql) as copy:
        for data in copy:
            baseline_bytes += len(data)
    baseline_rate = rows / (time.perf_counter() - started)
    print(f"  COPY baseline: {baseline_rate:,.0f} rows/s ({baseline_bytes / 2**20:.1f} MB)", flush=True)

    client = Client()
    client.force_login(membership.user)
    url = f"/w/{workspace.slug}/settings/billing/usage/export.csv"
    rss_before = _rss_mb()
    peak = rss_before
    started = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    first_byte = first_row = None
    lines = 0
    for index, chunk in enumerate(response.streaming_content):
        if index == 0:
            first_byte = time.perf_counter() - started  # the header row
        elif first_row is None:
            first_row = time.perf_counter() - started  # the first data chunk after the header
        lines += chunk.count(b"\n")
        if index % 200 == 0:
            peak = max(peak, _rss_mb())
    elapsed = time.perf_counter() - started
    peak = max(peak, _rss_mb())
    exported = lines - 1
    rate = exported / elapsed
    print(f"  export view: {exported:,} rows, {rate:,.0f} rows/s, first byte {first_byte:.3f}s, "
          f"first data row {first_row:.3f}s, memory growth {peak - rss_before:.1f} MB", flush=True)
    report("export", rate, "rows/s", baseline_rate, ">= 0.50; memory growth <= 64 MB; first byte <= 1 s",
           extra=f"rows {exported:,} (expected {rows:,}), memory growth {peak - rss_before:.1f} MB, "
                 f"first byte {first_byte:.3f}s, first data row {first_row:.3f}s")
