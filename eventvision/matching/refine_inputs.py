"""The non-learned inputs of the SGBM-refine network (:mod:`eventvision.models.stereo.refine`): SGBM's
disparity with its holes filled, and the matching-cost profile around it. numpy in, numpy out (numba
kernels in :mod:`eventvision.matching._kernels`); made with the data, off the network's thread."""

from __future__ import annotations

import numpy as np

from eventvision.errors import InvalidValueError


def fill_disparity_holes(disparity: np.ndarray) -> np.ndarray:
    """NaN holes of a disparity map ``[H, W]`` (px) filled row by row with the smaller of the nearest valid
    values to the left and to the right (holes of a left-view map are mostly occluded background, which
    has the smaller disparity); rows without any valid value get the map's median (0 if none). Returns a
    float32 copy without NaN."""
    d = np.asarray(disparity, dtype=np.float32)
    if d.ndim != 2:
        raise InvalidValueError(f"disparity map must be [H, W], got shape {d.shape}")
    from eventvision.matching._kernels import fill_holes_kernel

    valid = np.isfinite(d)
    if valid.all():
        return d.copy()
    d = np.where(valid, d, np.float32(np.nan))       # +-inf count as holes too
    fallback = np.float32(np.median(d[valid])) if valid.any() else np.float32(0.0)
    return fill_holes_kernel(np.ascontiguousarray(d), fallback)


def cost_profile(left: np.ndarray, right: np.ndarray, d0: np.ndarray, offsets) -> np.ndarray:
    """Matching cost around an initial disparity: ``left``, ``right`` uint8 ``[H, W, 3]`` (or ``[H, W]``) event
    images, ``d0`` float ``[H, W]`` px, integer ``offsets`` (K) -> float32 ``[K, H, W]`` =
    mean over channels of ``|left/255 - right/255 sampled at x - d0 - k|`` (linear interpolation along the
    row, zero outside the image)."""
    from eventvision.matching._kernels import cost_profile_kernel

    left, right = np.asarray(left), np.asarray(right)
    if left.ndim == 2:
        left, right = left[..., None], right[..., None]
    d0 = np.asarray(d0, dtype=np.float32)
    if left.shape != right.shape or left.shape[:2] != d0.shape:
        raise InvalidValueError(f"cost profile: images {left.shape} / {right.shape} and disparity {d0.shape} "
                                f"must share [H, W]")
    offs = np.asarray(offsets, dtype=np.float64)
    if offs.size == 0 or np.any(offs != np.round(offs)):
        raise InvalidValueError(f"cost profile offsets must be whole pixels, got {list(offsets)}")
    return cost_profile_kernel(np.ascontiguousarray(left), np.ascontiguousarray(right), d0,
                               offs.astype(np.int64))
