"""Throughput of ``eventvision run stereo`` (windows/s), learned model and SGBM in the same run.

Each variant is the real command in a fresh process on the same 2 s recording (346x260, MVSEC size,
synthetic scene, 40 windows of 50 ms), default outputs (disparity.h5 + one PNG per window +
summary.json). Reported per variant:

* ``win/s run``: windows / wall time of the streaming loop (``summary.json``), first window (numba
  kernels, allocator) included; ``win/s proc``: windows / wall time of the whole process (imports,
  checkpoint loading included);
* the time split read / representation / network / write (ms per window).

Variants: the bundled learned checkpoint with the default thread setting and with ``--threads 1``;
``--method sgbm`` (the classical baseline). Then the two learned variants again with a CPU hog (one
busy-looping process) beside them: the default thread setting must not be slower than one thread.

    python benchmarks/bench_run_stereo.py [--duration-s 2] [--size 346x260] [--no-hog]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_recording(path: Path, width: int, height: int, duration_us: int) -> Path:
    from eventvision.events.h5 import write_stereo_h5
    from eventvision.simulate.stereo_scenes import StereoCamera, StereoScene

    cam = StereoCamera(width=width, height=height, focal_px=0.8 * width, baseline_m=0.1)
    left, right = StereoScene.random(cam, seed=5).events(duration_us, frame_dt_us=5000)
    return write_stereo_h5(path, left, right, width=width, height=height)


def run_variant(rec: Path, out: Path, args: list[str]) -> dict:
    env = dict(os.environ, EVENTVISION_NO_PROGRESS="1", PYTHONPATH=str(ROOT))
    for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)  # the command's own thread policy is what is measured
    t = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "eventvision",
            "run",
            "stereo",
            "--input",
            str(rec),
            "--output",
            str(out),
            *args,
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t
    summary = json.loads((out / "summary.json").read_text())
    summary["process_hz"] = summary["windows"] / wall
    return summary


def start_hog() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=2.0)
    ap.add_argument("--size", default="346x260")
    ap.add_argument("--no-hog", action="store_true", help="skip the runs beside a CPU hog")
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    print(
        f"run stereo, {args.duration_s:g} s recording at {width}x{height}, 50 ms windows, "
        f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'variant':>30} {'win/s run':>10} {'win/s proc':>10} {'threads':>7} {'read':>6} {'repr':>6} "
        f"{'net':>7} {'write':>6}  (ms/window)"
    )
    variants = {
        "learned, default threads": [],
        "learned, --threads 1": ["--threads", "1"],
        "sgbm": ["--method", "sgbm"],
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        rec = make_recording(Path(tmp) / "rec.h5", width, height, int(args.duration_s * 1e6))
        runs = [(name, a, False) for name, a in variants.items()]
        if not args.no_hog:
            runs += [(name + " + hog", a, True) for name, a in list(variants.items())[:2]]
        for k, (name, extra, hog) in enumerate(runs):
            proc = start_hog() if hog else None
            try:
                s = results[name] = run_variant(rec, Path(tmp) / f"out{k}", extra)
            finally:
                if proc is not None:
                    proc.kill()
                    proc.wait()
            sp = s["time_split_ms"]
            print(
                f"{name:>30} {s['throughput_hz']:10.2f} {s['process_hz']:10.2f} {s.get('threads', 0):>7} "
                f"{sp['read']:6.1f} {sp['representation']:6.1f} {sp['network']:7.1f} {sp['write']:6.1f}",
                flush=True,
            )
    learned, sgbm = results["learned, default threads"], results["sgbm"]
    print(
        f"ratio learned/sgbm (win/s run): {learned['throughput_hz'] / max(sgbm['throughput_hz'], 1e-9):.2f}x"
    )
    print(
        f"ratio default/--threads 1, idle: "
        f"{learned['throughput_hz'] / max(results['learned, --threads 1']['throughput_hz'], 1e-9):.2f}x"
    )
    if not args.no_hog:
        a, b = results["learned, default threads + hog"], results["learned, --threads 1 + hog"]
        print(
            f"ratio default/--threads 1, beside a CPU hog: "
            f"{a['throughput_hz'] / max(b['throughput_hz'], 1e-9):.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
