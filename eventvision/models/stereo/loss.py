"""Stereo training loss (the task's and the search's): smooth-L1 (GC-Net/PSMNet/LEAStereo) or L1 over
valid GT pixels (:func:`eventvision.utils.disparity.valid_disparity`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from eventvision.errors import ConfigError
from eventvision.utils.disparity import valid_disparity

LOSSES = ("smooth_l1", "l1")


def disparity_loss(
    pred: torch.Tensor, gt: torch.Tensor, max_disparity: float, kind: str = "smooth_l1"
) -> torch.Tensor:
    """Mean loss over valid pixels of ``pred``/``gt`` [N, H, W] (px); 0 (with grad) when a batch has none."""
    if kind not in LOSSES:
        raise ConfigError(f"loss.name='{kind}' is unknown; choose one of {', '.join(LOSSES)}")
    mask = valid_disparity(gt, max_disparity)
    if not mask.any():
        return pred.sum() * 0.0
    p, g = pred[mask], gt[mask]
    return F.smooth_l1_loss(p, g) if kind == "smooth_l1" else F.l1_loss(p, g)
