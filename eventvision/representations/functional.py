"""Event representations: numpy in, numpy out (float32), computed by pure numba kernels.

Input: an event array with fields ``x``, ``y``, ``t`` (µs, sorted), ``p`` (see
:mod:`eventvision.events.core`). Polarity may be {-1, +1}, {0, 1} or bool: ``p > 0`` is ON.
Events outside ``width`` x ``height`` are ignored. The caller's arrays are never modified.

Conventions shared by all functions:

* an empty event array gives an all-zero result of the documented shape;
* "time bins" of :func:`histogram` and :func:`stack_by_time` split the closed interval
  ``[t_start, t_end]`` (default: first and last event) into ``B`` equal parts,
  ``b = floor(B (t - t_start) / (t_end - t_start))`` in exact integer arithmetic, an event at
  ``t_end`` counted in the last bin, events outside the interval dropped; if ``t_end == t_start``
  (e.g. one event) every event lands in bin 0;
* the voxel grid uses ``t* = (B-1)(t - t0)/(t_N - t0)`` over the first/last event; if
  ``t_N == t0`` every event has ``t* = 0`` (bin 0, weight 1);
* per-polarity channels are ordered ``[OFF, ON]`` (channel 1 is ON, as in SpikingJelly/tonic with
  {0, 1} polarity).

Large inputs run on all numba threads (one contiguous, i.e. time-ordered, chunk of events per thread,
each writing its own planes of the grid; no races); see :data:`PARALLEL_MIN_EVENTS` and
:func:`use_parallel`. ``parallel=True/False`` forces a variant.
"""

from __future__ import annotations

import os

import numpy as np

from eventvision.errors import InvalidValueError
from eventvision.representations import _kernels as K

#: below this many events the single-thread kernel wins (waking the threads outweighs the split);
#: measured with benchmarks/bench_voxel.py: at 640x480x5 parallel loses at 30k events, wins 1.3x at 100k
PARALLEL_MIN_EVENTS = 100_000
#: ...and the window must be dense enough for the bin accumulator (sparser windows scatter directly,
#: on one thread)
PARALLEL_MIN_EVENTS_PER_CELL = K.PAIR_MIN_EVENTS_PER_CELL


def _validate(events) -> None:
    names = getattr(getattr(events, "dtype", None), "names", None)
    if names is None or not {"x", "y", "t", "p"} <= set(names):
        raise InvalidValueError(f"events: expected a structured array with fields x, y, t, p; got "
                                f"{getattr(events, 'dtype', type(events))}; build one with "
                                f"eventvision.events.core.make_events")


def _columns(events: np.ndarray):
    _validate(events)
    p = events["p"]
    if p.dtype == np.bool_:
        p = p.view(np.uint8)  # same bytes, numba-friendly; still read-only use
    t = events["t"]
    if t.dtype != np.int64:
        t = t.astype(np.int64)
    return events["x"], events["y"], t, p


def _check_size(width: int, height: int, num_bins: int | None = None) -> None:
    if int(width) <= 0 or int(height) <= 0:
        raise InvalidValueError(f"representation: width and height must be positive, got {width}x{height}")
    if num_bins is not None and int(num_bins) <= 0:
        raise InvalidValueError(f"representation: num_bins must be >= 1, got {num_bins}")


def use_parallel(num_events: int, num_cells: int, parallel: bool | None = None, *, ignore_load: bool = False) -> bool:
    """Whether the multi-core kernel should be used for ``num_events`` events into ``num_cells`` output cells.

    Besides the size thresholds, the 1-minute load average must leave a core free: on an
    oversubscribed machine the threads wait for each other at the join and the parallel kernel was
    measured 2-3x *slower* than one thread (results are the same either way, up to float summation order).
    """
    if parallel is not None:
        return bool(parallel)
    from numba import get_num_threads
    threads = get_num_threads()
    if threads < 2 or num_events < PARALLEL_MIN_EVENTS or num_events < PARALLEL_MIN_EVENTS_PER_CELL * num_cells:
        return False
    if not ignore_load and hasattr(os, "getloadavg"):
        if os.getloadavg()[0] > (os.cpu_count() or threads) - 0.5:
            return False
    return True


