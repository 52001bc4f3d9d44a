"""What the demo runs on each event window: a small :class:`Predictor` protocol and its implementations.

``predictor(window) -> Prediction``: ``window`` is a :class:`Window` (events of the last ``window_us``,
``[t0, t1)``, plus the right camera's for stereo); the prediction carries a text line (class and
confidence) and optionally an RGB overlay image (a colour disparity map). The models themselves live
in :mod:`eventvision.inference`; this module only turns their answers into something to draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from eventvision.errors import InvalidValueError
from eventvision.events.recording import EventWindow
from eventvision.inference.gesture import GestureClassifier, find_checkpoint

#: the demo's window is the library's: events of the half-open interval ``[t0, t1)`` (µs)
Window = EventWindow


@dataclass
class Prediction:
    text: str = ""
    confidence: float | None = None
    overlay: np.ndarray | None = None   # RGB uint8 [h, w, 3], drawn beside the event image


class Predictor(Protocol):
    name: str
    window_ms: float   # the sliding window it was trained for (the demo's default)

    def __call__(self, window: Window) -> Prediction: ...


class EventsOnly:
    """No model: the demo shows events, FPS and latency only (``--model none``)."""

    name = "events only"
    window_ms = 100.0

    def __call__(self, window: Window) -> Prediction:
        return Prediction(text=f"{len(window.events):,} events")


class GesturePredictor(GestureClassifier):
    """The gesture checkpoint (``inference.gesture.GestureClassifier``): class name + confidence."""

    def __call__(self, window: Window) -> Prediction:
        label, confidence = GestureClassifier.__call__(self, window)
        return Prediction(text=label, confidence=confidence)


class StereoPredictor:
    """A stereo method of :mod:`eventvision.inference.stereo` (the checkpoint's network or SGBM) on the
    window's left/right events -> disparity map, shown colour-coded (magma, NaN black) beside the events."""

    name = "stereo"

    def __init__(self, method):
        self.method = method
        self.max_disparity = float(method.max_disparity)
        self.window_ms = float(method.window_ms)   # the training window (SGBM: the same 50 ms)
        self.task = getattr(method, "task", None)

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, *, device: str = "cpu") -> "StereoPredictor":
        from eventvision.inference.stereo import LearnedStereo
        return cls(LearnedStereo.from_checkpoint(path or find_checkpoint("stereo"), device=device))

    def __call__(self, window: Window) -> Prediction:
        from eventvision.utils.viz import colorize
        if window.right is None:
            raise InvalidValueError("stereo demo: the source gives one camera only; use a stereo "
                                    "recording or the synthetic source")
        disp = self.method(window)
        valid = np.isfinite(disp)
        mean = float(disp[valid].mean()) if valid.any() else float("nan")
        return Prediction(text=f"disparity mean {mean:.1f} px ({self.method.name})",
                          overlay=colorize(disp, vmin=0.0, vmax=self.max_disparity))


def build_predictor(task: str, model: str = "auto", checkpoint: str | None = None, device: str = "cpu"):
    """``model``: 'auto' (the task's packaged or given checkpoint, error if none), 'none' (events only) or,
    for stereo, 'sgbm' (OpenCV semi-global matching, no checkpoint)."""
    if model == "none":
        return EventsOnly()
    if model == "sgbm" and task == "stereo":
        from eventvision.inference.stereo import SGBMMethod
        return StereoPredictor(SGBMMethod(max_disparity=63.0))
    if model != "auto":
        raise InvalidValueError(f"demo model '{model}': use 'auto', 'none' or (stereo) 'sgbm'")
    if checkpoint is not None and not Path(checkpoint).is_file():
        from eventvision.errors import DatasetNotFoundError
        from eventvision.inference.gesture import TRAIN_COMMANDS
        raise DatasetNotFoundError(f"{checkpoint}: checkpoint not found; train one with "
                                   f"'{TRAIN_COMMANDS[task]}'")
    cls = GesturePredictor if task == "gesture" else StereoPredictor
    return cls.from_checkpoint(checkpoint, device=device)
