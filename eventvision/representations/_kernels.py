"""numba kernels behind :mod:`eventvision.representations.functional`.

Every kernel is pure: it reads the event columns it is given and returns a freshly allocated array
(the only writes go to buffers the kernel allocated itself). Accumulation uses explicit loops, so
repeated pixels add up (fancy-index ``+=`` would drop them).

One scatter kernel serves every linear representation. Per event it computes a time bin ``b``, a
channel ``c`` and a weight ``w`` and adds ``w`` to ``out[b, c, y, x]``. How ``b``/``c``/``w`` are
computed is chosen by ``mode``; the branch is loop-invariant, so it costs (almost) nothing. The
voxel grid (two bins per event with bilinear weights) has its own loop, :func:`_voxel_range`.

The parallel variant splits the events into one contiguous chunk per thread, scatters each chunk
into its own partial grid (no two threads ever write the same memory) and sums the partials.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic

#: modes of :func:`scatter`
MODE_VOXEL = 0            # bilinear in time over (B-1)(t-t0)/(tN-t0); weight = polarity; 1 channel
#                           (needs 0 <= t* <= B-1, i.e. t0 <= t <= tN: the wrapper passes first/last event)
MODE_TIME_POLARITY = 1    # bin by time; weight = polarity (+1/-1); 1 channel (SBT)
MODE_TIME_COUNT = 2       # bin by time; weight = 1; channel = ON (1) / OFF (0) (histogram)
MODE_NUMBER_POLARITY = 3  # bin by event index; weight = polarity; 1 channel (SBN)
MODE_NUMBER_COUNT = 4     # bin by event index; weight = 1; channel = ON/OFF (frames split by number)
MODE_FLOORTIME_COUNT = 5  # bin = (t-t0)//dt (SpikingJelly split_by='time'); weight 1; channel ON/OFF

_NEVER = np.int64(-(2**62))  # "no event yet" marker of the time surface

#: how many events ahead the scatter prefetches its output cells (measured on the voxel grid:
#: 16-64 all give ~+25-50% on random pixels at 640x480; the scatter is bound by cache misses)
PREFETCH_DISTANCE = 32
#: the voxel grid and the per-polarity counts use an interleaved pair buffer from this many events per
#: pixel and bin on (below,
#: clearing and flushing the buffer once per bin costs more than it saves; measured crossover at
#: 640x480x5 between 2 and 3.3 events per pixel, i.e. 0.4-0.65 per pixel and bin)
PAIR_MIN_EVENTS_PER_CELL = 0.5


@intrinsic
def _prefetch_write(typingctx, arr, idx):
    """LLVM ``llvm.prefetch`` (write, high locality) of ``arr[idx]``; a hint, it never faults."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        array = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, array, [args[1]], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _floordiv(num, den, inv):
    """Exact ``num // den`` for 0 <= num, 0 < den, from the float estimate ``num * inv`` (inv = 1/den)
    plus one correction step: a multiply instead of a 40-cycle integer division per event."""
    q = np.int64(num * inv)
    if q * den > num:
        q -= 1
    elif (q + 1) * den <= num:
        q += 1
    return q


@njit(cache=True, nogil=True)
def _flush_pair(out, pair, b, num_bins, plane):
    """Add the interleaved (bin b, bin b+1) accumulator into planes b, b+1 of ``out`` and clear it."""
    a = b * plane
    if b + 1 < num_bins:
        a2 = a + plane
        for j in range(plane):
            out[a + j] += pair[2 * j]
            out[a2 + j] += pair[2 * j + 1]
            pair[2 * j] = 0.0
            pair[2 * j + 1] = 0.0
    else:
        for j in range(plane):
            out[a + j] += pair[2 * j]
            pair[2 * j] = 0.0
            pair[2 * j + 1] = 0.0


@njit(cache=True, nogil=True)
def _voxel_direct(out, x, y, t, p, lo, hi, num_bins, width, height, t0, ft_scale):
    """Voxel grid of events ``lo..hi-1`` scattered straight into the planes of ``out`` (few events:
    clearing and flushing a pair buffer would cost more than the events)."""
    plane = height * width
    last = num_bins * plane
    for i in range(lo, hi):
        k = i + PREFETCH_DISTANCE
        if k < hi:
            jk = np.int64((t[k] - t0) * ft_scale) * plane + np.int64(y[k]) * width + np.int64(x[k])
            if 0 <= jk < last - plane:
                _prefetch_write(out, jk)
                _prefetch_write(out, jk + plane)
        xi = np.int64(x[i])
        yi = np.int64(y[i])
        if xi < 0 or xi >= width or yi < 0 or yi >= height:
            continue
        ts = (t[i] - t0) * ft_scale
        b = np.int64(ts)
        if ts < 0 or b >= num_bins:  # only for unsorted input (t outside [t0, tN])
            continue
        pol = np.float32(2 * np.int64(p[i] > 0) - 1)
        w1 = pol * np.float32(ts - b)
        j = b * plane + yi * width + xi
        out[j] += pol - w1
        if b + 1 < num_bins:
            out[j + plane] += w1


