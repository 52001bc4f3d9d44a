"""Where rendered frames go: an OpenCV window (with keys) and/or an mp4 file (written atomically)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from eventvision.errors import InvalidValueError, OutputPathError

#: what to do when OpenCV cannot open windows
NO_GUI_REMEDY = "install opencv-python, or run the demo headless, recording to a video file"
from eventvision.utils.io import atomic_path

WINDOW_STEP = 1.5       # w/s multiply/divide the window length
CONTRAST_STEP = 0.05    # a/d lower/raise the contrast threshold
MIN_WINDOW_US, MAX_WINDOW_US = 5_000, 2_000_000


def handle_key(key: int, controls) -> None:
    """Apply one key press (OpenCV key code) to ``controls``."""
    if key < 0:
        return
    ch = chr(key & 0xFF).lower()
    if ch in ("q", "\x1b"):
        controls.quit = True
    elif ch == " ":
        controls.paused = not controls.paused
    elif ch == "w":
        controls.window_us = int(min(MAX_WINDOW_US, controls.window_us * WINDOW_STEP))
    elif ch == "s":
        controls.window_us = int(max(MIN_WINDOW_US, controls.window_us / WINDOW_STEP))
    elif ch == "d":
        controls.contrast = round(min(2.0, controls.contrast + CONTRAST_STEP), 3)
    elif ch == "a":
        controls.contrast = round(max(CONTRAST_STEP, controls.contrast - CONTRAST_STEP), 3)


class VideoRecorder:
    """mp4 (mp4v) writer; the file appears only when :meth:`close` succeeds (temp file + rename)."""

    def __init__(self, path: str | Path, fps: float = 30.0):
        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".avi"):
            raise OutputPathError(f"{self.path}: the demo records to an .mp4 (or .avi) file; choose such a name")
        self.fps = fps
        self._ctx = None
        self._tmp = None
        self._writer = None
        self._size = None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        import cv2
        if self._writer is None:
            self._ctx = atomic_path(self.path)
            self._tmp = self._ctx.__enter__()
            self._size = (rgb.shape[1], rgb.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"))
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                self._ctx.__exit__(None, None, None)
                raise OutputPathError(f"{self.path}: OpenCV cannot write this video format here; try an .avi name")
        if (rgb.shape[1], rgb.shape[0]) != self._size:  # overlay appearing later changes the width
            import cv2 as _cv2
            rgb = _cv2.resize(rgb, self._size, interpolation=_cv2.INTER_AREA)
        self._writer.write(np.ascontiguousarray(rgb[..., ::-1]))
        self.frames += 1

    def close(self, ok: bool = True) -> None:
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            with contextlib.suppress(Exception):
                self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)


def gui_available() -> bool:
    """Whether this OpenCV build can open windows (opencv-python-headless cannot)."""
    import cv2
    try:
        cv2.namedWindow("eventvision-probe", cv2.WINDOW_AUTOSIZE)
        cv2.destroyWindow("eventvision-probe")
        return True
    except cv2.error:
        return False


class WindowDisplay:
    """An OpenCV window; keys (see :func:`handle_key`) change ``controls``."""

    title = "eventvision demo"

    def __init__(self, controls):
        if not gui_available():
            raise InvalidValueError(f"this OpenCV build has no GUI (opencv-python-headless); {NO_GUI_REMEDY}")
        self.controls = controls

    def show(self, rgb: np.ndarray | None) -> bool:
        import cv2
        if rgb is not None:
            cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        handle_key(cv2.waitKey(1), self.controls)
        return not self.controls.quit

    def close(self) -> None:
        import cv2
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)
