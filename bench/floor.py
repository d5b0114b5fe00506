"""The project's charge path against the floor of any charge path on this stack, in the same rounds
(issues 13 and 26).

Two servers. The project's serves the authenticated no-op `/v1/ping` and the real `/v1/runs` and
`/v1/runs/<id>/complete`. The floor's (the URLconf in bench/floor_urls.py) answers those two
endpoints with the work every design keeps (token authentication from the cache, the rate limiter,
reading and validating the body with the API's serializers, the request fingerprint, a response of
the same shape) and a single statement for the money: one UPDATE that locks the workspace's wallet
row, in a transaction that commits. No run, ledger entry, counter or limit is read or written.

The no-op, the floor and the charge path, each hot (one workspace) and spread (1,000 workspaces),
alternate in rounds, so a change in the machine's load weighs on all of them alike. The last line is
`charge/floor hot=<ratio> spread=<ratio>` (target: 0.80 each, issue 26); the line before it is the
`floor` report, with each figure's ratio to the no-op. After the loads every hold must be released
and reconcile must find nothing (docs/performance.md)."""

from .common import Server, percentile, report, reset_business_data, setup_django
from .data import bench_workspace
from .load import run_load

PORTS = {"project": 8768, "floor": 8769}


def run(*, quick: bool = False) -> None:
    setup_django()
    reset_business_data()
    count, rounds, seconds = (50, 2, 2) if quick else (1000, 3, 5)
    print(f"floor: creating {count} workspaces with tokens ...", flush=True)
    tokens = [bench_workspace(f"bench-{i}")[2] for i in range(count)]
    from django.db import connection

    with connection.cursor() as cursor:
        # The load's workflow, which the charge path would create on each workspace's first run (the
        # floor creates nothing): created here, outside the measured rounds.
        cursor.execute("INSERT INTO usage_workflow (name, created_at, workspace_id) "
                       "SELECT 'bench', now(), id FROM billing_workspace ON CONFLICT DO NOTHING")
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute("CHECKPOINT")
    loads = {"no-op": (PORTS["project"], "noop", tokens[:1]),
             "floor hot": (PORTS["floor"], "charge", tokens[:1]),
             "floor spread": (PORTS["floor"], "charge", tokens),
             "charge hot": (PORTS["project"], "charge", tokens[:1]),
             "charge spread": (PORTS["project"], "charge", tokens)}
    totals = {label: 0.0 for label in loads}
    latencies = {"charge hot": {}, "charge spread": {}}
    errors = 0
    with Server(PORTS["project"]), Server(PORTS["floor"], DJANGO_SETTINGS_MODULE="bench.floor_settings"):
        for port in PORTS.values():
            # Every token into every worker's token cache, as the no-op's one token is (a process
            # caches a token on its second sighting, usage/api/token_cache.py).
            run_load(port=port, scenario="noop", tokens=tokens, seconds=2 if quick else 12)
        run_load(port=PORTS["project"], scenario="charge", tokens=tokens, seconds=2 if quick else 4)  # warm
        for index in range(rounds):
            figures = []
            for label, (port, scenario, some_tokens) in loads.items():
                if len(some_tokens) > 1:
                    # A cached token expires after 60 s (usage/api/token_cache.py), and these rounds take
                    # longer: refresh every token in this server's workers first, as at the start.
                    run_load(port=port, scenario="noop", tokens=tokens, seconds=2 if quick else 6)
                rate, failed = run_load(port=port, scenario=scenario, tokens=some_tokens, seconds=seconds,
                                        latencies=latencies.get(label))
                totals[label] += rate
                errors += failed
                figures.append(f"{label} {rate:,.1f}")
            print(f"  round {index + 1}: " + ", ".join(figures) + " req/s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM billing_wallet WHERE running_runs <> 0 OR reserved <> 0")
        (open_wallets,) = cursor.fetchone()
    problems = _reconcile()
    noop, hot, spread, charge_hot, charge_spread = (totals[label] / rounds for label in totals)
    for label in ("charge hot", "charge spread"):
        print(f"  {label}: {_latency(latencies[label])}", flush=True)
    print(f"  after the loads: wallets still holding {open_wallets}; reconcile: "
          + (f"{len(problems)} problem(s): {problems[:3]}" if problems else "clean"), flush=True)
    report("floor", hot, "req/s (hot)", noop, "none: the ceiling of `charge`",
           extra=f"floor hot {hot:,.1f} ({hot / noop:.2f}), spread {spread:,.1f} ({spread / noop:.2f}); charge hot "
                 f"{charge_hot:,.1f} ({charge_hot / noop:.2f}), spread {charge_spread:,.1f} "
                 f"({charge_spread / noop:.2f}) of the no-op; errors {errors}")
    print(f"charge/floor hot={charge_hot / hot:.2f} spread={charge_spread / spread:.2f}", flush=True)


def _reconcile() -> list[str]:
    from operations.reconcile import reconcile_all

    return [f"{slug}: {problem}" for slug, found in reconcile_all().items() for problem in found]


def _latency(latencies: dict[str, list[float]]) -> str:
    return ", ".join(f"{kind} p50 {percentile(samples, 0.50) * 1000:.1f} ms p99 {percentile(samples, 0.99) * 1000:.1f} ms"
                     for kind, samples in sorted(latencies.items()) if samples)