@njit(cache=True, nogil=True)
def _voxel_range(out, x, y, t, p, lo, hi, num_bins, width, height, t0, ft_scale):
    """Voxel grid of events ``lo..hi-1`` added into ``out`` (flat [B, H, W], owned by the caller kernel).

    Events are time-sorted, so while t* stays in [b, b+1) every event writes only bins b and b+1.
    Those two go to an interleaved per-pixel pair buffer (one cache line per event instead of two,
    2.4 MB instead of two 1.2 MB planes apart at 640x480), flushed into the grid whenever b changes
    (at most B times for sorted input; unsorted input stays correct, just slower). Measured +40% at
    10M random events over scattering into the planes directly.
    """
    plane = height * width
    if hi - lo < PAIR_MIN_EVENTS_PER_CELL * plane * num_bins:
        _voxel_direct(out, x, y, t, p, lo, hi, num_bins, width, height, t0, ft_scale)
        return
    pair = np.zeros(2 * plane, dtype=np.float32)
    cur = -1
    for i in range(lo, hi):
        k = i + PREFETCH_DISTANCE
        if k < hi:
            jk = 2 * (np.int64(y[k]) * width + np.int64(x[k]))
            if 0 <= jk < 2 * plane:
                _prefetch_write(pair, jk)
        xi = np.int64(x[i])
        yi = np.int64(y[i])
        if xi < 0 or xi >= width or yi < 0 or yi >= height:
            continue
        ts = (t[i] - t0) * ft_scale
        b = np.int64(ts)
        if ts < 0 or b >= num_bins:  # only for unsorted input (t outside [t0, tN])
            continue
        if b != cur:
            if cur >= 0:
                _flush_pair(out, pair, cur, num_bins, plane)
            cur = b
        pol = np.float32(2 * np.int64(p[i] > 0) - 1)
        w1 = pol * np.float32(ts - b)
        j = 2 * (yi * width + xi)
        pair[j] += pol - w1
        pair[j + 1] += w1
    if cur >= 0:
        _flush_pair(out, pair, cur, num_bins, plane)


@njit(cache=True, nogil=True, inline="always")
def _event_bin(mode, i, ti, t0, t_end, span, num_bins, idiv, inv):
    """Bin of event ``i`` (time ``ti``) for the non-voxel modes, or -1 if it falls outside the window."""
    if mode == MODE_TIME_POLARITY or mode == MODE_TIME_COUNT:
        dt = ti - t0
        if dt < 0 or ti > t_end:
            return -1
        b = _floordiv(num_bins * dt, span, inv) if span > 0 else 0
    elif mode == MODE_FLOORTIME_COUNT:
        dt = ti - t0
        if dt < 0:
            return -1
        b = _floordiv(dt, idiv, inv) if idiv > 0 else num_bins - 1
    else:
        b = _floordiv(i, idiv, inv) if idiv > 0 else num_bins - 1
    return b if b < num_bins else num_bins - 1


@njit(cache=True, nogil=True)
def _counts_paired(out, x, y, t, p, lo, hi, mode, num_bins, width, height, t0, t_end, idiv, inv):
    """Per-polarity counts of events ``lo..hi-1`` for dense windows: the current bin's OFF/ON counts
    accumulate interleaved per pixel (one cache line per event instead of two planes 1.2 MB apart)
    and are flushed into ``out`` [B, 2, H, W] whenever the bin changes."""
    plane = height * width
    span = t_end - t0
    pair = np.zeros(2 * plane, dtype=np.float32)
    cur = -1
    for i in range(lo, hi):
        k = i + PREFETCH_DISTANCE
        if k < hi:
            jk = 2 * (np.int64(y[k]) * width + np.int64(x[k]))
            if 0 <= jk < 2 * plane:
                _prefetch_write(pair, jk)
        xi = np.int64(x[i])
        yi = np.int64(y[i])
        if xi < 0 or xi >= width or yi < 0 or yi >= height:
            continue
        b = _event_bin(mode, i, t[i], t0, t_end, span, num_bins, idiv, inv)
        if b < 0:
            continue
        if b != cur:
            if cur >= 0:
                _flush_channels(out, pair, cur, plane)
            cur = b
        pair[2 * (yi * width + xi) + np.int64(p[i] > 0)] += np.float32(1.0)
    if cur >= 0:
        _flush_channels(out, pair, cur, plane)


