"""Synthetic KITTI Tracking sequences: textured stereo pairs of boxes moving on a ground plane.

Every frame is ray-cast for the left (image_02) and right (image_03) camera of a real KITTI calibration
(P2/P3; optionally rescaled to a smaller image), so stereo geometry and the label conventions are exactly
those of KITTI: objects (Car, Pedestrian, Cyclist with KITTI-like sizes) move with constant velocity along
their heading on the road plane ``y_cam = camera_height``; a textured ground plane and a textured far wall
give the stereo matcher something to match. Labels carry track ids, truncation (0/1/2 from the share of the
projected box outside the image), occlusion (0/1/2 from the share of the object's own silhouette that is
visible) and the 2D box of the projected 3D box, written in the KITTI Tracking folder layout::

    ROOT/training/image_02/<seq>/<frame:06d>.png   ROOT/training/image_03/<seq>/<frame:06d>.png
    ROOT/training/calib/<seq>.txt                  ROOT/training/label_02/<seq>.txt
    ROOT/training/depth_02/<seq>/<frame:06d>.png   left-camera depth, uint16 metres·256 (KITTI depth maps)

Units: metres, radians, pixels; frames at 10 Hz.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from eventvision.formats.kitti import (KITTI_IMAGE_SIZE, Calibration, format_calibration, make_objects, read_calib,
                                      scale_calibration, write_result_file)
from eventvision.geometry.boxes3d import (alpha_from_rotation_y, box_ray_window, camera_rays, corners_3d,
                                         project_boxes_2d, project_points, ray_box_intersection)
from eventvision.utils.io import atomic_path, atomic_write_text

#: KITTI Tracking sequence 0000 calibration (P2/P3 of the colour cameras), used when no calib file is given
KITTI_P2 = np.array([[721.5377, 0.0, 609.5593, 44.85728], [0.0, 721.5377, 172.854, 0.2163791],
                     [0.0, 0.0, 1.0, 0.002745884]])
KITTI_P3 = np.array([[721.5377, 0.0, 609.5593, -339.5242], [0.0, 721.5377, 172.854, 2.199936],
                     [0.0, 0.0, 1.0, 0.002729905]])

#: class -> (mean (h, w, l), std, speed range m/s)
CLASS_SPECS = {
    "Car": ((1.56, 1.6, 3.9), (0.1, 0.08, 0.3), (0.0, 8.0)),
    "Pedestrian": ((1.73, 0.6, 0.8), (0.08, 0.06, 0.1), (0.0, 1.5)),
    "Cyclist": ((1.73, 0.6, 1.76), (0.06, 0.05, 0.1), (0.0, 5.0)),
}


@dataclass(frozen=True)
class SceneConfig:
    """Sequence generation parameters (image_scale 1 = KITTI's 1242x375)."""

    num_frames: int = 40
    num_objects: int = 6
    class_probs: tuple[float, float, float] = (0.6, 0.2, 0.2)  # Car, Pedestrian, Cyclist
    image_scale: float = 1.0
    camera_height: float = 1.65
    x_range: tuple[float, float] = (-14.0, 14.0)  # camera x of spawn positions (m)
    z_range: tuple[float, float] = (6.0, 45.0)  # camera z of spawn positions (m)
    wall_z: float = 75.0
    supersample: int = 2


def load_base_calibration(calib_path: str | os.PathLike | None = None) -> Calibration:
    """A real KITTI calibration: ``calib_path`` if given, else sequence 0000's P2/P3 built in."""
    if calib_path is not None:
        return read_calib(calib_path)
    eye = np.eye(3)
    return Calibration(P0=KITTI_P2.copy(), P1=KITTI_P3.copy(), P2=KITTI_P2.copy(), P3=KITTI_P3.copy(), R0_rect=eye)


# ------------------------------------------------------------------------------------------ textures
def _value_noise_2d(lattice: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smooth value noise: bilinear (smoothstep) interpolation of a periodic random lattice [n, n]."""
    n = lattice.shape[0]
    i0, j0 = np.floor(u), np.floor(v)
    fu, fv = u - i0, v - j0
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    i0 = i0.astype(np.int64) % n
    j0 = j0.astype(np.int64) % n
    i1, j1 = (i0 + 1) % n, (j0 + 1) % n
    a = lattice[i0, j0] * (1 - fu) + lattice[i1, j0] * fu
    b = lattice[i0, j1] * (1 - fu) + lattice[i1, j1] * fu
    return a * (1 - fv) + b * fv


def _texture(lattice: np.ndarray, u: np.ndarray, v: np.ndarray, cell_m: float) -> np.ndarray:
    """Two octaves of value noise in [0, 1] at metric coordinates (u, v) with feature size ``cell_m``."""
    fine = 0.37 * cell_m
    return (0.65 * _value_noise_2d(lattice, u / cell_m, v / cell_m)
            + 0.35 * _value_noise_2d(lattice, u / fine + 17.3, v / fine + 5.1))


# ------------------------------------------------------------------------------------------ scene state
@dataclass(frozen=True)
class Track:
    track_id: int
    type: str
    hwl: tuple[float, float, float]
    start: tuple[float, float]  # camera (x, z) of the bottom centre at frame 0
    ry: float
    speed: float  # m/s along the heading
    colour: tuple[float, float, float]

    def location(self, frame: int, camera_height: float, period_s: float = 0.1) -> np.ndarray:
        """Bottom centre (x, y, z) in camera coordinates at ``frame``."""
        d = self.speed * frame * period_s
        return np.array([self.start[0] + d * np.cos(self.ry), camera_height, self.start[1] - d * np.sin(self.ry)])


def sample_tracks(rng: np.random.Generator, cfg: SceneConfig) -> list[Track]:
    """Random non-overlapping objects (at frame 0) with constant velocities."""
    names = list(CLASS_SPECS)
    tracks: list[Track] = []
    tries = 0
    while len(tracks) < cfg.num_objects and tries < 200 * cfg.num_objects:
        tries += 1
        cls = names[rng.choice(3, p=np.asarray(cfg.class_probs) / np.sum(cfg.class_probs))]
        mean, std, (vmin, vmax) = CLASS_SPECS[cls]
        hwl = tuple(float(max(m + s * rng.standard_normal(), 0.3)) for m, s in zip(mean, std))
        x = rng.uniform(*cfg.x_range)
        z = rng.uniform(*cfg.z_range)
        if any(np.hypot(x - t.start[0], z - t.start[1]) < 0.6 * (hwl[2] + t.hwl[2]) + 1.0 for t in tracks):
            continue
        # mostly along the road (heading ±z), sometimes any direction
        if rng.random() < 0.7:
            ry = float(rng.choice([-np.pi / 2, np.pi / 2]) + rng.normal(0, 0.15))
        else:
            ry = float(rng.uniform(-np.pi, np.pi))
        tracks.append(Track(len(tracks), cls, hwl, (x, z), ry, float(rng.uniform(vmin, vmax)),
                            tuple(float(c) for c in rng.uniform(0.25, 1.0, 3))))
    return tracks


def render_view(P: np.ndarray, width: int, height: int, tracks: list[Track], frame: int, cfg: SceneConfig,
                textures: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ray-cast one camera -> (RGB uint8 [H, W, 3], object index per pixel [H, W] (−1 background),
    silhouette pixel count per track [K] (pixels the object would cover with nothing in front of it),
    depth [H, W] float32: camera z in metres of the surface seen (the depth target, like projected LiDAR)).
    Object index, silhouettes and depth are taken at the pixel centres' sub-sample."""
    ss = max(int(cfg.supersample), 1)
    origin, dirs = camera_rays(P, width, height, ss)
    shape = dirs.shape[:2]
    mid = ss // 2
    rgb = np.zeros(shape + (3,))
    ids = np.full(shape, -1, dtype=np.int64)
    silhouettes = np.zeros(len(tracks), dtype=np.int64)
    # far wall (z = wall_z) — everything not hitting something nearer sees it
    t_wall = (cfg.wall_z - origin[2]) / dirs[..., 2]
    pw = origin + dirs * t_wall[..., None]
    wall = _texture(textures["wall"], pw[..., 0], pw[..., 1], 0.9)
    depth = t_wall.copy()
    rgb[:] = (0.35 + 0.55 * wall)[..., None] * np.array([0.75, 0.8, 0.9])
    # ground plane y = camera_height
    with np.errstate(divide="ignore", invalid="ignore"):
        t_g = (cfg.camera_height - origin[1]) / dirs[..., 1]
    ground = (dirs[..., 1] > 1e-6) & (t_g < depth)
    pg = origin + dirs * np.where(ground, t_g, 0.0)[..., None]
    g_tex = _texture(textures["ground"], pg[..., 0], pg[..., 2], 0.35)
    depth = np.where(ground, t_g, depth)
    rgb = np.where(ground[..., None], (0.2 + 0.6 * g_tex)[..., None] * np.array([0.8, 0.78, 0.72]), rgb)
    shade = np.array([0.9, 1.0, 0.7])  # faces normal to local x / y (top) / z
    for k, tr in enumerate(tracks):
        loc = tr.location(frame, cfg.camera_height)
        if loc[2] < 0.5 or loc[2] > cfg.wall_z:
            continue
        win = box_ray_window(P, _kitti_box(tr, frame, cfg), width, height, ss)
        if win is None:
            continue
        t, local, axis = ray_box_intersection(origin, dirs[win], loc, tr.hwl, tr.ry)
        silhouettes[k] = int(np.isfinite(t[mid::ss, mid::ss]).sum())
        near = t < depth[win]
        if not near.any():
            continue
        lx, ly, lz = local[near, 0], local[near, 1], local[near, 2]
        face = axis[near]
        u = np.where(face == 0, lz, lx)
        v = np.where(face == 1, lz, ly)
        tex = _texture(textures["object"], u + 7.0 * k, v + 3.0 * k, 0.12)
        depth[win][near] = t[near]
        rgb[win][near] = (0.3 + 0.7 * tex)[:, None] * np.asarray(tr.colour) * shade[face][:, None]
        ids[win][near] = k
    img = rgb.reshape(height, ss, width, ss, 3).mean(axis=(1, 3))
    # rays have unit z, so the ray parameter of the nearest hit is the camera depth
    return (np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8), ids[mid::ss, mid::ss], silhouettes,
            depth[mid::ss, mid::ss].astype(np.float32))


def _kitti_box(tr: Track, frame: int, cfg: SceneConfig) -> np.ndarray:
    """(x, y, z, l, h, w, ry) in kitti.boxes order."""
    loc = tr.location(frame, cfg.camera_height)
    h, w, l = tr.hwl
    return np.array([loc[0], loc[1], loc[2], l, h, w, tr.ry])


def label_frame(P2, width, height, tracks: list[Track], frame: int, ids: np.ndarray, silhouettes: np.ndarray,
                cfg: SceneConfig) -> np.ndarray:
    """KITTI tracking objects of the visible tracks in one frame (OBJECT_DTYPE)."""
    rows = []
    for k, tr in enumerate(tracks):
        box = _kitti_box(tr, frame, cfg)
        _, depth = project_points(corners_3d(box[None])[0], P2)
        if (depth < 0.5).any() or box[2] > 80.0:
            continue
        visible = int((ids == k).sum())
        full = int(silhouettes[k])
        if visible < 4 or full == 0 or visible / full < 0.05:
            continue
        raw = project_boxes_2d(box[None], P2)[0]
        clipped = project_boxes_2d(box[None], P2, (width, height))[0]
        area = max((raw[2] - raw[0]) * (raw[3] - raw[1]), 1e-6)
        inside = (clipped[2] - clipped[0]) * (clipped[3] - clipped[1]) / area
        trunc = 0 if inside > 0.95 else (1 if inside > 0.6 else 2)
        frac = visible / full
        occ = 0 if frac > 0.8 else (1 if frac > 0.4 else 2)
        rows.append(make_objects(frame=frame, track_id=tr.track_id, type=tr.type, truncated=float(trunc),
                                 occluded=occ, alpha=float(alpha_from_rotation_y(tr.ry, box[0], box[2])),
                                 bbox=clipped, dimensions=tr.hwl, location=box[:3],
                                 rotation_y=float(np.arctan2(np.sin(tr.ry), np.cos(tr.ry)))))
    if not rows:
        return make_objects()[:0]
    return np.concatenate(rows)


def generate_sequence(seed: int, cfg: SceneConfig = SceneConfig(), calib: Calibration | None = None
                      ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(frame, left RGB [H, W, 3] uint8, right RGB, objects, left depth [H, W] metres)`` for one
    synthetic sequence. ``calib`` is the *scaled* calibration (see :func:`sequence_calibration`)."""
    rng = np.random.default_rng(seed)
    calib = calib if calib is not None else sequence_calibration(cfg)
    width, height = image_size(cfg)
    tracks = sample_tracks(rng, cfg)
    textures = {k: rng.random((128, 128)) for k in ("ground", "wall", "object")}
    for f in range(cfg.num_frames):
        left, ids, sil, depth = render_view(calib.P2, width, height, tracks, f, cfg, textures)
        right, _, _, _ = render_view(calib.P3, width, height, tracks, f, cfg, textures)
        yield f, left, right, label_frame(calib.P2, width, height, tracks, f, ids, sil, cfg), depth


def image_size(cfg: SceneConfig) -> tuple[int, int]:
    """(width, height) of rendered frames."""
    return (int(round(KITTI_IMAGE_SIZE[0] * cfg.image_scale)), int(round(KITTI_IMAGE_SIZE[1] * cfg.image_scale)))


def sequence_calibration(cfg: SceneConfig, calib_path: str | os.PathLike | None = None) -> Calibration:
    return scale_calibration(load_base_calibration(calib_path), cfg.image_scale)


def encode_depth_png(depth: np.ndarray) -> np.ndarray:
    """Depth [H, W] metres -> uint16 image in KITTI's depth-map convention (value = metres · 256, 0 = none);
    depths beyond 255.99 m (the far wall is within) are stored as 0."""
    d = np.where(np.isfinite(depth) & (depth > 0) & (depth < 65535 / 256.0), depth, 0.0)
    return np.round(d * 256.0).astype(np.uint16)


def write_sequence(root: str | os.PathLike, seq: str, seed: int, cfg: SceneConfig = SceneConfig(),
                   calib_path: str | os.PathLike | None = None) -> Path:
    """Render sequence ``seq`` into ``root/training/...`` in the KITTI Tracking layout; returns the training dir."""
    train = Path(root) / "training"
    calib = sequence_calibration(cfg, calib_path)
    atomic_write_text(train / "calib" / f"{seq}.txt", format_calibration(calib))
    objects = []
    for f, left, right, objs, depth in generate_sequence(seed, cfg, calib):
        for cam, img in (("image_02", left), ("image_03", right), ("depth_02", encode_depth_png(depth))):
            path = train / cam / seq / f"{f:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                ok = cv2.imwrite(str(tmp), img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                if not ok:
                    raise OSError(f"{path}: could not write PNG")
        objects.append(objs)
    write_result_file(train / "label_02" / f"{seq}.txt", np.concatenate(objects) if objects else make_objects()[:0],
                      with_score=False)
    return train


def write_dataset(root: str | os.PathLike, num_sequences: int, *, seed: int = 0, cfg: SceneConfig = SceneConfig(),
                  calib_path: str | os.PathLike | None = None, first_seq: int = 0) -> list[str]:
    """Write ``num_sequences`` sequences named 0000, 0001, … (seed + index each); returns their names."""
    names = []
    for i in range(num_sequences):
        name = f"{first_seq + i:04d}"
        write_sequence(root, name, seed + 1000 * (first_seq + i), cfg, calib_path)
        names.append(name)
    return names
