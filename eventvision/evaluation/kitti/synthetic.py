"""Synthetic detections made from ground truth (for tests, benchmarks and demos of the evaluator).

:func:`jitter_predictions` perturbs every non-DontCare GT object (position, size, heading, 2D box),
drops some, adds false positives and draws a score that decreases with the perturbation, so the
resulting AP is high but below 100 and differs between bbox/BEV/3D.
"""

from __future__ import annotations

import numpy as np

from eventvision.formats.kitti import OBJECT_DTYPE
from eventvision.geometry.boxes3d import alpha_from_rotation_y


def jitter_predictions(objects: np.ndarray, *, seed: int = 0, pos_std_m: float = 0.25, size_std: float = 0.05,
                       rot_std: float = 0.08, bbox_std_px: float = 3.0, drop: float = 0.1,
                       false_positive_rate: float = 0.1) -> np.ndarray:
    """Detections (OBJECT_DTYPE, same frames/track ids) from GT ``objects`` of one sequence.

    pos_std_m: std of the location error (metres, x/z; y gets a third); size_std: relative std of
    h, w, l; rot_std: heading std (rad); bbox_std_px: 2D corner std (px); drop: fraction missed;
    false_positive_rate: fraction of extra boxes (copies of kept ones moved 2-6 m, low scores).
    """
    rng = np.random.default_rng(seed)
    objs = np.asarray(objects, dtype=OBJECT_DTYPE)
    objs = objs[objs["type"] != "DontCare"]
    objs = objs[rng.random(len(objs)) >= drop].copy()
    n = len(objs)
    err = rng.normal(size=(n, 3)) * np.array([pos_std_m, pos_std_m / 3, pos_std_m])
    objs["location"] += err
    objs["dimensions"] *= 1.0 + size_std * rng.normal(size=(n, 3))
    objs["rotation_y"] += rot_std * rng.normal(size=n)
    objs["bbox"] += bbox_std_px * rng.normal(size=(n, 4))
    quality = np.exp(-np.linalg.norm(err, axis=1) / max(pos_std_m, 1e-9))
    objs["score"] = np.clip(0.5 * quality + 0.5 * rng.random(n), 0.0, 1.0)
    nfp = int(round(false_positive_rate * n))
    fp = objs[rng.choice(n, size=nfp, replace=nfp > n)].copy() if n and nfp else np.zeros(0, OBJECT_DTYPE)
    if len(fp):
        shift = rng.uniform(2.0, 6.0, size=len(fp)) * rng.choice([-1.0, 1.0], size=len(fp))
        fp["location"][:, 0] += shift
        fp["bbox"][:, [0, 2]] += (shift * 40.0)[:, None]
        fp["score"] = 0.4 * rng.random(len(fp))
        fp["track_id"] = -1
    out = np.concatenate([objs, fp])
    out["alpha"] = alpha_from_rotation_y(out["rotation_y"], out["location"][:, 0], out["location"][:, 2])
    return out[np.argsort(out["frame"], kind="stable")]
