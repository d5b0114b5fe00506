"""authorize + complete requests/s over HTTP (gunicorn, 16 concurrent clients), one hot workspace and
spread over 1,000 workspaces, against an authenticated no-op /v1/ endpoint on the same server."""

from .common import Server, report, reset_business_data, setup_django
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
        hot, hot_errors = run_load(port=PORT, scenario="charge", tokens=tokens[:1], seconds=seconds)
        print(f"  hot workspace: {hot:,.1f} req/s ({hot_errors} errors)", flush=True)
        spread, spread_errors = run_load(port=PORT, scenario="charge", tokens=tokens, seconds=seconds)
        print(f"  spread over {count}: {spread:,.1f} req/s ({spread_errors} errors)", flush=True)
    errors = noop_errors + hot_errors + spread_errors
    report("charge", min(hot, spread), "req/s", noop, ">= 0.40; hot/spread >= 0.70; zero errors",
           extra=f"hot {hot:,.1f} ({hot / noop:.2f}), spread {spread:,.1f} ({spread / noop:.2f}), "
                 f"hot/spread {hot / spread:.2f}, errors {errors}")