@njit(cache=True, nogil=True)
def _flush_channels(out, pair, b, plane):
    """Add the interleaved (OFF, ON) counts into ``out[b, 0]`` and ``out[b, 1]`` and clear them."""
    a = 2 * b * plane
    for j in range(plane):
        out[a + j] += pair[2 * j]
        out[a + plane + j] += pair[2 * j + 1]
        pair[2 * j] = 0.0
        pair[2 * j + 1] = 0.0


@njit(cache=True, nogil=True)
def _scatter_range(out, x, y, t, p, lo, hi, mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv):
    """Add events ``lo..hi-1`` into ``out``, a flat buffer of B x C x H x W cells owned by the calling kernel.

    The output cells of the event ``PREFETCH_DISTANCE`` ahead are prefetched (a hint: the scatter
    into a grid larger than L2 is bound by cache misses). The voxel grid has its own loop
    (:func:`_voxel_range`); dense per-polarity counts go through :func:`_counts_paired`.
    """
    if mode == MODE_VOXEL:
        _voxel_range(out, x, y, t, p, lo, hi, num_bins, width, height, t0, ft_scale)
        return
    span = t_end - t0
    plane = height * width
    bstride = channels * plane
    last_cell = num_bins * bstride
    counts = mode == MODE_TIME_COUNT or mode == MODE_FLOORTIME_COUNT or mode == MODE_NUMBER_COUNT
    by_time = mode == MODE_TIME_POLARITY or mode == MODE_TIME_COUNT
    by_number = mode == MODE_NUMBER_POLARITY or mode == MODE_NUMBER_COUNT
    if by_time:
        inv = 1.0 / span if span > 0 else 0.0
    else:
        inv = 1.0 / idiv if idiv > 0 else 0.0
    if counts and hi - lo >= PAIR_MIN_EVENTS_PER_CELL * plane * num_bins:
        _counts_paired(out, x, y, t, p, lo, hi, mode, num_bins, width, height, t0, t_end, idiv, inv)
        return
    for i in range(lo, hi):
        k = i + PREFETCH_DISTANCE
        if k < hi:
            if by_number:
                bk = np.int64(k * inv) if idiv > 0 else num_bins - 1
            elif by_time:
                bk = np.int64(num_bins * (t[k] - t0) * inv)
            else:
                bk = np.int64((t[k] - t0) * inv) if idiv > 0 else num_bins - 1
            if bk >= num_bins:
                bk = num_bins - 1
            jk = bk * bstride + np.int64(y[k]) * width + np.int64(x[k])
            if counts and p[k] > 0:
                jk += plane
            if 0 <= jk < last_cell:
                _prefetch_write(out, jk)
        xi = np.int64(x[i])
        yi = np.int64(y[i])
        if xi < 0 or xi >= width or yi < 0 or yi >= height:
            continue
        b = _event_bin(mode, i, t[i], t0, t_end, span, num_bins, idiv, inv)
        if b < 0:
            continue
        on = np.int64(p[i] > 0)
        pix = yi * width + xi
        if counts:
            out[b * bstride + on * plane + pix] += np.float32(1.0)
        else:
            out[b * bstride + pix] += np.float32(2 * on - 1)


@njit(cache=True, nogil=True)
def scatter(x, y, t, p, mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv):
    """Single-thread scatter of all events -> new float32 [B, C, H, W]."""
    cells = num_bins * channels * height * width
    out = np.zeros(cells, dtype=np.float32)
    _scatter_range(out, x, y, t, p, 0, len(x), mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv)
    return out.reshape((num_bins, channels, height, width))


