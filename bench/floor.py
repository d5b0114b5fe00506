"""The ceiling of any charge path on this stack, against the same no-op as `charge` (issue 13).

A server with the URLconf in bench/floor_urls.py answers /v1/runs and /v1/runs/<id>/complete with
the work every design keeps (token authentication from the cache, the rate limiter, reading and
validating the body with the API's serializers, the request fingerprint, a response of the same
shape) and a single statement for the money: one UPDATE that locks the workspace's wallet row, in a
transaction that commits. No run, ledger entry, counter or limit is read or written. A design that
did all of that in one PL/pgSQL call per phase would cost about this (one statement in autocommit
saves the BEGIN and COMMIT round trips that its own work adds back), so the ratio printed here is
about the most `charge` can reach.

A third server answers the same endpoints through bench/floor_plpgsql.sql, a sketch of that design:
one call per phase that makes the statements of an admitted authorize and a first completion (not
the rest of the money rules, which it lists). It says where a second implementation of the rules in
PL/pgSQL would land before anyone writes one. After the loads every hold must be released.

Same load generator, clients and server shape as `charge`; the no-op and the four loads alternate
in rounds."""

from pathlib import Path

from .common import Server, report, reset_business_data, setup_django
from .data import bench_workspace
from .load import run_load

PORTS = {"project": 8768, "floor": 8769, "sketch": 8770}
SKETCH_SQL = Path(__file__).with_name("floor_plpgsql.sql")


def run(*, quick: bool = False) -> None:
    setup_django()
    reset_business_data()
    count, rounds, seconds = (50, 2, 2) if quick else (1000, 3, 5)
    print(f"floor: creating {count} workspaces with tokens ...", flush=True)
    tokens = [bench_workspace(f"bench-{i}")[2] for i in range(count)]
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(SKETCH_SQL.read_text())
        # The sketch reads the load's workflow and does not create it on first use as the service does.
        cursor.execute("INSERT INTO usage_workflow (name, created_at, workspace_id) "
                       "SELECT 'bench', now(), id FROM billing_workspace ON CONFLICT DO NOTHING")
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute("CHECKPOINT")
    loads = {"no-op": (PORTS["project"], "noop", tokens[:1]), "floor hot": (PORTS["floor"], "charge", tokens[:1]),
             "floor spread": (PORTS["floor"], "charge", tokens), "sketch hot": (PORTS["sketch"], "charge", tokens[:1]),
             "sketch spread": (PORTS["sketch"], "charge", tokens)}
    totals = {label: 0.0 for label in loads}
    errors = 0
    with (Server(PORTS["project"]), Server(PORTS["floor"], DJANGO_SETTINGS_MODULE="bench.floor_settings"),
          Server(PORTS["sketch"], DJANGO_SETTINGS_MODULE="bench.floor_settings", FLOOR_PATH="sketch")):
        for port in PORTS.values():
            # Every token into every worker's token cache, as the no-op's one token is (a process
            # caches a token on its second sighting, usage/api/token_cache.py).
            run_load(port=port, scenario="noop", tokens=tokens, seconds=2 if quick else 12)
        for index in range(rounds):
            figures = []
            for label, (port, scenario, some_tokens) in loads.items():
                if len(some_tokens) > 1:
                    # A cached token expires after 60 s (usage/api/token_cache.py), and these rounds take
                    # longer: refresh every token in this server's workers first, as at the start.
                    run_load(port=port, scenario="noop", tokens=tokens, seconds=2 if quick else 6)
                rate, failed = run_load(port=port, scenario=scenario, tokens=some_tokens, seconds=seconds)
                totals[label] += rate
                errors += failed
                figures.append(f"{label} {rate:,.1f}")
            print(f"  round {index + 1}: " + ", ".join(figures) + " req/s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM billing_wallet WHERE running_runs <> 0 OR reserved <> 0")
        (open_wallets,) = cursor.fetchone()
    noop, hot, spread, sketch_hot, sketch_spread = (totals[label] / rounds for label in totals)
    report("floor", hot, "req/s (hot)", noop, "none: the ceiling of `charge`",
           extra=f"hot {hot:,.1f} ({hot / noop:.2f}), spread {spread:,.1f} ({spread / noop:.2f}); PL/pgSQL sketch "
                 f"hot {sketch_hot:,.1f} ({sketch_hot / noop:.2f}), spread {sketch_spread:,.1f} "
                 f"({sketch_spread / noop:.2f}); errors {errors}; wallets still holding after the loads {open_wallets}")
