import argparse
import importlib
import sys

BENCHES = ["queries", "charge", "ratelimit", "grants", "pdf", "export", "dashboard"]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", choices=BENCHES + ["scale", "all"])
    parser.add_argument("--quick", action="store_true", help="smaller data and shorter runs (a smoke test)")
    parser.add_argument("--runs", type=int, default=None, help="scale: how many runs to generate (default 20M)")
    parser.add_argument("--reuse", action="store_true",
                        help="scale: keep the large database of an earlier run instead of generating it again")
    args = parser.parse_args()
    # `scale` (hours of data generation at full size, its own database) is not part of `all`.
    names = BENCHES if args.name == "all" else [args.name]
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if name == "scale":
            module.run(quick=args.quick, runs=args.runs, reuse=args.reuse)
        else:
            module.run(quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
