"""The live demo pipeline: capture -> emulate -> window + predict -> render, one thread per stage.

Stages talk through bounded :class:`DropOldestQueue` s: when a consumer falls behind, the oldest
item is discarded (a stale frame is worth less than a fresh one), so latency stays bounded instead
of growing. The inference stage drains everything waiting, adds it to the sliding window and
predicts once on the newest window. Rendering, display (OpenCV window) and recording run on the
calling thread (OpenCV GUI calls must stay on one thread).

Latency = display time - ``captured_at`` of the newest packet in the shown window (end to end).
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from eventvision.demo.predictors import Prediction, Window
from eventvision.demo.sources import Packet
from eventvision.errors import UserError

_STOP = object()


class DropOldestQueue:
    """Thread-safe FIFO of at most ``maxsize`` items; ``put`` on a full queue drops the oldest (counted).

    ``lossless=True`` (offline runs: files played as fast as possible, recording to a video) makes
    ``put`` wait for room instead, so every frame is processed.
    """

    def __init__(self, maxsize: int, *, lossless: bool = False, stop: threading.Event | None = None):
        self.items: collections.deque = collections.deque()
        self.maxsize = maxsize
        self.lossless = lossless
        self.stop = stop
        self.cond = threading.Condition()
        self.dropped = 0

    def put(self, item) -> None:
        with self.cond:
            if item is not _STOP and len(self.items) >= self.maxsize:
                if self.lossless:
                    while len(self.items) >= self.maxsize and not (self.stop is not None and self.stop.is_set()):
                        self.cond.wait(timeout=0.1)
                if len(self.items) >= self.maxsize:
                    self.items.popleft()
                    self.dropped += 1
            self.items.append(item)
            self.cond.notify_all()

    def get(self, timeout: float | None = None):
        with self.cond:
            if not self.cond.wait_for(lambda: self.items, timeout=timeout):
                return None
            item = self.items.popleft()
            self.cond.notify_all()
            return item

    def get_all(self, timeout: float | None = None) -> list:
        with self.cond:
            if not self.cond.wait_for(lambda: self.items, timeout=timeout):
                return []
            out = list(self.items)
            self.items.clear()
            self.cond.notify_all()
            return out


@dataclass
class Controls:
    """What the keys change while the demo runs (read by the worker threads)."""

    window_us: int = 100_000
    contrast: float = 0.2
    paused: bool = False
    quit: bool = False


@dataclass
class Result:
    window: Window
    prediction: Prediction
    captured_at: float
    truth: str | None = None
    infer_ms: float = 0.0


@dataclass
class Stats:
    shown: int = 0
    started: float = field(default_factory=time.perf_counter)
    latencies_ms: list = field(default_factory=list)
    frame_times: collections.deque = field(default_factory=lambda: collections.deque(maxlen=30))
    dropped: dict = field(default_factory=dict)

    def fps(self) -> float:
        if len(self.frame_times) < 2:
            return 0.0
        return (len(self.frame_times) - 1) / max(self.frame_times[-1] - self.frame_times[0], 1e-9)

    def summary(self) -> dict:
        lat = np.asarray(self.latencies_ms, dtype=np.float64)
        elapsed = time.perf_counter() - self.started
        return {"frames_shown": self.shown, "fps": self.shown / elapsed if elapsed > 0 else 0.0,
                "latency_ms_mean": float(lat.mean()) if len(lat) else float("nan"),
                "latency_ms_p95": float(np.percentile(lat, 95)) if len(lat) else float("nan"),
                "dropped": dict(self.dropped)}


class SlidingWindow:
    """Event chunks of the last ``window_us`` (by sensor time); ``window()`` concatenates them.

    A chunk's ``t_us`` is its exclusive end (every event of it has ``t < t_us``), so the newest chunk's
    ``t_us`` is the window end ``t1`` and the window is the half-open ``[t1 - window_us, t1)``, the rule
    of the readers and of training (:func:`eventvision.events.recording.window_slice`)."""

    def __init__(self):
        self.chunks: collections.deque = collections.deque()  # (t_us, events, right, captured_at)

    def add(self, t_us: int, events: np.ndarray, right: np.ndarray | None, captured_at: float) -> None:
        self.chunks.append((t_us, events, right, captured_at))

    def window(self, window_us: int, width: int, height: int) -> tuple[Window, float]:
        from eventvision.events.recording import window_slice
        t1 = self.chunks[-1][0]
        t0 = t1 - window_us
        while len(self.chunks) > 1 and self.chunks[0][0] <= t0:   # a chunk ending by t0 holds nothing of it
            self.chunks.popleft()

        def cat(idx):
            parts = [c[idx] for c in self.chunks if c[idx] is not None]
            if not parts:
                return None
            return window_slice(np.concatenate(parts) if len(parts) > 1 else parts[0], t0, t1)

        return Window(t0=t0, t1=t1, events=cat(1), right=cat(2), width=width, height=height), self.chunks[-1][3]


class DemoPipeline:
    """Run ``source`` through the emulator (frame sources), the sliding window and ``predictor``.

    ``lossless``: queues wait instead of dropping (offline: every input frame gets a shown frame).
    ``sink(image_rgb, result, stats) -> bool`` is called on the calling thread for every rendered
    frame; returning False stops the demo.
    """

    def __init__(self, source, predictor, *, width: int, height: int, controls: Controls | None = None,
                 emulator_kwargs: dict | None = None, queue_size: int = 4, lossless: bool = False):
        self.source, self.predictor = source, predictor
        self.width, self.height = width, height
        self.controls = controls or Controls()
        self.emulator_kwargs = dict(emulator_kwargs or {})
        self._stop = threading.Event()
        self.q_frames = DropOldestQueue(queue_size, lossless=lossless, stop=self._stop)
        self.q_events = DropOldestQueue(4 * queue_size, lossless=lossless, stop=self._stop)
        self.q_results = DropOldestQueue(queue_size if lossless else 1, lossless=lossless, stop=self._stop)
        self.stats = Stats()
        self.errors: list[BaseException] = []

    # --- stages ---------------------------------------------------------------------------
    def _capture(self) -> None:
        try:
            for packet in self.source:
                if self._stop.is_set():
                    break
                while self.controls.paused and not self._stop.is_set():
                    time.sleep(0.02)
                self.q_frames.put(packet)
        except BaseException as exc:  # reported on the main thread
            self.errors.append(exc)
        finally:
            self.q_frames.put(_STOP)

    def _emulate(self) -> None:
        from eventvision.simulate.emulator import EventEmulator
        emu = None
        try:
            while True:
                packet = self.q_frames.get()
                if packet is _STOP:
                    break
                if packet.frame is None:  # real events: pass through
                    self.q_events.put(packet)
                    continue
                if emu is None:
                    emu = EventEmulator(self.width, self.height, **self.emulator_kwargs)
                if abs(emu.contrast - self.controls.contrast) > 1e-9:
                    emu.set_contrast(self.controls.contrast)
                events = emu.step(packet.frame, packet.t_us)
                # the emulator stamps events up to the frame time inclusive: the chunk ends just after it
                self.q_events.put(Packet(t_us=packet.t_us + 1, captured_at=packet.captured_at, events=events,
                                         truth=packet.truth))
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.q_events.put(_STOP)

    def _infer(self) -> None:
        window = SlidingWindow()
        try:
            done = False
            while not done:
                if self.q_events.lossless:  # offline: one shown frame per input step
                    item = self.q_events.get(timeout=0.5)
                    batch = [] if item is None else [item]
                else:
                    batch = self.q_events.get_all(timeout=0.5)
                if not batch:
                    continue
                truth = None
                added = 0
                for packet in batch:
                    if packet is _STOP:
                        done = True
                        break
                    window.add(packet.t_us, packet.events, packet.right, packet.captured_at)
                    truth = packet.truth or truth
                    added += 1
                if not added or self._stop.is_set():
                    continue
                win, captured_at = window.window(int(self.controls.window_us), self.width, self.height)
                t = time.perf_counter()
                prediction = self.predictor(win)
                self.q_results.put(Result(win, prediction, captured_at, truth, (time.perf_counter() - t) * 1e3))
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.q_results.put(_STOP)

    # --- driver ---------------------------------------------------------------------------
    def run(self, sink, *, render=None) -> dict:
        """Run until the source ends or ``sink`` returns False; returns :meth:`Stats.summary`."""
        from eventvision.demo.render import render_frame
        render = render or render_frame
        threads = [threading.Thread(target=f, name=f"demo-{f.__name__}", daemon=True)
                   for f in (self._capture, self._emulate, self._infer)]
        for th in threads:
            th.start()
        try:
            while True:
                result = self.q_results.get(timeout=0.1)
                if result is None:
                    if not sink(None, None, self.stats):  # lets the GUI poll keys while waiting
                        break
                    continue
                if result is _STOP:
                    break
                now = time.perf_counter()
                self.stats.frame_times.append(now)
                self.stats.latencies_ms.append((now - result.captured_at) * 1e3)
                image = render(result, self.stats, self.controls)
                self.stats.shown += 1
                if not sink(image, result, self.stats):
                    break
        finally:
            self._stop.set()
            self.controls.paused = False
            for th in threads:
                th.join(timeout=5.0)
        self.stats.dropped = {"frames": self.q_frames.dropped, "event_chunks": self.q_events.dropped,
                              "results": self.q_results.dropped}
        if self.errors:
            exc = self.errors[0]
            if isinstance(exc, UserError):
                raise exc
            raise RuntimeError(f"demo stage failed: {exc!r}") from exc
        return self.stats.summary()
