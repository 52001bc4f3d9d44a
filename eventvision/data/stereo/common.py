"""Pieces shared by the stereo datasets: window encoding (SBT), sample layout, cropping.

Sample layout (what :class:`eventvision.tasks.stereo.StereoTask` and ``eventvision.models.stereo``
consume)::

    {"left":  float32 [T, 1, H, W]   sign-SBT of the left camera's window (T = num_bins, values -1/0/+1),
     "right": float32 [T, 1, H, W]   same for the right camera,
     "disparity": float32 [H, W]     left-view disparity in px, NaN where unknown,
     "meta": {"t_end_us": int, "sequence": str, "index": int}}

Batches (``torch.utils.data.default_collate``) are ``[N, T, 1, H, W]``, the ``[N, B, P, H, W]`` input of
:class:`eventvision.models.stereo.SpikeDHSStereo` (B = SBT bins, P = 1 polarity channel).

The window of a GT timestamp ``t`` is ``[t - window_us, t)`` (µs): events strictly before the GT
moment, as in the DSEC reference loader. SBT splits it into ``num_bins`` equal-time bins (5 × 10 ms
for the 50 ms window) and keeps the sign of the per-pixel polarity sum, the SpikeDHS/DTC input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eventvision.representations import functional as R


@dataclass(frozen=True)
class WindowEncoder:
    """Events of one camera in ``[t_start, t_end)`` -> float32 [num_bins, 1, H, W] (sign of per-bin polarity sum)."""

    width: int
    height: int
    num_bins: int = 5
    sign: bool = True

    def __call__(self, events: np.ndarray, t_start: int, t_end: int) -> np.ndarray:
        sbt = R.stack_by_time(events, num_bins=self.num_bins, width=self.width, height=self.height,
                              t_start=int(t_start), t_end=int(t_end), sign=self.sign)
        return np.ascontiguousarray(sbt[:, None], dtype=np.float32)

    @classmethod
    def from_config(cls, data_cfg, *, width: int, height: int) -> "WindowEncoder":
        return cls(width=width, height=height, num_bins=int(data_cfg.num_bins))


def make_sample(left: np.ndarray, right: np.ndarray, disparity: np.ndarray | None, *, t_end_us: int,
                sequence: str = "", index: int = 0) -> dict:
    """Assemble the sample dict (see module docstring); ``disparity`` None -> all NaN."""
    if disparity is None:
        disparity = np.full(left.shape[-2:], np.nan, dtype=np.float32)
    return {"left": left, "right": right, "disparity": np.asarray(disparity, dtype=np.float32),
            "meta": {"t_end_us": int(t_end_us), "sequence": str(sequence), "index": int(index)}}


def crop_sample(sample: dict, crop: tuple[int, int] | None, rng: np.random.Generator | None) -> dict:
    """Crop ``left``/``right``/``disparity`` to ``crop = (H, W)``: random with ``rng``, else centred.

    The same window is cut from both views (the images are rectified: disparity stays valid).
    Sizes larger than the sample are clamped.
    """
    if not crop:
        return sample
    height, width = sample["disparity"].shape
    ch, cw = min(int(crop[0]), height), min(int(crop[1]), width)
    if rng is None:
        y0, x0 = (height - ch) // 2, (width - cw) // 2
    else:
        y0, x0 = int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1))
    out = dict(sample)
    out["left"] = np.ascontiguousarray(sample["left"][..., y0:y0 + ch, x0:x0 + cw])
    out["right"] = np.ascontiguousarray(sample["right"][..., y0:y0 + ch, x0:x0 + cw])
    out["disparity"] = np.ascontiguousarray(sample["disparity"][y0:y0 + ch, x0:x0 + cw])
    return out


def mask_disparity(disparity: np.ndarray, max_disparity: float) -> np.ndarray:
    """NaN out non-finite, ``<= 0`` and ``>= max_disparity`` values (a copy, float32; the evaluator's mask)."""
    from eventvision.utils.disparity import valid_disparity

    d = np.array(disparity, dtype=np.float32, copy=True)
    d[~valid_disparity(d, max_disparity)] = np.nan
    return d
