"""Voxel-grid throughput: our numba kernels (one thread, all threads) against tonic and evlib, in one run.

Used by ``eventvision bench voxel`` and ``benchmarks/bench_voxel.py``. Events: uniform random pixels
on the sensor, uniform sorted timestamps over 50 ms, random polarity. Each figure is the best of
``repeats`` wall-clock runs after untimed warm-up runs (the best run is the one least disturbed by
other processes on a shared machine); the load average is printed so a reader can judge the conditions.

Baselines: tonic's ``to_voxel_grid_numpy`` (ToVoxelGrid) and ``to_frame_numpy`` with ``n_time_bins``
(ToFrame), fed the structured int64 array they expect (x, y, t, p with p in {0, 1}). ToVoxelGrid
overwrites the polarity of its input, so every tonic run gets a fresh copy (made outside the timer).
Before timing, both baselines are checked against our kernels: tonic's B-bin voxel grid uses
``t* = B (t - t0)/(tN - t0)`` and drops the spill past bin B-1, which equals our grid with B+1 bins
cut to its first B; tonic's ToFrame equals our SpikingJelly-style ``to_frames(split_by='time')``
except that tonic drops the remainder events after ``t0 + B dt`` from the last frame.

Second baseline: evlib's ``representations.create_voxel_grid`` (polars; tonic's definition, checked the
same way) on the polars frame its ``load_events`` returns (built outside the timer), made dense with its
``densify_voxel_grid``; skipped with a note when evlib is not installed.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from eventvision.events.core import EVENT_DTYPE
from eventvision.representations import functional as F
from eventvision.representations import interop

TONIC_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])


@dataclass(frozen=True)
class Row:
    num_events: int
    method: str
    seconds: float          # best wall-clock time
    cpu_seconds: float = float("nan")  # best process CPU time (all threads), robust to other processes' load

    @property
    def events_per_s(self) -> float:
        return self.num_events / self.seconds


def import_evlib():
    """The ``evlib`` module, or None when it is not installed. Its package init imports its deep-learning
    models, which import torchvision; eventvision never imports torchvision (a CUDA-build trap, see
    DEVELOPING.md), so it is blocked first and evlib falls back to its documented no-models mode."""
    sys.modules.setdefault("torchvision", None)
    try:
        import evlib
    except ImportError:
        return None
    return evlib


def random_events(n: int, *, width: int = 640, height: int = 480, span_us: int = 50_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["x"] = rng.integers(0, width, n)
    ev["y"] = rng.integers(0, height, n)
    ev["t"] = np.sort(rng.integers(0, span_us, n))
    ev["p"] = np.where(rng.random(n) < 0.5, 1, -1)
    return ev


def to_tonic(ev: np.ndarray) -> np.ndarray:
    """The int64 layout tonic's functional kernels are fed (p in {0, 1})."""
    return interop.to_tonic(ev, TONIC_DTYPE)


#: untimed runs of each method before its timed ones last at least this long (and are at least 2): an
#: idle core of a virtual machine is parked by the host and takes tens of ms of work to come back to
#: full speed; measured the parallel kernel 1.7x slower in its first runs than after this warm-up
WARMUP_SECONDS = 0.3


def best_times(fn, repeats: int, setup=None, warmup_s: float = WARMUP_SECONDS) -> tuple[float, float]:
    """(best wall seconds, best process-CPU seconds) over ``repeats`` runs of ``fn(setup())``, after
    untimed warm-up runs (at least 2, at least ``warmup_s`` seconds)."""
    start, runs = time.perf_counter(), 0
    while runs < 2 or time.perf_counter() - start < warmup_s:
        fn(setup() if setup is not None else None)
        runs += 1
    wall = cpu = float("inf")
    for _ in range(repeats):
        arg = setup() if setup is not None else None
        t0, c0 = time.perf_counter(), time.process_time()
        fn(arg)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def evlib_frame(ev: np.ndarray):
    """Our events as the polars frame ``evlib.load_events`` returns (x, y int16; t Duration[µs];
    polarity ±1)."""
    import polars as pl
    return pl.DataFrame({"x": ev["x"].astype(np.int16), "y": ev["y"].astype(np.int16),
                         "t": pl.Series(ev["t"].astype(np.int64)).cast(pl.Duration("us")),
                         "polarity": np.where(ev["p"] > 0, 1, -1).astype(np.int8)})


