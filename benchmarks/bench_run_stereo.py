"""Throughput of ``eventvision run stereo`` (windows/s), learned model and SGBM in the same run.

Each variant is the real command in a fresh process on the same 2 s recording (346x260, MVSEC size,
synthetic scene, 40 windows of 50 ms), default outputs (disparity.h5 + one PNG per window +
summary.json). Reported per variant:

* ``win/s run``: windows / wall time of the streaming loop (``summary.json``), first window (numba
  kernels, allocator) included; ``win/s proc``: windows / wall time of the whole process (imports,
  checkpoint loading included);
* the time split read / representation / network / write (ms per window) and the CPU time of the
  process per window during the loop (all threads): on a busy machine wall time measures the load,
  CPU time the work, so ``1000 / CPU ms`` estimates windows/s on one idle core.

Variants: the bundled learned checkpoint with the default (automatic) thread setting, with
``--threads 1`` and with ``--threads 2`` (what torch does by itself on 2 cores); ``--method sgbm`` (the
classical baseline). Then the default and ``--threads 1`` again with a CPU hog (one busy-looping
process) beside them: the default thread setting must not be slower than one thread.

``--against DIR`` measures a code change instead: the default command of this checkout and of another one
(``git worktree add /tmp/base HEAD~1``), alternately ``--repeats`` times each on the same recording, medians
and their ratio. This machine's speed drifts by tens of percent within minutes, so a change is judged only
against its baseline measured in the same minutes.

    python benchmarks/bench_run_stereo.py [--duration-s 2] [--size 346x260] [--no-hog] [--device cuda]
    python benchmarks/bench_run_stereo.py --against /tmp/base [--repeats 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def run_variant(rec: Path, out: Path, args: list[str], root: Path = ROOT) -> dict:
    """``eventvision run stereo`` of checkout ``root`` on ``rec`` into ``out`` (+ ``args``) -> its summary.json."""
    # the checkout measured comes first on the path; what was on it stays (packages installed beside the venv)
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, EVENTVISION_NO_PROGRESS="1", PYTHONPATH=path)
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
        cwd=str(root),   # ``python -m`` looks in the working folder first: run from the checkout measured
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t
    summary = json.loads((out / "summary.json").read_text())
    summary["process_hz"] = summary["windows"] / wall
    return summary


def start_hog() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _row(name: str, s: dict) -> str:
    sp = s["time_split_ms"]
    threads = f"{s.get('threads', 0)}" + (f"/{s['network_threads']}" if s.get("network_threads") else "")
    return (f"{name:>34} {s['throughput_hz']:9.2f} {s['process_hz']:10.2f} {threads:>7} "
            f"{'yes' if s.get('background') else 'no':>4} {sp['read']:6.1f} {sp['representation']:6.1f} "
            f"{sp['network']:7.1f} {sp['write']:6.1f} {s['cpu_ms_per_window']:7.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=2.0)
    ap.add_argument("--size", default="346x260")
    ap.add_argument("--no-hog", action="store_true", help="skip the runs beside a CPU hog")
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs of each variant beside the hog "
                    "(with --against: of each checkout)")
    ap.add_argument("--device", help="give the learned variants --device DEVICE (e.g. cuda) and add the learned "
                    "model on the CPU as a variant (default: the command's own choice, auto)")
    ap.add_argument("--against", type=Path, help="another eventvision checkout: compare its default command "
                    "with this one's, alternately, and nothing else")
    args = ap.parse_args(argv)
    if args.against is not None and not (args.against / "eventvision" / "__main__.py").is_file():
        print(f"{args.against}: not an eventvision checkout (no eventvision/__main__.py); give the folder of "
              "one, e.g. made by 'git worktree add /tmp/base HEAD~1'", file=sys.stderr)
        return 2
    width, height = (int(v) for v in args.size.split("x"))
    print(f"run stereo, {args.duration_s:g} s recording at {width}x{height}, 50 ms windows, "
          f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'variant':>34} {'win/s run':>9} {'win/s proc':>10} {'threads':>7} {'bg':>4} {'read':>6} "
          f"{'repr':>6} {'net':>7} {'write':>6} {'CPU ms':>7}  (ms/window; threads: total/network)")
    if args.against is not None:
        return compare_checkouts(args, width, height)
    variants = {
        "learned, default threads": [],
        "learned, --threads 1": ["--threads", "1"],
        "sgbm": ["--method", "sgbm"],
        "learned, --threads 2": ["--threads", "2"],   # torch's own default on 2 cores
    }
    if args.device:
        variants = {name + ("" if name == "sgbm" else f", --device {args.device}"):
                    a + ([] if name == "sgbm" else ["--device", args.device]) for name, a in variants.items()}
        variants["learned, --device cpu"] = ["--device", "cpu"]
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rec = make_recording(Path(tmp) / "rec.h5", width, height, int(args.duration_s * 1e6))
        runs = [(name, a, False) for name, a in variants.items()]
        if not args.no_hog:
            pair = list(variants.items())[:2]
            for r in range(args.repeats):   # alternate the order: the load of a shared machine drifts
                runs += [(name + " + hog", a, True) for name, a in (pair if r % 2 == 0 else pair[::-1])]
        for k, (name, extra, hog) in enumerate(runs):
            proc = start_hog() if hog else None
            try:
                s = run_variant(rec, Path(tmp) / f"out{k}", extra)
            finally:
                if proc is not None:
                    proc.kill()
                    proc.wait()
            results.setdefault(name, []).append(s)
            print(_row(name, s), flush=True)

    on = f", --device {args.device}" if args.device else ""

    def hz(name: str) -> float:
        return statistics.median(s["throughput_hz"] for s in results[name])

    default = hz(f"learned, default threads{on}")
    print(f"ratio learned/sgbm (win/s run): {default / max(hz('sgbm'), 1e-9):.2f}x")
    print(f"ratio default/--threads 1: {default / max(hz(f'learned, --threads 1{on}'), 1e-9):.2f}x; "
          f"default/--threads 2: {default / max(hz(f'learned, --threads 2{on}'), 1e-9):.2f}x")
    if args.device:
        print(f"ratio --device {args.device}/--device cpu: {default / max(hz('learned, --device cpu'), 1e-9):.2f}x")
    if not args.no_hog:
        a, b = hz(f"learned, default threads{on} + hog"), hz(f"learned, --threads 1{on} + hog")
        print(f"beside a CPU hog, medians of {args.repeats} alternating runs: default {a:.2f}, --threads 1 "
              f"{b:.2f} windows/s, ratio {a / max(b, 1e-9):.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


def compare_checkouts(args, width: int, height: int) -> int:
    """The default command of this checkout and of ``args.against``, alternately, medians and ratio."""
    trees = {"this checkout": ROOT, f"{args.against}": args.against.resolve()}
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rec = make_recording(Path(tmp) / "rec.h5", width, height, int(args.duration_s * 1e6))
        for r in range(args.repeats):
            order = list(trees.items()) if r % 2 == 0 else list(trees.items())[::-1]
            for name, root in order:
                s = run_variant(rec, Path(tmp) / f"out{r}_{len(results.get(name, []))}_{name[:4]}", [], root=root)
                results.setdefault(name, []).append(s)
                print(_row(name[-34:], s), flush=True)
    a, b = results
    med = {name: statistics.median(s["throughput_hz"] for s in runs) for name, runs in results.items()}
    cpu = {name: statistics.median(s["cpu_ms_per_window"] for s in runs) for name, runs in results.items()}
    print(f"default command, medians of {args.repeats} alternating runs: this checkout {med[a]:.2f} windows/s "
          f"({cpu[a]:.1f} CPU ms/window), {b} {med[b]:.2f} ({cpu[b]:.1f}) -> {med[a] / max(med[b], 1e-9):.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
