"""The non-learned inputs of the SGBM-refine network (:mod:`eventvision.models.stereo.refine`): SGBM's
disparity with its holes filled, and the matching-cost profile around it. numpy in, numpy out (numba
kernels in :mod:`eventvision.matching._kernels`); made with the data, off the network's thread. The cost
profile also exists on tensors (:func:`cost_profile_torch`) for the network's second pass, around its own answer."""

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


def cost_profile(left: np.ndarray, right: np.ndarray, d0: np.ndarray, offsets, *,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Matching cost around an initial disparity: ``left``, ``right`` uint8 ``[H, W, 3]`` (or ``[H, W]``) event
    images, ``d0`` float ``[H, W]`` px, integer ``offsets`` (K) -> float32 ``[K, H, W]`` =
    mean over channels of ``|left/255 - right/255 sampled at x - d0 - k|`` (linear interpolation along the
    row, zero outside the image); written into ``out`` (float32 ``[K, H, W]``, C-contiguous) when given."""
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
    shape = (offs.size,) + d0.shape
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise InvalidValueError(f"cost profile: out must be a C-contiguous float32 array of shape {shape}, got "
                                f"{out.dtype} {out.shape}")
    cost_profile_kernel(np.ascontiguousarray(left), np.ascontiguousarray(right), d0, offs.astype(np.int64), out)
    return out


def cost_profile_torch(left, right, disparity, offsets, *, backend: str = "auto"):
    """:func:`cost_profile` on tensors, batched, for a disparity computed inside a network: ``left``, ``right``
    uint8 ``[N, C, H, W]`` event images (0..255), ``disparity`` ``[N, 1, H, W]`` px, integer ``offsets`` (K) ->
    float32 ``[N, K, H, W]``, no gradient (it depends on inputs and on a detached disparity only). On the CPU
    the numba kernel of :func:`cost_profile` runs per sample (2.2x faster than ``grid_sample`` at 346x260, one
    thread, ``benchmarks/bench_refine.py``); elsewhere one bilinear ``grid_sample`` per batch, tested equal.
    ``backend``: ``"auto"`` (by device), ``"numba"`` or ``"grid_sample"``."""
    import torch
    import torch.nn.functional as F

    if backend not in ("auto", "numba", "grid_sample"):
        raise InvalidValueError(f"cost profile backend must be auto, numba or grid_sample, got {backend!r}")
    disparity = disparity.detach().float()
    if backend == "numba" or (backend == "auto" and right.device.type == "cpu"):
        to_hwc = lambda t: t.permute(1, 2, 0).contiguous().numpy()  # noqa: E731
        n, _, h, w = left.shape
        out = np.empty((n, len(offsets), h, w), dtype=np.float32)
        for i in range(n):
            cost_profile(to_hwc(left[i]), to_hwc(right[i]), disparity[i, 0].numpy(), offsets, out=out[i])
        return torch.from_numpy(out)
    n, _, h, w = right.shape
    k = len(offsets)
    left, right = left.float() / 255.0, right.float() / 255.0
    shift = torch.as_tensor([float(o) for o in offsets], device=right.device).view(1, k, 1, 1)
    xs = torch.arange(w, dtype=right.dtype, device=right.device).view(1, 1, 1, w)
    gx = (xs - disparity - shift) * (2.0 / max(w - 1, 1)) - 1.0               # [N, K, H, W]
    gy = torch.arange(h, dtype=right.dtype, device=right.device).view(1, 1, h, 1) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy.expand_as(gx)], dim=-1).reshape(n, k * h, w, 2)   # the K offsets stacked in height
    warped = F.grid_sample(right, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return (left.unsqueeze(2) - warped.view(n, -1, k, h, w)).abs().mean(1)