def evlib_voxel_grid(evlib, frame, *, num_bins: int, width: int, height: int) -> np.ndarray:
    """evlib's voxel grid as a dense array [B, H, W] (its long-format frame scattered, as its docs do)."""
    rep = evlib.representations
    long = rep.create_voxel_grid(frame, height, width, num_bins)
    return rep.densify_voxel_grid(long, num_bins, height, width)[:, 0]


def check_against_evlib(evlib, ev: np.ndarray, *, num_bins: int, width: int, height: int) -> None:
    """evlib follows tonic's voxel grid (its docs say so): equal to our B+1-bin grid cut to B bins."""
    theirs = evlib_voxel_grid(evlib, evlib_frame(ev), num_bins=num_bins, width=width, height=height)
    ours = F.voxel_grid(ev, num_bins=num_bins + 1, width=width, height=height)[:num_bins]
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def check_against_tonic(ev: np.ndarray, *, num_bins: int, width: int, height: int) -> None:
    """Raise AssertionError if tonic's results disagree with ours (see module doc for the mapping)."""
    from tonic.functional.to_frame import to_frame_numpy
    from tonic.functional.to_voxel_grid import to_voxel_grid_numpy
    tev = to_tonic(ev)
    theirs = to_voxel_grid_numpy(tev.copy(), (width, height, 2), num_bins)[:, 0]
    ours = F.voxel_grid(ev, num_bins=num_bins + 1, width=width, height=height)[:num_bins]
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    frames = to_frame_numpy(tev.copy(), (width, height, 2), n_time_bins=num_bins)
    ours_f = F.to_frames(ev, num_frames=num_bins, width=width, height=height, split_by="time")
    np.testing.assert_array_equal(ours_f[:-1], frames[:-1])
    dt = (int(ev["t"][-1]) - int(ev["t"][0])) // num_bins
    tail = ev[ev["t"] < int(ev["t"][0]) + num_bins * dt]
    last = F.to_frames(tail[tail["t"] >= int(ev["t"][0]) + (num_bins - 1) * dt], num_frames=1, width=width,
                       height=height)[0]
    np.testing.assert_array_equal(last, frames[-1])


def run(sizes=(1_000_000, 10_000_000), *, num_bins: int = 5, width: int = 640, height: int = 480,
        repeats: int = 5, with_tonic: bool = True, crossover=(30_000, 100_000, 300_000, 1_000_000),
        warmup_s: float = WARMUP_SECONDS, evlib=None):
    """Measure; returns (rows, crossover_rows). Prints nothing. ``evlib``: the module (see
    :func:`import_evlib`) to add its voxel grid as a second baseline, or None."""
    from numba import get_num_threads  # noqa: F401 - documents the thread count used
    warm = random_events(1000, width=width, height=height)
    for par in (False, True):  # compile (or load from cache) outside the timers
        F.voxel_grid(warm, num_bins=num_bins, width=width, height=height, parallel=par)
        F.to_frames(warm, num_frames=num_bins, width=width, height=height, split_by="time", parallel=par)
    if with_tonic:
        check_against_tonic(random_events(20_000, width=width, height=height, seed=1), num_bins=num_bins,
                            width=width, height=height)
    if evlib is not None:
        check_against_evlib(evlib, random_events(20_000, width=width, height=height, seed=1),
                            num_bins=num_bins, width=width, height=height)

    def timed(fn, setup=None):
        return best_times(fn, repeats, setup, warmup_s)

    rows = []
    for n in sizes:
        ev = random_events(int(n), width=width, height=height)
        kw = dict(num_bins=num_bins, width=width, height=height)
        rows.append(Row(n, "ours voxel_grid 1 thread", *timed(lambda _: F.voxel_grid(ev, parallel=False, **kw))))
        rows.append(Row(n, "ours voxel_grid parallel", *timed(lambda _: F.voxel_grid(ev, parallel=True, **kw))))
        fkw = dict(num_frames=num_bins, width=width, height=height, split_by="time")
        rows.append(Row(n, "ours to_frames 1 thread", *timed(lambda _: F.to_frames(ev, parallel=False, **fkw))))
        if evlib is not None:
            frame = evlib_frame(ev)  # its input format, built outside the timer like tonic's
            rows.append(Row(n, "evlib voxel_grid", *timed(lambda _: evlib_voxel_grid(evlib, frame, **kw))))
            del frame
        if with_tonic:
            from tonic.functional.to_frame import to_frame_numpy
            from tonic.functional.to_voxel_grid import to_voxel_grid_numpy
            tev = to_tonic(ev)
            del ev
            rows.append(Row(n, "tonic ToVoxelGrid", *timed(
                lambda a: to_voxel_grid_numpy(a, (width, height, 2), num_bins), setup=tev.copy)))
            rows.append(Row(n, "tonic ToFrame", *timed(
                lambda a: to_frame_numpy(a, (width, height, 2), n_time_bins=num_bins), setup=tev.copy)))
            del tev
    cross = []
    for n in [c for c in crossover if c <= max(sizes)]:
        ev = random_events(int(n), width=width, height=height, seed=2)
        kw = dict(num_bins=num_bins, width=width, height=height)
        cross.append((n, timed(lambda _: F.voxel_grid(ev, parallel=False, **kw))[0],
                      timed(lambda _: F.voxel_grid(ev, parallel=True, **kw))[0],
                      F.use_parallel(n, num_bins * width * height, ignore_load=True)))
    return rows, cross


