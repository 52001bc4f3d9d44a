"""numba kernels behind :mod:`eventvision.representations.functional`.

Every kernel is pure: it reads the event columns it is given and returns a freshly allocated array
(the only writes go to buffers the kernel allocated itself). Accumulation uses explicit loops, so
repeated pixels add up (fancy-index ``+=`` would drop them).

One scatter kernel serves every linear representation. Per event it computes a time bin ``b``, a
channel ``c`` and a weight ``w`` and adds ``w`` to ``out[b, c, y, x]``. How ``b``/``c``/``w`` are
computed is chosen by ``mode``; the branch is loop-invariant, so it costs (almost) nothing.

Events are sorted by time, so a run of events fills one bin (the voxel grid: two neighbouring bins)
before the next. Dense windows therefore accumulate the current bin in a small per-pixel buffer that
interleaves what one event touches (OFF/ON counts, or the voxel grid's bins b and b+1) and write
each finished plane of the output once (:func:`_voxel_chunk`, :func:`_bins_chunk`). Sparse windows
and unsorted input add straight into a zeroed grid (:func:`_scatter_direct`).

The parallel variant cuts the events into one contiguous chunk per thread. A chunk of sorted events
is a time range, so it writes its own planes; only the planes of the bins a chunk boundary falls in
are shared, and each chunk writes those into its own edge buffer, summed after the join
(:func:`_chunk_layout`, :func:`_merge_planes`). No two threads ever write the same memory.
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
#: dense windows (at least this many events per output cell) go through the bin accumulator; below,
#: clearing and copying the accumulator once per bin costs more than it saves (measured with
#: benchmarks/bench_voxel.py at 640x480x5, see docs/representations.md)
PAIR_MIN_EVENTS_PER_CELL = 0.08


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


@njit(cache=True, nogil=True, inline="always")
def _voxel_time(ti, t0, ft_scale):
    """t* of the voxel grid for an event at ``ti`` µs."""
    return (ti - t0) * ft_scale


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
def _bin_keys(mode, b, num_bins, t0, t_end, idiv):
    """[lo, hi) of the key (time in µs; the event index for the number modes) that :func:`_event_bin`
    puts in bin ``b``, in exact integer arithmetic."""
    never = np.int64(2**62)
    last = b >= num_bins - 1
    if mode == MODE_TIME_POLARITY or mode == MODE_TIME_COUNT:
        span = t_end - t0
        if span <= 0:
            return t0, t0 + 1
        # floor(B dt / span) == b  <=>  ceil(b span / B) <= dt < ceil((b+1) span / B); dt == span is in B-1
        lo = t0 + (b * span + num_bins - 1) // num_bins
        hi = t_end + 1 if last else t0 + ((b + 1) * span + num_bins - 1) // num_bins
        return lo, hi
    start = t0 if mode == MODE_FLOORTIME_COUNT else np.int64(0)
    if idiv <= 0:
        return start, never
    return start + b * idiv, never if last else start + (b + 1) * idiv


@njit(cache=True, nogil=True, inline="always")
def _reciprocal(mode, t0, t_end, idiv):
    """1/divisor of the bin formula of ``mode`` (0 when the divisor is 0), for :func:`_floordiv`."""
    if mode == MODE_TIME_POLARITY or mode == MODE_TIME_COUNT:
        return 1.0 / (t_end - t0) if t_end > t0 else 0.0
    return 1.0 / idiv if idiv > 0 else 0.0


@njit(cache=True, nogil=True)
def _clamped_bin(mode, i, ti, num_bins, t0, t_end, ft_scale, idiv):
    """Bin of event ``i`` clipped to [0, B-1] (events before / after the window count as the first /
    last bin): the bin range a chunk of sorted events can touch is [bin(first), bin(last)]."""
    if mode == MODE_VOXEL:
        ts = _voxel_time(ti, t0, ft_scale)
        b = np.int64(ts) if ts > 0 else 0
    elif (mode == MODE_TIME_POLARITY or mode == MODE_TIME_COUNT or mode == MODE_FLOORTIME_COUNT) and ti < t0:
        b = 0
    elif (mode == MODE_TIME_POLARITY or mode == MODE_TIME_COUNT) and ti > t_end:
        b = num_bins - 1
    else:
        b = _event_bin(mode, i, ti, t0, t_end, t_end - t0, num_bins, idiv, _reciprocal(mode, t0, t_end, idiv))
    return min(max(b, 0), num_bins - 1)


@njit(cache=True, nogil=True)
def _scatter_direct(out, x, y, t, p, mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv):
    """Add every event straight into ``out`` (flat, zeroed, B x C x H x W): for sparse windows (a few
    events per cell) and for unsorted input. The output cells of the event ``PREFETCH_DISTANCE``
    ahead are prefetched (the grid is larger than L2; the scatter is bound by cache misses)."""
    n = len(x)
    plane = height * width
    bstride = channels * plane
    last_cell = num_bins * bstride
    span = t_end - t0
    inv = _reciprocal(mode, t0, t_end, idiv)
    counts = mode == MODE_TIME_COUNT or mode == MODE_FLOORTIME_COUNT or mode == MODE_NUMBER_COUNT
    for i in range(n):
        k = i + PREFETCH_DISTANCE
        if k < n:  # (a bin outside [0, B) gives an index outside the grid: no prefetch)
            if mode == MODE_VOXEL:
                bk = np.int64(_voxel_time(t[k], t0, ft_scale))
            else:
                bk = _event_bin(mode, k, t[k], t0, t_end, span, num_bins, idiv, inv)
            jk = bk * bstride + np.int64(y[k]) * width + np.int64(x[k])
            if counts and p[k] > 0:
                jk += plane
            if 0 <= jk < last_cell:
                _prefetch_write(out, jk)
        xi = np.int64(x[i])
        yi = np.int64(y[i])
        if xi < 0 or xi >= width or yi < 0 or yi >= height:
            continue
        pix = yi * width + xi
        on = np.int64(p[i] > 0)
        if mode == MODE_VOXEL:
            ts = _voxel_time(t[i], t0, ft_scale)
            b = np.int64(ts)
            if ts < 0 or b >= num_bins:  # only for unsorted input (t outside [t0, tN])
                continue
            pol = np.float32(2 * on - 1)
            w1 = pol * np.float32(ts - b)
            out[b * plane + pix] += pol - w1
            if b + 1 < num_bins:
                out[(b + 1) * plane + pix] += w1
            continue
        b = _event_bin(mode, i, t[i], t0, t_end, span, num_bins, idiv, inv)
        if b < 0:
            continue
        if counts:
            out[b * bstride + on * plane + pix] += np.float32(1.0)
        else:
            out[b * bstride + pix] += np.float32(2 * on - 1)


@njit(cache=True, nogil=True)
def _plane_view(out, edge, owner, chunk, edge_base, q_first, q, plane):
    """Where chunk ``chunk`` (first plane ``q_first``) writes output plane ``q``: a 1-D view of ``plane`` cells.

    The plane's owner (the first chunk that touches it) writes straight into ``out``; another chunk
    touching it (a plane of the bin a chunk boundary falls in) writes into its own slot
    ``edge_base + q - q_first`` of ``edge``, which :func:`_merge_planes` adds after the join.
    """
    if owner[q] == chunk:
        return out[q * plane:(q + 1) * plane]
    at = (edge_base + q - q_first) * plane
    return edge[at:at + plane]


@njit(cache=True, nogil=True)
def _emit(out, edge, owner, chunk, edge_base, q_first, q, count, plane, acc, slots, first_slot, clear):
    """Write planes ``q .. q+count-1`` (count 1 or 2) from slots ``first_slot ..`` of the interleaved
    accumulator ``acc`` [H*W, slots], clearing those slots unless ``clear`` is False (a chunk's last
    planes, whose accumulator is not used again). Both planes of a pair go in one pass over ``acc``."""
    d0 = _plane_view(out, edge, owner, chunk, edge_base, q_first, q, plane)
    if count == 1:
        for j in range(plane):
            k = slots * j + first_slot
            d0[j] = acc[k]
            if clear:
                acc[k] = 0.0
        return
    d1 = _plane_view(out, edge, owner, chunk, edge_base, q_first, q + 1, plane)
    for j in range(plane):
        k = slots * j + first_slot
        d0[j] = acc[k]
        d1[j] = acc[k + 1]
        if clear:
            acc[k] = 0.0
            acc[k + 1] = 0.0


@njit(cache=True, nogil=True)
def _emit_zeros(out, edge, owner, chunk, edge_base, q_first, q_lo, q_hi, plane):
    """Write zeros into planes ``q_lo .. q_hi-1`` (planes of bins without events)."""
    for q in range(q_lo, q_hi):
        _plane_view(out, edge, owner, chunk, edge_base, q_first, q, plane)[:] = 0.0


@njit(cache=True, nogil=True)
def _voxel_chunk(out, edge, owner, chunk, edge_base, acc, x, y, t, p, num_bins, width, height, t0, ft_scale,
                 b_first, b_last):
    """Voxel grid of sorted events (one chunk's slices of the columns) whose bins lie in [b_first, b_last]:
    writes planes b_first .. min(b_last + 1, B - 1), each exactly once. Returns False (having written
    part of them) if the events are not sorted by time.

    While ``t*`` stays in [b, b+1) every event writes only planes b and b+1; they accumulate in
    ``acc``, an interleaved per-pixel pair (one cache line per event instead of two lines 1.2 MB
    apart at 640x480), plane b in slot ``b & 1``. When b moves on, plane b is complete: it is written
    out and its slot cleared, which makes it the slot of plane b+2.
    """
    plane = height * width
    q_last = min(b_last + 1, num_bins - 1)
    cur = -1
    done = b_first  # planes b_first..done-1 are written
    s0 = 0
    s1 = 1
    n = len(x)
    for i in range(n):
        k = i + PREFETCH_DISTANCE
        if k < n:  # a prefetch never faults, so an out-of-sensor event needs no check
            _prefetch_write(acc, 2 * (np.int64(y[k]) * width + np.int64(x[k])))
        xi = np.int64(x[i])
        yi = np.int64(y[i])
        if xi < 0 or xi >= width or yi < 0 or yi >= height:
            continue
        ts = _voxel_time(t[i], t0, ft_scale)
        b = np.int64(ts)
        if ts < 0 or b >= num_bins:
            continue
        if b != cur:
            if b < cur or b < b_first or b > b_last:
                return False
            if cur >= 0:
                _emit(out, edge, owner, chunk, edge_base, b_first, cur, 1, plane, acc, 2, cur & 1, True)
                done = cur + 1
                if b > cur + 1:
                    _emit(out, edge, owner, chunk, edge_base, b_first, cur + 1, 1, plane, acc, 2, (cur + 1) & 1, True)
                    done = cur + 2
            _emit_zeros(out, edge, owner, chunk, edge_base, b_first, done, b, plane)
            done = b
            cur = b
            s0 = b & 1
            s1 = 1 - s0
        pol = np.float32(2 * np.int64(p[i] > 0) - 1)
        w1 = pol * np.float32(ts - b)
        j = 2 * (yi * width + xi)
        acc[j + s0] += pol - w1
        acc[j + s1] += w1  # spill of the last bin (b = B-1) stays in acc: w1 = 0 there for t <= tN
    if cur >= 0:
        _emit(out, edge, owner, chunk, edge_base, b_first, cur, 1, plane, acc, 2, cur & 1, False)
        done = cur + 1
        if cur + 1 <= q_last:
            _emit(out, edge, owner, chunk, edge_base, b_first, cur + 1, 1, plane, acc, 2, (cur + 1) & 1, False)
            done = cur + 2
    _emit_zeros(out, edge, owner, chunk, edge_base, b_first, done, q_last + 1, plane)
    return True


@njit(cache=True, nogil=True)
def _bins_chunk(out, edge, owner, chunk, edge_base, acc, x, y, t, p, first_index, mode, num_bins, channels, width,
                height, t0, t_end, idiv, b_first, b_last):
    """Histogram / SBT / SBN / frames of sorted events (one chunk's slices of the columns, the first
    being event ``first_index`` of the window) whose bins lie in [b_first, b_last]:
    writes planes ``b*C + c`` of those bins, each exactly once; False if the events are not sorted.

    The current bin accumulates in ``acc`` with its C channels interleaved per pixel (OFF/ON counts
    in one cache line) and is written out when the bin changes.
    """
    plane = height * width
    span = t_end - t0
    inv = _reciprocal(mode, t0, t_end, idiv)
    counts = channels == 2
    by_number = mode == MODE_NUMBER_POLARITY or mode == MODE_NUMBER_COUNT
    q_first = b_first * channels
    cur = -1
    done = b_first  # bins b_first..done-1 are written
    run_lo = np.int64(1)  # events whose key lies in [run_lo, run_hi) fall in bin cur (empty at the start)
    run_hi = np.int64(0)
    n = len(x)
    for i in range(n):
        k = i + PREFETCH_DISTANCE
        if k < n:
            _prefetch_write(acc, channels * (np.int64(y[k]) * width + np.int64(x[k])))
        xi = np.int64(x[i])
        yi = np.int64(y[i])
        if xi < 0 or xi >= width or yi < 0 or yi >= height:
            continue
        key = first_index + i if by_number else t[i]
        if run_lo <= key < run_hi:  # sorted events: the bin formula runs once per bin, not per event
            b = cur
        else:
            b = _event_bin(mode, first_index + i, t[i], t0, t_end, span, num_bins, idiv, inv)
            if b < 0:
                continue
            run_lo, run_hi = _bin_keys(mode, b, num_bins, t0, t_end, idiv)
        if b != cur:
            if b < cur or b < b_first or b > b_last:
                return False
            if cur >= 0:
                _emit(out, edge, owner, chunk, edge_base, q_first, cur * channels, channels, plane, acc, channels, 0,
                      True)
                done = cur + 1
            _emit_zeros(out, edge, owner, chunk, edge_base, q_first, done * channels, b * channels, plane)
            done = b
            cur = b
        on = np.int64(p[i] > 0)
        if counts:
            acc[2 * (yi * width + xi) + on] += np.float32(1.0)
        else:
            acc[yi * width + xi] += np.float32(2 * on - 1)
    if cur >= 0:
        _emit(out, edge, owner, chunk, edge_base, q_first, cur * channels, channels, plane, acc, channels, 0, False)
        done = cur + 1
    _emit_zeros(out, edge, owner, chunk, edge_base, q_first, done * channels, (b_last + 1) * channels, plane)
    return True


@njit(cache=True, nogil=True)
def _chunk_layout(t, mode, num_bins, channels, t0, t_end, ft_scale, idiv, num_chunks):
    """Cut the events into ``num_chunks`` contiguous chunks and work out which planes each may write.

    Returns ``bounds`` [k+1] (event index of each chunk start), ``bins`` [k, 2] (first/last bin),
    ``planes`` [k, 2] (first/last output plane), ``owner`` [Q] (the first chunk touching each plane,
    -1 if none) and ``edge_base`` [k+1] (each chunk's first slot in the edge buffer; a chunk needs slots
    up to its last plane it does not own).
    """
    n = len(t)
    k = max(1, min(num_chunks, n))
    bounds = np.empty(k + 1, dtype=np.int64)
    for c in range(k + 1):
        bounds[c] = (n * c) // k
    bins = np.zeros((k, 2), dtype=np.int64)
    planes = np.zeros((k, 2), dtype=np.int64)
    owner = np.full(num_bins * channels, -1, dtype=np.int64)
    edge_base = np.zeros(k + 1, dtype=np.int64)
    for c in range(k):
        lo = bounds[c]
        hi = bounds[c + 1]
        if hi > lo:
            bins[c, 0] = _clamped_bin(mode, lo, t[lo], num_bins, t0, t_end, ft_scale, idiv)
            bins[c, 1] = max(bins[c, 0], _clamped_bin(mode, hi - 1, t[hi - 1], num_bins, t0, t_end, ft_scale,
                                                      idiv))
        if mode == MODE_VOXEL:
            planes[c, 0] = bins[c, 0]
            planes[c, 1] = min(bins[c, 1] + 1, num_bins - 1)
        else:
            planes[c, 0] = bins[c, 0] * channels
            planes[c, 1] = bins[c, 1] * channels + channels - 1
        used = 0
        if hi > lo:
            for q in range(planes[c, 0], planes[c, 1] + 1):
                if owner[q] < 0:
                    owner[q] = c
                else:
                    used = q - planes[c, 0] + 1
        edge_base[c + 1] = edge_base[c] + used
    return bounds, bins, planes, owner, edge_base


@njit(cache=True, nogil=True)
def _run_chunk(c, out, edge, layout, x, y, t, p, mode, num_bins, channels, width, height, t0, t_end,
               ft_scale, idiv):
    """Scatter chunk ``c`` of ``layout`` (see :func:`_chunk_layout`); False if its events are unsorted."""
    bounds, bins, planes, owner, edge_base = layout
    lo = bounds[c]
    hi = bounds[c + 1]
    if hi <= lo:
        return True
    slots = 2 if mode == MODE_VOXEL else channels
    acc = np.zeros(slots * height * width, dtype=np.float32)
    # slices, not an index range: a loop from 0 lets LLVM drop numba's negative-index wraparound on
    # every access (measured 15-20% of the loop)
    xs, ys, ts, ps = x[lo:hi], y[lo:hi], t[lo:hi], p[lo:hi]
    if mode == MODE_VOXEL:
        return _voxel_chunk(out, edge, owner, c, edge_base[c], acc, xs, ys, ts, ps, num_bins, width, height,
                            t0, ft_scale, bins[c, 0], bins[c, 1])
    return _bins_chunk(out, edge, owner, c, edge_base[c], acc, xs, ys, ts, ps, lo, mode, num_bins, channels,
                       width, height, t0, t_end, idiv, bins[c, 0], bins[c, 1])


@njit(cache=True, nogil=True)
def _merge_planes(out, edge, layout, plane, a, e):
    """Cells ``a..e-1`` of every plane no chunk wrote: zeros; of every shared plane: add the edge slots
    of the chunks other than its owner."""
    bounds, bins, planes, owner, edge_base = layout
    for q in range(len(owner)):
        dst = out[q * plane + a:q * plane + e]
        if owner[q] < 0:
            dst[:] = 0.0
            continue
        for c in range(len(bounds) - 1):
            if c == owner[q] or bounds[c + 1] <= bounds[c] or q < planes[c, 0] or q > planes[c, 1]:
                continue
            at = (edge_base[c] + q - planes[c, 0]) * plane
            src = edge[at + a:at + e]
            for j in range(e - a):
                dst[j] += src[j]


@njit(cache=True, nogil=True)
def _direct_grid(x, y, t, p, mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv):
    """New float32 [B, C, H, W] grid from :func:`_scatter_direct` (sparse windows, unsorted input)."""
    out = np.zeros(num_bins * channels * height * width, dtype=np.float32)
    _scatter_direct(out, x, y, t, p, mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv)
    return out.reshape((num_bins, channels, height, width))


@njit(cache=True, nogil=True)
def scatter(x, y, t, p, mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv):
    """Single-thread scatter of all events -> new float32 [B, C, H, W].

    Dense windows (>= ``PAIR_MIN_EVENTS_PER_CELL`` events per cell) go through the bin accumulator,
    writing each plane once; sparse windows and unsorted input add straight into a zeroed grid.
    """
    cells = num_bins * channels * height * width
    if len(x) < PAIR_MIN_EVENTS_PER_CELL * cells:
        return _direct_grid(x, y, t, p, mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv)
    layout = _chunk_layout(t, mode, num_bins, channels, t0, t_end, ft_scale, idiv, 1)
    out = np.empty(cells, dtype=np.float32)
    edge = np.empty(0, dtype=np.float32)
    if not _run_chunk(0, out, edge, layout, x, y, t, p, mode, num_bins, channels, width, height, t0, t_end,
                      ft_scale, idiv):
        return _direct_grid(x, y, t, p, mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv)
    _merge_planes(out, edge, layout, height * width, 0, height * width)
    return out.reshape((num_bins, channels, height, width))


@njit(cache=True, parallel=True)
def scatter_parallel(x, y, t, p, mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv, num_chunks):
    """Multi-core scatter: the sorted events are cut into ``num_chunks`` contiguous chunks, which are
    contiguous time ranges, so each chunk writes its own planes of the grid. A plane of the bin a chunk
    boundary falls in is written into the grid by its owner (the first chunk touching it) and into an
    edge buffer by the other chunk; the edge buffers are added after the join. No two threads ever
    write the same memory. Unsorted input falls back to the single-thread direct scatter.
    """
    plane = height * width
    cells = num_bins * channels * plane
    layout = _chunk_layout(t, mode, num_bins, channels, t0, t_end, ft_scale, idiv, num_chunks)
    k = len(layout[0]) - 1
    out = np.empty(cells, dtype=np.float32)
    edge = np.empty(layout[4][k] * plane, dtype=np.float32)
    ok = np.ones(k, dtype=np.bool_)
    for c in prange(k):
        ok[c] = _run_chunk(c, out, edge, layout, x, y, t, p, mode, num_bins, channels, width, height, t0, t_end,
                           ft_scale, idiv)
    if not ok.all():
        return _direct_grid(x, y, t, p, mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv)
    step = 16384
    for blk in prange((plane + step - 1) // step):
        _merge_planes(out, edge, layout, plane, blk * step, min(plane, (blk + 1) * step))
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
    """exp(-(t_ref - t_last)/tau) per polarity -> new float32 [2, H, W].

    0 where no event; events after t_ref are ignored.
    """
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
