"""3D boxes in KITTI rectified camera coordinates (x right, y down, z forward; metres).

A box is ``(x, y, z, l, h, w, ry)`` -- the order kitti-object-eval-python uses for 3D IoU:
(x, y, z) is the *bottom centre* (the box spans y-h..y), l along the box's heading (local x),
w across it (local z), ``ry`` the rotation around camera Y (radians; ry = 0 faces camera +x).
Files store dimensions as h, w, l; :func:`boxes3d_from_objects` reorders.

BEV rectangles are ``(x, z, l, w, ry)`` in the ground plane. Corners follow the rotation
R_y(ry) = [[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]] applied to local offsets, which is also the
convention of the reference rotated IoU (rotate_iou), so IoUs computed from these corners agree.

The detector's **grid frame** (lidar-like, origin at the camera: ``x_l = z``, ``y_l = -x``, ``z_l = -y``) holds
boxes ``(x, y, z, l, w, h, θ)`` with (x, y, z) the gravity centre and ``θ = -ry - π/2``;
:func:`camera_to_lidar_boxes` / :func:`lidar_to_camera_boxes` convert, :func:`objects_to_grid_boxes` takes
label objects there.
"""

from __future__ import annotations

import numpy as np

from eventvision.formats.kitti import CLASSES


def boxes3d_from_objects(objects: np.ndarray) -> np.ndarray:
    """Object array (OBJECT_DTYPE) -> float64 [N, 7] boxes (x, y, z, l, h, w, ry)."""
    out = np.empty((len(objects), 7), dtype=np.float64)
    out[:, 0:3] = objects["location"]
    dims = objects["dimensions"]  # h, w, l
    out[:, 3], out[:, 4], out[:, 5] = dims[:, 2], dims[:, 0], dims[:, 1]
    out[:, 6] = objects["rotation_y"]
    return out


def bev_from_boxes3d(boxes: np.ndarray) -> np.ndarray:
    """[N, 7] (x, y, z, l, h, w, ry) -> [N, 5] BEV rectangles (x, z, l, w, ry)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    return boxes[:, [0, 2, 3, 5, 6]].copy()


def bev_boxes_from_objects(objects: np.ndarray) -> np.ndarray:
    """Object array -> [N, 5] BEV rectangles (x, z, l, w, ry)."""
    return bev_from_boxes3d(boxes3d_from_objects(objects))


def rotation_y_matrix(ry: float) -> np.ndarray:
    c, s = np.cos(ry), np.sin(ry)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def bev_corners(bev: np.ndarray) -> np.ndarray:
    """[N, 5] (x, z, l, w, ry) -> [N, 4, 2] corners (x, z), in order around the rectangle."""
    bev = np.asarray(bev, dtype=np.float64).reshape(-1, 5)
    lx = np.array([0.5, 0.5, -0.5, -0.5])[None, :] * bev[:, 2:3]
    lz = np.array([0.5, -0.5, -0.5, 0.5])[None, :] * bev[:, 3:4]
    c, s = np.cos(bev[:, 4:5]), np.sin(bev[:, 4:5])
    x = c * lx + s * lz + bev[:, 0:1]
    z = -s * lx + c * lz + bev[:, 1:2]
    return np.stack([x, z], axis=-1)


def corners_3d(boxes: np.ndarray) -> np.ndarray:
    """[N, 7] (x, y, z, l, h, w, ry) -> [N, 8, 3] corners in camera coordinates (m).

    Corners 0-3 lie on the bottom face (y = y0), 4-7 above them on the top face (y = y0 - h),
    both in the order of :func:`bev_corners`.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    bev = bev_corners(bev_from_boxes3d(boxes))  # [N, 4, 2]
    out = np.empty((len(boxes), 8, 3), dtype=np.float64)
    for top in (0, 1):
        sl = slice(4 * top, 4 * top + 4)
        out[:, sl, 0] = bev[:, :, 0]
        out[:, sl, 2] = bev[:, :, 1]
        out[:, sl, 1] = boxes[:, 1:2] - top * boxes[:, 4:5]
    return out


