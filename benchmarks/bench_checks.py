"""Cost of the reader-boundary checks in ``pack_events`` (NaN/negative/huge coordinates refused).

Packs columns into EVENT_DTYPE with our checked numba kernel and, as the named baseline in the same
run, with the same kernel minus the checks (what the readers did before) and with plain numpy field
assignment. Columns: DSEC dtypes (u2, u2, i8, u1) and MVSEC float64. Best of ``--repeats`` runs.

    python benchmarks/bench_checks.py                 # 10 M events
    python benchmarks/bench_checks.py --events 2000000
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from eventvision.events._kernels import pack_events
from eventvision.events.core import EVENT_DTYPE


@numba.njit(cache=True)
def _unchecked_kernel(x, y, t, p, out):
    for i in range(x.shape[0]):
        out[i].x = x[i]
        out[i].y = y[i]
        out[i].t = t[i]
        out[i].p = 1 if p[i] > 0 else -1


def unchecked(x, y, t, p):
    out = np.empty(len(x), dtype=EVENT_DTYPE)
    _unchecked_kernel(x, y, t, p, out)
    return out


def numpy_fields(x, y, t, p):
    out = np.empty(len(x), dtype=EVENT_DTYPE)
    out["x"], out["y"], out["t"] = x, y, t
    out["p"] = np.where(p > 0, 1, -1)
    return out


def best(fn, cols, repeats):
    fn(*(c[:10] for c in cols))  # compile / warm
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*cols)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    n = args.events
    rng = np.random.default_rng(0)
    dsec = (rng.integers(0, 640, n).astype("<u2"), rng.integers(0, 480, n).astype("<u2"),
            np.sort(rng.integers(0, 10**8, n)).astype("<i8"), rng.integers(0, 2, n).astype("u1"))
    mvsec = tuple(c.astype(np.float64) for c in dsec)
    print(f"pack {n / 1e6:.0f} M events, best of {args.repeats} (Mev/s; ratio = speed checked / baseline)")
    for name, cols in (("DSEC u2/u2/i8/u1", dsec), ("MVSEC float64", mvsec)):
        checked = best(pack_events, cols, args.repeats)
        base = best(unchecked, cols, args.repeats)
        fields = best(numpy_fields, cols, args.repeats)
        print(f"  {name:<18} checked {n / checked / 1e6:7.1f}   unchecked kernel {n / base / 1e6:7.1f} "
              f"(ratio {base / checked:.2f}x)   numpy fields {n / fields / 1e6:7.1f} "
              f"(ratio {fields / checked:.2f}x)")


if __name__ == "__main__":
    main()
