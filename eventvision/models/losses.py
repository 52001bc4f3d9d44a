"""Losses shared by several models."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def triangle_cross_entropy(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, centres: torch.Tensor,
                           step: float) -> torch.Tensor:
    """Cross-entropy of binned logits against a soft one-hot target (DSGN's depth supervision; also the stereo
    matching branch's).

    ``logits`` [N, D, h, w] of a feature map at any stride, ``target`` [N, H, W] (the unit of ``centres``,
    e.g. metres or px), ``valid`` bool [N, H, W], ``centres`` [D] the bins' values, ``step`` their spacing.
    The logits are upsampled to [H, W] (bilinear, cell centres at ``(j + 0.5)·s − 0.5``); at every valid
    pixel the target is the triangle ``max(0, 1 − |c_k − target| / step)`` over the bins; loss = mean over
    valid pixels of ``−Σ_k target_k · log softmax_k``; 0 (with grad) without valid pixels."""
    if not bool(valid.any()):
        return logits.sum() * 0.0
    up = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    logp = F.log_softmax(up, dim=1).permute(0, 2, 3, 1)[valid]  # [P, D]
    weights = (1.0 - (centres[None, :] - target[valid][:, None]).abs() / step).clamp(min=0.0)
    return -(weights * logp).sum(dim=1).mean()
