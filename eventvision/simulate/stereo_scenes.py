"""Synthetic stereo event scenes with exact disparity ground truth.

Geometry: two rectified pinhole cameras with focal length ``f`` (px), principal point ``(cx, cy)``
and baseline ``b`` (m); the left camera sits at the origin, the right one at ``(b, 0, 0)``, both
looking down +Z. A 3-D point at depth ``Z`` therefore has disparity ``x_left - x_right = f·b/Z``.

A scene is a textured background plane (fronto-parallel, far) plus ``num_patches`` rectangular
planar patches (fronto-parallel or slanted), each moving with a constant 3-D velocity. Textures are
attached to the surfaces (functions of the surface's own X/Y coordinates), so both cameras see the
same texture at the same 3-D point. Each camera view is ray-cast per pixel (nearest surface wins,
so occlusions are exact); intensity frames over time go through the event emulator
(:mod:`eventvision.simulate.emulator`) to give left/right events. Ground truth is the left view's
``f·b/Z`` at the requested time, NaN where the surface point leaves the right image (``x - d < 0``).

Everything is deterministic given the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from scipy import ndimage

from eventvision.events.core import EVENT_DTYPE, empty_events

TEXTURE_CELLS = 48  # texture grid side (cells); wraps around


@dataclass(frozen=True)
class StereoCamera:
    """Rectified stereo rig: image size (px), focal length (px), baseline (m), principal point (px)."""

    width: int
    height: int
    focal_px: float
    baseline_m: float
    cx: float | None = None
    cy: float | None = None

    @property
    def principal(self) -> tuple[float, float]:
        cx = (self.width - 1) / 2.0 if self.cx is None else float(self.cx)
        cy = (self.height - 1) / 2.0 if self.cy is None else float(self.cy)
        return cx, cy

    @property
    def fb(self) -> float:
        """focal × baseline (px·m): disparity = fb / depth."""
        return self.focal_px * self.baseline_m


@dataclass(frozen=True)
class PlanarSurface:
    """A textured plane through ``centre`` (m, at t=0) with unit ``normal``, moving at ``velocity`` (m/s).

    With ``period_s`` > 0 the motion oscillates, ``centre + velocity·P/(2π)·sin(2πt/P)`` (velocity at t=0
    unchanged), so long recordings stay in view; with 0 it is linear.

    Its support is ``|X - Xc(t)| <= half_size[0]`` and ``|Y - Yc(t)| <= half_size[1]`` (``inf`` for the
    background). ``texture`` is a [TEXTURE_CELLS, TEXTURE_CELLS] grid of intensities in (0, 1]
    sampled bilinearly (wrapping) at ``(X - Xc, Y - Yc) / texel_m``.
    """

    centre: tuple[float, float, float]
    normal: tuple[float, float, float]
    velocity: tuple[float, float, float]
    half_size: tuple[float, float]
    texel_m: float
    texture: np.ndarray = field(repr=False)
    period_s: float = 0.0

    def centre_at(self, t_s: float) -> np.ndarray:
        if self.period_s > 0:
            t_s = self.period_s / (2 * np.pi) * np.sin(2 * np.pi * t_s / self.period_s)
        return np.asarray(self.centre) + t_s * np.asarray(self.velocity)


@dataclass(frozen=True)
class SceneParams:
    """Random-scene ranges. Disparities in px; speeds are image-plane speeds in px/s."""

    num_patches: tuple[int, int] = (2, 5)
    patch_disparity: tuple[float, float] = (6.0, 22.0)
    background_disparity: tuple[float, float] = (2.0, 5.0)
    patch_size_frac: tuple[float, float] = (0.2, 0.45)   # patch side / image side
    slanted_fraction: float = 0.5
    max_tilt_deg: float = 40.0
    speed_px_s: tuple[float, float] = (60.0, 240.0)
    texel_px: tuple[float, float] = (5.0, 10.0)          # texture cell size in pixels at the surface depth
    period_s: tuple[float, float] = (1.0, 2.0)           # oscillation period of each surface's motion


def _random_texture(rng: np.random.Generator) -> np.ndarray:
    grid = rng.uniform(0.0, 1.0, size=(TEXTURE_CELLS, TEXTURE_CELLS))
    grid = ndimage.gaussian_filter(grid, sigma=0.6, mode="wrap")
    grid = (grid - grid.min()) / max(float(np.ptp(grid)), 1e-6)
    return (0.08 + 0.92 * grid).astype(np.float64)


def random_scene(camera: StereoCamera, rng: np.random.Generator, params: SceneParams = SceneParams()
                 ) -> list[PlanarSurface]:
    """Draw a background plane plus patches in front of it (all moving), from ``rng``."""
    f, fb = camera.focal_px, camera.fb
    cx, cy = camera.principal
    surfaces = []

    def velocity(z: float) -> tuple[float, float, float]:
        speed = rng.uniform(*params.speed_px_s) * z / f        # px/s -> m/s at depth z
        angle = rng.uniform(0, 2 * np.pi)
        vz = rng.uniform(-0.15, 0.15) * z                      # mild motion in depth (m/s)
        return float(speed * np.cos(angle)), float(speed * np.sin(angle)), float(vz)

    d_bg = rng.uniform(*params.background_disparity)
    z_bg = fb / d_bg
    surfaces.append(PlanarSurface(
        centre=(0.0, 0.0, z_bg), normal=(0.0, 0.0, 1.0), velocity=velocity(z_bg)[:2] + (0.0,),
        half_size=(np.inf, np.inf), texel_m=rng.uniform(*params.texel_px) * z_bg / f,
        texture=_random_texture(rng), period_s=float(rng.uniform(*params.period_s))))

    for _ in range(int(rng.integers(params.num_patches[0], params.num_patches[1] + 1))):
        d = rng.uniform(*params.patch_disparity)
        z = fb / d
        # centre somewhere in the left image, expressed in metres at depth z
        u, v = rng.uniform(0, camera.width), rng.uniform(0, camera.height)
        xc, yc = (u - cx) * z / f, (v - cy) * z / f
        half = (rng.uniform(*params.patch_size_frac) * camera.width * z / f / 2,
                rng.uniform(*params.patch_size_frac) * camera.height * z / f / 2)
        if rng.random() < params.slanted_fraction:
            tilt = np.deg2rad(rng.uniform(10.0, params.max_tilt_deg))
            azimuth = rng.uniform(0, 2 * np.pi)
            normal = (np.sin(tilt) * np.cos(azimuth), np.sin(tilt) * np.sin(azimuth), np.cos(tilt))
        else:
            normal = (0.0, 0.0, 1.0)
        surfaces.append(PlanarSurface(
            centre=(float(xc), float(yc), float(z)), normal=tuple(float(c) for c in normal),
            velocity=velocity(z), half_size=(float(half[0]), float(half[1])),
            texel_m=rng.uniform(*params.texel_px) * z / f, texture=_random_texture(rng),
            period_s=float(rng.uniform(*params.period_s))))
    return surfaces


def ray_cast(camera: StereoCamera, surfaces: list[PlanarSurface], t_s: float, *, camera_x_m: float = 0.0
             ) -> tuple[np.ndarray, np.ndarray]:
    """Render one view at time ``t_s`` (s) from a camera centred at ``(camera_x_m, 0, 0)``.

    Returns ``(intensity float64 [H, W] in (0, 1], depth float64 [H, W] in metres, inf where no surface)``.
    """
    f = camera.focal_px
    cx, cy = camera.principal
    u = np.arange(camera.width, dtype=np.float64)[None, :]
    v = np.arange(camera.height, dtype=np.float64)[:, None]
    rx = np.broadcast_to((u - cx) / f, (camera.height, camera.width))
    ry = np.broadcast_to((v - cy) / f, (camera.height, camera.width))
    depth = np.full((camera.height, camera.width), np.inf)
    image = np.full((camera.height, camera.width), 0.5)
    for surf in surfaces:
        c = surf.centre_at(t_s)
        n = np.asarray(surf.normal)
        denom = n[0] * rx + n[1] * ry + n[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (n[0] * (c[0] - camera_x_m) + n[1] * c[1] + n[2] * c[2]) / denom
        x_world = camera_x_m + z * rx
        y_world = z * ry
        lx, ly = x_world - c[0], y_world - c[1]
        hit = (z > 1e-6) & (np.abs(lx) <= surf.half_size[0]) & (np.abs(ly) <= surf.half_size[1]) & (z < depth)
        if not hit.any():
            continue
        coords = np.stack([ly[hit] / surf.texel_m, lx[hit] / surf.texel_m])
        image[hit] = ndimage.map_coordinates(surf.texture, coords, order=1, mode="grid-wrap")
        depth[hit] = z[hit]
    return image, depth


def disparity_from_depth(camera: StereoCamera, depth: np.ndarray) -> np.ndarray:
    """Left-view GT: ``f·b/Z`` (px, float32), NaN where no surface or where the point leaves the right image."""
    with np.errstate(divide="ignore"):
        disp = camera.fb / depth
    disp[~np.isfinite(depth)] = np.nan
    x = np.arange(camera.width)[None, :]
    disp[(x - disp) < 0] = np.nan
    return disp.astype(np.float32)


@dataclass(frozen=True)
class StereoScene:
    """A deterministic moving stereo scene: render frames, emulate events, give GT disparity."""

    camera: StereoCamera
    surfaces: tuple[PlanarSurface, ...]
    seed: int = 0
    contrast: float = 0.2
    contrast_std: float = 0.03
    noise_rate_hz: float = 0.0

    @classmethod
    def random(cls, camera: StereoCamera, seed: int, params: SceneParams = SceneParams(), **kwargs) -> "StereoScene":
        rng = np.random.default_rng(seed)
        return cls(camera=camera, surfaces=tuple(random_scene(camera, rng, params)), seed=seed, **kwargs)

    def render(self, t_us: int, view: str = "left") -> np.ndarray:
        """Intensity frame float32 [H, W] in (0, 1] of ``view`` ("left"/"right") at ``t_us`` (µs)."""
        x = 0.0 if view == "left" else self.camera.baseline_m
        return ray_cast(self.camera, list(self.surfaces), t_us * 1e-6, camera_x_m=x)[0].astype(np.float32)

    def disparity(self, t_us: int) -> np.ndarray:
        """Exact left-view disparity float32 [H, W] (px, NaN invalid) at ``t_us``."""
        _, depth = ray_cast(self.camera, list(self.surfaces), t_us * 1e-6, camera_x_m=0.0)
        return disparity_from_depth(self.camera, depth)

    def _emulators(self):
        from eventvision.simulate.emulator import EventEmulator
        kw = dict(contrast=self.contrast, contrast_std=self.contrast_std, noise_rate_hz=self.noise_rate_hz)
        return (EventEmulator(self.camera.width, self.camera.height, seed=2 * self.seed + 1, **kw),
                EventEmulator(self.camera.width, self.camera.height, seed=2 * self.seed + 2, **kw))

    def iter_events(self, t_end_us: int, *, frame_dt_us: int = 1000, chunk_us: int = 50_000
                    ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """Emulate both cameras from t=0 to ``t_end_us``; yield ``(t0, t1, left, right)`` per ``chunk_us``.

        Frames are rendered every ``frame_dt_us``; the emulator interpolates event times between them.
        Memory is bounded by one chunk.
        """
        emu_l, emu_r = self._emulators()
        emu_l.reset(self.render(0, "left"), 0)
        emu_r.reset(self.render(0, "right"), 0)
        buf_l: list[np.ndarray] = []
        buf_r: list[np.ndarray] = []
        chunk_start = 0
        t = 0
        while t < t_end_us:
            t = min(t + frame_dt_us, t_end_us)
            buf_l.append(np.asarray(emu_l.step(self.render(t, "left"), t), dtype=EVENT_DTYPE))
            buf_r.append(np.asarray(emu_r.step(self.render(t, "right"), t), dtype=EVENT_DTYPE))
            while t >= chunk_start + chunk_us or (t >= t_end_us and chunk_start < t_end_us):
                chunk_end = min(chunk_start + chunk_us, t_end_us)
                left, buf_l = _split_at(buf_l, chunk_end)
                right, buf_r = _split_at(buf_r, chunk_end)
                yield chunk_start, chunk_end, left, right
                chunk_start = chunk_end

    def events(self, t_end_us: int, *, frame_dt_us: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """All left/right events in ``[0, t_end_us)`` (small scenes only)."""
        parts = list(self.iter_events(t_end_us, frame_dt_us=frame_dt_us, chunk_us=t_end_us))
        return (np.concatenate([p[2] for p in parts]) if parts else empty_events(),
                np.concatenate([p[3] for p in parts]) if parts else empty_events())


def _split_at(buffers: list[np.ndarray], t_split: int) -> tuple[np.ndarray, list[np.ndarray]]:
    events = np.concatenate(buffers) if buffers else empty_events()
    if len(events) and np.any(events["t"][1:] < events["t"][:-1]):
        events = events[np.argsort(events["t"], kind="stable")]
    i = int(np.searchsorted(events["t"], t_split, side="left"))
    return events[:i], [events[i:]]


def make_stereo_sample(seed: int, *, width: int, height: int, focal_px: float = 100.0, baseline_m: float = 0.1,
                       window_us: int = 50_000, frame_dt_us: int = 1000, params: SceneParams = SceneParams()
                       ) -> dict:
    """One training sample's raw material: events of both cameras in ``[0, window_us)`` and GT at ``window_us``.

    Returns ``{"left": events, "right": events, "disparity": float32 [H, W] (NaN invalid), "t_end_us": window_us,
    "camera": StereoCamera}``.
    """
    camera = StereoCamera(width=width, height=height, focal_px=focal_px, baseline_m=baseline_m)
    scene = StereoScene.random(camera, seed, params)
    left, right = scene.events(window_us, frame_dt_us=frame_dt_us)
    return {"left": left, "right": right, "disparity": scene.disparity(window_us), "t_end_us": window_us,
            "camera": camera}
