"""authorize + complete requests/s over HTTP (gunicorn, 16 concurrent clients), one hot workspace and
spread over 1,000 workspaces, against an authenticated no-op /v1/ endpoint on the same server; p50
and p99 latency of authorize and of complete at 16 clients."""

from .common import Server, percentile, report, reset_business_data, setup_django
from .data import bench_workspace
from .load import run_load

PORT = 8765


def run(*, quick: bool = False) -> None:
    setup_django()
    reset_business_data()
    count = 50 if quick else 1000
    seconds = 4 if quick else 15
    print(f"charge: creating {count} workspaces with tokens ...", flush=True)
    tokens = []
    for i in range(count):
        tokens.append(bench_workspace(f"bench-{i}")[2])
        if (i + 1) % 200 == 0:
            print(f"  {i + 1}/{count}", flush=True)
    with Server(PORT):
        run_load(port=PORT, scenario="noop", tokens=tokens[:1], seconds=2)  # warm up every worker
        noop, noop_errors = run_load(port=PORT, scenario="noop", tokens=tokens[:1], seconds=seconds)
        print(f"  no-op: {noop:,.1f} req/s ({noop_errors} errors)", flush=True)
        hot_latency, spread_latency = {}, {}
        hot, hot_errors = run_load(port=PORT, scenario="charge", tokens=tokens[:1], seconds=seconds,
                                   latencies=hot_latency)
        print(f"  hot workspace: {hot:,.1f} req/s ({hot_errors} errors); {_latency(hot_latency)}", flush=True)
        # Every token into every worker's token cache first, as the no-op's and the hot load's one token
        # is (a process caches a token on its second sighting, usage/api/token_cache.py).
        run_load(port=PORT, scenario="noop", tokens=tokens, seconds=2 if quick else 12)
        spread, spread_errors = run_load(port=PORT, scenario="charge", tokens=tokens, seconds=seconds,
                                         latencies=spread_latency)
        print(f"  spread over {count}: {spread:,.1f} req/s ({spread_errors} errors); {_latency(spread_latency)}",
              flush=True)
    errors = noop_errors + hot_errors + spread_errors
    # Two targets (issue 13): the hot workspace against 0.40 and the spread against 0.50 of the no-op.
    report("charge", hot, "req/s (hot)", noop, "hot >= 0.40, spread >= 0.50; zero errors",
           extra=f"hot {hot:,.1f} ({hot / noop:.2f}), spread {spread:,.1f} ({spread / noop:.2f}), errors {errors}; "
                 f"hot {_latency(hot_latency)}; spread {_latency(spread_latency)}")


def _latency(latencies: dict[str, list[float]]) -> str:
    return ", ".join(f"{kind} p50 {percentile(samples, 0.50) * 1000:.1f} ms p99 {percentile(samples, 0.99) * 1000:.1f} ms"
                     for kind, samples in sorted(latencies.items()) if samples)