def format_report(rows, cross, *, num_bins: int, width: int, height: int, load_before, load_after) -> str:
    from numba import get_num_threads
    lines = [f"voxel grid benchmark: {width}x{height}, {num_bins} bins, uniform random events over 50 ms, "
             f"best wall time of repeated runs; numba threads: {get_num_threads()}, cpus: {os.cpu_count()}",
             f"load average (1/5/15 min) before: {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
             f"after: {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}", ""]
    lines.append(f"{'events':>11}  {'method':<26} {'wall ms':>9} {'M events/s':>11} {'CPU ms':>9}  "
                 "ratio on wall time [on CPU time]")
    by_n: dict[int, dict[str, Row]] = {}
    for r in rows:
        by_n.setdefault(r.num_events, {})[r.method] = r
    for n, group in by_n.items():
        tv = group.get("tonic ToVoxelGrid")
        tf = group.get("tonic ToFrame")
        ev_row = group.get("evlib voxel_grid")
        single = group["ours voxel_grid 1 thread"]
        for r in group.values():
            ratio = ""
            if r.method == "ours voxel_grid 1 thread":
                parts = [f"{b.seconds / r.seconds:5.1f}x [{b.cpu_seconds / r.cpu_seconds:5.1f}x] {b.method}"
                         for b in (tv, ev_row) if b is not None]
                ratio = ", ".join(parts)
            if r.method == "ours voxel_grid parallel":
                ratio = (f"{tv.seconds / r.seconds:5.1f}x tonic ToVoxelGrid, " if tv is not None else "") + \
                    f"{single.seconds / r.seconds:4.2f}x ours 1 thread"
            if r.method == "ours to_frames 1 thread" and tf is not None:
                ratio = f"{tf.seconds / r.seconds:5.1f}x [{tf.cpu_seconds / r.cpu_seconds:5.1f}x] tonic ToFrame"
            lines.append(f"{n:>11,}  {r.method:<26} {r.seconds * 1e3:9.2f} {r.events_per_s / 1e6:11.1f} "
                         f"{r.cpu_seconds * 1e3:9.2f}  {ratio}")
    if cross:
        lines += ["", "parallel threshold (voxel_grid; auto = what the wrapper picks when a core is free):",
                  f"{'events':>11}  {'1 thread ms':>11} {'parallel ms':>11}  {'speed-up':>8}  auto"]
        for n, s, p, auto in cross:
            mode = "parallel" if auto else "1 thread"
            lines.append(f"{n:>11,}  {s * 1e3:11.2f} {p * 1e3:11.2f}  {s / p:8.2f}  {mode}")
    return "\n".join(lines)


def main(sizes=(1_000_000, 10_000_000), *, num_bins=5, width=640, height=480, repeats=5, with_tonic=True,
         warmup_s=WARMUP_SECONDS, with_evlib=True) -> str:
    evlib = import_evlib() if with_evlib else None
    before = os.getloadavg()
    rows, cross = run(sizes, num_bins=num_bins, width=width, height=height, repeats=repeats, with_tonic=with_tonic,
                      warmup_s=warmup_s, evlib=evlib)
    after = os.getloadavg()
    report = format_report(rows, cross, num_bins=num_bins, width=width, height=height, load_before=before,
                           load_after=after)
    if with_evlib and evlib is None:
        report += "\n(evlib skipped: not installed; pip install evlib)"
    elif evlib is not None:
        import polars as pl
        from importlib.metadata import version
        report += (f"\nevlib {version('evlib')}: polars frame -> long-format grid -> dense (densify_voxel_grid), "
                   f"polars threads: {pl.thread_pool_size()}; input frame built untimed")
    return report
