"""numba kernels of :mod:`eventvision.matching.refine_inputs` (cost profile, hole filling); inputs only, no
gradient."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def cost_profile_kernel(left, right, d0, offsets, out):  # pragma: no cover - compiled
    """``left``, ``right`` uint8 [H, W, C]; ``d0`` float32 [H, W] (finite); ``offsets`` int64 [K] -> ``out``
    float32 [K, H, W]. The right image is copied once to float with two zero columns on each side; a sample position is
    clamped to [-2, W] first, so both taps of every sample fall inside the copy and the inner loop has no bounds
    tests (a position left of -1 or right of W - 1 reads only zeros either way)."""
    h, w, c = left.shape
    k = offsets.shape[0]
    pad = 2
    scale = np.float32(1.0 / 255.0)
    rf = np.zeros((h, w + 2 * pad, c), dtype=np.float32)
    for y in range(h):
        for x in range(w):
            for ch in range(c):
                rf[y, x + pad, ch] = np.float32(right[y, x, ch]) * scale
    inv_c = np.float32(1.0 / c)
    lo, hi = -pad, w
    for y in range(h):
        for x in range(w):
            src = np.float32(x) - d0[y, x]
            base = np.floor(src)
            frac = src - base
            b = int(base)
            if c == 3:      # the time surfaces: unrolled (faster, the same sums in the same order)
                l0 = np.float32(left[y, x, 0]) * scale
                l1 = np.float32(left[y, x, 1]) * scale
                l2 = np.float32(left[y, x, 2]) * scale
                for j in range(k):
                    x0 = min(max(b - offsets[j], lo), hi) + pad
                    a0, a1, a2 = rf[y, x0, 0], rf[y, x0, 1], rf[y, x0, 2]
                    total = np.float32(0.0) + abs(l0 - (a0 + frac * (rf[y, x0 + 1, 0] - a0)))
                    total += abs(l1 - (a1 + frac * (rf[y, x0 + 1, 1] - a1)))
                    total += abs(l2 - (a2 + frac * (rf[y, x0 + 1, 2] - a2)))
                    out[j, y, x] = total * inv_c
                continue
            for j in range(k):
                x0 = min(max(b - offsets[j], lo), hi) + pad
                total = np.float32(0.0)
                for ch in range(c):
                    a = rf[y, x0, ch]
                    total += abs(np.float32(left[y, x, ch]) * scale - (a + frac * (rf[y, x0 + 1, ch] - a)))
                out[j, y, x] = total * inv_c


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
