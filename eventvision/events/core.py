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

import numbers
from dataclasses import dataclass

import numpy as np

from eventvision.errors import FileFormatError, InvalidValueError

EVENT_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "i1")])


@dataclass(frozen=True)
class EventMeta:
    """Sensor geometry and clock of an event stream (width/height in pixels, t_offset in µs)."""

    width: int
    height: int
    t_offset: int = 0


#: largest sensor side: coordinates are stored as uint16
MAX_SENSOR_SIDE = 1 << 16
#: largest |t| or |t_offset| accepted from a file, µs (about 146 000 years; leaves int64 headroom for sums)
MAX_ABS_TIME_US = 1 << 62
#: bounds of the text header of a binary event file (Prophesee ``%``, AEDAT ``#`` lines): a file that starts
#: like a header but never ends its line is never read whole
MAX_HEADER_LINE_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024


def header_line(fh, *, path, header_bytes: int, kind: str) -> bytes:
    """The next line of a binary file's text header, line end included (``b""`` at end of file), read in
    bounded memory from ``fh`` (binary, positioned at the line). :class:`FileFormatError` naming ``path``
    when the line is longer than :data:`MAX_HEADER_LINE_BYTES` or the header (``header_bytes`` read so
    far, this line included) longer than :data:`MAX_HEADER_BYTES`; ``kind`` names the format."""
    line = fh.readline(MAX_HEADER_LINE_BYTES)
    if len(line) >= MAX_HEADER_LINE_BYTES and not line.endswith(b"\n"):
        raise FileFormatError(f"{path}: header line at byte {header_bytes} is longer than "
                              f"{MAX_HEADER_LINE_BYTES} bytes; not a {kind} header (the file is corrupt)",
                              path=str(path))
    if header_bytes + len(line) > MAX_HEADER_BYTES:
        raise FileFormatError(f"{path}: header longer than {MAX_HEADER_BYTES} bytes; not a {kind} header "
                              "(the file is corrupt)", path=str(path))
    return line


def file_int(value, *, source, field: str, low: int | None = None, high: int | None = None) -> int:
    """One integer read from a file (an attribute, header entry, npz member), checked where it is read.

    Accepts a Python/numpy integer, an integral float or a one-element array of those; refuses text, bytes,
    bool, NaN/inf, arrays of other sizes and values outside ``[low, high]`` with a
    :class:`~eventvision.errors.FileFormatError` naming ``source`` (the file) and ``field``.
    """
    raw = value
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise FileFormatError(f"{source}: field '{field}' holds an array of shape {value.shape}; "
                                  "expected one integer; the file is malformed", path=str(source))
        value = value.reshape(-1)[0]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        shown = repr(raw)[:40]
        raise FileFormatError(f"{source}: field '{field}' is {shown} ({type(raw).__name__}); expected an "
                              "integer; the file is malformed", path=str(source))
    if not np.isfinite(value) or float(value) != np.floor(float(value)):
        raise FileFormatError(f"{source}: field '{field}' is {value!r}; expected a finite integer; the "
                              "file is malformed", path=str(source))
    out = int(value)
    if (low is not None and out < low) or (high is not None and out > high):
        rng = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        raise FileFormatError(f"{source}: field '{field}' is {out}, outside {rng}; the file is malformed",
                              path=str(source))
    return out


def file_float(value, *, source, field: str, low: float | None = None, positive: bool = False) -> float:
    """One finite real number read from a file (see :func:`file_int`); ``positive`` requires > 0."""
    raw = value
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise FileFormatError(f"{source}: field '{field}' is {repr(raw)[:40]}; expected a finite number; "
                              "the file is malformed", path=str(source))
    if (positive and value <= 0) or (low is not None and value < low):
        raise FileFormatError(f"{source}: field '{field}' is {float(value)!r}; expected a value "
                              f"{'> 0' if positive else f'>= {low}'}; the file is "
                              "malformed", path=str(source))
    return float(value)


def file_meta(width, height, t_offset=0, *, source, prefix: str = "") -> EventMeta:
    """:class:`EventMeta` from values read from a file: width/height in 1..65536, |t_offset| < 2**62 µs."""
    return EventMeta(file_int(width, source=source, field=f"{prefix}width", low=1, high=MAX_SENSOR_SIDE),
                     file_int(height, source=source, field=f"{prefix}height", low=1, high=MAX_SENSOR_SIDE),
                     file_int(t_offset, source=source, field=f"{prefix}t_offset", low=-MAX_ABS_TIME_US,
                              high=MAX_ABS_TIME_US))


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

    Raises :class:`~eventvision.errors.InvalidValueError` naming ``source`` on the first problem found.
    """
    if events.dtype.names is None or not {"x", "y", "t", "p"} <= set(events.dtype.names):
        raise InvalidValueError(f"{source}: expected a structured event array with fields x, y, t, p; got "
                                f"dtype {events.dtype}")
    if not is_sorted(events["t"]):
        bad = int(np.argmax(events["t"][1:] < events["t"][:-1])) + 1
        raise InvalidValueError(f"{source}: timestamps are not monotonic (event {bad} at "
                                f"t={int(events['t'][bad])} µs comes "
                                f"after t={int(events['t'][bad - 1])} µs); sort the events by time first")
    if meta is not None and len(events):
        xmax, ymax = int(events["x"].max()), int(events["y"].max())
        if xmax >= meta.width or ymax >= meta.height:
            raise InvalidValueError(f"{source}: event coordinates ({xmax}, {ymax}) lie outside the "
                                    f"{meta.width}x{meta.height} "
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
