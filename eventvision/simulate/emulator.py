"""Frames -> events emulator (ESIM / v2e semantics), numba kernels behind a small stateful wrapper.

Model, per pixel (x, y):

* log intensity ``L = log(max(I, min_intensity))`` with ``I`` in (0, 1] (uint8 frames are divided by
  255; an [H, W, 3] BGR frame is converted to gray first);
* a memorised reference ``L_ref`` (set by :meth:`EventEmulator.reset` to the first frame);
* per-pixel thresholds ``C_on``, ``C_off`` drawn once from N(contrast, contrast_std) (clipped at
  ``min_contrast``), fixed for the emulator's lifetime (like a sensor's fixed-pattern mismatch);
* between two frames at ``t_a`` and ``t_b`` the log intensity is interpolated linearly. If
  ``L(t_b) - L_ref >= C_on`` the pixel emits ``n = floor((L(t_b) - L_ref) / C_on)`` ON events, the
  k-th at the time the interpolated signal crosses ``L_ref + k C_on``, and ``L_ref`` moves up by
  ``n C_on`` (OFF symmetric with ``C_off``). Timestamps are rounded to whole microseconds;
* refractory period: a crossing less than ``refractory_us`` after the pixel's last *emitted* event
  is not emitted, but the reference still moves past it (the pixel is held in reset, so when the
  refractory period ends it compares against the current level, not a stale one);
* shot noise (optional): each pixel emits spurious events as a Poisson process of rate
  ``noise_rate_hz`` (per pixel), random polarity, uniform times within the frame interval; noise
  events do not move the reference and ignore the refractory period.

Output events of one step are sorted by time (ties in row-major pixel order); polarity is ±1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
from numba import njit

from eventvision.errors import UserError
from eventvision.events.core import EVENT_DTYPE, empty_events

_NEVER = np.int64(-(2**62))


@njit(cache=True, nogil=True)
def _log_intensity(frame, scale, min_intensity):
    """log(max(frame * scale, min_intensity)) as float64 [H, W] (new array)."""
    h, w = frame.shape
    out = np.empty((h, w), dtype=np.float64)
    lo = np.log(min_intensity)
    for yy in range(h):
        for xx in range(w):
            v = frame[yy, xx] * scale
            out[yy, xx] = np.log(v) if v > min_intensity else lo
    return out


@njit(cache=True, nogil=True)
def _grow(a, m):
    out = np.empty(max(2 * len(a), 1024), dtype=a.dtype)
    out[:m] = a[:m]
    return out


@njit(cache=True, nogil=True)
def _emulate_step(l_prev, l_new, l_ref, c_on, c_off, t_last, t_a, t_b, refractory_us, capacity):
    """Events between two frames, sorted by time (counting sort over the µs of the interval, stable in
    row-major pixel order). Pure: returns (x, y, t, p, new_l_ref, new_t_last), all new arrays."""
    h, w = l_new.shape
    ref_out = l_ref.copy()
    last_out = t_last.copy()
    cap = max(capacity, 1024)
    xs = np.empty(cap, dtype=np.uint16)
    ys = np.empty(cap, dtype=np.uint16)
    ts = np.empty(cap, dtype=np.int64)
    ps = np.empty(cap, dtype=np.int8)
    dt = np.float64(t_b - t_a)
    m = 0
    for yy in range(h):
        for xx in range(w):
            ref = l_ref[yy, xx]
            l1 = l_new[yy, xx]
            d = l1 - ref
            if d >= c_on[yy, xx]:
                c = c_on[yy, xx]
                sgn = 1
                n = np.int64(np.floor(d / c))
            elif -d >= c_off[yy, xx]:
                c = -c_off[yy, xx]
                sgn = -1
                n = np.int64(np.floor(-d / c_off[yy, xx]))
            else:
                continue
            l0 = l_prev[yy, xx]
            slope = l1 - l0
            tl = last_out[yy, xx]
            for k in range(1, n + 1):
                level = ref + k * c
                frac = (level - l0) / slope if slope != 0 else 1.0
                if frac < 0.0:
                    frac = 0.0
                elif frac > 1.0:
                    frac = 1.0
                tk = t_a + np.int64(np.floor(frac * dt + 0.5))
                if refractory_us > 0 and tl != _NEVER and tk - tl < refractory_us:
                    continue
                if m == len(xs):
                    xs = _grow(xs, m)
                    ys = _grow(ys, m)
                    ts = _grow(ts, m)
                    ps = _grow(ps, m)
                xs[m] = xx
                ys[m] = yy
                ts[m] = tk
                ps[m] = sgn
                m += 1
                tl = tk
            last_out[yy, xx] = tl
            ref_out[yy, xx] = ref + n * c
    # sort by timestamp, stable (row-major pixel order within a µs): counting sort over the interval's
    # µs when that table is small, else a merge sort (long gaps, e.g. after a pause, must not allocate GBs)
    span = t_b - t_a + 1
    sx = np.empty(m, dtype=np.uint16)
    sy = np.empty(m, dtype=np.uint16)
    st = np.empty(m, dtype=np.int64)
    sp = np.empty(m, dtype=np.int8)
    if span <= max(8 * m, 1 << 20):
        counts = np.zeros(span + 1, dtype=np.int64)
        for i in range(m):
            counts[ts[i] - t_a + 1] += 1
        for j in range(1, span + 1):
            counts[j] += counts[j - 1]
        for i in range(m):
            j = counts[ts[i] - t_a]
            counts[ts[i] - t_a] = j + 1
            sx[j] = xs[i]
            sy[j] = ys[i]
            st[j] = ts[i]
            sp[j] = ps[i]
    else:
        order = np.argsort(ts[:m], kind="mergesort")
        for j in range(m):
            i = order[j]
            sx[j] = xs[i]
            sy[j] = ys[i]
            st[j] = ts[i]
            sp[j] = ps[i]
    return sx, sy, st, sp, ref_out, last_out


def to_intensity_frame(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float]:
    """Validate a frame; return (2-D array, scale to (0, 1]). BGR [H, W, 3] uint8 is converted to gray."""
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 3:
        import cv2
        frame = cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.uint8), cv2.COLOR_BGR2GRAY)
    if frame.ndim != 2 or frame.shape != (height, width):
        raise UserError(f"emulator: frame has shape {frame.shape}, expected ({height}, {width}) gray or "
                        f"({height}, {width}, 3) BGR; resize frames to the emulator's size")
    if frame.dtype == np.uint8:
        return frame, 1.0 / 255.0
    if frame.dtype.kind not in "fiu":
        raise UserError(f"emulator: frame dtype {frame.dtype} is not numeric; pass uint8 or float intensity in (0, 1]")
    return frame, 1.0


@dataclass
class EventEmulator:
    """Stateful frames -> events emulator for one ``width`` x ``height`` sensor (see module doc for the model).

    >>> emu = EventEmulator(640, 480, contrast=0.2)
    >>> emu.reset(frame0, t_us=0)
    >>> events = emu.step(frame1, t_us=33_333)   # EVENT_DTYPE, sorted by t, within (0, 33_333]
    """

    width: int
    height: int
    contrast: float = 0.2
    contrast_std: float = 0.03
    refractory_us: int = 0
    noise_rate_hz: float = 0.0
    seed: int = 0
    min_intensity: float = 1.0 / 255.0
    min_contrast: float = 0.01

    def __post_init__(self):
        self._capacity = 0
        if self.width <= 0 or self.height <= 0:
            raise UserError(f"emulator: width/height must be positive, got {self.width}x{self.height}")
        if not self.contrast > 0 or self.contrast_std < 0 or self.refractory_us < 0 or self.noise_rate_hz < 0:
            raise UserError("emulator: need contrast > 0, contrast_std >= 0, refractory_us >= 0, noise_rate_hz >= 0")
        self._rng = np.random.default_rng(self.seed)
        shape = (self.height, self.width)
        self.c_on = np.maximum(self._rng.normal(self.contrast, self.contrast_std, shape), self.min_contrast)
        self.c_off = np.maximum(self._rng.normal(self.contrast, self.contrast_std, shape), self.min_contrast)
        self._l_prev = None
        self._l_ref = None
        self._t_last = None
        self._t_prev = None

    @classmethod
    def from_config(cls, cfg, *, width: int, height: int) -> "EventEmulator":
        keys = ("contrast", "contrast_std", "refractory_us", "noise_rate_hz", "seed", "min_intensity", "min_contrast")
        return cls(width, height, **{k: cfg[k] for k in keys if k in cfg})

    def set_contrast(self, contrast: float) -> None:
        """Change the mean threshold (keeps each pixel's relative mismatch); used by the live demo's keys."""
        if not contrast > 0:
            raise UserError(f"emulator: contrast must be > 0, got {contrast}")
        ratio = contrast / self.contrast
        self.c_on = np.maximum(self.c_on * ratio, self.min_contrast)
        self.c_off = np.maximum(self.c_off * ratio, self.min_contrast)
        self.contrast = contrast

    @property
    def initialized(self) -> bool:
        return self._l_ref is not None

    def _log(self, frame) -> np.ndarray:
        frame, scale = to_intensity_frame(frame, self.width, self.height)
        if frame.dtype == np.uint8:  # 256 possible values: a lookup table instead of 300k logs
            lut = _log_intensity(np.arange(256, dtype=np.uint8)[None, :], float(scale), float(self.min_intensity))[0]
            return lut[frame]
        return _log_intensity(frame, float(scale), float(self.min_intensity))

    def reset(self, frame: np.ndarray, t_us: int) -> None:
        """Start (or restart) at ``frame`` taken at ``t_us``: the reference becomes this frame, no events."""
        self._l_prev = self._log(frame)
        self._l_ref = self._l_prev.copy()
        self._t_last = np.full((self.height, self.width), _NEVER, dtype=np.int64)
        self._t_prev = int(t_us)

    def step(self, frame: np.ndarray, t_us: int) -> np.ndarray:
        """Events caused by moving from the previous frame to ``frame`` at ``t_us`` (µs, increasing).

        The first call on a fresh emulator only initialises it (same as :meth:`reset`) and returns no events.
        """
        t_us = int(t_us)
        if not self.initialized:
            self.reset(frame, t_us)
            return empty_events()
        if t_us <= self._t_prev:
            raise UserError(f"emulator: frame time {t_us} µs is not after the previous frame ({self._t_prev} µs); "
                            "timestamps must increase")
        l_new = self._log(frame)
        xs, ys, ts, ps, self._l_ref, self._t_last = _emulate_step(
            self._l_prev, l_new, self._l_ref, self.c_on, self.c_off, self._t_last, np.int64(self._t_prev),
            np.int64(t_us), np.int64(self.refractory_us), np.int64(self._capacity))
        self._capacity = 2 * len(xs)
        events = np.empty(len(xs), dtype=EVENT_DTYPE)
        events["x"], events["y"], events["t"], events["p"] = xs, ys, ts, ps
        if self.noise_rate_hz > 0:
            noise = self._noise(self._t_prev, t_us)
            events = np.concatenate([events, noise])
            if len(noise):
                events = events[np.argsort(events["t"], kind="stable")]
        self._l_prev = l_new
        self._t_prev = t_us
        return events

    def _noise(self, t_a: int, t_b: int) -> np.ndarray:
        expected = self.noise_rate_hz * self.width * self.height * (t_b - t_a) * 1e-6
        n = int(self._rng.poisson(expected))
        noise = np.empty(n, dtype=EVENT_DTYPE)
        noise["x"] = self._rng.integers(0, self.width, n)
        noise["y"] = self._rng.integers(0, self.height, n)
        noise["t"] = self._rng.integers(t_a + 1, t_b + 1, n)  # within (t_a, t_b]
        noise["p"] = np.where(self._rng.random(n) < 0.5, 1, -1)
        return noise


def iter_emulate(frames: Iterable[np.ndarray], timestamps_us: Iterable[int], **kwargs) -> Iterator[np.ndarray]:
    """Yield the events of each frame interval (first frame: reference only). kwargs: :class:`EventEmulator`'s.

    ``width``/``height`` default to the first frame's size.
    """
    emu = None
    for frame, t in zip(frames, timestamps_us):
        if emu is None:
            frame = np.asarray(frame)
            kw = dict(kwargs)
            width = kw.pop("width", frame.shape[1])
            height = kw.pop("height", frame.shape[0])
            emu = EventEmulator(width, height, **kw)
            emu.reset(frame, t)
            continue
        yield emu.step(frame, t)


def emulate_frames(frames, timestamps_us, **kwargs) -> np.ndarray:
    """All events of a frame sequence ``frames`` [N, H, W] at ``timestamps_us`` [N], one time-sorted array."""
    chunks = list(iter_emulate(frames, timestamps_us, **kwargs))
    if not chunks:
        return empty_events()
    return np.concatenate(chunks)
