import argparse
import importlib
import sys

BENCHES = ["queries", "charge", "ratelimit", "grants", "pdf", "export", "dashboard"]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", choices=BENCHES + ["all"])
    parser.add_argument("--quick", action="store_true", help="smaller data and shorter runs (a smoke test)")
    args = parser.parse_args()
    names = BENCHES if args.name == "all" else [args.name]
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        module.run(quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
