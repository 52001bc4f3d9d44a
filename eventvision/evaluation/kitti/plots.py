"""Pictures of 3D detection results: BEV and image overlays, PR curves of the KITTI AP.

Boxes in the BEV overlay are grid-frame boxes (x forward, y left, metres; see
:mod:`eventvision.geometry.boxes3d`), drawn top-down with x up and y to the left. All images are RGB uint8.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from eventvision.geometry.boxes3d import (boxes3d_from_objects, corners_3d, objects_to_grid_boxes,
                                         project_points)

CLASS_COLOURS = {"Car": (255, 80, 80), "Pedestrian": (80, 255, 80), "Cyclist": (80, 160, 255)}
_LABEL_COLOURS = list(CLASS_COLOURS.values())
_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7))


def bev_overlay(boxes: np.ndarray, labels: np.ndarray, gt_boxes: np.ndarray | None, *,
                x_range=(2.0, 53.2), y_range=(-28.8, 28.8), px_per_m: float = 8.0,
                points: np.ndarray | None = None) -> np.ndarray:
    """Top view of the area ``x_range`` x ``y_range`` (m) with detections [K, 7] (colour per class index in
    ``labels``) and, if given, ground truth [M, 7] (white) and LiDAR ``points`` [N, 2] (x, y grid frame, m;
    grey dots); grey lines every 10 m. uint8 RGB [H, W, 3]."""
    import cv2

    (x0, x1), (y0, y1) = x_range, y_range
    h, w = int((x1 - x0) * px_per_m), int((y1 - y0) * px_per_m)
    img = np.full((h, w, 3), 24, dtype=np.uint8)
    for xm in range(int(math.ceil(x0 / 10) * 10), int(x1) + 1, 10):
        r = int(h - (xm - x0) * px_per_m)
        cv2.line(img, (0, r), (w - 1, r), (60, 60, 60), 1)
    if points is not None and len(points):
        rows = (h - (points[:, 0] - x0) * px_per_m).astype(np.int64)
        cols = ((y1 - points[:, 1]) * px_per_m).astype(np.int64)
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        img[rows[inside], cols[inside]] = 130

    def draw(b, col, thick):
        c, s = math.cos(b[6]), math.sin(b[6])
        pts = []
        for dx, dy in ((0.5, 0.5), (0.5, -0.5), (-0.5, -0.5), (-0.5, 0.5)):
            px = b[0] + c * dx * b[3] - s * dy * b[4]
            py = b[1] + s * dx * b[3] + c * dy * b[4]
            pts.append((int((y1 - py) * px_per_m), int(h - (px - x0) * px_per_m)))
        cv2.polylines(img, [np.array(pts, dtype=np.int32)], True, col, thick)
        front = ((pts[0][0] + pts[1][0]) // 2, (pts[0][1] + pts[1][1]) // 2)
        centre = (int((y1 - b[1]) * px_per_m), int(h - (b[0] - x0) * px_per_m))
        cv2.line(img, centre, front, col, 1)

    if gt_boxes is not None:
        for b in gt_boxes:
            draw(b, (255, 255, 255), 1)
    for b, lab in zip(boxes, labels):
        draw(b, _LABEL_COLOURS[int(lab) % 3], 2)
    return img


def image_overlay(image_rgb: np.ndarray, objects: np.ndarray, P2: np.ndarray) -> np.ndarray:
    """Left image [H, W, 3] with the projected 3D boxes of ``objects`` (KITTI camera frame). uint8 RGB."""
    import cv2

    img = np.ascontiguousarray(image_rgb).copy()
    objects = objects[objects["location"][:, 2] > 0.5] if len(objects) else objects
    if len(objects):
        uv, _ = project_points(corners_3d(boxes3d_from_objects(objects)), P2)
        for o, pts in zip(objects, uv):
            p = np.clip(pts, -1e5, 1e5).astype(np.int32)
            col = CLASS_COLOURS.get(str(o["type"]), (255, 255, 0))
            for a, b in _EDGES:
                cv2.line(img, tuple(int(v) for v in p[a]), tuple(int(v) for v in p[b]), col, 1)
    return img


def lidar_overlay(image_rgb: np.ndarray, depth: np.ndarray, *, near_m: float = 4.0) -> np.ndarray:
    """Image [H, W, 3] at 40 % brightness with each pixel that has a LiDAR depth (``depth`` float32 [H, W]
    metres, 0 = none; :func:`eventvision.geometry.depth.lidar_depth_map`) coloured by its inverse depth (jet:
    ``near_m`` and nearer red, far blue), drawn 2x2 px so a sparse scan stays visible. uint8 RGB."""
    import cv2

    from eventvision.utils.viz import colorize

    img = (np.asarray(image_rgb, dtype=np.float32) * 0.4).astype(np.uint8)
    inverse = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-6), 0.0).astype(np.float32)
    inverse = cv2.dilate(inverse, np.ones((2, 2), np.uint8))   # 2x2 dots; where dots meet the nearer wins
    hit = inverse > 0
    colours = colorize(np.where(hit, inverse, np.nan), vmin=0.0, vmax=1.0 / near_m, cmap="jet")
    img[hit] = colours[hit]
    return img


def detection_panel(image_rgb: np.ndarray, bev_rgb: np.ndarray, lidar_rgb: np.ndarray | None = None
                    ) -> np.ndarray:
    """One picture of a frame's result: the image overlay (:func:`image_overlay`), under it the LiDAR overlay
    (:func:`lidar_overlay`) when there is one, and on the right the BEV (:func:`bev_overlay`) scaled to the
    column's height. All uint8 RGB [H, W, 3]."""
    import cv2

    column = image_rgb if lidar_rgb is None else np.concatenate([image_rgb, lidar_rgb], axis=0)
    h = column.shape[0]
    bev = cv2.resize(bev_rgb, (max(1, round(bev_rgb.shape[1] * h / bev_rgb.shape[0])), h),
                     interpolation=cv2.INTER_AREA if h < bev_rgb.shape[0] else cv2.INTER_LINEAR)
    return np.concatenate([column, bev], axis=1)


