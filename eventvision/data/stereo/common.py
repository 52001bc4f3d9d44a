"""Pieces shared by the stereo datasets: window encoding (SBT or SGBM-refine inputs), sample layout, cropping.

Sample layout (what :class:`eventvision.tasks.stereo.StereoTask` and ``eventvision.models.stereo``
consume)::

    {"left":  float32 [T, 1, H, W]   sign-SBT of the left camera's window (T = num_bins, values -1/0/+1),
     "right": float32 [T, 1, H, W]   same for the right camera,
     "disparity": float32 [H, W]     left-view disparity in px, NaN where unknown,
     "meta": {"t_end_us": int, "sequence": str, "index": int}}

With the ``sgbm_refine`` encoding (``model.arch: sgbm_refine``) the sample holds ``"left"``: uint8 [3, H, W]
time surfaces and ``"guide"``: float32 [2 + K, H, W] (filled SGBM disparity px, answered mask, K matching
costs) instead of ``left``/``right``; see :class:`SGBMRefineEncoder`. A dataset encodes both cameras of a
window with one *pair encoder*
(:func:`make_pair_encoder`): ``encoder(left_events, right_events, t_start, t_end) -> dict of arrays``.

Batches (``torch.utils.data.default_collate``) are ``[N, T, 1, H, W]``, the ``[N, B, P, H, W]`` input of
:class:`eventvision.models.stereo.SpikeDHSStereo` (B = SBT bins, P = 1 polarity channel).

The window of a GT timestamp ``t`` is ``[t - window_us, t)`` (µs): events strictly before the GT
moment, as in the DSEC reference loader. SBT splits it into ``num_bins`` equal-time bins (5 × 10 ms
for the 50 ms window) and keeps the sign of the per-pixel polarity sum, the SpikeDHS/DTC input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from eventvision.errors import ConfigError
from eventvision.matching.refine_inputs import cost_profile, fill_disparity_holes
from eventvision.matching.sgbm import event_image_pair, sgbm_disparity
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


#: window encodings a stereo dataset can make (``sbt``: SpikeDHS input; ``sgbm_refine``: SGBMRefineStereo input)
ENCODINGS = ("sbt", "sgbm_refine")


@dataclass(frozen=True)
class SBTPairEncoder:
    """Both cameras' events of ``[t_start, t_end)`` -> ``{"left", "right"}``: float32 [num_bins, 1, H, W] sign-SBT."""

    width: int
    height: int
    num_bins: int = 5

    def __call__(self, left: np.ndarray, right: np.ndarray, t_start: int, t_end: int) -> dict:
        enc = WindowEncoder(width=self.width, height=self.height, num_bins=self.num_bins)
        return {"left": enc(left, t_start, t_end), "right": enc(right, t_start, t_end)}


@dataclass(frozen=True)
class SGBMRefineEncoder:
    """Both cameras' rectified events of ``[t_start, t_end)`` -> the inputs of
    :class:`eventvision.models.stereo.refine.SGBMRefineStereo`::

        {"left": uint8 [3, H, W],          # OFF / ON / both time surfaces of the left camera (event_image)
         "guide": float32 [2 + K, H, W]}   # SGBM disparity px (holes filled), answered 0/1, K matching costs

    ``mode``: OpenCV's ``"3way"`` (default: 2-3x faster than full SGBM with about the same answers, the
    network corrects the rest) or ``"sgbm"``; ``block_size`` and ``image`` as in
    :func:`eventvision.matching.sgbm.sgbm_disparity`; ``offsets`` (px) where the matching cost around
    SGBM's answer is sampled (:func:`eventvision.matching.refine_inputs.cost_profile`); ``right_image``: also
    ``"right"`` uint8 [3, H, W], the right camera's time surface (for ``model.refine.correlation``)."""

    width: int
    height: int
    max_disparity: float = 63.0
    mode: str = "3way"
    block_size: int = 9
    image: str = "time_surface_polarity"
    offsets: tuple[int, ...] = (-4, -2, -1, 0, 1, 2, 4)
    right_image: bool = False

    def __call__(self, left: np.ndarray, right: np.ndarray, t_start: int, t_end: int) -> dict:
        img_l, img_r = event_image_pair(left, right, width=self.width, height=self.height, t_start=t_start,
                                        t_end=t_end, kind=self.image)
        disp = sgbm_disparity(img_l, img_r, max_disparity=self.max_disparity, block_size=self.block_size,
                              mode=self.mode)
        guide = np.empty((2 + len(self.offsets), self.height, self.width), dtype=np.float32)
        guide[0] = fill_disparity_holes(disp)
        guide[1] = np.isfinite(disp)
        cost_profile(img_l, img_r, guide[0], self.offsets, out=guide[2:])      # written in place: no concatenation
        out = {"left": _channels_first(img_l), "guide": guide}
        if self.right_image:
            out["right"] = _channels_first(img_r)
        return out


