"""Windowed reading of a large DSEC-layout events.h5 versus loading it whole with h5py.

Generates (once, cached in a temp dir) a DSEC-layout file of ``--events`` events (default 50 M,
Blosc/ZSTD like DSEC), then measures in separate child processes (so peak RSS is per method):

* eventvision: ``open_recording(path).iter_windows(window_us)`` over the whole file;
* baseline: ``h5py`` reads ``events/x, y, t, p`` in full (what most DSEC loaders do) and slices windows
  from memory with ``ms_to_idx``.

Prints events/s and peak memory (RSS high-water mark of the child) for both and their ratios. File
decoding against other readers is ``bench_decode.py``'s job.

    python benchmarks/bench_read.py               # ~1-2 min with file generation, 50 M events
    python benchmarks/bench_read.py --events 10000000 --window-ms 50
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def generate(path: Path, n: int, rate_hz: float = 5e6, seed: int = 0) -> None:
    """DSEC-layout file with n events at ~rate_hz (Poisson arrivals), written by our streaming writer."""
    from eventvision.events.core import EVENT_DTYPE
    from eventvision.events.h5 import DsecH5Writer

    rng = np.random.default_rng(seed)
    chunk = 2_000_000
    t_last = 0
    with DsecH5Writer(path, 640, 480, t_offset=0, t_dtype="<u4") as w:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            ev = np.empty(m, dtype=EVENT_DTYPE)
            ev["t"] = t_last + np.cumsum(rng.exponential(1e6 / rate_hz, m)).astype(np.int64)
            t_last = int(ev["t"][-1])
            ev["x"] = rng.integers(0, 640, m)
            ev["y"] = rng.integers(0, 480, m)
            ev["p"] = np.where(rng.random(m) < 0.5, 1, -1)
            w.append(ev)


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


def _child(method: str, path: str, window_us: int) -> dict:
    import h5py  # noqa: F401  (imports happen before the baseline RSS is taken)
    import hdf5plugin  # noqa: F401

    if method == "eventvision":
        import eventvision.events.h5  # noqa: F401
        from eventvision.events._kernels import pack_events

        z = np.zeros(1, np.uint16)  # load the cached numba kernel (LLVM) before the baseline RSS
        pack_events(z, z, np.zeros(1, np.uint32), np.zeros(1, np.uint8))
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    n = windows = 0
    checksum = 0
    if method == "eventvision":
        from eventvision.events import open_recording

        with open_recording(path) as rec:
            for _, _, ev in rec.iter_windows(window_us):
                n += len(ev)
                windows += 1
                checksum += int(ev["x"].sum(dtype=np.int64)) if len(ev) else 0
    else:
        with h5py.File(path, "r") as f:
            x, y = f["events/x"][:], f["events/y"][:]
            t, p = f["events/t"][:], f["events/p"][:]
            idx = f["ms_to_idx"][:]
        step = window_us // 1000
        for ms in range(int(t[0]) // 1000, len(idx) - 1, step):
            a, b = int(idx[ms]), int(idx[min(ms + step, len(idx) - 1)])
            n += b - a
            windows += 1
            checksum += int(x[a:b].sum(dtype=np.int64))
        del y, p
    dt = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": method, "events": n, "windows": windows, "seconds": dt, "events_per_s": n / dt,
            "peak_rss_mb": peak_mb, "data_mb": peak_mb - rss0, "checksum": checksum}


def run_child(method: str, path: Path, window_us: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", method, "--path", str(path),
                          "--window-ms", str(window_us // 1000)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=50_000_000)
    ap.add_argument("--window-ms", type=int, default=50)
    ap.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "eventvision_bench_read"))
    ap.add_argument("--child", choices=("eventvision", "h5py-whole"))
    ap.add_argument("--path")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.path, args.window_ms * 1000)))
        return
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"dsec_{args.events}.h5"
    if not path.exists():
        t = time.perf_counter()
        generate(path, args.events)
        print(f"generated {path} ({args.events:,} events, {path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t:.1f} s")
    print(f"file: {path} ({path.stat().st_size / 1e6:.0f} MB, {args.events:,} events), window {args.window_ms} ms")
    ours = run_child("eventvision", path, args.window_ms * 1000)
    base = run_child("h5py-whole", path, args.window_ms * 1000)
    assert ours["events"] == base["events"] == args.events and ours["checksum"] == base["checksum"], (ours, base)
    for r in (ours, base):
        print(f"  {r['method']:<12} {r['events_per_s'] / 1e6:7.1f} Mev/s  {r['seconds']:6.2f} s  "
              f"peak RSS {r['peak_rss_mb']:6.0f} MB (+{r['data_mb']:.0f} MB over imports)  ({r['windows']} windows)")
    print(f"ratio eventvision / h5py-whole: speed {ours['events_per_s'] / base['events_per_s']:.2f}x, "
          f"peak RSS {ours['peak_rss_mb'] / base['peak_rss_mb']:.2f}x, memory over imports "
          f"{ours['data_mb'] / base['data_mb']:.3f}x")


if __name__ == "__main__":
    main()