def _scatter(events, mode, num_bins, channels, width, height, t0, t_end, ft_scale, idiv, parallel):
    _check_size(width, height, num_bins)
    x, y, t, p = _columns(events)
    args = (x, y, t, p, int(mode), int(num_bins), int(channels), int(width), int(height),
            np.int64(t0), np.int64(t_end), float(ft_scale), np.int64(idiv))
    if use_parallel(len(x), num_bins * channels * width * height, parallel):
        from numba import get_num_threads
        return K.scatter_parallel(*args, get_num_threads())
    return K.scatter(*args)


def voxel_grid(events: np.ndarray, *, num_bins: int, width: int, height: int, normalize: bool = False,
               parallel: bool | None = None) -> np.ndarray:
    """E2VID voxel grid, float32 [B, H, W].

    ``t* = (B-1)(t - t0)/(t_N - t0)``, ``V(x, y, b) += p * max(0, 1 - |b - t*|)`` with p in {-1, +1}.
    ``normalize``: (v - mean)/std over the non-zero cells (zeros stay zero).
    """
    _validate(events)
    n = len(events)
    t = events["t"]
    t0 = int(t[0]) if n else 0
    tn = int(t[-1]) if n else 0
    scale = (num_bins - 1) / (tn - t0) if tn > t0 else 0.0
    out = _scatter(events, K.MODE_VOXEL, num_bins, 1, width, height, t0, tn, scale, 0, parallel)
    out = out.reshape(num_bins, height, width)
    if normalize:
        K.normalize_nonzero(out)
    return out


def _time_range(events, t_start, t_end):
    _validate(events)
    n = len(events)
    t0 = int(events["t"][0]) if (t_start is None and n) else int(t_start or 0)
    t1 = int(events["t"][-1]) if (t_end is None and n) else int(t_end if t_end is not None else t0)
    if t1 < t0:
        raise InvalidValueError(f"representation: t_end ({t1} µs) is before t_start ({t0} µs)")
    return t0, t1


def histogram(events: np.ndarray, *, width: int, height: int, num_bins: int = 1, t_start: int | None = None,
              t_end: int | None = None, parallel: bool | None = None) -> np.ndarray:
    """Per-polarity event counts, float32 [B, 2, H, W] (channel 0 OFF, 1 ON), B equal time bins."""
    t0, t1 = _time_range(events, t_start, t_end)
    return _scatter(events, K.MODE_TIME_COUNT, num_bins, 2, width, height, t0, t1, 0.0, 0, parallel)


def stack_by_time(events: np.ndarray, *, num_bins: int, width: int, height: int, t_start: int | None = None,
                  t_end: int | None = None, sign: bool = False, parallel: bool | None = None) -> np.ndarray:
    """Stacking by time (SBT), float32 [B, H, W]: per equal-time bin, the sum of polarities (±1) per pixel.

    ``sign=True`` keeps only the sign of each sum (-1, 0, +1), the SpikeDHS/DTC input
    (5 bins of 10 ms over a 50 ms window: ``t_start=w0, t_end=w0 + 50_000``).
    """
    t0, t1 = _time_range(events, t_start, t_end)
    out = _scatter(events, K.MODE_TIME_POLARITY, num_bins, 1, width, height, t0, t1, 0.0, 0, parallel)
    out = out.reshape(num_bins, height, width)
    return K.sign_inplace(out) if sign else out