def _channels_first(image: np.ndarray) -> np.ndarray:
    """[H, W] or [H, W, C] -> contiguous [C, H, W]."""
    return np.ascontiguousarray(image[None] if image.ndim == 2 else image.transpose(2, 0, 1))


def make_pair_encoder(encoding: Mapping[str, Any] | None, *, width: int, height: int, num_bins: int = 5,
                      max_disparity: float = 63.0):
    """The pair encoder of ``encoding`` (``{"kind": "sbt"}`` (default) or ``{"kind": "sgbm_refine", "mode":
    ..., "block_size": ..., "image": ..., "offsets": ..., "right_image": ..., "max_disparity": ...}``) for a
    ``width`` x ``height`` sensor; an encoding's ``max_disparity`` (the SGBM search range, px) wins over the
    argument."""
    opts = dict(encoding or {})
    kind = opts.pop("kind", "sbt")
    max_disparity = float(opts.pop("max_disparity", max_disparity))
    if kind == "sbt":
        return SBTPairEncoder(width=int(width), height=int(height), num_bins=int(num_bins))
    if kind == "sgbm_refine":
        known = {"mode", "block_size", "image", "offsets", "right_image"}
        if "offsets" in opts:
            opts["offsets"] = tuple(int(k) for k in opts["offsets"])
        unknown = sorted(set(opts) - known)
        if unknown:
            raise ConfigError(f"model.sgbm: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return SGBMRefineEncoder(width=int(width), height=int(height), max_disparity=float(max_disparity), **opts)
    raise ConfigError(f"stereo window encoding '{kind}' is unknown; choose one of {', '.join(ENCODINGS)}")


def make_sample(inputs: Mapping[str, np.ndarray], disparity: np.ndarray | None, *, t_end_us: int,
                sequence: str = "", index: int = 0) -> dict:
    """Assemble the sample dict (see module docstring) from a pair encoder's ``inputs``; ``disparity`` None ->
    all NaN."""
    if disparity is None:
        disparity = np.full(inputs["left"].shape[-2:], np.nan, dtype=np.float32)
    return {**inputs, "disparity": np.asarray(disparity, dtype=np.float32),
            "meta": {"t_end_us": int(t_end_us), "sequence": str(sequence), "index": int(index)}}


def crop_sample(sample: dict, crop: tuple[int, int] | None, rng: np.random.Generator | None) -> dict:
    """Crop every image of the sample (``left``, ``right``, ``disparity``, ``guide``: arrays whose last two axes
    are the disparity map's) to ``crop = (H, W)``: random with ``rng``, else centred.

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
    for key, value in sample.items():
        if isinstance(value, np.ndarray) and value.dtype.fields is None and value.shape[-2:] == (height, width):
            out[key] = np.ascontiguousarray(value[..., y0:y0 + ch, x0:x0 + cw])
    return out


def mask_disparity(disparity: np.ndarray, max_disparity: float) -> np.ndarray:
    """NaN out non-finite, ``<= 0`` and ``>= max_disparity`` values (a copy, float32; the evaluator's mask)."""
    from eventvision.utils.disparity import valid_disparity

    d = np.array(disparity, dtype=np.float32, copy=True)
    d[~valid_disparity(d, max_disparity)] = np.nan
    return d