def project_points(points: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project camera points [..., 3] (m) with a 3x4 matrix -> (pixels [..., 2], depth [...])."""
    points = np.asarray(points, dtype=np.float64)
    hom = points @ P[:, :3].T + P[:, 3]
    depth = hom[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = hom[..., :2] / depth[..., None]
    return uv, depth


def project_boxes_2d(boxes: np.ndarray, P: np.ndarray, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """2D boxes [N, 4] (x1, y1, x2, y2 px) enclosing the projected 3D corners; clipped to
    ``image_size`` = (width, height) when given. Boxes must lie in front of the camera."""
    uv, _ = project_points(corners_3d(boxes), P)
    out = np.concatenate([uv.min(axis=1), uv.max(axis=1)], axis=1)
    if image_size is not None:
        w, h = image_size
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, w - 1)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, h - 1)
    return out


def wrap_angle(a: np.ndarray | float) -> np.ndarray | float:
    """Wrap radians into [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def alpha_from_rotation_y(rotation_y, x, z):
    """Observation angle alpha = ry - atan2(x, z), wrapped to [-pi, pi)."""
    return wrap_angle(np.asarray(rotation_y) - np.arctan2(x, z))


def rotation_y_from_alpha(alpha, x, z):
    """Inverse of :func:`alpha_from_rotation_y`."""
    return wrap_angle(np.asarray(alpha) + np.arctan2(x, z))


def disparity_from_depth(depth_m, focal_px: float, baseline_m: float):
    """Stereo disparity (px) of points at ``depth_m`` for a rectified pair: f * B / z."""
    return focal_px * baseline_m / np.asarray(depth_m, dtype=np.float64)


# ------------------------------------------------------------------------ camera <-> grid (lidar-like) frame
def camera_to_lidar_boxes(boxes_cam: np.ndarray) -> np.ndarray:
    """KITTI camera boxes [M, 7] (x, y_bottom, z, l, w, h, ry) -> grid-frame boxes [M, 7]
    (x, y, z_centre, l, w, h, θ)."""
    b = np.asarray(boxes_cam, dtype=np.float64).reshape(-1, 7)
    x, y, z, l, w, h, ry = b.T
    out = np.stack([z, -x, -y + h / 2.0, l, w, h, limit_period_np(-ry - np.pi / 2.0)], axis=1)
    return out.astype(np.float32)


def lidar_to_camera_boxes(boxes_l: np.ndarray) -> np.ndarray:
    """Inverse of :func:`camera_to_lidar_boxes` (ry wrapped to [−π, π))."""
    b = np.asarray(boxes_l, dtype=np.float64).reshape(-1, 7)
    x, y, z, l, w, h, th = b.T
    out = np.stack([-y, -(z - h / 2.0), x, l, w, h, limit_period_np(-th - np.pi / 2.0)], axis=1)
    return out


def limit_period_np(val, offset: float = 0.5, period: float = 2 * np.pi):
    """Wrap angles into [−offset·period, (1−offset)·period)."""
    return val - np.floor(val / period + offset) * period


def objects_to_grid_boxes(objects: np.ndarray, class_names=CLASSES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KITTI objects -> (grid-frame boxes [M, 7] float32, class index [M], track id [M]) for the classes in
    ``class_names`` only (others, e.g. Van/DontCare, are left out)."""
    keep = np.isin(objects["type"], list(class_names))
    obj = objects[keep]
    dims = obj["dimensions"]  # h, w, l
    cam = np.concatenate([obj["location"], dims[:, 2:3], dims[:, 1:2], dims[:, 0:1], obj["rotation_y"][:, None]],
                         axis=1)
    labels = np.array([list(class_names).index(t) for t in obj["type"]], dtype=np.int64)
    return camera_to_lidar_boxes(cam), labels, obj["track_id"].astype(np.int64)


# ------------------------------------------------------------------------------ ray casting
def camera_centre(P: np.ndarray) -> np.ndarray:
    """Centre [3] (m) of the camera with projection ``P`` [3, 4], in the frame ``P`` projects from."""
    return -np.linalg.solve(P[:, :3], P[:, 3])


def pixel_rays(P: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre [3] and ray directions [..., 3] with unit z through pixel coordinates ``u``, ``v`` [...]
    (rectified frame: the point at camera depth z on a ray is ``centre + z·dir``)."""
    K = P[:, :3]
    centre = camera_centre(P)
    pix = np.stack([u, v, np.ones_like(u)], axis=-1).astype(np.float64)
    d = pix @ np.linalg.inv(K).T
    return centre, d / d[..., 2:3]


def camera_rays(P: np.ndarray, width: int, height: int, ss: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre [3] and per-(sub)pixel ray directions [H·ss, W·ss, 3] with unit z (rectified frame)."""
    off = (np.arange(ss) + 0.5) / ss - 0.5
    us = (np.arange(width)[:, None] + off[None, :]).ravel()
    vs = (np.arange(height)[:, None] + off[None, :]).ravel()
    uu, vv = np.meshgrid(us, vs)
    return pixel_rays(P, uu, vv)


def ray_box_intersection(origin: np.ndarray, dirs: np.ndarray, loc: np.ndarray, hwl, ry: float):
    """Slab test of rays ``origin + t·dirs`` against one box (camera frame, bottom centre ``loc``, ``hwl`` in
    metres, yaw ``ry``). Returns (t_hit [...], hit point in the box's frame [..., 3], face normal axis [...]
    (0 = length, 1 = height, 2 = width)); t = inf for a miss (or a hit closer than 0.1)."""
    h, w, l = hwl
    c, s = np.cos(ry), np.sin(ry)
    R = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # local -> camera
    centre = loc - np.array([0.0, h / 2, 0.0])
    o = R.T @ (origin - centre)
    d = dirs @ R  # R.T applied to each direction
    half = np.array([l / 2, h / 2, w / 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1 = (-half - o) * inv
        t2 = (half - o) * inv
    tmin = np.minimum(t1, t2)
    tmax = np.maximum(t1, t2)
    tmin = np.where(np.isnan(tmin), -np.inf, tmin)
    tmax = np.where(np.isnan(tmax), np.inf, tmax)
    t_near = tmin.max(axis=-1)
    t_far = tmax.min(axis=-1)
    hit = (t_near <= t_far) & (t_near > 0.1)
    t = np.where(hit, t_near, np.inf)
    axis = tmin.argmax(axis=-1)
    local = o + d * np.where(hit, t_near, 0.0)[..., None]
    return t, local, axis


def box_ray_window(P: np.ndarray, box: np.ndarray, width: int, height: int, ss: int = 1
                   ) -> tuple[slice, slice] | None:
    """Rows/columns of the supersampled ray grid [H·ss, W·ss] whose rays can hit ``box`` (kitti.boxes order),
    whole pixels only (so ``[mid::ss]`` picks pixel centres inside it); None when the box projects outside the
    image. A convex box wholly in front of the camera projects inside its corners' bounding rectangle; one
    reaching behind the camera gets the whole grid."""
    uv, depth = project_points(corners_3d(box[None])[0], P)
    if (depth <= 0.1).any():
        return slice(0, height * ss), slice(0, width * ss)
    lo = np.floor(uv.min(axis=0)).astype(int) - 1   # a pixel of margin for rounding
    hi = np.ceil(uv.max(axis=0)).astype(int) + 2
    c0, r0 = max(lo[0], 0), max(lo[1], 0)
    c1, r1 = min(hi[0], width), min(hi[1], height)
    if c0 >= c1 or r0 >= r1:
        return None
    return slice(r0 * ss, r1 * ss), slice(c0 * ss, c1 * ss)
