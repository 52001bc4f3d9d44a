"""File decoding throughput: eventvision against expelliarmus, faery and evlib, in one run.

Files (built once in ``--cache-dir`` from the real ``evt3_sample.raw`` of ../shared/data):

* EVT 3.0: the sample's words repeated ``--repeat`` times with every EVT_TIME_HIGH word shifted so the
  copies follow each other in time (a valid, time-ordered recording of 219,596 x repeat events);
* EVT 2.0: the same events encoded as EVT 2.0 (TIME_HIGH + CD words, per the Prophesee spec).

What is timed: path in, every event in memory out, as each library's users call it:
eventvision ``open_recording(path).read_all()`` (decoded, time order and sensor bounds checked),
expelliarmus ``Wizard(encoding, fpath).read()``, faery ``events_stream_from_file(path)`` packets
concatenated, evlib ``load_events(path, sort=False).collect()`` (a polars frame; ``sort=False`` so
its time-sort pass is not counted). Before timing, every peer's event count is checked and faery's
x/y/t/p compared with ours event for event (t differs only where the sample's TIME_LOW goes back: faery
clamps, OpenEB and eventvision overwrite the low bits). Rounds run the methods interleaved, in an order
rotated every round (each method ``--inner`` times back to back per round, its best run kept) so that
load from other processes, and any peer's lingering worker threads, hit every method alike; the
figure is the best round, the range median..best. A peer that is not installed is skipped with a note
(``pip install -e ".[bench]"`` installs them).

    python benchmarks/bench_decode.py [--repeat 10] [--rounds 9] [--inner 3] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from shared_data import SHARED_DATA

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EVT2_HEADER = b"% evt 2.0\n% format EVT2;height=720;width=1280\n% geometry 1280x720\n% end\n"


def shared_events_dir() -> Path:
    return SHARED_DATA / "events"


def make_evt3(src: Path, dst: Path, repeat: int) -> None:
    """``src`` repeated ``repeat`` times, each copy's TIME_HIGH words shifted past the previous copy."""
    from eventvision.events.prophesee import read_header
    head = read_header(src).size
    raw = src.read_bytes()
    words = np.frombuffer(raw[head:], dtype="<u2")
    is_high = (words >> 12) == 8
    high = (words[is_high] & 0xFFF).astype(np.int64)
    shift = int(high.max() - high.min()) + 1
    if int(high.max()) + shift * repeat >= 4096:
        raise SystemExit(f"--repeat {repeat} would wrap the EVT 3.0 time base of this sample; use fewer")
    copies = []
    for k in range(repeat):
        w = words.copy()
        w[is_high] = (0x8000 | (high + k * shift)).astype(np.uint16)
        copies.append(w.tobytes())
    dst.write_bytes(raw[:head] + b"".join(copies))


def make_evt2(events: np.ndarray, dst: Path) -> None:
    """EVT 2.0 words for time-sorted events: a TIME_HIGH (type 8, t >> 6) whenever it changes, then CD_ON/OFF
    (type 1/0, t & 63 in bits 27..22, x in 21..11, y in 10..0)."""
    t = events["t"].astype(np.int64)
    high = t >> 6
    new = np.r_[True, np.diff(high) != 0]
    pos = np.arange(len(t)) + np.cumsum(new)
    words = np.empty(len(t) + int(new.sum()), "<u4")
    words[pos] = (((events["p"] > 0).astype(np.uint32) << 28) | ((t & 0x3F).astype(np.uint32) << 22)
                  | (events["x"].astype(np.uint32) << 11) | events["y"].astype(np.uint32))
    words[pos[new] - 1] = (0x8 << 28) | (high[new] & 0x0FFFFFFF).astype(np.uint32)
    dst.write_bytes(EVT2_HEADER + words.tobytes())


def readers(encoding: str) -> dict:
    """name -> (fn(path) -> event count, note if unavailable)."""
    from eventvision.events import open_recording

    out = {"eventvision": (lambda p: len(open_recording(p).read_all()), None)}
    try:
        from expelliarmus import Wizard
        out["expelliarmus"] = (lambda p: len(Wizard(encoding=encoding, fpath=str(p)).read()), None)
    except ImportError:
        out["expelliarmus"] = (None, "expelliarmus not installed")
    try:
        import faery
        out["faery"] = (lambda p: sum(len(a) for a in faery.events_stream_from_file(p)), None)
    except ImportError:
        out["faery"] = (None, "faery not installed")
    from eventvision.representations.benchmark import import_evlib
    evlib = import_evlib()
    if evlib is None:
        out["evlib"] = (None, "evlib not installed")
    else:
        out["evlib"] = (lambda p: evlib.load_events(str(p), sort=False).collect().height, None)
    return out


