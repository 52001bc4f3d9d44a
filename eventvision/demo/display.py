"""Where rendered frames go: an OpenCV window (with keys) and/or an mp4 file (written atomically)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from eventvision.errors import InvalidValueError, OutputPathError

#: what to do when OpenCV cannot open windows
NO_GUI_REMEDY = "install opencv-python, or run the demo headless, recording to a video file"

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
    """The demo's video (.mp4 or .avi): an :class:`eventvision.inference.writers.MP4Writer` opened at the
    first frame (its size is known only then); the file appears only when :meth:`close` succeeds."""

    def __init__(self, path: str | Path, fps: float = 30.0):
        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".avi"):
            raise OutputPathError(f"{self.path}: the demo records to an .mp4 (or .avi) file; choose such "
                                  f"a name")
        self.fps = fps
        self._video = None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        if self._video is None:
            from eventvision.inference.writers import MP4Writer
            self._video = MP4Writer(self.path, rgb.shape[1], rgb.shape[0], self.fps)
        self._video.append(rgb)   # an overlay appearing later changes the width: resized to the first frame
        self.frames += 1

    def close(self, ok: bool = True) -> None:
        if self._video is None:
            return
        video, self._video = self._video, None
        if ok:
            video.close()
        else:
            with contextlib.suppress(Exception):
                video.abort(RuntimeError("aborted"))


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
