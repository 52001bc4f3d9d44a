"""Stereo event clips of a **real street scene with real depth**: the KITTI stereo pair in ``../shared/data``
(``kitti_object/training``: image_2 / image_3, calib, velodyne) seen by a rig that pitches, GT from the LiDAR.

Neither the scene nor the GT comes from the training generator: the texture and the geometry (road, cars,
trees, walls, sky) are real, the disparity of each GT pixel is the real LiDAR depth (``f b / z``), sparse as in
DSEC and MVSEC, whose GT is LiDAR too. Motion is a rotation of the rig about its baseline (pitch, like a car
body on its springs): that motion is rendered exactly from one image per camera, whatever the depth, because
each camera only rotates about its own centre (image warp ``K R K^-1``) and the baseline stays on the rotation
axis, so the rig stays rectified. Events come from the emulator's v2e mode (leak, shot noise), as in
``stereo_independent.py``.

* images and calibration scaled by ``scale`` (default 0.5: 621x188, KITTI's disparities of up to ~130 px
  become 0-65 px, the model's range), then cropped by a margin top and bottom so that every rendered pixel
  comes from inside the photograph;
* pitch ``theta(t) = omega (t - T/2)``, ``|omega|`` drawn per seed (0.2-0.6 rad/s: 3.6-11 px of image motion
  per 50 ms window at the default scale);
* GT at time t: each LiDAR point in the rectified frame is rotated like the cameras and projected into both
  views; its disparity ``u_left - u_right`` goes to the nearest left pixel (the nearest point wins). A point
  whose disparity is more than ``OCCLUSION_PX`` below the largest one within 2 px is dropped: the LiDAR sits
  behind and above the cameras and sees background that a nearer surface hides from the camera.

    clip = make_kitti_clip(seed=3)
    clip.left, clip.right          # EVENT_DTYPE arrays, rectified, [0, clip.t_end) µs
    clip.disparity_at(t_us)        # float32 [H, W] px, NaN without a LiDAR point
    clip.frames_at(t_us)           # the rendered grey images (left, right) [H, W] in [0, 1]
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import numpy as np
from shared_data import SHARED_DATA

KITTI_TRAINING = SHARED_DATA / "kitti_object" / "training"
#: a LiDAR point this many px (disparity) behind the nearest one within 2 px is hidden from the camera
OCCLUSION_PX = 1.5


@lru_cache(maxsize=4)
def _scene(training: Path, name: str, scale: float):
    """(left, right grey images float32 [H, W] in [0, 1] scaled by ``scale``, K [3, 3], t2, t3 [3] (camera
    centre offsets in the rectified frame, m), LiDAR points in the rectified frame [N, 3] m)."""
    import cv2

    from eventvision.data.detect3d.kitti_object import read_velodyne
    from eventvision.formats.kitti import read_calib, scale_calibration

    images = []
    for cam in ("image_2", "image_3"):
        path = training / cam / f"{name}.png"
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise FileNotFoundError(f"{path}: KITTI image not found or unreadable")
        h, w = image.shape
        size = (int(round(w * scale)), int(round(h * scale)))
        images.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)
    calib = scale_calibration(read_calib(training / "calib" / f"{name}.txt"), scale)
    K = calib.P2[:, :3]
    if not np.allclose(calib.P3[:, :3], K, atol=1e-6):
        raise ValueError(f"{training}: P2 and P3 have different intrinsics; not a rectified pair")
    t2, t3 = np.linalg.solve(K, calib.P2[:, 3]), np.linalg.solve(K, calib.P3[:, 3])
    points = calib.velo_to_rect(read_velodyne(training / "velodyne" / f"{name}.bin")[:, :3])
    return images[0], images[1], K, t2, t3, points


@lru_cache(maxsize=4)
def kitti_frames(training: Path) -> tuple[str, ...]:
    """Names of the frames of a KITTI object ``training`` folder that have both images, calib and a scan (listed
    once per folder and process: a full KITTI folder has 7,481 frames)."""
    training = Path(training)
    names = tuple(p.stem for p in sorted((training / "image_2").glob("*.png"))
                  if all((training / sub / f"{p.stem}{ext}").is_file()
                         for sub, ext in (("image_3", ".png"), ("calib", ".txt"), ("velodyne", ".bin"))))
    if not names:
        from eventvision.errors import DatasetNotFoundError

        raise DatasetNotFoundError(f"{training}: no KITTI object frame with image_2, image_3, calib and velodyne; "
                                "point --kitti-root at a KITTI object 'training' folder")
    return names


def pitch(theta: float) -> np.ndarray:
    """Rotation [3, 3] about the camera x axis (the baseline) by ``theta`` rad."""
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


@dataclasses.dataclass
class KittiClip:
    left: np.ndarray
    right: np.ndarray
    t_end: int
    omega: float                    # pitch rate, rad/s
    width: int
    height: int
    crop_y: int                     # first row of the crop in the scaled image
    scale: float
    training: Path
    name: str

    def theta(self, t_us: int) -> float:
        return self.omega * (t_us - self.t_end / 2) * 1e-6

    def frame_at(self, t_us: int, view: str) -> np.ndarray:
        """The grey image [H, W] in [0, 1] of ``view`` ("left"/"right") at ``t_us``: its photograph warped by the
        rotation."""
        import cv2

        left, right, K, _, _, _ = _scene(self.training, self.name, self.scale)
        shift = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, self.crop_y], [0.0, 0.0, 1.0]])
        # a crop pixel -> its place in the scaled photograph: un-rotate its ray (X = R^T X')
        to_source = K @ pitch(self.theta(t_us)).T @ np.linalg.inv(K) @ shift
        return cv2.warpPerspective(left if view == "left" else right, to_source, (self.width, self.height),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)

    def frames_at(self, t_us: int) -> tuple[np.ndarray, np.ndarray]:
        """Both cameras' grey images at ``t_us`` (:meth:`frame_at`)."""
        return self.frame_at(t_us, "left"), self.frame_at(t_us, "right")

    def disparity_at(self, t_us: int) -> np.ndarray:
        """LiDAR disparity of the left view [H, W] px at ``t_us``, NaN where no point lands (see the module)."""
        import cv2

        _, _, K, t2, t3, points = _scene(self.training, self.name, self.scale)
        R = pitch(self.theta(t_us))
        views = []
        for t in (t2, t3):
            cam = (points + t) @ R.T
            with np.errstate(divide="ignore", invalid="ignore"):
                hom = cam @ K.T
                views.append((hom[:, 0] / hom[:, 2], hom[:, 1] / hom[:, 2] - self.crop_y, cam[:, 2]))
        (u, v, z), (u_r, _, _) = views
        disp = u - u_r
        iu, iv = np.rint(u), np.rint(v)
        keep = (z > 0.5) & (disp > 0) & (iu >= 0) & (iu < self.width) & (iv >= 0) & (iv < self.height) \
            & (u_r >= 0) & (u_r <= self.width - 1)
        iu, iv, disp = iu[keep].astype(np.int64), iv[keep].astype(np.int64), disp[keep]
        order = np.argsort(disp, kind="stable")          # small disparity (far) first: the nearest is written last
        out = np.full((self.height, self.width), np.nan, np.float32)
        out[iv[order], iu[order]] = disp[order]
        nearest = cv2.dilate(np.nan_to_num(out, nan=0.0), np.ones((5, 5), np.uint8))
        out[out < nearest - OCCLUSION_PX] = np.nan
        return out


