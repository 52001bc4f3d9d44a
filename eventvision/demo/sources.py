"""Demo inputs: camera / video / synthetic frames (to be emulated) or real event recordings and cameras.

A source is an iterator of :class:`Packet`. Frame sources yield packets with ``frame`` set (gray
uint8 [H, W]) and no events; event sources yield ``events`` (and ``right`` for stereo) directly.
``captured_at`` is the ``time.perf_counter()`` moment the packet entered the program, the start of
the end-to-end latency measurement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from eventvision.errors import DatasetNotFoundError, FileFormatError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif"}


@dataclass
class Packet:
    """One step of input: a frame (to emulate) or a chunk of events, with timing."""

    t_us: int                          # sensor time of the frame / exclusive end of the event chunk (µs)
    captured_at: float                 # perf_counter() when it entered the program
    frame: np.ndarray | None = None    # gray uint8 [H, W] for frame sources
    events: np.ndarray | None = None   # events in [previous t_us, t_us) for event sources
    right: np.ndarray | None = None    # right camera's events (stereo)
    truth: str | None = None           # known label of a synthetic scene, shown beside the prediction


class _Pacer:
    """Sleeps so that sensor time advances no faster than wall time (``realtime``), else no-op."""

    def __init__(self, realtime: bool):
        self.realtime = realtime
        self.start_wall = None
        self.start_t = None

    def wait(self, t_us: int) -> None:
        if not self.realtime:
            return
        now = time.perf_counter()
        if self.start_wall is None:
            self.start_wall, self.start_t = now, t_us
            return
        delay = self.start_wall + (t_us - self.start_t) * 1e-6 - now
        if delay > 0:
            time.sleep(delay)


def _to_gray(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2
    if frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.shape != (height, width):
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    return frame


class VideoSource:
    """Frames of an OpenCV capture: a camera index (``realtime`` clock) or a video file (its own timestamps)."""

    def __init__(self, spec: str | int, *, width: int = 640, height: int = 480, realtime: bool = True,
                 max_frames: int | None = None):
        import cv2
        self.is_camera = isinstance(spec, int) or str(spec).isdigit()
        target = int(spec) if self.is_camera else str(spec)
        if not self.is_camera and not Path(target).is_file():
            raise DatasetNotFoundError(f"{target}: video file not found; give a camera index (0), a video, a "
                                       f"recording or 'synthetic'")
        self.cap = cv2.VideoCapture(target)
        if not self.cap.isOpened():
            what = f"camera {target}" if self.is_camera else f"{target}"
            raise FileFormatError(f"{what}: cannot be opened by OpenCV; check the device/file (or use the "
                                  f"synthetic source)")
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0
        if not 1.0 <= self.fps <= 1000.0:
            self.fps = 30.0
        self.width, self.height = width, height
        self.pacer = _Pacer(realtime and not self.is_camera)
        self.max_frames = max_frames
        self.name = f"camera {target}" if self.is_camera else Path(target).name

    def __iter__(self) -> Iterator[Packet]:
        t0 = time.perf_counter()
        k = 0
        try:
            while self.max_frames is None or k < self.max_frames:
                ok, frame = self.cap.read()
                if not ok:
                    return
                now = time.perf_counter()
                t_us = int((now - t0) * 1e6) if self.is_camera else int(round(k * 1e6 / self.fps))
                self.pacer.wait(t_us)
                yield Packet(t_us=t_us, captured_at=time.perf_counter(), frame=_to_gray(frame, self.width, self.height))
                k += 1
        finally:
            self.cap.release()


class SyntheticGestureSource:
    """Endless synthetic gestures (``eventvision.simulate.gesture_scenes``), one class after another,
    upscaled into the middle of a ``width`` x ``height`` frame; packets carry the true class name."""

    def __init__(self, *, width: int = 640, height: int = 480, fps: float = 30.0, clip_s: float = 2.0,
                 realtime: bool = True, max_frames: int | None = None, seed: int = 0):
        self.width, self.height, self.fps, self.clip_s = width, height, fps, clip_s
        self.pacer = _Pacer(realtime)
        self.max_frames = max_frames
        self.seed = seed
        self.name = "synthetic gestures"

    def _clip(self, label: int, seed: int) -> np.ndarray:
        import cv2
        from eventvision.simulate.gesture_scenes import render_gesture_frames
        frames, _ = render_gesture_frames(label, size=128, duration_s=self.clip_s, fps=self.fps, seed=seed)
        side = min(self.width, self.height)
        out = np.empty((len(frames), self.height, self.width), dtype=np.uint8)
        y0, x0 = (self.height - side) // 2, (self.width - side) // 2
        for i, f in enumerate(frames):
            g = np.clip(f * 255.0, 1, 255).astype(np.uint8)
            out[i] = int(round(0.25 * 255))
            out[i, y0:y0 + side, x0:x0 + side] = cv2.resize(g, (side, side), interpolation=cv2.INTER_LINEAR)
        return out

    def __iter__(self) -> Iterator[Packet]:
        from eventvision.simulate.gesture_scenes import GESTURE_CLASSES
        k = 0
        clip_index = 0
        while True:
            label = clip_index % len(GESTURE_CLASSES)
            for frame in self._clip(label, self.seed + clip_index):
                if self.max_frames is not None and k >= self.max_frames:
                    return
                t_us = int(round(k * 1e6 / self.fps))
                self.pacer.wait(t_us)
                yield Packet(t_us=t_us, captured_at=time.perf_counter(), frame=frame, truth=GESTURE_CLASSES[label])
                k += 1
            clip_index += 1


class RecordingSource:
    """Real events from any file :func:`eventvision.events.readers.open_recording` reads, in chunks
    ``[t0, t0 + chunk_us)``, played back at recorded speed (``realtime``) or as fast as possible.

    ``stereo``: the input is opened like ``run stereo`` opens it
    (:func:`eventvision.inference.stereo.open_stereo_input`), so both cameras' events are rectified
    with the recording's maps (DSEC ``rectify_map.h5``, MVSEC ``<scene>_calib``)."""

    def __init__(self, path: str | Path, *, chunk_us: int = 33_333, realtime: bool = True,
                 max_packets: int | None = None, stereo: bool = False):
        self.path = Path(path)
        self.stereo_input = None
        if stereo:
            from eventvision.inference.stereo import open_stereo_input
            self.stereo_input = open_stereo_input(self.path)
            self.rec = self.stereo_input.recording
        else:
            from eventvision.events.readers import open_recording
            self.rec = open_recording(self.path)
        self.is_stereo = bool(getattr(self.rec, "is_stereo", False))
        mono = self.rec.left if self.is_stereo else self.rec
        self.width, self.height = int(mono.meta.width), int(mono.meta.height)
        self.chunk_us = int(chunk_us)
        self.pacer = _Pacer(realtime)
        self.max_packets = max_packets
        self.name = self.path.name

    def __iter__(self) -> Iterator[Packet]:
        if self.stereo_input is not None:
            windows = ((w.t1, w.events, w.right) for w in self.stereo_input.windows(self.chunk_us))
        else:
            windows = ((item[1], item[2], item[3] if self.is_stereo else None)
                       for item in self.rec.iter_windows(self.chunk_us))
        for k, (t1, left, right) in enumerate(windows):
            if self.max_packets is not None and k >= self.max_packets:
                return
            self.pacer.wait(int(t1))
            yield Packet(t_us=int(t1), captured_at=time.perf_counter(), events=left, right=right)


