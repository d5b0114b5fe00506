"""/v1/ requests/s with the Redis limiter on, against the same endpoint with the limiter off.

Both servers run side by side and are loaded in turn, in rounds (off, on, off, on, ...), so that a
change in the machine's load during the run weighs on the figure and on its baseline alike (one
15-second block each, one after the other, gave ratios from 0.93 to 1.45 on the same code)."""

from .common import Server, report, reset_business_data, setup_django
from .data import bench_workspace
from .load import run_load

PORTS = {"limiter off": 8766, "limiter on": 8767}


def run(*, quick: bool = False) -> None:
    setup_django()
    reset_business_data()
    from django.db import connection

    rounds, seconds = (2, 2) if quick else (5, 3)
    tokens = [bench_workspace(f"rl-{i}")[2] for i in range(16)]
    with connection.cursor() as cursor:
        # In `make bench` this runs right after `charge`, whose writes leave PostgreSQL checkpointing
        # in the background: that would fall on some rounds of either side and not on others.
        cursor.execute("CHECKPOINT")
    requests = {label: 0.0 for label in PORTS}
    errors = 0
    with Server(PORTS["limiter off"], RATE_LIMIT_ENABLED="false"), Server(PORTS["limiter on"], RATE_LIMIT_ENABLED="true"):
        for port in PORTS.values():
            run_load(port=port, scenario="noop", tokens=tokens, seconds=2)  # warm up every worker
        for index in range(rounds):
            figures = []
            for label, port in PORTS.items():
                rate, failed = run_load(port=port, scenario="noop", tokens=tokens, seconds=seconds)
                requests[label] += rate
                errors += failed
                figures.append(f"{label} {rate:,.1f}")
            print(f"  round {index + 1}: " + ", ".join(figures) + " req/s", flush=True)
    on, off = requests["limiter on"] / rounds, requests["limiter off"] / rounds
    print(f"  limiter off: {off:,.1f} req/s; limiter on: {on:,.1f} req/s ({errors} errors)", flush=True)
    report("ratelimit", on, "req/s", off, ">= 0.95", extra=f"errors {errors}")
