"""Emulator modes at 640x480: the ESIM mode (the named baseline) against the v2e mode, same frames.

Synthetic gesture frames (30 fps, the live demo's source), CPU time per frame on one core; the v2e mode
plain (lin-log, k dt / N timestamps) and with every effect on (photoreceptor low-pass 200 Hz, leak 0.1 Hz,
shot noise 1 Hz per pixel, refractory 1 ms). Also against the 33.3 ms real-time budget of a 30 fps camera.

    python benchmarks/bench_emulator.py [--frames 60]
"""

from __future__ import annotations

import argparse
import json
import time

MODES = {
    "esim (baseline)": {},
    "v2e": {"mode": "v2e"},
    "v2e, all effects": {"mode": "v2e", "cutoff_hz": 200.0, "leak_rate_hz": 0.1, "noise_rate_hz": 1.0,
                         "refractory_us": 1000},
}


def bench_mode(packets, **kwargs) -> dict:
    from eventvision.simulate.emulator import EventEmulator
    emu = EventEmulator(640, 480, **kwargs)
    emu.reset(packets[0].frame, packets[0].t_us)
    emu.step(packets[1].frame, packets[1].t_us)  # compile / load the numba cache outside the timer
    emu.reset(packets[0].frame, packets[0].t_us)
    cpu, n = time.process_time(), 0
    for p in packets[1:]:
        n += len(emu.step(p.frame, p.t_us))
    cpu = time.process_time() - cpu
    frames = len(packets) - 1
    return {"cpu_ms_per_frame": round(cpu / frames * 1e3, 2), "events_per_frame": round(n / frames)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    from eventvision.demo.sources import SyntheticGestureSource
    packets = list(SyntheticGestureSource(width=640, height=480, fps=30.0, realtime=False,
                                          max_frames=args.frames + 1))
    results = {name: bench_mode(packets, **kw) for name, kw in MODES.items()}
    base = results["esim (baseline)"]["cpu_ms_per_frame"]
    for r in results.values():
        r["cpu_vs_esim"] = round(r["cpu_ms_per_frame"] / base, 2)
        r["x_realtime_30fps"] = round(33.33 / r["cpu_ms_per_frame"], 1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
