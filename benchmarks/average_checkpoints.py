"""Average the model weights of fine-tunes of one network (a "model soup") into one checkpoint.

    python benchmarks/average_checkpoints.py OUT.pt A.pt B.pt [C.pt ...]

The first checkpoint gives the task, config and step (``eventvision.engine.checkpoint.average_checkpoints``). The
bundled ``stereo_refine.pt`` of the seventh session is stage 4 averaged with its motion fine-tune (docs/stereo.md).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from eventvision.engine.checkpoint import average_checkpoints
    from eventvision.utils.io import refuse_overwrite_input

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the averaged checkpoint to write")
    parser.add_argument("checkpoints", nargs="+", help="two or more checkpoints of the same network")
    args = parser.parse_args(argv)
    refuse_overwrite_input(args.out, *args.checkpoints)
    out = average_checkpoints(args.checkpoints, args.out)
    print(f"{out}: the average of {len(args.checkpoints)} checkpoints", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from eventvision.errors import exit_with

    exit_with(main)
