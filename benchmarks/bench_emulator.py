"""Emulator modes at 640x480: the ESIM mode (the named baseline) against the v2e mode, same frames.

Synthetic gesture frames (30 fps, the live demo's source), CPU time per frame on one core; the v2e mode
plain (lin-log, k dt / N timestamps) and with every effect on (photoreceptor low-pass 200 Hz, leak 0.1 Hz,
shot noise 1 Hz per pixel, refractory 1 ms). Also against the 33.3 ms real-time budget of a 30 fps camera.

    python benchmarks/bench_emulator.py [--frames 60] [--v2e PATH]

``--v2e PATH`` (a checkout of SensorsINI/v2e) also runs v2e's own ``EventEmulator`` (CPU) and ours in v2e
mode on the same 25 random-texture frames (32x24, 1 ms apart, C = 0.2, no threshold spread, no noise)
and counts the events that differ: plain, with a 200 Hz low-pass, with a 0.9 ms refractory period. v2e's
module imports GUI/output packages it does not need for this (screeninfo, easygui, dv_processing, ...);
they are stubbed.
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


def compare_with_v2e(v2e_path: str) -> dict:
    import sys
    import types

    import numpy as np

    from eventvision.simulate.emulator import EventEmulator
    for name in ("screeninfo", "engineering_notation", "easygui", "tkinter", "tkinter.filedialog", "plyer",
                 "dv", "pyaedat", "dv_processing"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["screeninfo"].get_monitors = list
    sys.modules["engineering_notation"].EngNumber = lambda x, *a, **k: str(x)
    sys.path.insert(0, v2e_path)
    from v2ecore.emulator import EventEmulator as V2E

    rng = np.random.default_rng(0)
    h, w, n = 24, 32, 25
    base = rng.uniform(5, 250, (h, w))
    frames = [np.clip(base * (1 + 0.8 * np.sin(0.3 * k + base / 40.0)), 0, 255).astype(np.uint8)
              for k in range(n)]
    ts = np.arange(n) * 1000

    def run(theirs_kw, ours_kw):
        ref = V2E(pos_thres=0.2, neg_thres=0.2, sigma_thres=0.0, leak_rate_hz=0.0, device="cpu", **theirs_kw)
        theirs = [e for f, t in zip(frames, ts) if (e := ref.generate_events(f, t * 1e-6)) is not None]
        theirs = {(round(float(r[0]) * 1e6), int(r[1]), int(r[2]), int(r[3])) for r in np.concatenate(theirs)}
        emu = EventEmulator(w, h, contrast=0.2, contrast_std=0.0, mode="v2e", **ours_kw)
        emu.reset(frames[0], 0)
        ours = np.concatenate([emu.step(f, t) for f, t in zip(frames[1:], ts[1:])])
        ours = {(int(r["t"]), int(r["x"]), int(r["y"]), int(r["p"])) for r in ours}
        return {"v2e_events": len(theirs), "ours": len(ours), "differing": len(theirs ^ ours)}

    return {"plain": run({}, {}),
            "low-pass 200 Hz": run({"cutoff_hz": 200.0}, {"cutoff_hz": 200.0}),
            "refractory 0.9 ms": run({"refractory_period_s": 0.0009}, {"refractory_us": 900})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--v2e", default=None, metavar="PATH",
                        help="a SensorsINI/v2e checkout to compare with")
    args = parser.parse_args()
    if args.v2e:
        print(json.dumps(compare_with_v2e(args.v2e), indent=1))
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
