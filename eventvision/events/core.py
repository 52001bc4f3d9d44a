"""The event array contract.

An event array is a numpy structured array with dtype :data:`EVENT_DTYPE`:

* ``x``, ``y`` (uint16): pixel column/row, 0-based, ``x < width``, ``y < height``;
* ``t`` (int64): timestamp in microseconds;
* ``p`` (int8): polarity, **always -1 (OFF) or +1 (ON)** inside eventvision.

Readers convert explicitly from the file's convention with :func:`signed_polarity` (0/1 and bool
inputs map 0/False -> -1, 1/True -> +1; never ``p[p == 0] = -1`` on a bool array). Arrays are sorted
by ``t``. Sensor size and ``t_offset`` (µs to add to ``t`` for the image/label clock, as in DSEC)
travel beside the array in :class:`EventMeta`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eventvision.errors import UserError

EVENT_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "i1")])


@dataclass(frozen=True)
class EventMeta:
    """Sensor geometry and clock of an event stream (width/height in pixels, t_offset in µs)."""

    width: int
    height: int
    t_offset: int = 0


def signed_polarity(p: np.ndarray) -> np.ndarray:
    """Return polarities as int8 in {-1, +1}. Accepts bool, {0, 1} or {-1, +1} (anything > 0 is ON)."""
    p = np.asarray(p)
    return np.where(p > 0, np.int8(1), np.int8(-1)).astype(np.int8, copy=False)


def make_events(x, y, t, p) -> np.ndarray:
    """Build an :data:`EVENT_DTYPE` array from columns (polarity converted by :func:`signed_polarity`)."""
    x = np.asarray(x)
    n = len(x)
    events = np.empty(n, dtype=EVENT_DTYPE)
    events["x"] = x
    events["y"] = np.asarray(y)
    events["t"] = np.asarray(t)
    events["p"] = signed_polarity(p)
    return events


def empty_events() -> np.ndarray:
    return np.empty(0, dtype=EVENT_DTYPE)


def is_sorted(t: np.ndarray) -> bool:
    return bool(len(t) < 2 or np.all(t[1:] >= t[:-1]))


def check_events(events: np.ndarray, meta: EventMeta | None = None, *, source: str = "events") -> np.ndarray:
    """Validate an event array: dtype fields, time order, coordinates inside the sensor.

    Raises :class:`UserError` naming ``source`` (usually the file) on the first problem found.
    """
    if events.dtype.names is None or not {"x", "y", "t", "p"} <= set(events.dtype.names):
        raise UserError(f"{source}: expected a structured event array with fields x, y, t, p; got dtype {events.dtype}")
    if not is_sorted(events["t"]):
        bad = int(np.argmax(events["t"][1:] < events["t"][:-1])) + 1
        raise UserError(f"{source}: timestamps are not monotonic (event {bad} at t={int(events['t'][bad])} µs comes "
                        f"after t={int(events['t'][bad - 1])} µs); sort the events by time first")
    if meta is not None and len(events):
        xmax, ymax = int(events["x"].max()), int(events["y"].max())
        if xmax >= meta.width or ymax >= meta.height:
            raise UserError(f"{source}: event coordinates ({xmax}, {ymax}) lie outside the {meta.width}x{meta.height} "
                            f"sensor; check the sensor size (width/height) of the recording")
    return events


def slice_time(events: np.ndarray, t_start: int, t_end: int) -> np.ndarray:
    """Events with ``t_start <= t < t_end`` (µs) of a time-sorted array, as a view."""
    t = events["t"]
    i0, i1 = np.searchsorted(t, [t_start, t_end], side="left")
    return events[i0:i1]


def slice_count(events: np.ndarray, start: int, count: int) -> np.ndarray:
    """``count`` events starting at index ``start`` (a view)."""
    return events[start:start + count]


def compute_ms_to_idx(t: np.ndarray, t_first_ms: int = 0) -> np.ndarray:
    """DSEC-style index: ``idx[ms]`` = first event with ``t >= ms*1000``, for ms in [0, ceil(t_last/1000)].

    Satisfies ``t[idx[ms]] >= ms*1000 > t[idx[ms]-1]``. ``t`` must be sorted, µs, relative to t_offset.
    """
    if len(t) == 0:
        return np.zeros(1, dtype=np.uint64)
    n_ms = int(t[-1] // 1000) + 2
    ms = np.arange(t_first_ms, n_ms, dtype=np.int64) * 1000
    return np.searchsorted(t, ms, side="left").astype(np.uint64)


def merge_events(*arrays: np.ndarray) -> np.ndarray:
    """Merge time-sorted event arrays into one time-sorted array (stable for equal timestamps)."""
    if not arrays:
        return empty_events()
    merged = np.concatenate([np.asarray(a, dtype=EVENT_DTYPE) for a in arrays])
    return merged[np.argsort(merged["t"], kind="stable")]
