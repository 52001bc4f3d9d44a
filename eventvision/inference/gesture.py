"""Gesture inference on event windows (the live demo's model).

    clf = GestureClassifier.from_checkpoint()              # the packaged gesture checkpoint
    label, confidence = clf(window)                        # window: EventWindow of any sensor size
    for result in GesturePredictor(clf, open_recording("rec.aedat4"), window_us=1_000_000):
        print(result.window.t0, result.label, result.confidence)

The window's events are cropped to the central square of the sensor, scaled to the model's resolution
and split into its T frames (``to_frames``, the training input); class scores become the class name
and a confidence (softmax, or the normalised firing rates of the PLIF net).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from eventvision.errors import DatasetNotFoundError, InvalidValueError
from eventvision.events.recording import EventWindow

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
#: how to make each packaged model when its checkpoint is missing
TRAIN_COMMANDS = {
    "gesture": "eventvision train gesture",  # the task's default config, gesture/small
    "stereo": "eventvision train stereo",  # the task's default config, stereo/refine
}
CHECKPOINT_PATTERNS = {"gesture": "gesture_*.pt", "stereo": "stereo_refine.pt"}


def find_checkpoint(task: str, folder: str | Path | None = None) -> Path:
    """The packaged checkpoint of ``task`` (newest match in ``folder``, default the package's), or a
    :class:`DatasetNotFoundError` naming the file pattern and the training command."""
    pattern = str(Path(folder or CHECKPOINT_DIR) / CHECKPOINT_PATTERNS[task])
    matches = sorted(glob.glob(pattern), key=lambda p: Path(p).stat().st_mtime)
    if not matches:
        raise DatasetNotFoundError(f"{pattern}: no {task} checkpoint found; train one with "
                                   f"'{TRAIN_COMMANDS[task]}' or give a checkpoint path")
    return Path(matches[-1])


class GestureClassifier:
    """A gesture checkpoint (task ``gesture``) on one :class:`EventWindow` -> (class name, confidence)."""

    name = "gesture"
    #: default window: the synthetic training clips last 1 s
    window_ms = 1000.0

    def __init__(self, task, model):
        import torch
        self.task, self.model, self.torch = task, model, torch
        param = next(model.parameters(), None)
        self.device = param.device if param is not None else torch.device("cpu")
        data = task.cfg.data
        self.num_frames, self.resolution = int(data.num_frames), int(data.resolution)
        self.split_by = str(getattr(data, "split_by", "number"))
        self.class_names = list(getattr(task, "class_names", [str(i) for i in range(11)]))
        self.rates = str(task.cfg.model.name) == "plif_net"  # firing rates, not logits

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, *, device="cpu",
                        folder=None) -> "GestureClassifier":
        """Load ``path`` (default: the packaged ``gesture_*.pt`` found in ``folder``)."""
        from eventvision.engine.checkpoint import load_model_from_checkpoint
        path = Path(path) if path else find_checkpoint("gesture", folder)
        task, model, _ = load_model_from_checkpoint(path, device=device, task_name="gesture")
        return cls(task, model)

    def frames(self, window: EventWindow) -> np.ndarray:
        """float32 [T, 2, R, R] input of the model for this window (central square crop, scaled to R)."""
        from eventvision.representations.functional import to_frames
        ev = window.events
        side = min(window.width, window.height)
        x0, y0 = (window.width - side) // 2, (window.height - side) // 2
        keep = (ev["x"] >= x0) & (ev["x"] < x0 + side) & (ev["y"] >= y0) & (ev["y"] < y0 + side)
        crop = ev[keep].copy()
        crop["x"] = (crop["x"].astype(np.int64) - x0) * self.resolution // side
        crop["y"] = (crop["y"].astype(np.int64) - y0) * self.resolution // side
        return to_frames(crop, num_frames=self.num_frames, width=self.resolution, height=self.resolution,
                         split_by=self.split_by)

    def probabilities(self, window: EventWindow) -> np.ndarray:
        """Class probabilities float32 [num_classes] for this window."""
        torch = self.torch
        frames = torch.from_numpy(self.frames(window))[None].to(self.device)
        with torch.no_grad():
            self.task.reset(self.model)  # each window is a new sample (predict does not reset)
            scores = self.task.predict(self.model, {"frames": frames})[0].float().cpu()
        if self.rates:
            total = float(scores.clamp(min=0).sum())
            probs = scores.clamp(min=0) / total if total > 0 else torch.full_like(scores, 1.0 / len(scores))
        else:
            probs = scores.softmax(0)
        return probs.numpy()

    def __call__(self, window: EventWindow) -> tuple[str, float]:
        probs = self.probabilities(window)
        k = int(probs.argmax())
        return (self.class_names[k] if k < len(self.class_names) else str(k)), float(probs[k])


@dataclass
class GestureResult:
    window: EventWindow
    label: str
    confidence: float


class GesturePredictor:
    """Consecutive windows ``[t0, t0 + window_us)`` of a mono recording through a classifier."""

    def __init__(self, classifier: GestureClassifier, recording, *, window_us: int = 1_000_000):
        if int(window_us) <= 0:
            raise InvalidValueError(f"gesture window length must be positive, got {window_us} µs")
        self.classifier, self.recording, self.window_us = classifier, recording, int(window_us)

    def __iter__(self) -> Iterator[GestureResult]:
        rec = self.recording
        for t0, t1, events in rec.iter_windows(self.window_us):
            window = EventWindow(int(t0), int(t1), events, rec.width, rec.height)
            yield GestureResult(window, *self.classifier(window))
