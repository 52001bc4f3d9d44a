"""Frames -> events emulator, numba kernels behind a small stateful wrapper; two modes.

``mode="esim"`` (default), per pixel (x, y):

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

``mode="v2e"``: the model of v2e's ``EventEmulator.generate_events`` (SensorsINI/v2e
``v2ecore/emulator.py``, ``v2ecore/emulator_utils.py``), per frame interval ``dt`` (seconds in the
formulas, frames in 0..255 units ``x``: float frames are ``I * 255``):

* lin-log photoreceptor ``lin_log(x) = x ln(20) / 20`` for ``x <= 20``, ``ln x`` above (continuous at 20;
  rounded to 1e-8 as v2e does), instead of clipping dark values;
* photoreceptor low-pass (``cutoff_hz > 0``): ``lp += eps (lin_log(x) - lp)`` with ``eps = min(1,
  inten01 dt / tau)``, ``tau = 1 / (2 pi cutoff_hz)``, ``inten01 = (x + 20) / 275`` (darker pixels are
  slower);
* leak (``leak_rate_hz > 0``): before comparing, the reference drops by ``dt leak_rate_hz r_pix
  (1 - leak_jitter_fraction n) C_on`` with ``n ~ N(0, 1)`` per pixel and frame and a per-pixel rate factor
  ``r_pix = 10^(noise_rate_cov_decades N(0, 1))`` drawn once: a static pixel emits ON events at about
  ``leak_rate_hz``;
* ``n = floor((lp - ref) / C_on)`` ON (or OFF) events per pixel; with ``N`` the largest ``n`` of any pixel
  in the interval, a pixel's k-th event (k = 1..n) is at ``t_a + k dt / N`` (v2e's uniform time steps, not
  the interpolated crossing time);
* refractory (when ``refractory_us`` exceeds the step ``dt / N``): an event less than ``refractory_us``
  (strictly: ``t - t_last > refractory_us`` passes) after the pixel's last emitted event is dropped and the
  reference moves only by the emitted events, so the change is kept and comes out after the refractory period;
* shot noise (``noise_rate_hz > 0``): per pixel and interval one uniform ``u``; with
  ``f = (noise_rate_hz / 2) dt ((shot_noise_inten_factor - 1) inten01 + 1)`` an ON event if
  ``u > 1 - f C / C_on``, an OFF event if ``u < f C / C_off`` (pixels with low thresholds are noisier, bright
  pixels slightly less so with the factor 0.25), at ``t_b``; a noisy pixel's reference is reset to ``lp``.

Arithmetic follows v2e's precision: lin-log values, reference and thresholds in float32 (float64 once the
low-pass runs, as v2e's filter promotes them), the event count by Python floor division (exact at multiples
of C), the reference moved by ``n * C`` in float32, refractory decided on v2e's float32-second step times
(``torch.linspace``, imported only then). On random-texture frames this gives exactly v2e's events
(``benchmarks/bench_emulator.py --v2e``); output timestamps are integer µs (v2e's: float32 seconds).

Output events of one step are sorted by time (ties in row-major pixel order; v2e shuffles ties at random);
polarity is ±1.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
from numba import njit

from eventvision.errors import InvalidValueError
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


LIN_LOG_THRESHOLD = 20.0  # v2e: linear below this grey level (0..255 units), log above


@njit(cache=True, nogil=True)
def _lin_log(frame, scale, threshold):
    """v2e's lin-log of ``frame * scale`` (0..255 units) as float64 [H, W], rounded to 1e-8."""
    h, w = frame.shape
    out = np.empty((h, w), dtype=np.float64)
    slope = np.log(threshold) / threshold
    for yy in range(h):
        for xx in range(w):
            v = frame[yy, xx] * scale
            y = v * slope if v <= threshold else np.log(v)
            out[yy, xx] = np.round(y * 1e8) / 1e8
    return out


