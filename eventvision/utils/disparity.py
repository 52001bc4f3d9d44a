"""The suite's one valid-disparity rule (loss, metrics, datasets, baselines, benchmarks).

A ground-truth disparity (px) counts when it is finite, > 0 and, when a maximum is given, below it:
0 / NaN / inf mark "no ground truth" in every supported format (DSEC PNG 0, MVSEC NaN depth, synthetic
NaN), and values at or above the model's range cannot be predicted by a soft-argmin over it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def valid_disparity(gt: Any, max_disparity: float | None = None) -> Any:
    """Bool mask of valid GT pixels, of the same kind as ``gt`` (numpy array or torch tensor, any shape)."""
    if isinstance(gt, np.ndarray) or not hasattr(gt, "isfinite"):
        gt = np.asarray(gt)
        with np.errstate(invalid="ignore"):
            mask = np.isfinite(gt) & (gt > 0)
            if max_disparity is not None:
                mask &= gt < max_disparity
        return mask
    mask = gt.isfinite() & (gt > 0)
    if max_disparity is not None:
        mask &= gt < max_disparity
    return mask
