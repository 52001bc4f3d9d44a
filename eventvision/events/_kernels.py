"""numba kernels shared by the readers."""

from __future__ import annotations

import numba
import numpy as np

from eventvision.errors import FileFormatError
from eventvision.events.core import EVENT_DTYPE, MAX_ABS_TIME_US

_T_LIMIT = float(MAX_ABS_TIME_US)


@numba.njit(cache=True)
def _pack_kernel(x, y, t, p, out):
    """Pack columns into ``out``; returns the index of the first event whose values do not fit (else -1).

    Comparisons are written so NaN fails them: a NaN or negative coordinate never becomes 0 or 65531.
    """
    for i in range(x.shape[0]):
        xi, yi, ti, pi = x[i], y[i], t[i], p[i]
        if not (xi >= 0 and xi <= 65535 and yi >= 0 and yi <= 65535):
            return i
        if not (ti > -_T_LIMIT and ti < _T_LIMIT) or pi != pi:
            return i
        out[i].x = xi
        out[i].y = yi
        out[i].t = ti
        out[i].p = 1 if pi > 0 else -1
    return -1


def pack_events(x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray, *, source=None,
                first_index: int = 0) -> np.ndarray:
    """EVENT_DTYPE array from columns (t in µs, any p convention: > 0 is ON). ~15x faster than field
    assignment, which writes each strided field in a separate pass.

    Values that do not fit the event contract (NaN/inf, negative or > 65535 coordinates, |t| >= 2**62 µs)
    raise :class:`FileFormatError` naming ``source`` (the file) and the event index (``first_index`` +
    position), instead of wrapping or becoming 0.
    """
    out = np.empty(len(x), dtype=EVENT_DTYPE)
    if len(x):
        bad = _pack_kernel(np.ascontiguousarray(x), np.ascontiguousarray(y), np.ascontiguousarray(t),
                           np.ascontiguousarray(p), out)
        if bad >= 0:
            where = source if source is not None else "events"
            vals = ", ".join(f"{k}={np.asarray(c[bad]).item()!r}" for k, c in zip("xytp", (x, y, t, p)))
            raise FileFormatError(f"{where}: event {first_index + bad} has {vals}; coordinates must be "
                                  "integers in 0..65535 and t, p finite; the file is corrupt", path=None)
    return out


@numba.njit(cache=True)
def _scan_kernel(events, last_t):
    """One pass over EVENT_DTYPE records: (index of the first t going back or -1, max x, max y)."""
    bad = -1
    prev = last_t
    xmax = -1
    ymax = -1
    for i in range(events.shape[0]):
        t = events[i].t
        if t < prev and bad < 0:
            bad = i
        prev = t
        x = np.int64(events[i].x)
        y = np.int64(events[i].y)
        if x > xmax:
            xmax = x
        if y > ymax:
            ymax = y
    return bad, xmax, ymax


def scan_events(events: np.ndarray, last_t: int | None = None) -> tuple[int, int, int]:
    """``(first non-monotonic index or -1, max x, max y)`` of an EVENT_DTYPE array in one pass
    (``last_t``: timestamp of the previous chunk's last event, µs)."""
    if len(events) == 0:
        return -1, -1, -1
    lo = np.iinfo(np.int64).min if last_t is None else int(last_t)
    bad, xmax, ymax = _scan_kernel(events, lo)
    return int(bad), int(xmax), int(ymax)


def fast_check_chunk(stream, chunk: np.ndarray, last_t: int | None) -> int:
    """Drop-in ``EventStream._check_chunk`` for the decoding readers: the time-order and sensor-bounds
    checks in one numba pass (four numpy passes otherwise, as slow as decoding itself); a failing
    chunk is handed to the shared check, which raises its message."""
    bad, xmax, ymax = scan_events(chunk, last_t)
    if bad >= 0 or (not stream.size_inferred and (xmax >= stream.meta.width or ymax >= stream.meta.height)):
        from eventvision.events.recording import EventStream
        return EventStream._check_chunk(stream, chunk, last_t)
    return int(chunk["t"][-1])
