"""Stereo metrics: disparity errors (EPE/MAE, nPE, RMSE) and MVSEC depth errors (mean/median, 1PA).

Definitions (all over *valid* ground-truth pixels: finite, ``> 0`` and, when ``max_disp`` is
given, ``< max_disp``; disparity in pixels, depth in metres):

* ``epe`` = ``mae`` = mean ``|d_hat - d|`` (end-point error; DSEC reports it as MAE)
* ``{n}pe`` = % of valid pixels with ``|d_hat - d| > n`` (n = 1, 2, 3; DSEC "1PE", "2PE")
* ``rmse`` = ``sqrt(mean (d_hat - d)^2)``
* ``1pa`` = % of valid pixels with ``|d_hat - d| < 1`` -- the *one-pixel accuracy* of
  Tulyakov et al. (DDES, ICCV 2019), used by StereoSpike/SpikeDHS on MVSEC
* depth (needs ``focal_baseline`` = f*B in pixel*metres, MVSEC indoor_flying 19.941772,
  outdoor_day 19.635287): ``depth = fB / disparity``; ``mean_depth_error_m`` = mean
  ``|fB/d_hat - fB/d|``, ``median_depth_error_m`` its median over all valid pixels of the whole
  evaluation (exact to :data:`DEPTH_HIST_BIN_M` = 0.1 mm: accumulated as a histogram so that it
  is mergeable across ranks in bounded memory). ``d_hat`` is clamped below at ``min_pred_disp``
  (1e-3 px) so that a zero prediction gives a large, finite depth error.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from eventvision.evaluation.base import Evaluator

#: MVSEC focal length x baseline (pixel * metre) per scene family
MVSEC_FOCAL_BASELINE = {"indoor_flying": 19.941772, "outdoor_day": 19.635287}
#: bin width (m) and range of the depth-error histogram used for the exact-to-bin median
DEPTH_HIST_BIN_M = 1e-4
DEPTH_HIST_MAX_M = 100.0
_N_BINS = int(round(DEPTH_HIST_MAX_M / DEPTH_HIST_BIN_M))


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def valid_mask(gt: np.ndarray, max_disp: float | None = None) -> np.ndarray:
    """Valid ground-truth pixels (numpy bool): :func:`eventvision.utils.disparity.valid_disparity`."""
    from eventvision.utils.disparity import valid_disparity
    return valid_disparity(_np(gt), max_disp)


def event_support_mask(events: np.ndarray, width: int, height: int, radius: int = 2) -> np.ndarray:
    """Pixels with at least one of ``events`` (fields ``x``, ``y``, px) within ``radius`` px (Chebyshev
    distance) -> bool [height, width]. Where it is False a matcher had no event of this camera to go on, so
    the disparity there can only come from context or priors (an error decomposition, not a metric)."""
    import cv2

    hit = np.zeros((height, width), np.uint8)
    x, y = np.asarray(events["x"], np.int64), np.asarray(events["y"], np.int64)
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    hit[y[inside], x[inside]] = 1
    if radius > 0:
        hit = cv2.dilate(hit, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    return hit.astype(bool)


def _errors(pred, gt, max_disp):
    pred, gt = _np(pred), _np(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground truth shape {gt.shape}")
    mask = valid_mask(gt, max_disp)
    return pred[mask] - gt[mask], pred[mask], gt[mask]


def epe(pred, gt, max_disp: float | None = None) -> float:
    """Mean absolute disparity error (px) over valid pixels (NaN if none)."""
    e, _, _ = _errors(pred, gt, max_disp)
    return float(np.abs(e).mean()) if e.size else float("nan")


mae = epe


def npe(pred, gt, n: float, max_disp: float | None = None) -> float:
    """% of valid pixels with ``|d_hat - d| > n``."""
    e, _, _ = _errors(pred, gt, max_disp)
    return float(100.0 * (np.abs(e) > n).mean()) if e.size else float("nan")


def rmse(pred, gt, max_disp: float | None = None) -> float:
    e, _, _ = _errors(pred, gt, max_disp)
    return float(np.sqrt((e ** 2).mean())) if e.size else float("nan")


def one_pixel_accuracy(pred, gt, max_disp: float | None = None) -> float:
    """1PA: % of valid pixels with ``|d_hat - d| < 1`` px."""
    e, _, _ = _errors(pred, gt, max_disp)
    return float(100.0 * (np.abs(e) < 1.0).mean()) if e.size else float("nan")


def depth_errors(pred, gt, focal_baseline: float, max_disp: float | None = None,
                 min_pred_disp: float = 1e-3) -> np.ndarray:
    """Per-pixel ``|fB/d_hat - fB/d|`` (m) over valid pixels (1-D array)."""
    _, p, g = _errors(pred, gt, max_disp)
    return np.abs(focal_baseline / np.maximum(p, min_pred_disp) - focal_baseline / g)


def mean_depth_error(pred, gt, focal_baseline: float, max_disp: float | None = None) -> float:
    d = depth_errors(pred, gt, focal_baseline, max_disp)
    return float(d.mean()) if d.size else float("nan")


def median_depth_error(pred, gt, focal_baseline: float, max_disp: float | None = None) -> float:
    d = depth_errors(pred, gt, focal_baseline, max_disp)
    return float(np.median(d)) if d.size else float("nan")


def _hist_median(hist: np.ndarray) -> float:
    """Median of the values binned in ``hist`` (bin centre; lower median for even counts)."""
    total = int(hist.sum())
    if total == 0:
        return float("nan")
    idx = int(np.searchsorted(np.cumsum(hist), (total + 1) // 2))
    return (idx + 0.5) * DEPTH_HIST_BIN_M


class StereoEvaluator(Evaluator):
    """Accumulates disparity (and, with ``focal_baseline``, depth) errors over a split.

    ``process(inputs, outputs)``: ``inputs["disparity"]`` ``[N, H, W]`` (NaN/0 = invalid; tensor or
    array), ``outputs`` the predicted disparity ``[N, H, W]`` (or a dict with ``"disparity"``).
    Keeps only sums, counts and a fixed-size depth-error histogram, so memory does not grow.

    A NaN prediction means "no answer" (SGBM leaves pixels it cannot match): such pixels are left out
    of every error and counted; ``answered_pct`` = % of valid GT pixels with an answer (100 for a
    network). The errors of a method that abstains are therefore over the pixels it answers.

    ``pictures``: keep the first that many samples (prediction and GT) for :meth:`save_pictures`.
    """

    def __init__(self, max_disp: float | None = None, focal_baseline: float | None = None,
                 thresholds: Sequence[float] = (1, 2, 3), min_pred_disp: float = 1e-3, pictures: int = 4):
        self.max_disp = max_disp
        self.focal_baseline = focal_baseline
        self.thresholds = tuple(thresholds)
        self.min_pred_disp = min_pred_disp
        self.pictures = int(pictures)
        self.reset()

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "StereoEvaluator":
        """Keys: ``max_disp``, ``focal_baseline`` (number or ``indoor_flying``/``outdoor_day``), ``thresholds``."""
        fb = cfg.get("focal_baseline")
        if isinstance(fb, str):
            fb = MVSEC_FOCAL_BASELINE[fb]
        return cls(max_disp=cfg.get("max_disp"), focal_baseline=fb, thresholds=tuple(cfg.get("thresholds", (1, 2, 3))))

    def reset(self) -> None:
        self._s = {"count": 0, "abs": 0.0, "sq": 0.0, "acc1": 0, "depth_abs": 0.0,
                   "over": [0] * len(self.thresholds), "unanswered": 0}
        self._kept: list[tuple[np.ndarray, np.ndarray]] = []
        self._hist = np.zeros(_N_BINS + 1, dtype=np.int64) if self.focal_baseline else None

    def process(self, inputs: Any, outputs: Any) -> None:
        gt = inputs["disparity"] if isinstance(inputs, Mapping) else inputs
        pred = outputs["disparity"] if isinstance(outputs, Mapping) else outputs
        e, p, g = _errors(pred, gt, self.max_disp)
        answered = np.isfinite(p)
        s = self._s
        s["unanswered"] += int(answered.size - answered.sum())
        e, p, g = e[answered], p[answered], g[answered]
        a = np.abs(e)
        s["count"] += int(a.size)
        s["abs"] += float(a.sum())
        s["sq"] += float((e ** 2).sum())
        s["acc1"] += int((a < 1.0).sum())
        s["over"] = [c + int((a > n).sum()) for c, n in zip(s["over"], self.thresholds)]
        if self._hist is not None and a.size:
            fb = self.focal_baseline
            d = np.abs(fb / np.maximum(p, self.min_pred_disp) - fb / g)
            s["depth_abs"] += float(d.sum())
            bins = np.minimum((d / DEPTH_HIST_BIN_M).astype(np.int64), _N_BINS)
            self._hist += np.bincount(bins, minlength=_N_BINS + 1)
        if len(self._kept) < self.pictures:
            pred_np, gt_np = _np(pred), _np(gt)
            if pred_np.ndim == 2:
                pred_np, gt_np = pred_np[None], gt_np[None]
            for pk, gk in zip(pred_np, gt_np):
                if len(self._kept) < self.pictures:
                    self._kept.append((pk.astype(np.float32), gk.astype(np.float32)))

    def evaluate(self) -> dict[str, float]:
        s = self._s
        n = s["count"]
        nan = float("nan")
        out = {"epe": s["abs"] / n if n else nan}
        out["mae"] = out["epe"]
        out["rmse"] = float(np.sqrt(s["sq"] / n)) if n else nan
        for t, c in zip(self.thresholds, s["over"]):
            out[f"{t:g}pe"] = 100.0 * c / n if n else nan
        out["1pa"] = 100.0 * s["acc1"] / n if n else nan
        if self._hist is not None:
            out["mean_depth_error_m"] = s["depth_abs"] / n if n else nan
            out["median_depth_error_m"] = _hist_median(self._hist)
        out["valid_pixels"] = float(n)
        total = n + s["unanswered"]
        out["answered_pct"] = 100.0 * n / total if total else nan
        return out

    def save_pictures(self, out_dir) -> list:
        """``disparity_NNN.png`` per kept sample: prediction | GT | absolute error (:func:`disparity_picture`)."""
        from pathlib import Path

        from eventvision.utils.viz import save_png
        paths = []
        for k, (pred, gt) in enumerate(self._kept):
            path = Path(out_dir) / f"disparity_{k:03d}.png"
            save_png(path, disparity_picture(pred, gt, max_disp=self.max_disp))
            paths.append(path)
        return paths

    def state(self) -> dict:
        return {"s": {k: (list(v) if isinstance(v, list) else v) for k, v in self._s.items()},
                "hist": None if self._hist is None else self._hist.copy()}

    def merge(self, states: list[dict]) -> None:
        self.reset()
        for st in states:
            for k, v in st["s"].items():
                if k == "over":
                    self._s[k] = [a + b for a, b in zip(self._s[k], v)]
                else:
                    self._s[k] += v
            if self._hist is not None and st["hist"] is not None:
                self._hist += st["hist"]


def disparity_picture(pred, gt, *, max_disp: float | None = None, error_max_px: float = 5.0) -> np.ndarray:
    """RGB uint8 [zH + 14, 3 zW + 8, 3] (z: zoom of frames under 200 px): predicted and GT disparity
    (magma, one scale 0..max, NaN black) and ``|pred - gt|`` on valid GT pixels (0..``error_max_px`` px,
    black where GT is invalid or there is no answer), each panel titled."""
    import cv2

    from eventvision.utils.viz import colorize
    pred, gt = _np(pred).astype(np.float32), _np(gt).astype(np.float32)
    valid = valid_mask(gt, max_disp)
    gt_shown = np.where(valid, gt, np.nan).astype(np.float32)
    vmax = float(max_disp) if max_disp else float(np.nanmax(gt_shown)) if valid.any() else 1.0
    err = np.where(valid & np.isfinite(pred), np.abs(pred - gt), np.nan).astype(np.float32)
    panels = [colorize(pred, vmin=0.0, vmax=vmax), colorize(gt_shown, vmin=0.0, vmax=vmax),
              colorize(err, vmin=0.0, vmax=error_max_px, cmap="viridis")]
    mean_err = float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")
    titles = ["prediction", "ground truth", f"|error| 0-{error_max_px:g} px, mean {mean_err:.2f}"]
    zoom = max(1, int(np.ceil(200 / pred.shape[1])))          # small crops enlarged so the titles fit
    panels = [p.repeat(zoom, axis=0).repeat(zoom, axis=1) for p in panels]
    height, width = panels[0].shape[:2]
    canvas = np.full((height + 14, 3 * width + 8, 3), 255, dtype=np.uint8)
    for k, (panel, title) in enumerate(zip(panels, titles)):
        x0 = k * (width + 4)
        canvas[14:, x0:x0 + width] = panel
        cv2.putText(canvas, title, (x0 + 1, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