def save_pr_curves(results_by_mode: dict, out_dir) -> list[Path]:
    """One PNG per class (``pr_<Class>.png``): interpolated precision at the 41 recall points for every metric
    and difficulty of each :class:`~eventvision.evaluation.kitti.ap.KittiEvalResult` in ``results_by_mode``
    (first mode solid, others dashed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eventvision.evaluation.kitti.ap import DIFFICULTIES
    from eventvision.utils.io import atomic_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    any_res = next(iter(results_by_mode.values()))
    written = []
    recall_axis = np.linspace(0, 1, 41)
    for cls in any_res.classes:
        n = len(any_res.metrics)
        fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4), squeeze=False)
        for ax, metric in zip(axes[0], any_res.metrics):
            for k, (mode, res) in enumerate(results_by_mode.items()):
                prec = res.precision[(cls, metric)]
                for d, name in enumerate(DIFFICULTIES):
                    ax.plot(recall_axis, prec[d], color=f"C{d}", linestyle="-" if k == 0 else "--",
                            label=f"{mode} {name}")
            ax.set_title(f"{cls} {metric} (IoU {any_res.min_overlaps[(cls, metric)]})")
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"pr_{cls}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        plt.close(fig)
        written.append(path)
    return written


def save_bev_frames(gt_frames, dt_frames, out_dir, *, count: int = 4, min_score: float = 0.3,
                    x_range=(2.0, 53.2), y_range=(-28.8, 28.8)) -> list[Path]:
    """BEV overlays (``bev_<index>.png``) of the ``count`` frames with the most ground-truth objects:
    ground truth white, detections with score >= ``min_score`` coloured by class."""
    from eventvision.utils.viz import save_png

    out_dir = Path(out_dir)
    order = sorted(range(len(gt_frames)), key=lambda i: -len(gt_frames[i]))[:count]
    written = []
    for i in sorted(order):
        dt = dt_frames[i][dt_frames[i]["score"] >= min_score]
        boxes, labels, _ = objects_to_grid_boxes(dt)
        gt_boxes = objects_to_grid_boxes(gt_frames[i])[0]
        path = out_dir / f"bev_{i:06d}.png"
        save_png(path, bev_overlay(boxes, labels, gt_boxes, x_range=x_range, y_range=y_range))
        written.append(path)
    return written
