"""Live-demo throughput at 640x480: emulator alone, then the whole pipeline in real time.

1. Emulator: 640x480 synthetic gesture frames (30 fps), CPU time per frame on one core against the
   real-time budget of 33.3 ms (the named baseline: a 30 fps camera).
2. Pipeline: `eventvision demo gesture --source synthetic --headless` paced at 30 fps for
   ``--seconds``: sustained FPS of shown frames, end-to-end latency (capture -> rendered frame),
   dropped frames; with the packaged gesture checkpoint when present, else events only.

    python benchmarks/bench_demo.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def bench_emulator(num_frames: int = 60) -> dict:
    from eventvision.demo.sources import SyntheticGestureSource
    from eventvision.simulate.emulator import EventEmulator
    src = SyntheticGestureSource(width=640, height=480, fps=30.0, realtime=False, max_frames=num_frames + 1)
    packets = list(src)
    emu = EventEmulator(640, 480)
    emu.reset(packets[0].frame, packets[0].t_us)
    emu.step(packets[1].frame, packets[1].t_us)  # compile / load cache outside the timer
    emu.reset(packets[0].frame, packets[0].t_us)
    wall, cpu, n = time.perf_counter(), time.process_time(), 0
    for p in packets[1:]:
        n += len(emu.step(p.frame, p.t_us))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"frames": num_frames, "cpu_ms_per_frame": cpu / num_frames * 1e3,
            "wall_ms_per_frame": wall / num_frames * 1e3, "events_per_frame": n / num_frames}


def bench_pipeline(seconds: float, checkpoint: str | None, model: str) -> dict:
    from eventvision.demo.app import run_demo
    with tempfile.TemporaryDirectory() as tmp:
        return run_demo("gesture", "synthetic", headless=True, record=os.path.join(tmp, "bench.mp4"), model=model,
                        checkpoint=checkpoint, max_steps=int(seconds * 30), realtime=True)


def gesture_checkpoint(tmp: str) -> tuple[str, str]:
    """The packaged gesture checkpoint, else the gesture/small architecture with untrained weights
    (inference cost does not depend on the weights) -> (path, description)."""
    from eventvision.demo.predictors import find_checkpoint
    from eventvision.errors import UserError
    try:
        path = find_checkpoint("gesture")
        return str(path), f"packaged checkpoint {path.name}"
    except UserError:
        from eventvision.config import load_config
        from eventvision.engine.checkpoint import save_checkpoint
        from eventvision.tasks.gesture import GestureTask
        cfg = load_config("gesture/small")
        task = GestureTask.from_config(cfg)
        path = os.path.join(tmp, "gesture_untrained.pt")
        save_checkpoint(path, task="gesture", config=cfg, model=task.build_model())
        return path, "gesture/small architecture, untrained weights (no checkpoint shipped yet)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    load0 = os.getloadavg()
    emu = bench_emulator()
    budget = 1000.0 / 30.0
    print(f"load average before: {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f} (cpus: {os.cpu_count()})")
    print(f"emulator 640x480: {emu['cpu_ms_per_frame']:.1f} ms CPU/frame ({emu['wall_ms_per_frame']:.1f} ms wall), "
          f"{emu['events_per_frame']:,.0f} events/frame -> {budget / emu['cpu_ms_per_frame']:.2f}x the 30 fps "
          f"real-time budget ({budget:.1f} ms/frame) on one core")
    s = bench_pipeline(args.seconds, None, "none")
    print(f"pipeline (events only), 640x480 synthetic at 30 fps for {args.seconds:.0f} s: "
          f"{s['fps']:.1f} FPS shown ({s['fps'] / 30.0:.2f}x the 30 fps input), latency mean "
          f"{s['latency_ms_mean']:.1f} ms, p95 {s['latency_ms_p95']:.1f} ms, dropped {s['dropped']}")
    with tempfile.TemporaryDirectory() as tmp:
        path, what = gesture_checkpoint(tmp)
        s = bench_pipeline(args.seconds, path, "auto")
    print(f"pipeline with the gesture model ({what}): {s['fps']:.1f} FPS shown ({s['fps'] / 30.0:.2f}x), "
          f"latency mean {s['latency_ms_mean']:.1f} ms, p95 {s['latency_ms_p95']:.1f} ms, dropped {s['dropped']}")
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
