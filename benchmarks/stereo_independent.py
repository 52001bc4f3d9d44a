"""Stereo event clips made *another way* than the training generator, for generalization checks.

The training data come from ``eventvision.simulate.stereo_scenes`` (procedural textures, ray casting,
ESIM-mode emulator). These clips share none of that: fronto-parallel planes at several depths textured
with crops of **real photographs** (the KITTI image and the UCF101 frames in ``../shared/data``), random
dots or a sine grating, composited by plain image warping (no ray casting), seen by a rig that translates
in a random direction, and turned into events by the emulator's **v2e mode** (v2e's pixel model, with
leak and shot noise). GT is exact: each pixel's disparity is that of the nearest plane covering it, NaN
where the right camera sees another plane (occlusion) or nothing. With ``ground=True`` a clip also has a
ground plane (a road or floor below the horizon, its disparity growing linearly from 0 at the horizon row to its
value at the bottom row) and the rig translates along the baseline only: then each row of the ground keeps its
disparity and shifts by it, so plain image warping stays exact.

    clip = make_clip(seed=3, width=346, height=260, texture="photo")
    clip.left, clip.right          # EVENT_DTYPE arrays, rectified, [0, clip.t_end) µs
    clip.disparity_at(t_us)        # float32 [H, W] px, NaN invalid
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
from shared_data import SHARED_DATA

TEXTURES = ("photo", "dots", "sine")


@lru_cache(maxsize=1)
def photographs() -> tuple[np.ndarray, ...]:
    """Grey-level real photographs in [0, 1]: the KITTI left image and a few UCF101 / NTU video frames."""
    import cv2

    images = []
    for path in sorted((SHARED_DATA / "kitti_object").rglob("image_2/*.png")):
        images.append(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    for video in sorted((SHARED_DATA / "video").glob("*.avi")):
        cap = cv2.VideoCapture(str(video))
        for k in range(3):
            cap.set(cv2.CAP_PROP_POS_FRAMES, 20 * k)
            ok, frame = cap.read()
            if ok:
                images.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        cap.release()
    images = [im.astype(np.float32) / 255.0 for im in images if im is not None]
    if not images:
        raise FileNotFoundError(f"{SHARED_DATA}: no KITTI image_2 PNG or video to take photo textures from")
    return tuple(images)


def _texture(kind: str, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A [h, w] texture in [0, 1] of ``kind``."""
    import cv2

    h, w = size
    if kind == "photo":
        photo = photographs()[int(rng.integers(len(photographs())))]
        scale = rng.uniform(0.6, 2.0)
        ph, pw = photo.shape
        ch, cw = min(ph, int(np.ceil(h / scale)) + 2), min(pw, int(np.ceil(w / scale)) + 2)
        y0, x0 = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
        tex = cv2.resize(photo[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR)
    elif kind == "dots":
        tex = np.full((h, w), 0.25, np.float32)
        n = int(h * w * rng.uniform(0.01, 0.04))
        ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
        r = int(rng.integers(1, 3))
        for y, x in zip(ys, xs):
            tex[max(0, y - r):y + r, max(0, x - r):x + r] = rng.uniform(0.6, 1.0)
    elif kind == "sine":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        tex = np.zeros((h, w), np.float32)
        for _ in range(3):
            f = rng.uniform(0.03, 0.25)
            a = rng.uniform(0, np.pi)
            tex += np.sin(f * (xx * np.cos(a) + yy * np.sin(a)) + rng.uniform(0, 6.3))
        tex = 0.5 + 0.15 * tex
    else:
        raise ValueError(f"texture kind {kind!r}: choose one of {', '.join(TEXTURES)}")
    return np.clip(tex, 0.02, 1.0).astype(np.float32)


@dataclasses.dataclass
class Plane:
    """A fronto-parallel plane at ``disparity`` px covering ``box`` = (x0, y0, x1, y1) of the left image at
    t = 0 (the whole plane for the background), textured by ``texture`` in those image coordinates. With
    ``horizon`` (a row) it is a ground plane instead: ``disparity`` at the bottom row, falling linearly to 0 at the
    horizon, covering the rows below it."""

    disparity: float
    box: tuple[float, float, float, float] | None
    texture: np.ndarray
    margin: int
    horizon: float | None = None

    def disparity_of_rows(self, rows: np.ndarray, height: int) -> np.ndarray | float:
        """Disparity (px) of the plane at image rows ``rows`` (any shape); a constant for a fronto-parallel one."""
        if self.horizon is None:
            return self.disparity
        return self.disparity * (rows - self.horizon) / (height - 1 - self.horizon)


@dataclasses.dataclass
class IndependentClip:
    left: np.ndarray
    right: np.ndarray
    t_end: int
    planes: list[Plane]
    velocity: tuple[float, float]          # camera velocity in baselines per second (x, y)
    width: int
    height: int

    def _shift(self, disparity, t_us: int) -> tuple:
        """Image shift (px) of points at ``disparity`` (px, scalar or per pixel) at ``t_us``: parallax = disparity
        x camera travel in baselines."""
        s = t_us * 1e-6
        return disparity * self.velocity[0] * s, disparity * self.velocity[1] * s

    def layers(self, t_us: int, view: str) -> tuple[np.ndarray, np.ndarray]:
        """(intensity [H, W] in [0, 1], index of the nearest covering plane [H, W]) for ``view``."""
        import cv2

        h, w = self.height, self.width
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        image = np.zeros((h, w), np.float32)
        owner = np.full((h, w), -1, np.int32)
        nearest = np.full((h, w), -np.inf, np.float32)     # disparity of the plane painted so far (a z-buffer)
        # far to near: nearer planes overwrite (a ground's disparity varies by row: the z-buffer decides there)
        for k in np.argsort([p.disparity for p in self.planes]):
            plane = self.planes[k]
            d = plane.disparity_of_rows(yy, h)
            sx, sy = self._shift(d, t_us)
            u = xx + sx + (d if view == "right" else 0.0)   # texture coordinate (left image at t=0)
            v = yy + sy
            if plane.box is None:
                cover = np.ones((h, w), bool) if plane.horizon is None else d > 0
            else:
                x0, y0, x1, y1 = plane.box
                cover = (u >= x0) & (u < x1) & (v >= y0) & (v < y1)
            if plane.horizon is not None:
                cover &= d > nearest
                nearest[cover] = d[cover]
            else:
                nearest[cover] = d
            m = plane.margin
            sampled = cv2.remap(plane.texture, (u + m).astype(np.float32), (v + m).astype(np.float32),
                                cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            image[cover] = sampled[cover]
            owner[cover] = k
        return image, owner

    def disparity_at(self, t_us: int) -> np.ndarray:
        """Exact left-view disparity [H, W] px at ``t_us``; NaN where the right camera does not see the same
        plane at ``x - d`` (occlusion) or ``x - d`` leaves the image."""
        _, own_l = self.layers(t_us, "left")
        _, own_r = self.layers(t_us, "right")
        h, w = own_l.shape
        rows = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w))
        disp = np.array([p.disparity for p in self.planes], np.float32)[own_l]
        for k, plane in enumerate(self.planes):
            if plane.horizon is not None:
                ground = own_l == k
                disp[ground] = plane.disparity_of_rows(rows[ground], h)
        xr = np.rint(np.arange(w)[None, :] - disp).astype(np.int64)
        inside = (xr >= 0) & (xr < w)
        same = np.zeros((h, w), bool)
        rows = np.broadcast_to(np.arange(h)[:, None], (h, w))
        same[inside] = own_r[rows[inside], xr[inside]] == own_l[inside]
        disp[~same] = np.nan
        return disp