@njit(cache=True, nogil=True)
def _v2e_counts(lp, ref, c_on, c_off):
    """Signed event count of every firing pixel -> (flat indices in row-major order, counts, largest |count|).

    Python/torch floor division (fmod-based: exact at multiples of C, unlike floor(d / C)); below one
    threshold it is 0, so the costly fmod runs only for pixels that fire."""
    h, w = lp.shape
    active = np.empty(h * w, dtype=np.int64)
    counts = np.empty(h * w, dtype=np.int64)
    n_active = 0
    n_max = 0
    for yy in range(h):
        for xx in range(w):
            d = lp[yy, xx] - ref[yy, xx]
            n = 0
            if d >= c_on[yy, xx]:
                n = np.int64(d // c_on[yy, xx])
            elif -d >= c_off[yy, xx]:
                n = -np.int64(-d // c_off[yy, xx])
            if n != 0:
                active[n_active] = yy * w + xx
                counts[n_active] = n
                n_active += 1
                n_max = max(n_max, abs(n))
    return active[:n_active], counts[:n_active], n_max


@njit(cache=True, nogil=True)
def _v2e_events(active, counts, n_max, lp, ref, c_on, c_off, t_last, t_a, t_b, steps_s, refractory_s,
                shot_on, shot_off):
    """v2e-mode events of one interval: the k-th of a firing pixel's n events at ``t_a + k dt / N`` (µs,
    rounded); refractory (when ``steps_s`` is not empty) compares v2e's float32 step times ``steps_s`` (s)
    with the float32 last-event times ``t_last`` (s): ``t - t_last > refractory_s`` passes, a dropped event
    leaves the reference; the reference moves by (emitted events) x threshold with the product in float32,
    as v2e's ``base_log_frame += final_pos_evts_frame * pos_thres``; shot noise at ``t_b`` resets the
    reference to ``lp``. Pure: returns (x, y, t, p, new_ref, new_t_last), events sorted by time (ties
    row-major)."""
    h, w = lp.shape
    total = 0
    for j in range(len(counts)):
        total += abs(counts[j])
    for yy in range(h):
        for xx in range(w):
            total += shot_on[yy, xx] + shot_off[yy, xx]
    xs = np.empty(total, dtype=np.uint16)
    ys = np.empty(total, dtype=np.uint16)
    ts = np.empty(total, dtype=np.int64)
    ps = np.empty(total, dtype=np.int8)
    last_out = t_last.copy()
    emitted = np.zeros(len(counts), dtype=np.int64)
    step = (t_b - t_a) / max(n_max, 1)
    use_refractory = len(steps_s) > 0
    m = 0
    # time step by time step (so the output is sorted), over the firing pixels only
    for i in range(n_max):
        t_int = np.int64(np.floor(t_a + (i + 1) * step + 0.5))
        for j in range(len(counts)):
            n = counts[j]
            if abs(n) <= i:
                continue
            yy, xx = active[j] // w, active[j] % w
            if use_refractory:
                if not steps_s[i] - last_out[yy, xx] > refractory_s:
                    continue
                last_out[yy, xx] = steps_s[i]
            xs[m], ys[m], ts[m] = xx, yy, t_int
            ps[m] = 1 if n > 0 else -1
            emitted[j] += 1
            m += 1
    ref_out = ref.copy()
    for j in range(len(counts)):
        yy, xx = active[j] // w, active[j] % w
        if counts[j] > 0:
            ref_out[yy, xx] = ref[yy, xx] + np.float32(emitted[j]) * c_on[yy, xx]
        else:
            ref_out[yy, xx] = ref[yy, xx] - np.float32(emitted[j]) * c_off[yy, xx]
    t_end = np.int64(np.floor(t_b + 0.5))
    for yy in range(h):
        for xx in range(w):
            if shot_on[yy, xx]:
                xs[m], ys[m], ts[m], ps[m] = xx, yy, t_end, 1
                m += 1
            if shot_off[yy, xx]:
                xs[m], ys[m], ts[m], ps[m] = xx, yy, t_end, -1
                m += 1
            if shot_on[yy, xx] or shot_off[yy, xx]:
                ref_out[yy, xx] = lp[yy, xx]
    return xs[:m].copy(), ys[:m].copy(), ts[:m].copy(), ps[:m].copy(), ref_out, last_out


def v2e_step_times(t_a_us: float, t_b_us: float, steps: int) -> np.ndarray:
    """v2e's event times of one interval as it computes them: ``torch.linspace(t_a + dt/N, t_b, N)`` in
    float32 seconds (its refractory test runs on these)."""
    import torch  # only when a refractory period is used in v2e mode

    t_a, t_b = t_a_us * 1e-6, t_b_us * 1e-6
    return torch.linspace(t_a + (t_b - t_a) / steps, t_b, steps, dtype=torch.float32).numpy()


def lin_log(x: np.ndarray, threshold: float = LIN_LOG_THRESHOLD) -> np.ndarray:
    """v2e's photoreceptor mapping of grey levels ``x`` (0..255 units): linear ``x ln(t) / t`` up to ``t``,
    ``ln x`` above, rounded to 1e-8."""
    x = np.asarray(x, dtype=np.float64)
    return _lin_log(x.reshape(1, -1), 1.0, float(threshold)).reshape(x.shape)


def to_intensity_frame(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float]:
    """Validate a frame; return (2-D array, scale to (0, 1]). BGR [H, W, 3] uint8 is converted to gray."""
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 3:
        import cv2
        frame = cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.uint8), cv2.COLOR_BGR2GRAY)
    if frame.ndim != 2 or frame.shape != (height, width):
        raise InvalidValueError(f"emulator: frame has shape {frame.shape}, expected ({height}, {width}) gray "
                                f"or ({height}, {width}, 3) BGR; resize frames to the emulator's size")
    if frame.dtype == np.uint8:
        return frame, 1.0 / 255.0
    if frame.dtype.kind not in "fiu":
        raise InvalidValueError(f"emulator: frame dtype {frame.dtype} is not numeric; pass uint8 or float "
                                f"intensity in (0, 1]")
    return frame, 1.0


