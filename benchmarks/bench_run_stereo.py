"""Throughput of ``eventvision run stereo`` (windows/s) with the time split read / representation /
network / write, at MVSEC (346x260) and DSEC (640x480) sizes, small and full model configs.

Baselines measured in the same run, same recording, same network:
* representation: tonic's ``ToFrame(n_time_bins=5)`` (per-polarity counts) reduced to the sign of
  ON - OFF per bin (the same SBT tensor) instead of eventvision's numba SBT kernel;
* network: the all-ANN variant of the same architecture (``model.feature=ann model.matching=ann``);
  also shown: the hybrid of the bundled checkpoint (``model.matching=ann``).

    python benchmarks/bench_run_stereo.py [--windows 6] [--threads 2] [--sizes mvsec,dsec] [--configs small,full]

Weights are untrained (speed does not depend on them). Target: small config >= 10 windows/s at
346x260 on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("EVENTVISION_NO_PROGRESS", "1")

SIZES = {"mvsec": (346, 260), "dsec": (640, 480)}


def make_recording(folder: Path, width: int, height: int, windows: int) -> Path:
    from eventvision.events.h5 import write_stereo_h5
    from eventvision.simulate.stereo_scenes import StereoCamera, StereoScene
    cam = StereoCamera(width=width, height=height, focal_px=0.8 * width, baseline_m=0.1)
    left, right = StereoScene.random(cam, seed=5).events(windows * 50_000, frame_dt_us=5000)
    return write_stereo_h5(folder / f"rec_{width}x{height}.h5", left, right, width=width, height=height)


class TonicSBT:
    """SBT via tonic.transforms.ToFrame (time bins of the window) -> sign(ON - OFF), float32 [T, 1, H, W]."""

    def __init__(self, width: int, height: int, num_bins: int = 5):
        self.width, self.height, self.num_bins = width, height, num_bins

    def __call__(self, events: np.ndarray, t0: int, t1: int) -> np.ndarray:
        import tonic
        if len(events) == 0:
            return np.zeros((self.num_bins, 1, self.height, self.width), np.float32)
        ev = np.empty(len(events) + 2, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
        ev["x"][1:-1], ev["y"][1:-1], ev["t"][1:-1] = events["x"], events["y"], events["t"]
        ev["p"][1:-1] = events["p"] > 0
        # two zero-weight anchors pin tonic's bins to [t0, t1): one ON and one OFF event at the window ends
        ev[0] = (0, 0, t0, 1)
        ev[-1] = (0, 0, t1 - 1, 1)
        frames = tonic.transforms.ToFrame(sensor_size=(self.width, self.height, 2), n_time_bins=self.num_bins)(ev)
        frames = frames.astype(np.float32)
        frames[0, 1, 0, 0] -= 1
        frames[-1, 1, 0, 0] -= 1
        return np.sign(frames[:, 1] - frames[:, 0])[:, None]


def measure(rec_path: Path, config: str, overrides: list[str], windows: int, encode=None) -> dict:
    import torch
    from eventvision.cli.run_stereo import open_stereo_input, run
    from eventvision.config import load_config
    from eventvision.tasks.stereo import StereoTask

    cfg = load_config(config, overrides + ["device=cpu"])
    task = StereoTask(cfg)
    torch.manual_seed(0)
    model = task.build_model().eval()
    source = open_stereo_input(rec_path)
    if encode is not None:
        encode = encode(source.width, source.height)
    with tempfile.TemporaryDirectory() as out:
        # one warm-up window (numba / allocator), then the timed run
        run(source=open_stereo_input(rec_path), task=task, model=model, output=Path(out) / "warm", window_us=50_000,
            device=torch.device("cpu"), max_windows=1, encode=encode, show_progress=False)
        return run(source=source, task=task, model=model, output=Path(out) / "run", window_us=50_000,
                   device=torch.device("cpu"), max_windows=windows, encode=encode, show_progress=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", default="mvsec,dsec")
    ap.add_argument("--configs", default="small,full")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    print(f"run stereo throughput, {args.windows} windows of 50 ms, {args.threads} torch threads, CPU")
    header = f"{'size':>8} {'config':>6} {'variant':>18} {'win/s':>7} {'read':>7} {'repr':>7} {'net':>8} {'write':>7}  (ms/window)"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            width, height = SIZES[size]
            rec = make_recording(Path(tmp), width, height, args.windows + 1)
            for config in args.configs.split(","):
                name = f"stereo/{config}"
                results = {
                    "eventvision": measure(rec, name, [], args.windows),
                    "tonic ToFrame repr": measure(rec, name, [], args.windows, encode=TonicSBT),
                    "all-ANN network": measure(rec, name, ["model.feature=ann", "model.matching=ann"], args.windows),
                    "hybrid (shipped)": measure(rec, name, ["model.matching=ann"], args.windows),
                }
                for variant, s in results.items():
                    sp = s["time_split_ms"]
                    print(f"{width}x{height:<4} {config:>6} {variant:>18} {s['throughput_hz']:7.2f} {sp['read']:7.1f} "
                          f"{sp['representation']:7.2f} {sp['network']:8.1f} {sp['write']:7.1f}", flush=True)
                ev, tn, ann = (results[k] for k in list(results)[:3])
                print(f"{'':>8} {config:>6} ratios: representation tonic/eventvision = "
                      f"{tn['time_split_ms']['representation'] / max(ev['time_split_ms']['representation'], 1e-9):.1f}x, "
                      f"end-to-end eventvision/tonic = {ev['throughput_hz'] / max(tn['throughput_hz'], 1e-9):.2f}x, "
                      f"network SNN/ANN time = {ev['time_split_ms']['network'] / max(ann['time_split_ms']['network'], 1e-9):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