class SyntheticStereoSource:
    """Endless synthetic stereo scenes (``eventvision.simulate.stereo_scenes``), ``window_us`` per packet."""

    def __init__(self, *, width: int = 96, height: int = 64, window_us: int = 50_000, realtime: bool = True,
                 max_packets: int | None = None, seed: int = 0):
        self.width, self.height, self.window_us = width, height, window_us
        self.pacer = _Pacer(realtime)
        self.max_packets = max_packets
        self.seed = seed
        self.name = "synthetic stereo"

    def __iter__(self) -> Iterator[Packet]:
        from eventvision.simulate.stereo_scenes import make_stereo_sample
        k = 0
        while self.max_packets is None or k < self.max_packets:
            s = make_stereo_sample(self.seed + k, width=self.width, height=self.height, window_us=self.window_us)
            offset = k * self.window_us
            left, right = s["left"].copy(), s["right"].copy()
            left["t"] += offset
            right["t"] += offset
            t1 = offset + self.window_us
            self.pacer.wait(t1)
            yield Packet(t_us=t1, captured_at=time.perf_counter(), events=left, right=right)
            k += 1


class InivationCameraSource:
    """Live events from an iniVation camera through dv-processing (optional extra ``inivation``)."""

    def __init__(self, *, chunk_us: int = 33_333):
        try:
            import dv_processing as dv
        except ImportError:
            raise DatasetNotFoundError("the inivation source needs the optional extra 'inivation' (dv-processing): "
                            "pip install 'eventvision[inivation]'") from None
        try:
            self.camera = dv.io.CameraCapture()
        except Exception as exc:  # the library raises its own runtime errors when no camera is attached
            raise DatasetNotFoundError(f"inivation camera: cannot open ({exc}); is a DVS/DAVIS camera "
                                       f"connected?") from None
        res = self.camera.getEventResolution()
        self.width, self.height = int(res[0]), int(res[1])
        self.chunk_us = chunk_us
        self.name = "iniVation camera"

    def __iter__(self) -> Iterator[Packet]:
        from eventvision.events.core import make_events
        while self.camera.isRunning():
            batch = self.camera.getNextEventBatch()
            if batch is None:
                time.sleep(0.001)
                continue
            arr = batch.numpy()
            if len(arr) == 0:
                continue
            ev = make_events(arr["x"], arr["y"], arr["timestamp"], arr["polarity"])
            yield Packet(t_us=int(ev["t"][-1]) + 1, captured_at=time.perf_counter(), events=ev)


def open_source(spec: str, *, task: str = "gesture", width: int = 640, height: int = 480, realtime: bool = True,
                max_steps: int | None = None, chunk_us: int = 33_333, seed: int = 0):
    """Source for ``--source``: ``synthetic``, a camera index, ``inivation``, a video file or an event recording."""
    spec = str(spec)
    if spec == "synthetic":
        if task == "stereo":
            return SyntheticStereoSource(width=width, height=height, realtime=realtime, max_packets=max_steps,
                                         seed=seed)
        return SyntheticGestureSource(width=width, height=height, realtime=realtime, max_frames=max_steps, seed=seed)
    if spec == "inivation":
        return InivationCameraSource(chunk_us=chunk_us)
    if task == "stereo":
        return RecordingSource(spec, chunk_us=chunk_us, realtime=realtime, max_packets=max_steps, stereo=True)
    if spec.isdigit() or Path(spec).suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(spec, width=width, height=height, realtime=realtime, max_frames=max_steps)
    if not Path(spec).exists():
        raise DatasetNotFoundError(f"{spec}: no such file; a source is a camera index, a video, an event "
                                   f"recording, 'inivation' or 'synthetic'")
    return RecordingSource(spec, chunk_us=chunk_us, realtime=realtime, max_packets=max_steps)
