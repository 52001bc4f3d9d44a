"""Voxel grid events/s at 640x480, 5 bins, 1M and 10M events: numba 1 thread, numba parallel,
tonic ToVoxelGrid and ToFrame, evlib create_voxel_grid, with ratios (same as ``eventvision bench voxel``).

    python benchmarks/bench_voxel.py [--sizes 1e6,1e7] [--repeats 5] [--warmup 0.3] [--no-tonic] [--no-evlib]
"""

import sys

from eventvision.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "voxel", *sys.argv[1:]]))
