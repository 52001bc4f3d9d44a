"""What the demo runs on each event window: a small :class:`Predictor` protocol and its implementations.

``predictor(window) -> Prediction``: ``window`` is a :class:`Window` (events of the last
``window_us``, plus the right camera's for stereo); the prediction carries a text line (class and
confidence) and optionally an RGB overlay image (a colour disparity map).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from eventvision.errors import UserError

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"

#: how to make each demo model when its checkpoint is missing
TRAIN_COMMANDS = {
    "gesture": "eventvision train gesture --config gesture/small",
    "stereo": "eventvision train stereo --config stereo/small",
}
CHECKPOINT_PATTERNS = {"gesture": "gesture_*.pt", "stereo": "stereo_small.pt"}


@dataclass
class Window:
    """Events of one sliding window ``[t0, t1]`` (µs) of a ``width`` x ``height`` sensor."""

    t0: int
    t1: int
    events: np.ndarray
    width: int
    height: int
    right: np.ndarray | None = None


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


def find_checkpoint(task: str) -> Path:
    """The packaged checkpoint of ``task`` (newest match), or a UserError naming it and the training command."""
    pattern = str(CHECKPOINT_DIR / CHECKPOINT_PATTERNS[task])
    matches = sorted(glob.glob(pattern), key=lambda p: Path(p).stat().st_mtime)
    if not matches:
        raise UserError(f"{pattern}: no {task} checkpoint found; train one with '{TRAIN_COMMANDS[task]}' "
                        f"(or pass --checkpoint PATH, or --model none to show events only)")
    return Path(matches[-1])


class GesturePredictor:
    """A gesture checkpoint (task ``gesture``): central square crop of the sensor, scaled to the model's
    resolution, split into its T frames (``to_frames``), class scores -> name + confidence."""

    name = "gesture"
    #: default sliding window: the synthetic training clips last 1 s
    window_ms = 1000.0

    def __init__(self, task, model, device="cpu"):
        import torch
        self.task, self.model, self.torch = task, model, torch
        self.device = next(model.parameters()).device if any(True for _ in model.parameters()) else device
        data = task.cfg.data
        self.num_frames, self.resolution = int(data.num_frames), int(data.resolution)
        self.split_by = str(getattr(data, "split_by", "number"))
        self.class_names = list(getattr(task, "class_names", [str(i) for i in range(11)]))
        self.rates = str(task.cfg.model.name) == "plif_net"  # firing rates, not logits

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, *, device: str = "cpu") -> "GesturePredictor":
        from eventvision.engine.checkpoint import load_model_from_checkpoint
        path = Path(path) if path else find_checkpoint("gesture")
        task, model, _ = load_model_from_checkpoint(path, device=device, task_name="gesture")
        return cls(task, model)

    def frames(self, window: Window) -> np.ndarray:
        """float32 [T, 2, R, R] input of the model for this window."""
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

    def __call__(self, window: Window) -> Prediction:
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
        k = int(probs.argmax())
        return Prediction(text=self.class_names[k] if k < len(self.class_names) else str(k),
                          confidence=float(probs[k]))


class StereoPredictor:
    """A stereo checkpoint (task ``stereo``): sign-SBT of both cameras over the window -> disparity map,
    shown colour-coded (magma, NaN black) beside the events."""

    name = "stereo"

    def __init__(self, task, model):
        import torch
        self.task, self.model, self.torch = task, model, torch
        self.device = next(model.parameters()).device
        self.num_bins = int(task.cfg.data.num_bins)
        self.max_disparity = float(task.cfg.data.max_disparity)
        self.window_ms = float(getattr(task.cfg.data, "window_ms", 50.0))  # the training window

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, *, device: str = "cpu") -> "StereoPredictor":
        from eventvision.engine.checkpoint import load_model_from_checkpoint
        path = Path(path) if path else find_checkpoint("stereo")
        task, model, _ = load_model_from_checkpoint(path, device=device, task_name="stereo")
        return cls(task, model)

    def __call__(self, window: Window) -> Prediction:
        from eventvision.representations.functional import stack_by_time
        from eventvision.utils.viz import colorize
        if window.right is None:
            raise UserError("stereo demo: the source gives one camera only; use a stereo recording or --source synthetic")
        torch = self.torch

        def sbt(ev):
            return torch.from_numpy(stack_by_time(ev, num_bins=self.num_bins, width=window.width, height=window.height,
                                                  t_start=window.t0, t_end=window.t1, sign=True)[None, :, None])

        batch = {"left": sbt(window.events).to(self.device), "right": sbt(window.right).to(self.device)}
        with torch.no_grad():
            disp = self.task.predict(self.model, batch)[0].float().cpu().numpy()
        valid = np.isfinite(disp)
        mean = float(disp[valid].mean()) if valid.any() else float("nan")
        return Prediction(text=f"disparity mean {mean:.1f} px", overlay=colorize(disp, vmin=0.0, vmax=self.max_disparity))


def build_predictor(task: str, model: str = "auto", checkpoint: str | None = None, device: str = "cpu"):
    """``model``: 'auto' (the task's packaged or given checkpoint, error if none) or 'none' (events only)."""
    if model == "none":
        return EventsOnly()
    if model != "auto":
        raise UserError(f"--model must be 'auto' or 'none', got '{model}'")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise UserError(f"{checkpoint}: checkpoint not found; train one with '{TRAIN_COMMANDS[task]}'")
    cls = GesturePredictor if task == "gesture" else StereoPredictor
    return cls.from_checkpoint(checkpoint, device=device)
