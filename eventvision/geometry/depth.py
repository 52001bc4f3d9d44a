"""LiDAR points -> sparse depth map of the left colour camera (the depth target of DSGN-style stereo)."""

from __future__ import annotations

import numpy as np

from eventvision.errors import InvalidValueError


def lidar_depth_map(points: np.ndarray, calib, image_size: tuple[int, int], *,
                    keep: str = "nearest") -> np.ndarray:
    """Velodyne points [N, >=3] (m, LiDAR frame) -> depth map float32 [H, W] in metres, 0 where no point.

    The points go to the rectified camera (``Tr_velo_to_cam`` then ``R0_rect``) and are projected with P2;
    depth is the rectified camera z. As the release (pcdet/datasets/kitti_streaming/stereo_kitti_streaming.py
    ``get_fov_flag`` and pcdet/utils/depth_map_utils.py ``points_to_depth_map``): points with depth >= 0 and
    0 < u < W-1, 0 < v < H-1 are kept and rounded to the nearest pixel. Where several points land on one
    pixel, ``keep="nearest"`` keeps the smallest depth (a point behind a car never overwrites it; the default,
    a deliberate difference) and ``keep="last"`` the last one in file order (the release's assignment).

    calib: :class:`eventvision.formats.kitti.Calibration` with ``Tr_velo_to_cam``;
    image_size: (width, height) in pixels.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise InvalidValueError(f"LiDAR points must be [N, >=3], got shape {pts.shape}")
    return rect_depth_map(calib.velo_to_rect(pts[:, :3]), calib.P2, image_size, keep=keep)[0]


def rect_depth_map(points_rect: np.ndarray, P2: np.ndarray, image_size: tuple[int, int], *,
                   keep: str = "nearest") -> tuple[np.ndarray, np.ndarray]:
    """:func:`lidar_depth_map` of points already in the rectified camera frame [N, 3] (m) -> (depth map float32
    [H, W] metres, 0 where no point; the mask [N] of the points in view, :func:`project_in_view`)."""
    if keep not in ("nearest", "last"):
        raise InvalidValueError(f"lidar_depth_map keep={keep!r}; use nearest or last")
    w, h = image_size
    u, v, ok = project_in_view(points_rect, P2, image_size)
    iu, iv, d = np.round(u[ok]).astype(np.int64), np.round(v[ok]).astype(np.int64), points_rect[ok, 2]
    out = np.zeros((h, w), dtype=np.float32)
    if keep == "nearest":
        order = np.argsort(-d, kind="stable")  # far first, so the nearest point is written last
        iu, iv, d = iu[order], iv[order], d[order]
    out[iv, iu] = d
    return out, ok


def project_in_view(points_rect: np.ndarray, P2: np.ndarray, image_size: tuple[int, int]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rectified-camera points [N, 3] (m) -> pixel coordinates u, v [N] under ``P2`` [3, 4] and the mask [N]
    of the points the release keeps in the field of view: depth >= 0 and 0 < u < W-1, 0 < v < H-1
    (``image_size`` = (width, height) px)."""
    w, h = image_size
    hom = points_rect @ P2[:, :3].T + P2[:, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = hom[:, 0] / hom[:, 2], hom[:, 1] / hom[:, 2]
    return u, v, (points_rect[:, 2] >= 0) & (u > 0) & (u < w - 1) & (v > 0) & (v < h - 1)