def stack_by_number(events: np.ndarray, *, num_bins: int, width: int, height: int, sign: bool = False,
                    parallel: bool | None = None) -> np.ndarray:
    """Stacking by number (SBN), float32 [B, H, W]: bins of equal event count, sum (or sign of sum) of polarity.

    Bin ``b`` holds events ``[b*(N//B), (b+1)*(N//B))``, the last bin also the remainder (the
    SpikingJelly ``split_by='number'`` arithmetic); with ``N < B`` all events fall in the last bin.
    """
    _validate(events)
    n = len(events)
    out = _scatter(events, K.MODE_NUMBER_POLARITY, num_bins, 1, width, height, 0, 0, 0.0, n // num_bins,
                   parallel).reshape(num_bins, height, width)
    return K.sign_inplace(out) if sign else out


def to_frames(events: np.ndarray, *, num_frames: int, width: int, height: int, split_by: str = "number",
              parallel: bool | None = None) -> np.ndarray:
    """T frames of per-polarity counts for SNN time steps, float32 [T, 2, H, W] (channel 1 = ON).

    Same segment arithmetic as SpikingJelly's ``integrate_events_by_fixed_frames_number``:
    ``split_by='number'``: frame j holds events ``[j*(N//T), (j+1)*(N//T))``, the last frame up to N;
    ``split_by='time'``: ``dt = (t_N-1 - t_0) // T`` (integer µs), frame j holds ``t0 + j dt <= t < t0 + (j+1) dt``,
    the last frame everything from ``t0 + (T-1) dt`` on. Where SpikingJelly fails (an empty segment, or
    ``dt == 0``) the frame is empty here (with ``dt == 0`` all events go to the last frame).
    Note SpikingJelly puts every ``p != 0`` in channel 1; here ``p > 0`` is ON, so ±1 polarity works.
    """
    _validate(events)
    n = len(events)
    if split_by == "number":
        return _scatter(events, K.MODE_NUMBER_COUNT, num_frames, 2, width, height, 0, 0, 0.0, n // num_frames,
                        parallel)
    if split_by == "time":
        t0 = int(events["t"][0]) if n else 0
        dt = (int(events["t"][-1]) - t0) // num_frames if n else 0
        return _scatter(events, K.MODE_FLOORTIME_COUNT, num_frames, 2, width, height, t0, 0, 0.0, dt, parallel)
    raise InvalidValueError(f"to_frames: split_by must be 'number' or 'time', got {split_by!r}")


def time_surface(events: np.ndarray, *, width: int, height: int, tau_us: float, t_ref: int | None = None) -> np.ndarray:
    """Time surface per polarity, float32 [2, H, W]: ``exp(-(t_ref - t_last)/tau)`` (0 where no event).

    ``t_ref`` defaults to the last event's time; events after ``t_ref`` are ignored.
    """
    _check_size(width, height)
    if not tau_us > 0:
        raise InvalidValueError(f"time_surface: tau_us must be > 0, got {tau_us}")
    x, y, t, p = _columns(events)
    if t_ref is None:
        t_ref = int(t[-1]) if len(t) else 0
    return K.time_surface(x, y, t, p, int(width), int(height), np.int64(t_ref), float(tau_us))


def rectify(events: np.ndarray, rectify_map: np.ndarray) -> np.ndarray:
    """Events moved through a DSEC ``rectify_map`` [H, W, 2] (``map[y, x] = (x', y')``), rounded to the nearest pixel.

    Events whose rectified position falls outside the map's H x W sensor are dropped. Returns a new
    array of the same dtype (the input is not modified).
    """
    rectify_map = np.asarray(rectify_map)
    if rectify_map.ndim != 3 or rectify_map.shape[2] != 2:
        raise InvalidValueError(f"rectify_map: expected shape (H, W, 2), got {rectify_map.shape}; "
                                "use the 'rectify_map' dataset of DSEC's rectify_map.h5")
    x, y, _, _ = _columns(events)
    height, width = rectify_map.shape[:2]
    xr, yr, keep = K.rectify_mask(x, y, rectify_map, int(width), int(height))
    out = events[keep]  # boolean indexing copies
    out["x"] = xr[keep]
    out["y"] = yr[keep]
    return out