def check_faery_equal(path: Path) -> str:
    try:
        import faery
    except ImportError:
        return "faery not installed: no cross-check"
    from eventvision.events import open_recording
    ours = open_recording(path).read_all()
    theirs = np.concatenate(list(faery.events_stream_from_file(path)))
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    for k in ("x", "y"):
        np.testing.assert_array_equal(ours[k], theirs[k])
    np.testing.assert_array_equal(ours["p"] > 0, theirs["on"])
    diff = int(np.count_nonzero(ours["t"] != theirs["t"].astype(np.int64)))
    if diff:  # the sample's TIME_LOW goes back once per copy: OpenEB overwrites, faery clamps (SOURCES.md)
        return f"faery: same x, y, p; t differs on {diff:,} events (its clamp where TIME_LOW goes back)"
    return "faery decodes the same events (x, y, t, p)"


def measure(path: Path, encoding: str, rounds: int, warmup: int, inner: int) -> list[tuple]:
    """[(name, best Mev/s, median Mev/s, best Mev/s on process CPU time, note)] over interleaved rounds; a
    round's time for a method is the best of ``inner`` back-to-back runs (a reader of many files runs warm).
    CPU time counts every thread of the process (evlib's polars pool included) and not the time the
    process waited for a core, so it is the steadier figure on a shared machine."""
    methods = readers(encoding)
    live = {k: fn for k, (fn, _) in methods.items() if fn is not None}
    counts = {k: fn(path) for k, fn in live.items()}
    n = counts["eventvision"]
    for k, c in counts.items():
        assert c == n, f"{k} decoded {c:,} events, eventvision {n:,}"
    wall: dict[str, list[float]] = {k: [] for k in live}
    cpu: dict[str, list[float]] = {k: [] for k in live}
    order = list(live)
    for r in range(warmup + rounds):
        order = order[1:] + order[:1]  # rotate: nobody always runs right after the same peer (thread pools)
        for k in order:
            fn = live[k]
            best_wall = best_cpu = float("inf")
            for _ in range(inner):
                t0, c0 = time.perf_counter(), time.process_time()
                fn(path)
                best_wall = min(best_wall, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            if r >= warmup:
                wall[k].append(best_wall)
                cpu[k].append(best_cpu)
    rows = []
    for k, (fn, note) in methods.items():
        if fn is None:
            rows.append((k, float("nan"), float("nan"), float("nan"), note))
        else:
            rows.append((k, n / min(wall[k]) / 1e6, n / statistics.median(wall[k]) / 1e6,
                         n / max(min(cpu[k]), 1e-9) / 1e6, ""))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10, help="copies of the 219,596-event sample (default 10)")
    ap.add_argument("--rounds", type=int, default=9, help="timed rounds, methods interleaved (default 9)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    ap.add_argument("--inner", type=int, default=3, help="back-to-back runs per method and round (default 3)")
    ap.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "eventvision_bench_decode"))
    args = ap.parse_args()
    src = shared_events_dir() / "evt3_sample.raw"
    if not src.is_file():
        raise SystemExit(f"{src}: real sample not found (set EVENTVISION_SHARED_DATA)")
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    evt3 = cache / f"evt3_x{args.repeat}.raw"
    evt2 = cache / f"evt2_x{args.repeat}.raw"
    if not evt3.exists():
        make_evt3(src, evt3, args.repeat)
    if not evt2.exists():
        from eventvision.events import open_recording
        make_evt2(open_recording(evt3).read_all(), evt2)
    load = os.getloadavg()
    print(f"decoding benchmark: path -> all events in memory; {args.rounds} interleaved rounds of "
          f"best-of-{args.inner} runs, best round (range: median..best); load average "
          f"{load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}, cpus {os.cpu_count()}")
    for enc, path in (("evt2", evt2), ("evt3", evt3)):
        note = check_faery_equal(path)
        rows = measure(path, enc, args.rounds, args.warmup, args.inner)
        ours, ours_cpu = rows[0][1], rows[0][3]
        size = path.stat().st_size / 1e6
        print(f"\n{enc.upper()} {path.name} ({size:.1f} MB); {note}")
        print(f"  {'reader':<13} {'M events/s':>11} {'range':>15} {'on CPU time':>12}   eventvision vs it [on CPU]")
        for name, best, median, on_cpu, why in rows:
            if why:
                print(f"  {name:<13} {'skipped':>11}   ({why})")
                continue
            ratio = "" if name == "eventvision" else f"{ours / best:5.2f}x [{ours_cpu / on_cpu:5.2f}x]"
            print(f"  {name:<13} {best:11.1f} {median:7.1f}..{best:<7.1f} {on_cpu:12.1f}   {ratio}")
    print(f"\nload average after: {'/'.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
