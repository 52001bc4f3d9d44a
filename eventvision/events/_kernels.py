"""numba kernels shared by the readers."""

from __future__ import annotations

import numba
import numpy as np

from eventvision.events.core import EVENT_DTYPE


@numba.njit(cache=True)
def _pack_kernel(x, y, t, p, out):
    for i in range(x.shape[0]):
        out[i].x = x[i]
        out[i].y = y[i]
        out[i].t = t[i]
        out[i].p = 1 if p[i] > 0 else -1


def pack_events(x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """EVENT_DTYPE array from columns (t in µs, any p convention: > 0 is ON). ~15x faster than field
    assignment, which writes each strided field in a separate pass."""
    out = np.empty(len(x), dtype=EVENT_DTYPE)
    if len(x):
        _pack_kernel(np.ascontiguousarray(x), np.ascontiguousarray(y), np.ascontiguousarray(t),
                     np.ascontiguousarray(p), out)
    return out
