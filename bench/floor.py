"""The ceiling of any charge path on this stack, against the same no-op as `charge` (issue 13).

A server with the URLconf in bench/floor_urls.py answers /v1/runs and /v1/runs/<id>/complete with
the work every design keeps (token authentication from the cache, the rate limiter, reading and
validating the body with the API's serializers, the request fingerprint, a response of the same
shape) and a single statement for the money: one UPDATE that locks the workspace's wallet row, in a
transaction that commits. No run, ledger entry, counter or limit is read or written. A design that
did all of that in one PL/pgSQL call per phase would still cost at least this, so the ratio printed
here bounds what `charge` can reach. Same load generator, clients and server shape as `charge`; the
no-op and the two floor loads alternate in rounds."""

from .common import Server, report, reset_business_data, setup_django
from .data import bench_workspace
from .load import run_load

PORTS = {"project": 8768, "floor": 8769}


def run(*, quick: bool = False) -> None:
    setup_django()
    reset_business_data()
    count, rounds, seconds = (50, 2, 2) if quick else (1000, 3, 5)
    print(f"floor: creating {count} workspaces with tokens ...", flush=True)
    tokens = [bench_workspace(f"bench-{i}")[2] for i in range(count)]
    loads = {"no-op": (PORTS["project"], "noop", tokens[:1]), "floor hot": (PORTS["floor"], "charge", tokens[:1]),
             "floor spread": (PORTS["floor"], "charge", tokens)}
    totals = {label: 0.0 for label in loads}
    errors = 0
    with Server(PORTS["project"]), Server(PORTS["floor"], DJANGO_SETTINGS_MODULE="bench.floor_settings"):
        for port in PORTS.values():
            # Every token into every worker's token cache, as the no-op's one token is (a process
            # caches a token on its second sighting, usage/api/token_cache.py).
            run_load(port=port, scenario="noop", tokens=tokens, seconds=2 if quick else 12)
        for index in range(rounds):
            figures = []
            for label, (port, scenario, some_tokens) in loads.items():
                rate, failed = run_load(port=port, scenario=scenario, tokens=some_tokens, seconds=seconds)
                totals[label] += rate
                errors += failed
                figures.append(f"{label} {rate:,.1f}")
            print(f"  round {index + 1}: " + ", ".join(figures) + " req/s", flush=True)
    noop, hot, spread = (totals[label] / rounds for label in totals)
    report("floor", hot, "req/s (hot)", noop, "none: the ceiling of `charge`",
           extra=f"hot {hot:,.1f} ({hot / noop:.2f}), spread {spread:,.1f} ({spread / noop:.2f}), errors {errors}")
