"""numba kernels of :class:`eventvision.models.stereo.refine.SGBMRefineStereo`'s full-resolution work, for
inference on a CPU (no gradient): the network's input stack written once in the channels-last layout its
first conv reads, and each correction head in one pass over the image instead of six full-resolution tensors
(upsampled features, 1x1 conv of the inputs, their sum, BatchNorm, LeakyReLU, 3x3 conv)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def pack_inputs_kernel(image, costs, disparity, answered, max_disp, out):  # pragma: no cover - compiled
    """The refinement's full-resolution inputs in channels-last order: ``image`` uint8 [3, H, W] (any strides),
    ``costs`` float32 [K, H, W], ``disparity`` float32 [H, W] px, ``answered`` float32 [H, W] -> ``out`` float32
    [H, W, 3 + K + 2] = ``[image / 255, costs, disparity / max_disp, answered]`` (the same float32 divisions as
    the torch path, so the same values)."""
    c, h, w = image.shape
    k = costs.shape[0]
    full, scale = np.float32(255.0), np.float32(max_disp)
    for y in range(h):
        for x in range(w):
            o = out[y, x]
            for i in range(c):
                o[i] = np.float32(image[i, y, x]) / full
            for j in range(k):
                o[c + j] = costs[j, y, x]
            o[c + k] = disparity[y, x] / scale
            o[c + k + 1] = answered[y, x]


@njit(cache=True, nogil=True)
def _head_row(g, x, w_in, bias, slope, y, col0, col1, col_frac, xt, column, out):  # pragma: no cover - compiled
    """Row ``y`` of ``leaky_relu(up(g) + w_in @ x + bias)`` into ``out`` [C, W + 2] (columns 1..W; 0 and W + 1
    stay zero: the 3x3 conv's padding). ``up`` is bilinear with ``align_corners=False`` (PyTorch's formula);
    ``col0``, ``col1``, ``col_frac``: its source columns and weights per output column. ``x`` [H, W, Cin] is
    read through ``xt`` [Cin, W] (the row transposed), so the inner loops run along the row and vectorise;
    ``column`` [w2] is scratch for the vertically interpolated low-resolution row."""
    c, h2, w2 = g.shape
    h, w, cin = x.shape
    for xx in range(w):
        for i in range(cin):
            xt[i, xx] = x[y, xx, i]
    sy = max(np.float32(h2 / h) * (np.float32(y) + np.float32(0.5)) - np.float32(0.5), np.float32(0.0))
    y0 = int(sy)
    y1 = y0 + 1 if y0 < h2 - 1 else y0
    ly = sy - np.float32(y0)
    one = np.float32(1.0)
    for ch in range(c):
        top, bottom, o = g[ch, y0], g[ch, y1], out[ch]
        for j in range(w2):              # vertical interpolation first, at the low resolution
            column[j] = (one - ly) * top[j] + ly * bottom[j]
        b = bias[ch]
        for xx in range(w):
            lx = col_frac[xx]
            o[xx + 1] = (one - lx) * column[col0[xx]] + lx * column[col1[xx]] + b
        for i in range(cin):
            wi, xi = w_in[ch, i], xt[i]
            for xx in range(w):
                o[xx + 1] += wi * xi[xx]
        for xx in range(1, w + 1):
            if o[xx] < 0:
                o[xx] *= slope


@njit(cache=True, nogil=True)
def correction_head_kernel(g, x, w_in, bias, slope, w3, b3, base, lo, hi):  # pragma: no cover - compiled
    """``clamp(base + conv3x3(leaky_relu(up(g) + w_in @ x + bias)) + b3, lo, hi)`` -> float32 [H, W].

    ``g`` float32 [C, h2, w2]: the head's 1x1 features at low resolution (BatchNorm scale folded in); ``x``
    float32 [H, W, Cin]: the full-resolution inputs (channels-last); ``w_in`` [C, Cin] and ``bias`` [C]: the
    inputs' 1x1 conv with BatchNorm folded in; ``w3`` [C, 3, 3], ``b3``: the last conv (one output channel,
    zero padding); ``base`` [H, W]: the disparity the correction is added to (px). Three rows of the hidden
    layer are kept, so no full-resolution hidden tensor is written."""
    c, _, w2 = g.shape
    h, w = base.shape
    col0 = np.empty(w, dtype=np.int64)
    col1 = np.empty(w, dtype=np.int64)
    col_frac = np.empty(w, dtype=np.float32)
    scale_x = np.float32(w2 / w)
    for xx in range(w):
        sx = max(scale_x * (np.float32(xx) + np.float32(0.5)) - np.float32(0.5), np.float32(0.0))
        col0[xx] = int(sx)
        col1[xx] = col0[xx] + 1 if col0[xx] < w2 - 1 else col0[xx]
        col_frac[xx] = sx - np.float32(col0[xx])
    rows = np.zeros((4, c, w + 2), dtype=np.float32)     # three hidden rows + one of zeros (above and below)
    xt = np.empty((x.shape[2], w), dtype=np.float32)
    column = np.empty(w2, dtype=np.float32)
    acc = np.empty(w, dtype=np.float32)
    out = np.empty((h, w), dtype=np.float32)
    _head_row(g, x, w_in, bias, slope, 0, col0, col1, col_frac, xt, column, rows[0])
    for y in range(h):
        if y + 1 < h:
            _head_row(g, x, w_in, bias, slope, y + 1, col0, col1, col_frac, xt, column, rows[(y + 1) % 3])
        acc[:] = b3
        for dy in range(3):
            yy = y + dy - 1
            r = rows[yy % 3] if 0 <= yy < h else rows[3]
            for ch in range(c):
                rc = r[ch]
                for dx in range(3):
                    wv = w3[ch, dy, dx]
                    for xx in range(w):
                        acc[xx] += wv * rc[xx + dx]
        for xx in range(w):
            out[y, xx] = min(max(base[y, xx] + acc[xx], lo), hi)
    return out
