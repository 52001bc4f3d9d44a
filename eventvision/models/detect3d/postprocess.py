"""Detections (grid-frame boxes) -> KITTI tracking objects (camera frame, 2D box by projection with P2)."""

from __future__ import annotations

import numpy as np

from eventvision.formats.kitti import make_objects
from eventvision.geometry.boxes3d import (alpha_from_rotation_y, corners_3d, lidar_to_camera_boxes, project_boxes_2d,
                                         project_points)
from eventvision.models.detect3d.head import CLASS_NAMES


def detections_to_objects(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, P2: np.ndarray,
                          image_size: tuple[int, int], *, frame: int = 0, track_ids: np.ndarray | None = None,
                          class_names=CLASS_NAMES) -> np.ndarray:
    """Grid-frame boxes [K, 7] + scores [K] + class indices [K] -> OBJECT_DTYPE array (KITTI camera frame).

    The 2D box is the projection of the 3D corners with P2 clipped to ``image_size`` (width, height);
    boxes with a corner behind the camera or no area inside the image are dropped.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    if len(boxes) == 0:
        return make_objects()[:0]
    cam = lidar_to_camera_boxes(boxes)  # x, y_bottom, z, l, w, h, ry
    kb = np.stack([cam[:, 0], cam[:, 1], cam[:, 2], cam[:, 3], cam[:, 5], cam[:, 4], cam[:, 6]], axis=1)
    _, depth = project_points(corners_3d(kb), np.asarray(P2, dtype=np.float64))
    bbox = project_boxes_2d(kb, np.asarray(P2, dtype=np.float64), image_size)
    ok = (depth > 0.1).all(axis=1) & (bbox[:, 2] > bbox[:, 0]) & (bbox[:, 3] > bbox[:, 1])
    if not ok.any():
        return make_objects()[:0]
    ids = np.full(len(boxes), -1) if track_ids is None else np.asarray(track_ids)
    names = np.asarray(class_names)[np.asarray(labels, dtype=np.int64)]
    return make_objects(frame=frame, track_id=ids[ok], type=names[ok], truncated=0.0, occluded=0,
                        alpha=alpha_from_rotation_y(kb[ok, 6], kb[ok, 0], kb[ok, 2]), bbox=bbox[ok],
                        dimensions=np.stack([cam[ok, 5], cam[ok, 4], cam[ok, 3]], axis=1), location=cam[ok, :3],
                        rotation_y=kb[ok, 6], score=np.asarray(scores, dtype=np.float64)[ok])
