"""``eventvision bench``: lists the available benchmarks."""

from __future__ import annotations

HELP = "list the available benchmarks (run one with 'eventvision bench NAME')"

#: benchmarks runnable through the CLI, with what they measure
BENCHMARKS = {
    "voxel": "voxel-grid events/s of the numba kernels (1 thread, parallel) against tonic ToVoxelGrid/ToFrame",
}


def add_arguments(parser) -> None:
    parser.add_argument("name", nargs="?", help="benchmark name (see the list)")


def main(args) -> int:
    from eventvision.errors import UserError
    if args.name is not None and args.name not in BENCHMARKS:
        raise UserError(f"bench: unknown benchmark '{args.name}'; available: {', '.join(BENCHMARKS)}")
    print("available benchmarks:")
    for name, what in BENCHMARKS.items():
        print(f"  eventvision bench {name:<8} {what}")
    from pathlib import Path
    scripts = Path(__file__).resolve().parents[2] / "benchmarks"  # present in a source checkout
    found = sorted(scripts.glob("bench_*.py")) if scripts.is_dir() else []
    if found:
        print(f"\nbenchmark scripts in {scripts} (each prints its figure and the ratio to a named baseline):")
        for path in found:
            print(f"  python benchmarks/{path.name}")
    else:
        print("\nper-area benchmark scripts live in benchmarks/bench_<area>.py of the source tree")
    return 0
