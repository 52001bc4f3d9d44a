"""Recording objects: one API over every event file format, streaming in bounded memory.

A *mono* recording (:class:`EventStream`) is one camera's time-sorted events plus :class:`EventMeta`.
Timestamps are returned in the file's own clock (µs); ``meta.t_offset`` is what to add for the
absolute/label clock (DSEC convention). Two kinds exist:

* :class:`IndexedStream` (h5, npy): random access, ``num_events`` known up front, windows found by
  binary search (or DSEC's ``ms_to_idx``), count slicing via :meth:`IndexedStream.read_range`;
* :class:`SequentialStream` (Prophesee raw/dat, AEDAT 4): decoded front to back in chunks; the totals
  (``num_events``, ``t_end``) need one full pass the first time they are asked for.

Both yield windows ``(t0, t1, events)`` from :meth:`EventStream.iter_windows` while holding at most
one read chunk plus one window in memory. A :class:`StereoRecording` pairs two streams on the left
camera's clock.

Windowing rule, the same from the readers to the demo: a window is the half-open time interval
``[t0, t1)`` (µs); an event at exactly ``t1`` belongs to the next window. :class:`EventWindow` carries
one window's events (both cameras for stereo) to whatever consumes it; :func:`window_slice` cuts it
out of a time-sorted array.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np

from eventvision.errors import FileFormatError, InvalidValueError
from eventvision.events.core import EventMeta, empty_events, slice_time

#: events decoded/read per chunk when streaming (≈ 14 MB of EVENT_DTYPE)
DEFAULT_CHUNK_EVENTS = 1 << 20


@dataclass(frozen=True, eq=False)
class EventWindow:
    """Events of the half-open window ``[t0, t1)`` (µs) of a ``width`` x ``height`` sensor.

    ``events`` are one camera's (the left one for stereo), ``right`` the right camera's events on the same
    clock (None for a mono stream). Both are time-sorted EVENT_DTYPE arrays with ``t0 <= t < t1``.
    """

    t0: int
    t1: int
    events: np.ndarray
    width: int
    height: int
    right: np.ndarray | None = None

    @property
    def duration_us(self) -> int:
        return int(self.t1) - int(self.t0)


def window_slice(events: np.ndarray, t0: int, t1: int) -> np.ndarray:
    """Events of a time-sorted array with ``t0 <= t < t1`` (µs), as a view: the one windowing rule."""
    return slice_time(events, int(t0), int(t1))


class _Closable:
    def close(self) -> None:  # pragma: no cover - overridden where a handle is held
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EventStream(_Closable, ABC):
    """One camera's events. Subclasses set ``path``, ``format``, ``meta`` and implement the chunk iterator."""

    is_stereo = False
    path: Path
    format: str
    meta: EventMeta
    #: True when the file does not record its sensor size and it was inferred from the largest coordinates
    size_inferred: bool = False

    # -- to implement -------------------------------------------------------------------------------
    @abstractmethod
    def _chunks(self, t_start: int | None, chunk_events: int) -> Iterator[np.ndarray]:
        """Consecutive time-sorted EVENT_DTYPE chunks starting at the first event with ``t >= t_start``."""

    @property
    @abstractmethod
    def num_events(self) -> int: ...

    @property
    @abstractmethod
    def t_start(self) -> int:
        """Timestamp of the first event (µs, file clock); 0 for an empty recording."""

    @property
    @abstractmethod
    def t_end(self) -> int:
        """Timestamp of the last event (µs, file clock, inclusive); 0 for an empty recording."""

    # -- shared API ---------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.meta.width

    @property
    def height(self) -> int:
        return self.meta.height

    def iter_chunks(self, chunk_events: int = DEFAULT_CHUNK_EVENTS, t_start: int | None = None) -> Iterator[np.ndarray]:
        """Validated chunks of at most about ``chunk_events`` events, in time order (bounded memory)."""
        last_t = None
        for chunk in self._chunks(t_start, chunk_events):
            if len(chunk) == 0:
                continue
            last_t = self._check_chunk(chunk, last_t)
            yield chunk

    def _check_chunk(self, chunk: np.ndarray, last_t: int | None) -> int:
        t = chunk["t"]
        if (last_t is not None and t[0] < last_t) or (len(t) > 1 and np.any(t[1:] < t[:-1])):
            prev = np.concatenate([[last_t if last_t is not None else t[0]], t])
            bad = int(np.argmax(prev[1:] < prev[:-1]))
            raise FileFormatError(f"{self.path}: timestamps are not monotonic (t={int(prev[bad + 1])} µs "
                                  f"after t={int(prev[bad])} µs); the file is corrupt or unsorted, sort it "
                                  "by time first")
        if not self.size_inferred and (int(chunk["x"].max()) >= self.meta.width or
                                       int(chunk["y"].max()) >= self.meta.height):
            raise FileFormatError(f"{self.path}: event coordinates ({int(chunk['x'].max())}, "
                                  f"{int(chunk['y'].max())}) lie outside the {self.meta.width}x"
                                  f"{self.meta.height} sensor; the file is corrupt or its sensor size is "
                                  "wrong")
        return int(t[-1])

    def read_window(self, t0: int, t1: int) -> np.ndarray:
        """Events with ``t0 <= t < t1`` (µs, file clock)."""
        parts = []
        for chunk in self.iter_chunks(t_start=t0):
            if chunk["t"][-1] < t1:
                parts.append(chunk)
                continue
            parts.append(chunk[:np.searchsorted(chunk["t"], t1, side="left")])
            break
        return np.concatenate(parts) if parts else empty_events()

    def read_all(self) -> np.ndarray:
        """Every event in memory at once (use :meth:`iter_windows` for large files)."""
        parts = list(self.iter_chunks())
        return np.concatenate(parts) if parts else empty_events()

    def iter_windows(self, window_us: int, t_start: int | None = None, t_end: int | None = None, *,
                     chunk_events: int = DEFAULT_CHUNK_EVENTS) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(t0, t1, events)`` for consecutive windows ``[t0, t0 + window_us)``.

        Starts at ``t_start`` (default: first event) and stops once ``t0 >= t_end`` (default: after the
        last event); windows without events yield an empty array. Memory: one read chunk of
        ``chunk_events`` events plus one window.
        """
        window_us = int(window_us)
        if window_us <= 0:
            raise InvalidValueError(f"window length must be positive, got {window_us} µs")
        return _windows(self.iter_chunks(chunk_events, t_start=t_start), window_us,
                        self.t_start if t_start is None else int(t_start), t_end)

    def iter_count_windows(self, count: int, t_start: int | None = None) -> Iterator[np.ndarray]:
        """Yield consecutive slices of exactly ``count`` events (the last one may hold fewer)."""
        count = int(count)
        if count <= 0:
            raise InvalidValueError(f"event count per window must be positive, got {count}")
        pending: list[np.ndarray] = []
        have = 0
        for chunk in self.iter_chunks(max(count, 1 << 16), t_start=t_start):
            while len(chunk):
                take = min(count - have, len(chunk))
                pending.append(chunk[:take])
                have += take
                chunk = chunk[take:]
                if have == count:
                    yield _join(pending)
                    pending, have = [], 0
        if pending:
            yield _join(pending)

    def describe(self) -> dict:
        """Summary used by ``eventvision info`` (forces a full pass for sequential formats)."""
        n, t0, t1 = self.num_events, self.t_start, self.t_end
        dur = max(t1 - t0, 0)
        return {"format": self.format, "width": self.meta.width, "height": self.meta.height,
                "size_inferred": self.size_inferred, "count": n, "t_start_us": t0, "t_end_us": t1,
                "t_offset_us": self.meta.t_offset, "duration_s": dur / 1e6,
                "event_rate_hz": (n / (dur / 1e6)) if dur > 0 else None}


def _windows(chunks: Iterator[np.ndarray], window_us: int, t0: int, t_end: int | None
             ) -> Iterator[tuple[int, int, np.ndarray]]:
    pending: list[np.ndarray] = []
    for chunk in chunks:
        t = np.ascontiguousarray(chunk["t"])  # one copy per chunk; searchsorted on a field view copies each call
        i = int(np.searchsorted(t, t0, side="left")) if t[0] < t0 else 0
        while i < len(t):
            if t_end is not None and t0 >= t_end:
                return
            t1 = t0 + window_us
            limit = t1 if t_end is None else min(t1, t_end)
            j = int(np.searchsorted(t, limit, side="left"))
            if j == len(t):
                pending.append(chunk[i:])
                break
            pending.append(chunk[i:j])
            yield t0, t1, _join(pending)
            pending = []
            i = j
            t0 = t1
    # data exhausted: flush the open window, then empty windows up to t_end
    if pending:
        yield t0, t0 + window_us, _join(pending)
        t0 += window_us
    while t_end is not None and t0 < t_end:
        yield t0, t0 + window_us, empty_events()
        t0 += window_us


def _join(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else empty_events()


class IndexedStream(EventStream):
    """Random-access stream: implement ``num_events``, ``_read_range`` and ``_searchsorted``."""

    @abstractmethod
    def _read_range(self, i0: int, i1: int) -> np.ndarray:
        """Events ``i0 <= i < i1`` as EVENT_DTYPE."""

    @abstractmethod
    def _searchsorted(self, t: int) -> int:
        """Index of the first event with ``t_event >= t``."""

    def read_range(self, start: int, count: int) -> np.ndarray:
        """Event-count slicing: ``count`` events from index ``start``."""
        n = self.num_events
        i0 = min(max(int(start), 0), n)
        events = self._read_range(i0, min(i0 + max(int(count), 0), n))
        if len(events):
            self._check_chunk(events, None)
        return events

    @cached_property
    def t_start(self) -> int:
        return int(self._read_range(0, 1)["t"][0]) if self.num_events else 0

    @cached_property
    def t_end(self) -> int:
        n = self.num_events
        return int(self._read_range(n - 1, n)["t"][0]) if n else 0

    def _chunks(self, t_start, chunk_events):
        i = 0 if t_start is None else self._searchsorted(int(t_start))
        n = self.num_events
        while i < n:
            j = min(i + chunk_events, n)
            yield self._read_range(i, j)
            i = j

    def read_window(self, t0: int, t1: int) -> np.ndarray:
        i0, i1 = self._searchsorted(int(t0)), self._searchsorted(int(t1))
        i1 = max(i0, i1)
        # read one neighbour each side: the binary search is only right if the file is sorted there, and a
        # time going back would otherwise drop events silently from consecutive windows
        lo, hi = max(i0 - 1, 0), min(i1 + 1, self.num_events)
        events = self._read_range(lo, hi)
        if len(events):
            self._check_chunk(events, None)
            inside = events[i0 - lo:len(events) - (hi - i1)]
            if (i0 > lo and events["t"][0] >= t0) or (hi > i1 and events["t"][-1] < t1) or \
                    (len(inside) and (inside["t"][0] < t0 or inside["t"][-1] >= t1)):
                raise FileFormatError(f"{self.path}: timestamps are not monotonic around "
                                      f"t={int(t0)}..{int(t1)} µs; the file is corrupt or unsorted, sort it "
                                      "by time first")
            events = inside
        return events


def bisect_left(get_t, n: int, t: int, lo: int = 0, hi: int | None = None, block: int = 4096) -> int:
    """First index in ``[lo, hi)`` with ``get_t(i) >= t`` for a sorted column read by ``get_t(slice)``.

    Bisects with single-element reads down to ``block`` elements, then reads that block once.
    """
    hi = n if hi is None else hi
    while hi - lo > block:
        mid = (lo + hi) // 2
        if int(get_t(slice(mid, mid + 1))[0]) < t:
            lo = mid + 1
        else:
            hi = mid
    if hi <= lo:
        return lo
    return lo + int(np.searchsorted(np.asarray(get_t(slice(lo, hi))), t, side="left"))


def _coalesce(chunks: Iterator[np.ndarray], min_events: int) -> Iterator[np.ndarray]:
    """Join small decoder packets (AEDAT packets hold a few thousand events) into chunks of >= min_events."""
    pending, n = [], 0
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        pending.append(chunk)
        n += len(chunk)
        if n >= min_events:
            yield _join(pending)
            pending, n = [], 0
    if pending:
        yield _join(pending)


class SequentialStream(EventStream):
    """Front-to-back decoded stream: implement ``_decode_chunks(chunk_events)`` (all events from the start)."""

    @abstractmethod
    def _decode_chunks(self, chunk_events: int) -> Iterator[np.ndarray]: ...

    def _chunks(self, t_start, chunk_events):
        for chunk in _coalesce(self._decode_chunks(chunk_events), chunk_events):
            if t_start is not None:
                if len(chunk) == 0 or chunk["t"][-1] < t_start:
                    continue
                if chunk["t"][0] < t_start:
                    chunk = chunk[np.searchsorted(chunk["t"], t_start, side="left"):]
            yield chunk

    @cached_property
    def _totals(self) -> tuple[int, int, int, int, int]:
        n, t0, t1, xmax, ymax = 0, None, 0, -1, -1
        for chunk in self.iter_chunks():
            n += len(chunk)
            t0 = int(chunk["t"][0]) if t0 is None else t0
            t1 = int(chunk["t"][-1])
            xmax, ymax = max(xmax, int(chunk["x"].max())), max(ymax, int(chunk["y"].max()))
        return n, (t0 or 0), t1, xmax, ymax

    @property
    def num_events(self) -> int:
        return self._totals[0]

    @cached_property
    def t_start(self) -> int:
        for chunk in self.iter_chunks(chunk_events=4096):
            return int(chunk["t"][0])
        return 0

    @property
    def t_end(self) -> int:
        return self._totals[2]


class StereoRecording(_Closable):
    """A left/right pair. Windows are cut on the left camera's clock; right timestamps are shifted
    by ``right.meta.t_offset - left.meta.t_offset`` into it (zero for files written by eventvision)."""

    is_stereo = True

    def __init__(self, left: EventStream, right: EventStream, *, path: Path, format: str,
                 baseline_m: float | None = None, focal_px: float | None = None, rectified: bool | None = None):
        self.left, self.right = left, right
        self.path, self.format = Path(path), format
        self.baseline_m, self.focal_px = baseline_m, focal_px
        #: True/False when the file says whether its events are rectified (eventvision h5 ``rectified``), else None
        self.rectified = rectified

    @property
    def meta(self) -> EventMeta:
        return self.left.meta

    @property
    def right_shift(self) -> int:
        return int(self.right.meta.t_offset) - int(self.left.meta.t_offset)

    @property
    def num_events(self) -> int:
        return self.left.num_events + self.right.num_events

    @property
    def t_start(self) -> int:
        starts = ([self.left.t_start] if self.left.num_events else []) + \
                 ([self.right.t_start + self.right_shift] if self.right.num_events else [])
        return min(starts) if starts else 0

    @property
    def t_end(self) -> int:
        return max(self.left.t_end, self.right.t_end + self.right_shift)

    def iter_windows(self, window_us: int, t_start: int | None = None, t_end: int | None = None
                     ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """Yield ``(t0, t1, left_events, right_events)`` on the left clock (right events shifted into it)."""
        t0 = self.t_start if t_start is None else int(t_start)
        if t_end is None:
            t_end = self.t_end + 1
        shift = self.right_shift
        left = self.left.iter_windows(window_us, t0, t_end)
        right = self.right.iter_windows(window_us, t0 - shift, t_end - shift)
        for lw, rw in itertools.zip_longest(left, right):
            ta, tb, ev_l = lw
            ev_r = rw[2]
            if shift and len(ev_r):
                ev_r = ev_r.copy()
                ev_r["t"] += shift
            yield ta, tb, ev_l, ev_r

    def read_window(self, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
        ev_r = self.right.read_window(t0 - self.right_shift, t1 - self.right_shift)
        if self.right_shift and len(ev_r):
            ev_r = ev_r.copy()
            ev_r["t"] += self.right_shift
        return self.left.read_window(t0, t1), ev_r

    def read_all(self) -> tuple[np.ndarray, np.ndarray]:
        return self.read_window(self.t_start, self.t_end + 1)

    def describe(self) -> dict:
        return {"format": self.format, "stereo": True, "baseline_m": self.baseline_m, "focal_px": self.focal_px,
                "streams": {"left": self.left.describe(), "right": self.right.describe()}}

    def close(self) -> None:
        self.left.close()
        self.right.close()
