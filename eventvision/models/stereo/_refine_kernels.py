"""numba kernel of :func:`eventvision.models.stereo.refine.cost_profile` (no gradient needed: inputs only)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def cost_profile_kernel(left, right, d0, offsets):  # pragma: no cover - compiled
    """``left``, ``right`` uint8 [H, W, C]; ``d0`` float32 [H, W]; ``offsets`` int64 [K] -> float32 [K, H, W]."""
    h, w, c = left.shape
    k = offsets.shape[0]
    out = np.empty((k, h, w), dtype=np.float32)
    scale = np.float32(1.0 / 255.0)
    inv_c = np.float32(1.0 / c)
    for y in range(h):
        for x in range(w):
            src = np.float32(x) - d0[y, x]
            base = np.floor(src)
            frac = src - base
            b = int(base)
            for j in range(k):
                x0 = b - offsets[j]
                total = np.float32(0.0)
                for ch in range(c):
                    a = np.float32(right[y, x0, ch]) * scale if 0 <= x0 < w else np.float32(0.0)
                    bb = np.float32(right[y, x0 + 1, ch]) * scale if 0 <= x0 + 1 < w else np.float32(0.0)
                    warped = a + frac * (bb - a)
                    total += abs(np.float32(left[y, x, ch]) * scale - warped)
                out[j, y, x] = total * inv_c
    return out


@njit(cache=True, nogil=True)
def fill_holes_kernel(d, fallback):  # pragma: no cover - compiled
    """``d`` float32 [H, W] with NaN holes -> filled copy: per row the smaller of the nearest finite values to the
    left and right of each hole (one side if only one exists), ``fallback`` for rows without any."""
    h, w = d.shape
    out = d.copy()
    for y in range(h):
        last = np.nan
        for x in range(w):              # left to right: nearest finite value at or before x
            v = d[y, x]
            if v == v:
                last = v
            else:
                out[y, x] = last
        nxt = np.nan
        for x in range(w - 1, -1, -1):  # right to left: take the smaller of both sides
            v = d[y, x]
            if v == v:
                nxt = v
            else:
                left = out[y, x]
                if left != left:
                    out[y, x] = nxt if nxt == nxt else fallback
                elif nxt == nxt and nxt < left:
                    out[y, x] = nxt
    return out
