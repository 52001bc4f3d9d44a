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
    print("\nMore (per area, same ratio-against-baseline style): python benchmarks/bench_<area>.py")
    return 0