def make_clip(seed: int, *, width: int, height: int, texture: str, duration_us: int = 110_000,
              frame_dt_us: int = 1000, disparity_range: tuple[float, float] = (2.0, 55.0),
              ground: bool = False) -> IndependentClip:
    """A seeded clip (see the module docstring): background plus 2-3 nearer planes, camera translating at
    ``|v|`` of 1.5-6 baselines/s in a random direction, v2e-mode events (contrast 0.15-0.3, leak 0.1 Hz, shot
    noise), frames every ``frame_dt_us``. With ``ground``: also a ground plane (horizon at 30-55 % of the height,
    disparity at the bottom row 2-4x the background's, at most 62 px) and the camera translating along the baseline
    (drawn from its own seed stream, so the other draws are those of the clip without ground)."""
    from eventvision.events.core import EVENT_DTYPE

    rng = np.random.default_rng(seed)
    lo, hi = disparity_range
    speed, angle = rng.uniform(1.5, 6.0), rng.uniform(0, 2 * np.pi)
    velocity = (speed * np.cos(angle), speed * np.sin(angle))
    travel = speed * duration_us * 1e-6
    planes = []
    d_bg = rng.uniform(lo, lo + 10.0)
    for k in range(int(rng.integers(2, 4)) + 1):
        d = d_bg if k == 0 else rng.uniform(d_bg + 4.0, hi)
        m = int(np.ceil(d * (travel + 1.0))) + 4            # texture margin: parallax plus the stereo shift
        size = (height + 2 * m, width + 2 * m)
        tex = _texture(texture if k == 0 or rng.random() < 0.7 else str(rng.choice(TEXTURES)), rng, size)
        if k == 0:
            box = None
        else:
            bw, bh = rng.uniform(0.2, 0.45) * width, rng.uniform(0.25, 0.5) * height
            x0, y0 = rng.uniform(0, width - bw), rng.uniform(0, height - bh)
            box = (x0, y0, x0 + bw, y0 + bh)
        planes.append(Plane(float(d), box, tex, m))
    if ground:
        g = np.random.default_rng((seed, 17))
        velocity = (float(np.hypot(*velocity) * g.choice((-1.0, 1.0))), 0.0)
        d_bottom = float(min(62.0, g.uniform(2.0, 4.0) * d_bg))
        m = int(np.ceil(d_bottom * (travel + 1.0))) + 4
        planes.append(Plane(d_bottom, None, _texture(texture, g, (height + 2 * m, width + 2 * m)), m,
                            horizon=float(g.uniform(0.3, 0.55) * height)))
    clip = IndependentClip(np.zeros(0, EVENT_DTYPE), np.zeros(0, EVENT_DTYPE), int(duration_us), planes,
                           velocity, int(width), int(height))
    clip.left, clip.right = emulate_views(
        lambda t, view: clip.layers(t, view)[0], width=width, height=height, seed=seed, duration_us=duration_us,
        frame_dt_us=frame_dt_us, contrast=float(rng.uniform(0.15, 0.3)), contrast_std=0.03, mode="v2e",
        leak_rate_hz=0.1, noise_rate_hz=0.5)
    return clip


def emulate_views(render, *, width: int, height: int, seed: int, duration_us: int, frame_dt_us: int,
                  **emulator) -> list[np.ndarray]:
    """Events in ``[0, duration_us)`` of the left and the right camera: ``render(t_us, view)`` -> intensity [H, W]
    in [0, 1] every ``frame_dt_us`` through ``eventvision.simulate.emulator`` (camera i seeded ``2 seed + 1 + i``,
    ``emulator``: the EventEmulator's options), each time-sorted."""
    from eventvision.simulate.emulator import emulate_frames

    times = range(0, duration_us + 1, frame_dt_us)
    out = []
    for i, view in enumerate(("left", "right")):
        ev = emulate_frames((render(t, view) for t in times), times, width=width, height=height,
                            seed=2 * seed + 1 + i, **emulator)
        ev = ev[np.argsort(ev["t"], kind="stable")]   # v2e mode gives an interval's events pixel by pixel
        out.append(ev[ev["t"] < duration_us])
    return out