def make_kitti_clip(
    seed: int, *, scale: float = 0.5, duration_us: int = 100_000, frame_dt_us: int = 1000,
    training: Path = KITTI_TRAINING, name: str = "000000", contrast: tuple[float, float] = (0.15, 0.3),
) -> KittiClip:
    """A seeded clip (see the module docstring): pitch rate 0.2-0.6 rad/s of random sign, v2e-mode events
    (threshold drawn from ``contrast``, per-pixel spread 0.03, leak 0.1 Hz, shot noise), frames every
    ``frame_dt_us``."""
    from stereo_independent import emulate_views

    from eventvision.events.core import EVENT_DTYPE

    rng = np.random.default_rng(seed)
    omega = float(rng.uniform(0.2, 0.6) * rng.choice((-1.0, 1.0)))
    left, _, K, _, _, _ = _scene(training, name, scale)
    h, w = left.shape
    # rows the rotation can bring into view, plus one for interpolation
    margin = int(np.ceil(K[1, 1] * abs(omega) * duration_us * 0.5e-6 * 1.05)) + 2
    clip = KittiClip(np.zeros(0, EVENT_DTYPE), np.zeros(0, EVENT_DTYPE), int(duration_us), omega, w,
                     h - 2 * margin, margin, float(scale), Path(training), name)
    clip.left, clip.right = emulate_views(
        clip.frame_at, width=clip.width, height=clip.height, seed=seed, duration_us=duration_us,
        frame_dt_us=frame_dt_us, contrast=float(rng.uniform(*contrast)), contrast_std=0.03, mode="v2e",
        leak_rate_hz=0.1, noise_rate_hz=0.5)
    return clip
