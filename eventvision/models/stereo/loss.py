"""Stereo training loss (the task's and the search's): smooth-L1 (GC-Net/PSMNet/LEAStereo) or L1 over
valid GT pixels (:func:`eventvision.utils.disparity.valid_disparity`); the SGBM-refine matching branch's
auxiliary cross-entropy (:func:`matching_loss`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from eventvision.errors import ConfigError
from eventvision.models.losses import triangle_cross_entropy
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


def matching_loss(logits: torch.Tensor, gt: torch.Tensor, max_disparity: float, step: float) -> torch.Tensor:
    """Supervision of a correlation volume: ``logits`` [N, D, h, w] over disparities ``0, step, ..., (D-1)·step``
    px (the refine network's matching branch: 1/4 resolution, 4-px levels), ``gt`` [N, H, W] px -> the triangle
    cross-entropy (:func:`eventvision.models.losses.triangle_cross_entropy`) over valid GT pixels (a GT at or
    beyond ``D·step`` px has no level near it and adds nothing)."""
    centres = torch.arange(logits.shape[1], device=logits.device, dtype=logits.dtype) * step
    gt = gt.to(logits.dtype)
    return triangle_cross_entropy(logits, torch.nan_to_num(gt, nan=0.0), valid_disparity(gt, max_disparity),
                                  centres, step)
