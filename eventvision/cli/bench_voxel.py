"""``eventvision bench voxel``: voxel-grid events/s of our numba kernels against tonic and evlib, with
ratios."""

from __future__ import annotations

from eventvision.cli.args import nonneg_float, pixels, positive_int

HELP = "voxel-grid throughput: numba kernels (1 thread / parallel) vs tonic ToVoxelGrid/ToFrame and evlib"


def _sizes(text: str) -> list[int]:
    from eventvision.errors import InvalidValueError
    try:
        sizes = [int(float(s)) for s in text.split(",") if s.strip()]
    except ValueError:
        raise InvalidValueError(f"--sizes: '{text}' is not a comma-separated list of event counts "
                                f"(e.g. 1e6,1e7)") from None
    if not sizes or min(sizes) < 2:
        raise InvalidValueError(f"--sizes: need event counts >= 2, got '{text}'")
    return sizes


def add_arguments(parser) -> None:
    parser.add_argument("--sizes", default="1e6,1e7", help="event counts, comma-separated (default 1e6,1e7)")
    parser.add_argument("--bins", type=positive_int, default=5, help="time bins (default 5)")
    parser.add_argument("--width", type=pixels, default=640)
    parser.add_argument("--height", type=pixels, default=480)
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="runs per figure; the best is reported (default 5)")
    parser.add_argument("--warmup", type=nonneg_float, default=0.3,
                        help="seconds of untimed runs before each method's timed ones, at least 2 runs (default 0.3)")
    parser.add_argument("--no-tonic", action="store_true", help="skip the tonic baselines")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="numba threads for the parallel kernel")
    parser.add_argument("--no-evlib", action="store_true",
                        help="skip the evlib baseline (skipped anyway, with a note, when evlib is not installed)")


def main(args) -> int:
    from eventvision.errors import InvalidValueError
    from eventvision.representations import benchmark
    if args.threads is not None:
        import numba
        if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
            raise InvalidValueError(f"bench voxel: --threads must be in 1..{numba.config.NUMBA_NUM_THREADS}")
        numba.set_num_threads(args.threads)
    with_tonic = not args.no_tonic
    if with_tonic:
        try:
            import tonic  # noqa: F401
        except ImportError:
            raise InvalidValueError("bench voxel: tonic is not installed; pip install tonic, or pass "
                                    "--no-tonic") from None
    print(benchmark.main(_sizes(args.sizes), num_bins=args.bins, width=args.width, height=args.height,
                         repeats=args.repeats, with_tonic=with_tonic, warmup_s=args.warmup,
                         with_evlib=not args.no_evlib))
    return 0
