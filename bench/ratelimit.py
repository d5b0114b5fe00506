"""/v1/ requests/s with the Redis limiter on, against the same endpoint with the limiter off."""

from .common import Server, report, reset_business_data, setup_django
from .data import bench_workspace
from .load import run_load

PORT = 8766


def run(*, quick: bool = False) -> None:
    setup_django()
    reset_business_data()
    seconds = 4 if quick else 15
    tokens = [bench_workspace(f"rl-{i}")[2] for i in range(16)]
    results = {}
    for label, enabled in (("limiter off", "false"), ("limiter on", "true")):
        with Server(PORT, RATE_LIMIT_ENABLED=enabled):
            run_load(port=PORT, scenario="noop", tokens=tokens, seconds=2)
            rate, errors = run_load(port=PORT, scenario="noop", tokens=tokens, seconds=seconds)
        print(f"  {label}: {rate:,.1f} req/s ({errors} errors)", flush=True)
        results[label] = rate
    report("ratelimit", results["limiter on"], "req/s", results["limiter off"], ">= 0.95")
