import argparse
import importlib
import subprocess
import sys

BENCHES = ["queries", "charge", "floor", "ratelimit", "grants", "pdf", "export", "dashboard"]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", choices=BENCHES + ["scale", "all"])
    parser.add_argument("--quick", action="store_true", help="smaller data and shorter runs (a smoke test)")
    parser.add_argument("--runs", type=int, default=None, help="scale: how many runs to generate (default 20M)")
    parser.add_argument("--reuse", action="store_true",
                        help="scale: keep the large database of an earlier run instead of generating it again")
    args = parser.parse_args()
    if args.name == "all":
        # `scale` (hours of data generation at full size, its own database) is not part of `all`.
        # Each bench runs in a fresh process, as it does alone, so that none inherits what an earlier
        # one left in the process (its heap, its connections). In one process the service's first
        # grants slice ran at 5,300-6,600 grants/s in three runs, 8,500-10,600 when grants ran alone.
        extra = ["--quick"] if args.quick else []
        failed = [name for name in BENCHES
                  if subprocess.run([sys.executable, "-m", "bench", name, *extra]).returncode != 0]
        if failed:
            print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1 if failed else 0
    module = importlib.import_module(f"bench.{args.name}")
    if args.name == "scale":
        module.run(quick=args.quick, runs=args.runs, reuse=args.reuse)
    else:
        module.run(quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
