"""Training speed against torch's CPU threads: the engine's automatic ``train.threads`` against torch's default.

Each variant trains the stereo refinement network (``stereo/refine``, the shipped architecture) on the same batch of 8
prefilled synthetic scenes for ``--steps`` optimizer steps in a fresh process (forward, L1 + matching loss, backward,
Adam), idle and beside a CPU hog (one busy-looping process, as on a shared machine). Variants: torch's default (one
intra-op thread per core: what every training ran with before ``train.threads``), the automatic setting
(``train.threads: 0``: the idle cores at the start, :func:`eventvision.utils.device.training_threads`) and one thread.
Printed: steps/s and the ratio of the automatic setting to torch's default in the same conditions. Idle runs wait
until the load average has fallen below 0.5 (up to 150 s each): the automatic setting reads the 1-minute load average,
which the previous variant raised.

    python benchmarks/bench_train_threads.py [--steps 15] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_run_stereo import start_hog

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time, torch
from eventvision.config import load_config
from eventvision.tasks.stereo import StereoTask
from eventvision.utils.device import free_cores, training_threads
mode, steps = sys.argv[1], int(sys.argv[2])
if mode == "automatic":
    torch.set_num_threads(training_threads(0, free=free_cores(), current=torch.get_num_threads()))
elif mode != "torch default":
    torch.set_num_threads(int(mode))
cfg = load_config("stereo/refine", ["data.synthetic.num_train=8", "data.synthetic.width=256",
                                    "data.synthetic.height=160", "data.crop=[128,192]", "device=cpu"])
task = StereoTask(cfg)
model = task.build_model().train()
data = task.build_dataset("train")
batch = task.collate([data[i] for i in range(8)])
opt = torch.optim.Adam(model.parameters(), 1e-4)
def step():
    loss, _ = task.training_step(model, batch)
    opt.zero_grad(); loss.backward(); opt.step()
step(); step()
t = time.perf_counter()
for _ in range(steps):
    step()
print(steps / (time.perf_counter() - t), torch.get_num_threads())
"""


def settle(below: float = 0.5, limit_s: float = 150.0) -> None:
    """Wait until the 1-minute load average, which the previous variant raised, falls below ``below``: the
    automatic setting reads it, so an "idle" run right after another one would otherwise see a busy machine."""
    end = time.monotonic() + limit_s
    while os.getloadavg()[0] >= below and time.monotonic() < end:
        time.sleep(5)


def run(mode: str, steps: int, hog: bool) -> tuple[float, int]:
    if not hog:
        settle()
    env = dict(os.environ, EVENTVISION_NO_PROGRESS="1", PYTHONPATH=str(ROOT))
    env.pop("OMP_NUM_THREADS", None)    # the policy under test decides
    proc = start_hog() if hog else None
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, mode, str(steps)], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
    return float(out[0]), int(out[1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--repeats", type=int, default=2, help="runs of each variant per condition (median)")
    args = ap.parse_args(argv)
    print(f"stereo refine training steps/s (batch 8 at 128x192), {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}; medians of {args.repeats}")
    print(f"{'condition':>10} {'variant':>14} {'steps/s':>8} {'threads':>8}")
    for hog in (False, True):
        medians = {}
        for mode in ("torch default", "automatic", "1"):
            runs = [run(mode, args.steps, hog) for _ in range(args.repeats)]
            medians[mode] = statistics.median(r[0] for r in runs)
            print(f"{'beside hog' if hog else 'idle':>10} {mode:>14} {medians[mode]:8.3f} "
                  f"{'/'.join(str(r[1]) for r in runs):>8}")
        print(f"{'':>10} automatic / torch default: {medians['automatic'] / medians['torch default']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
