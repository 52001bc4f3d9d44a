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
            raise FileFormatError(f"{where}: event {first_index + bad} has {vals}; coordinates must be integers in "
                                  "0..65535 and t, p finite; the file is corrupt", path=None)
    return out