@njit(cache=True, parallel=True)
def scatter_parallel(x, y, t, p, mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv, num_chunks):
    """Multi-core scatter: ``num_chunks`` contiguous event chunks, each into its own grid, then a parallel sum.

    Chunk 0 scatters straight into the output; chunks 1.. into partial grids that are added at the
    end, so no two threads ever write the same cell.
    """
    n = len(x)
    k = max(1, min(num_chunks, n))
    cells = num_bins * channels * height * width
    size = cells
    # zeroed inside the parallel loop, so each thread takes the first-touch page faults of its own buffer
    out = np.empty(size, dtype=np.float32)
    partial = np.empty((k - 1, size), dtype=np.float32)
    for c in prange(k):
        lo = (n * c) // k
        hi = (n * (c + 1)) // k
        if c == 0:
            out[:] = 0.0
            _scatter_range(out, x, y, t, p, lo, hi, mode, num_bins, channels, width, height, t0, t_end,
                           ft_scale, idiv)
        else:
            partial[c - 1, :] = 0.0
            _scatter_range(partial[c - 1], x, y, t, p, lo, hi, mode, num_bins, channels, width, height, t0,
                           t_end, ft_scale, idiv)
    if k > 1:
        step = 16384
        for blk in prange((cells + step - 1) // step):
            a = blk * step
            e = min(a + step, cells)
            for c in range(k - 1):
                for j in range(a, e):
                    out[j] += partial[c, j]
    return out.reshape((num_bins, channels, height, width))


@njit(cache=True, nogil=True)
def sign_inplace(grid):
    """sign() of a grid the kernels allocated (never a caller's array)."""
    flat = grid.reshape(-1)
    for j in range(flat.size):
        v = flat[j]
        flat[j] = np.float32(1.0) if v > 0 else (np.float32(-1.0) if v < 0 else np.float32(0.0))
    return grid


@njit(cache=True, nogil=True)
def normalize_nonzero(grid):
    """E2VID normalisation of a kernel-owned grid: (v - mean) / std over the non-zero cells, zeros stay zero.

    A grid whose non-zero cells all hold the same value (std 0) is only mean-centred.
    """
    flat = grid.reshape(-1)
    cnt = 0
    s = 0.0
    s2 = 0.0
    for j in range(flat.size):
        v = flat[j]
        if v != 0:
            cnt += 1
            s += v
            s2 += v * v
    if cnt == 0:
        return grid
    mean = s / cnt
    var = s2 / cnt - mean * mean
    std = np.sqrt(var) if var > 0 else 1.0
    for j in range(flat.size):
        v = flat[j]
        if v != 0:
            flat[j] = np.float32((v - mean) / std)
    return grid


@njit(cache=True, nogil=True)
def time_surface(x, y, t, p, width, height, t_ref, tau_us):
    """exp(-(t_ref - t_last)/tau) per polarity -> new float32 [2, H, W] (0 where no event; events after t_ref ignored)."""
    last = np.full((2, height, width), _NEVER, dtype=np.int64)
    for i in range(len(x)):
        xi = np.int64(x[i])
        yi = np.int64(y[i])
        if xi < 0 or xi >= width or yi < 0 or yi >= height or t[i] > t_ref:
            continue
        c = 1 if p[i] > 0 else 0
        if t[i] > last[c, yi, xi]:
            last[c, yi, xi] = t[i]
    out = np.zeros((2, height, width), dtype=np.float32)
    for c in range(2):
        for yy in range(height):
            for xx in range(width):
                tl = last[c, yy, xx]
                if tl != _NEVER:
                    out[c, yy, xx] = np.exp(-(t_ref - tl) / tau_us)
    return out


@njit(cache=True, nogil=True)
def rectify_mask(x, y, rectify_map, width, height):
    """Rounded rectified coordinates through ``rectify_map`` [H, W, 2] and a keep-mask (inside the sensor)."""
    n = len(x)
    xr = np.empty(n, dtype=np.uint16)
    yr = np.empty(n, dtype=np.uint16)
    keep = np.zeros(n, dtype=np.bool_)
    mh = rectify_map.shape[0]
    mw = rectify_map.shape[1]
    for i in range(n):
        xi = np.int64(x[i])
        yi = np.int64(y[i])
        if xi < 0 or xi >= mw or yi < 0 or yi >= mh:
            continue
        fx = rectify_map[yi, xi, 0]
        fy = rectify_map[yi, xi, 1]
        if not (np.isfinite(fx) and np.isfinite(fy)):
            continue
        rx = np.int64(np.floor(fx + 0.5))
        ry = np.int64(np.floor(fy + 0.5))
        if rx < 0 or rx >= width or ry < 0 or ry >= height:
            continue
        xr[i] = rx
        yr[i] = ry
        keep[i] = True
    return xr, yr, keep