@dataclass
class EventEmulator:
    """Stateful frames -> events emulator for one ``width`` x ``height`` sensor (module doc: the model).

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
    #: "esim" (interpolated crossing times, module doc) or "v2e" (v2e's pixel model)
    mode: str = "esim"
    #: v2e mode: photoreceptor low-pass cutoff at full intensity (Hz, 0 = off; v2e's default 0)
    cutoff_hz: float = 0.0
    #: v2e mode: leak events per pixel per second (0 = off; v2e's CLI default is 0.1)
    leak_rate_hz: float = 0.0
    #: v2e mode: leak jitter and log-normal per-pixel leak spread (v2e's defaults)
    leak_jitter_fraction: float = 0.1
    noise_rate_cov_decades: float = 0.1
    #: v2e mode: shot-noise rate at full intensity relative to darkness (v2e's SHOT_NOISE_INTEN_FACTOR)
    shot_noise_inten_factor: float = 0.25
    #: v2e mode: grey level (0..255) below which the photoreceptor is linear
    lin_log_threshold: float = LIN_LOG_THRESHOLD

    def __post_init__(self):
        self._capacity = 0
        if self.width <= 0 or self.height <= 0:
            raise InvalidValueError(f"emulator: width/height must be positive, got "
                                    f"{self.width}x{self.height}")
        if not (self.contrast > 0 and self.contrast_std >= 0 and self.refractory_us >= 0
                and 0 <= self.noise_rate_hz < math.inf):
            raise InvalidValueError("emulator: need contrast > 0, contrast_std >= 0, refractory_us >= 0, "
                                    "noise_rate_hz >= 0")
        if self.mode not in ("esim", "v2e"):
            raise InvalidValueError(f"emulator: mode '{self.mode}' is not one of esim, v2e")
        finite = (self.cutoff_hz, self.leak_rate_hz, self.noise_rate_cov_decades,
                  self.shot_noise_inten_factor)
        if not (all(0 <= v < math.inf for v in finite) and 0 <= self.leak_jitter_fraction <= 1
                and 0 < self.lin_log_threshold < math.inf):
            raise InvalidValueError("emulator: need cutoff_hz >= 0, leak_rate_hz >= 0, "
                                    "0 <= leak_jitter_fraction <= 1, noise_rate_cov_decades >= 0, "
                                    "shot_noise_inten_factor >= 0, lin_log_threshold > 0")
        self._rng = np.random.default_rng(self.seed)
        shape = (self.height, self.width)
        self.c_on = np.maximum(self._rng.normal(self.contrast, self.contrast_std, shape), self.min_contrast)
        self.c_off = np.maximum(self._rng.normal(self.contrast, self.contrast_std, shape), self.min_contrast)
        # v2e: per-pixel leak-rate factor, log-normal over noise_rate_cov_decades (drawn in v2e mode only, so
        # the ESIM mode's random stream is what it always was)
        self.leak_factor = (10.0 ** (self.noise_rate_cov_decades * self._rng.standard_normal(shape))
                            if self.mode == "v2e" else np.ones(shape))
        self._l_prev = None
        self._l_ref = None
        self._t_last = None
        self._t_prev = None

    @classmethod
    def from_config(cls, cfg, *, width: int, height: int) -> "EventEmulator":
        keys = ("contrast", "contrast_std", "refractory_us", "noise_rate_hz", "seed", "min_intensity",
                "min_contrast", "mode", "cutoff_hz", "leak_rate_hz", "leak_jitter_fraction",
                "noise_rate_cov_decades", "shot_noise_inten_factor", "lin_log_threshold")
        return cls(width, height, **{k: cfg[k] for k in keys if k in cfg})

    def set_contrast(self, contrast: float) -> None:
        """Change the mean threshold (keeps each pixel's relative mismatch); used by the live demo's keys."""
        if not contrast > 0:
            raise InvalidValueError(f"emulator: contrast must be > 0, got {contrast}")
        ratio = contrast / self.contrast
        self.c_on = np.maximum(self.c_on * ratio, self.min_contrast)
        self.c_off = np.maximum(self.c_off * ratio, self.min_contrast)
        self.contrast = contrast

    @property
    def initialized(self) -> bool:
        return self._l_ref is not None

    def _log(self, frame) -> np.ndarray:
        """The photoreceptor's log signal: ``log(max(I, min_intensity))`` (esim) or lin-log (v2e)."""
        frame, scale = to_intensity_frame(frame, self.width, self.height)
        if self.mode == "v2e":
            mapping = functools.partial(_lin_log, scale=float(scale) * 255.0,
                                        threshold=float(self.lin_log_threshold))
        else:
            mapping = functools.partial(_log_intensity, scale=float(scale),
                                        min_intensity=float(self.min_intensity))
        dtype = np.float32 if self.mode == "v2e" else np.float64  # v2e's lin_log ends in .float()
        if frame.dtype == np.uint8:  # 256 possible values: a lookup table instead of 300k logs
            return mapping(np.arange(256, dtype=np.uint8)[None, :])[0].astype(dtype)[frame]
        return mapping(frame).astype(dtype, copy=False)

    def _inten01(self, frame) -> np.ndarray:
        """v2e's ``(x + 20) / 275`` of the frame in 0..255 units (scales low-pass speed and shot noise)."""
        frame, scale = to_intensity_frame(frame, self.width, self.height)
        return (frame * (scale * 255.0) + 20.0) / 275.0

    def reset(self, frame: np.ndarray, t_us: int) -> None:
        """Start (or restart) at ``frame`` taken at ``t_us``: the reference becomes this frame, no events."""
        self._l_prev = self._log(frame)
        self._l_ref = self._l_prev.copy()
        if self.mode == "v2e":  # v2e's timestamp_mem: float32 seconds, starting at -refractory
            self._t_last = np.full((self.height, self.width), -self.refractory_us * 1e-6, dtype=np.float32)
        else:
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
            raise InvalidValueError(f"emulator: frame time {t_us} µs is not after the previous frame "
                                    f"({self._t_prev} µs); timestamps must increase")
        if self.mode == "v2e":
            return self._step_v2e(frame, t_us)
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

    def _step_v2e(self, frame: np.ndarray, t_us: int) -> np.ndarray:
        """v2e mode: low-pass, leak, events at k dt / N, refractory, shot noise (module doc)."""
        dt_s = (t_us - self._t_prev) * 1e-6
        shape = (self.height, self.width)
        inten01 = self._inten01(frame) if self.cutoff_hz > 0 or self.noise_rate_hz > 0 else None
        lp = self._log(frame)  # float32, as v2e's lin_log returns
        if self.cutoff_hz > 0:  # float64 from here on, as v2e's filter promotes it
            tau = 1.0 / (2.0 * np.pi * self.cutoff_hz)
            eps = np.minimum(inten01 * (dt_s / tau), 1.0)
            lp = (1.0 - eps) * self._l_prev + eps * lp
        ref = self._l_ref.astype(lp.dtype, copy=False)
        f32 = np.float32
        c_on, c_off = self.c_on.astype(f32), self.c_off.astype(f32)  # v2e's thresholds are float32
        if self.leak_rate_hz > 0:  # v2e's subtract_leak_current, in float32 as there
            jitter = f32(1.0) - f32(self.leak_jitter_fraction) * self._rng.standard_normal(shape).astype(f32)
            rate = f32(self.leak_rate_hz) * self.leak_factor.astype(f32) * jitter
            ref = ref - f32(dt_s) * rate * c_on
        shot_on = shot_off = np.zeros(shape, dtype=np.bool_)
        if self.noise_rate_hz > 0:
            brightness = (self.shot_noise_inten_factor - 1.0) * inten01 + 1.0
            factor = (self.noise_rate_hz / 2.0) * dt_s * brightness
            u = self._rng.random(shape)
            shot_on = u > 1.0 - factor * (self.contrast / self.c_on)
            shot_off = u < factor * (self.contrast / self.c_off)
        active, counts, n_max = _v2e_counts(lp, ref, c_on, c_off)
        steps_s = np.empty(0, dtype=f32)
        if self.refractory_us > 0 and self.refractory_us > (t_us - self._t_prev) / max(n_max, 1):
            steps_s = v2e_step_times(self._t_prev, t_us, max(n_max, 1))
        xs, ys, ts, ps, self._l_ref, self._t_last = _v2e_events(
            active, counts, n_max, lp, ref, c_on, c_off, self._t_last, float(self._t_prev), float(t_us),
            steps_s, f32(self.refractory_us * 1e-6), shot_on, shot_off)
        events = np.empty(len(xs), dtype=EVENT_DTYPE)
        events["x"], events["y"], events["t"], events["p"] = xs, ys, ts, ps
        self._l_prev = lp  # the low-passed photoreceptor state
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


def iter_emulate(frames: Iterable[np.ndarray], timestamps_us: Iterable[int],
                 **kwargs) -> Iterator[np.ndarray]:
    """Yield the events of each frame interval (first frame: reference only); kwargs: EventEmulator's.

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
