"""Synthetic stereo event scenes with exact disparity ground truth.

Geometry: two rectified pinhole cameras with focal length ``f`` (px), principal point ``(cx, cy)``
and baseline ``b`` (m); the left camera sits at the origin, the right one at ``(b, 0, 0)``, both
looking down +Z. A 3-D point at depth ``Z`` therefore has disparity ``x_left - x_right = f·b/Z``.

A scene is a textured background plane (fronto-parallel or slanted) plus ``num_patches`` rectangular
planar patches (fronto-parallel or slanted, occluding each other), each moving with its own 3-D
velocity, seen by a rig that itself moves (ego-motion in any direction) and, if asked, rotates about its left
camera (pitch, yaw, roll: the image motion of a rotation does not depend on depth, unlike a translation's
parallax, so a matcher cannot read disparity from image speed), and, if asked, stands on a ground plane (a road or
a floor: the surface nearly parallel to the optical axis whose disparity grows row by row towards the image
bottom, present in every driving and most hand-held recordings). Textures are attached to the
surfaces (functions of the surface's own X/Y coordinates), so both cameras see the same texture at the
same 3-D point; their kinds are what real scenes offer a matcher: blurred noise, random dots, smooth
1/f ("pink") noise, edges (piecewise-constant rectangles), low-texture (nearly flat) surfaces and, if asked,
"dead leaves" (occluding discs of every size: the edge and scale statistics of natural images). Each
camera view is ray-cast per pixel (nearest surface wins, so occlusions are exact); intensity frames over
time go through the event emulator (:mod:`eventvision.simulate.emulator`: per-pixel threshold spread,
refractory period, background-activity noise) plus hot pixels, giving left/right events. Ground truth
is the left view's ``f·b/Z`` at the requested time, NaN where the surface point leaves the right image
(``x - d < 0``). :data:`FAMILIES` names held-out scene families (one property pushed to its extreme
each); :class:`RectifyDistortion` turns rectified events into raw sensor coordinates plus the DSEC-style
``rectify_map`` that undoes it.

Everything is deterministic given the seed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from scipy import ndimage

from eventvision.errors import InvalidValueError
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
    sampled bilinearly (wrapping) at ``(X - Xc, Y - Yc) / texel_m``. ``texture_axes`` names the two world axes
    (0 = X, 1 = Y, 2 = Z) that the support and the texture use in place of X and Y: (0, 2) for a ground plane,
    whose points share one Y. With ``min_texel_px`` > 0 the texture's contrast fades towards its mean where a
    texel looks smaller than that (px, foreshortening included), as a real pixel averages a texture finer than
    itself: a far road is a smooth grey, not a flicker of aliased texels that would make events.
    """

    centre: tuple[float, float, float]
    normal: tuple[float, float, float]
    velocity: tuple[float, float, float]
    half_size: tuple[float, float]
    texel_m: float
    texture: np.ndarray = field(repr=False)
    period_s: float = 0.0
    texture_axes: tuple[int, int] = (0, 1)
    min_texel_px: float = 0.0

    def centre_at(self, t_s: float) -> np.ndarray:
        return np.asarray(self.centre) + _oscillate(t_s, self.period_s) * np.asarray(self.velocity)


TEXTURE_KINDS = ("noise", "dots", "pink", "edges", "flat", "leaves")


@dataclass(frozen=True)
class SceneParams:
    """Random-scene ranges. Disparities in px; speeds are image-plane speeds in px/s (at the depth of
    the surface for objects, of the background for the rig); event statistics per scene.

    ``textures``: relative weights of :data:`TEXTURE_KINDS` (missing kinds: 0). The defaults are the
    plain scenes of the first generator (fronto-parallel background, blurred-noise textures, a still
    rig, fixed thresholds, no noise); :data:`RANDOMIZED` is the training distribution.
    """

    num_patches: tuple[int, int] = (2, 5)
    patch_disparity: tuple[float, float] = (6.0, 22.0)
    background_disparity: tuple[float, float] = (2.0, 5.0)
    patch_size_frac: tuple[float, float] = (0.2, 0.45)   # patch side / image side
    slanted_fraction: float = 0.5
    max_tilt_deg: float = 40.0
    background_slant_prob: float = 0.0
    max_background_tilt_deg: float = 45.0
    speed_px_s: tuple[float, float] = (60.0, 240.0)      # object motion on top of the ego-motion
    ego_speed_px_s: tuple[float, float] = (0.0, 0.0)     # rig translation, any direction in the image plane
    ego_depth_rate: float = 0.0                          # |vz| <= this x nearest depth per second
    ego_rotation_px_s: tuple[float, float] = (0.0, 0.0)  # rig rotation: f x |pitch/yaw rate| (px/s), plus roll
    texel_px: tuple[float, float] = (5.0, 10.0)          # texture cell size in pixels at the surface depth
    period_s: tuple[float, float] = (1.0, 2.0)           # oscillation period of each motion
    textures: tuple[tuple[str, float], ...] = (("noise", 1.0),)
    texture_mean: tuple[float, float] = (0.54, 0.54)     # mean intensity of a texture ...
    texture_amplitude: tuple[float, float] = (0.92, 0.92)  # ... and its peak-to-peak range
    contrast: tuple[float, float] = (0.2, 0.2)           # mean ON/OFF threshold (log intensity)
    contrast_spread: tuple[float, float] = (0.15, 0.15)  # per-pixel threshold std / mean
    refractory_us: tuple[float, float] = (0.0, 0.0)
    noise_rate_hz: tuple[float, float] = (0.0, 0.0)      # background activity per pixel
    hot_pixel_fraction: tuple[float, float] = (0.0, 0.0)
    hot_pixel_rate_hz: tuple[float, float] = (50.0, 500.0)
    ground_prob: float = 0.0                             # chance of a ground plane below the rig (random_ground)
    ground_disparity: tuple[float, float] = (8.0, 80.0)  # its disparity at the bottom image row (sets rig height)
    #: cap on the image speed (px/s) the rig's translation gives the *nearest* surface (inf: none). The rig's speed is
    #: drawn at the background's depth, so a far background makes near patches sweep at up to ~8,000 px/s.
    max_ego_image_speed_px_s: float = math.inf
    #: chance that a surface's texture is a dead-leaves one ("leaves") instead of one of ``textures``; 0 draws nothing,
    #: so scenes made without it stay as they were
    leaves_prob: float = 0.0

    def replace(self, **changes) -> "SceneParams":
        return dataclasses.replace(self, **changes)


#: the training distribution: everything a real rig varies, randomized per scene
RANDOMIZED = SceneParams(
    num_patches=(1, 6), patch_disparity=(3.0, 64.0), background_disparity=(0.5, 40.0),
    patch_size_frac=(0.15, 0.5),
    max_tilt_deg=50.0, background_slant_prob=0.3, speed_px_s=(0.0, 300.0), ego_speed_px_s=(20.0, 300.0),
    ego_depth_rate=0.5, texel_px=(2.0, 12.0),
    textures=(("noise", 1.0), ("dots", 1.0), ("pink", 1.0), ("edges", 1.0), ("flat", 0.3)),
    texture_mean=(0.3, 0.7), texture_amplitude=(0.5, 1.0),
    contrast=(0.12, 0.35), contrast_spread=(0.0, 0.25), refractory_us=(0.0, 1000.0), noise_rate_hz=(0.0, 0.5),
    hot_pixel_fraction=(0.0, 3e-4))

#: held-out scene families: :data:`RANDOMIZED` ("mixed") with one property pushed to an extreme
FAMILIES: dict[str, dict] = {
    "mixed": {},
    "fronto": {"slanted_fraction": 0.0, "background_slant_prob": 0.0},
    "slanted": {"slanted_fraction": 1.0, "background_slant_prob": 0.8},
    "clutter": {"num_patches": (6, 10), "patch_size_frac": (0.1, 0.35)},
    "dots": {"textures": (("dots", 1.0),)},
    "smooth": {"textures": (("pink", 1.0),)},
    "edges": {"textures": (("edges", 1.0),)},
    "low_texture": {"textures": (("flat", 1.0), ("pink", 0.5))},
    "fast": {"ego_speed_px_s": (250.0, 500.0), "speed_px_s": (150.0, 400.0)},
    "noisy": {"noise_rate_hz": (1.0, 3.0), "hot_pixel_fraction": (3e-4, 1e-3), "contrast_spread": (0.2, 0.4)},
    # the plain scenes of the first generator (SceneParams defaults): still rig, blurred noise, clean events
    "plain": dataclasses.asdict(SceneParams()),
    # the rig also rotates (pitch / yaw about any axis in the image plane, some roll), as vehicles and hand-held
    # rigs do; added after the families above (held out only: ``family: all`` cycles through FAMILIES_OF_ALL)
    "rotating": {"ego_rotation_px_s": (60.0, 300.0)},
    # the rig stands on a ground plane (a road or floor) that fills the image below the horizon (added later
    # still, held out only like "rotating")
    "ground": {"ground_prob": 1.0},
}
#: the families ``data.synthetic.family: all`` cycles through: those the bundled checkpoints trained on (a family
#: added later is a held-out test family, so that their configs still make the same scenes)
FAMILIES_OF_ALL: tuple[str, ...] = tuple(FAMILIES)[:tuple(FAMILIES).index("plain") + 1]


def family_params(name: str, base: SceneParams | None = None) -> SceneParams:
    """:class:`SceneParams` of family ``name`` (see :data:`FAMILIES`) on top of ``base`` (default
    :data:`RANDOMIZED`)."""
    if name not in FAMILIES:
        raise InvalidValueError(f"stereo scene family '{name}' is unknown; choose one of "
                                f"{', '.join(FAMILIES)}")
    return (base or RANDOMIZED).replace(**FAMILIES[name])


def _draw(rng: np.random.Generator, lo: float, hi: float) -> float:
    """``rng.uniform(lo, hi)``; a fixed value (no draw) when ``lo == hi``."""
    return float(lo) if lo == hi else float(rng.uniform(lo, hi))


def _normalise(grid: np.ndarray, rng: np.random.Generator, mean: tuple[float, float],
               amplitude: tuple[float, float]) -> np.ndarray:
    """Grid -> intensities in (0, 1] with a mean level and peak-to-peak contrast drawn from the ranges."""
    grid = (grid - grid.min()) / max(float(np.ptp(grid)), 1e-6)
    mean, amp = _draw(rng, *mean), _draw(rng, *amplitude)
    lo = max(mean - amp / 2, 0.05)
    return (lo + (min(mean + amp / 2, 1.0) - lo) * grid).astype(np.float64)


def make_texture(kind: str, rng: np.random.Generator, cells: int = TEXTURE_CELLS, *,
                 mean: tuple[float, float] = (0.3, 0.7), amplitude: tuple[float, float] = (0.5, 1.0)
                 ) -> np.ndarray:
    """A wrapping [cells, cells] intensity grid in (0, 1] of one of :data:`TEXTURE_KINDS` (mean level and
    peak-to-peak contrast drawn from ``mean`` / ``amplitude``; ``flat`` keeps a faint shading)."""
    if kind == "noise":                                   # blurred white noise (the original texture)
        grid = ndimage.gaussian_filter(rng.uniform(0, 1, (cells, cells)), sigma=0.6, mode="wrap")
    elif kind == "pink":             # smooth 1/f^beta noise (made in Fourier space: wraps)
        fy, fx = np.meshgrid(np.fft.fftfreq(cells), np.fft.fftfreq(cells), indexing="ij")
        f = np.hypot(fx, fy)
        f[0, 0] = 1.0
        noise = rng.normal(size=(cells, cells)) + 1j * rng.normal(size=(cells, cells))
        spectrum = noise / f ** rng.uniform(1.0, 1.6)
        spectrum[0, 0] = 0
        grid = np.real(np.fft.ifft2(spectrum))
    elif kind == "dots":                                  # sparse random dots on a flat ground
        grid = np.zeros((cells, cells))
        n = int(rng.integers(cells * cells // 40, cells * cells // 8))
        values = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1, n)   # drawn before the positions
        grid[rng.integers(0, cells, n), rng.integers(0, cells, n)] = values
        grid = ndimage.gaussian_filter(grid, sigma=rng.uniform(0.3, 0.8), mode="wrap")
    elif kind == "edges":                                 # piecewise-constant rectangles (Mondrian)
        grid = np.full((cells, cells), rng.uniform())
        for _ in range(int(rng.integers(4, 16))):
            y0, x0 = rng.integers(0, cells, 2)
            h, w = rng.integers(2, cells // 2, 2)
            grid[np.ix_((y0 + np.arange(h)) % cells, (x0 + np.arange(w)) % cells)] = rng.uniform()
    elif kind == "leaves":                                # dead leaves: opaque discs of power-law sizes
        grid = _dead_leaves(rng, cells)
    elif kind == "flat":                                  # low texture: faint smooth shading only
        grid = ndimage.gaussian_filter(rng.uniform(0, 1, (cells, cells)), sigma=6.0, mode="wrap")
        grid = (grid - grid.min()) / max(float(np.ptp(grid)), 1e-6)
        return (rng.uniform(0.3, 0.7) + rng.uniform(0.02, 0.08) * grid).astype(np.float64)
    else:
        raise InvalidValueError(f"texture kind '{kind}' is unknown; choose one of {', '.join(TEXTURE_KINDS)}")
    return _normalise(grid, rng, mean, amplitude)


def _dead_leaves(rng: np.random.Generator, cells: int, num_leaves: int = 800) -> np.ndarray:
    """A wrapping [cells, cells] dead-leaves grid: discs of uniform grey level dropped one on top of the other, radii
    (cells) drawn with density ~ r^-3 between 0.6 and cells/4, the model whose occlusion edges and 1/f spectrum match
    natural images' (Lee, Mumford & Huang, IJCV 2001). 800 leaves cover ~90 % of a 48-cell grid."""
    r_min, r_max = 0.6, cells / 4
    u = rng.uniform(size=num_leaves)
    radii = (r_min ** -2 - u * (r_min ** -2 - r_max ** -2)) ** -0.5       # inverse CDF of p(r) ~ r^-3
    centres = rng.uniform(0, cells, (num_leaves, 2))
    levels = rng.uniform(0, 1, num_leaves)
    grid = np.full((cells, cells), rng.uniform())
    idx = np.arange(cells, dtype=np.float64) + 0.5
    for (cy, cx), r, level in zip(centres, radii, levels):
        dy = (idx - cy + cells / 2) % cells - cells / 2                     # wrapped offsets
        dx = (idx - cx + cells / 2) % cells - cells / 2
        grid[dy[:, None] ** 2 + dx[None, :] ** 2 <= r * r] = level
    return ndimage.gaussian_filter(grid, sigma=0.4, mode="wrap")          # a pixel's footprint, not aliased steps


def _random_texture(rng: np.random.Generator, params: SceneParams | None = None) -> np.ndarray:
    params = params or SceneParams()
    if params.leaves_prob > 0 and rng.uniform() < params.leaves_prob:
        return make_texture("leaves", rng, mean=params.texture_mean, amplitude=params.texture_amplitude)
    kinds = dict(params.textures)
    names = [k for k in TEXTURE_KINDS if kinds.get(k, 0) > 0]
    w = np.array([kinds[k] for k in names], dtype=np.float64)
    kind = names[0] if len(names) == 1 else str(rng.choice(names, p=w / w.sum()))
    return make_texture(kind, rng, mean=params.texture_mean, amplitude=params.texture_amplitude)


def _tilted_normal(rng: np.random.Generator, lo_deg: float, hi_deg: float) -> tuple[float, float, float]:
    tilt = np.deg2rad(rng.uniform(lo_deg, hi_deg))
    azimuth = rng.uniform(0, 2 * np.pi)
    return (float(np.sin(tilt) * np.cos(azimuth)), float(np.sin(tilt) * np.sin(azimuth)), float(np.cos(tilt)))


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
    slanted = params.background_slant_prob > 0 and rng.random() < params.background_slant_prob
    normal = _tilted_normal(rng, 10.0, params.max_background_tilt_deg) if slanted else (0.0, 0.0, 1.0)
    surfaces.append(PlanarSurface(
        centre=(0.0, 0.0, z_bg), normal=normal, velocity=velocity(z_bg)[:2] + (0.0,),
        half_size=(np.inf, np.inf), texel_m=rng.uniform(*params.texel_px) * z_bg / f,
        texture=_random_texture(rng, params), period_s=float(rng.uniform(*params.period_s))))

    lo, hi = params.patch_disparity
    for _ in range(int(rng.integers(params.num_patches[0], params.num_patches[1] + 1))):
        d = rng.uniform(max(lo, d_bg), max(hi, d_bg + 1.0))   # patches in front of the background's centre
        z = fb / d
        # centre somewhere in the left image, expressed in metres at depth z
        u, v = rng.uniform(0, camera.width), rng.uniform(0, camera.height)
        xc, yc = (u - cx) * z / f, (v - cy) * z / f
        half = (rng.uniform(*params.patch_size_frac) * camera.width * z / f / 2,
                rng.uniform(*params.patch_size_frac) * camera.height * z / f / 2)
        normal = (_tilted_normal(rng, 10.0, params.max_tilt_deg) if rng.random() < params.slanted_fraction
                  else (0.0, 0.0, 1.0))
        surfaces.append(PlanarSurface(
            centre=(float(xc), float(yc), float(z)), normal=normal,
            velocity=velocity(z), half_size=(float(half[0]), float(half[1])),
            texel_m=rng.uniform(*params.texel_px) * z / f, texture=_random_texture(rng, params),
            period_s=float(rng.uniform(*params.period_s))))
    return surfaces


def random_ego_velocity(camera: StereoCamera, surfaces: list[PlanarSurface], rng: np.random.Generator,
                        params: SceneParams = SceneParams()) -> tuple[float, float, float]:
    """Rig translation (m/s): image-plane speed drawn in px/s at the background depth, any direction (capped so
    that the nearest surface moves at most ``max_ego_image_speed_px_s``), plus a depth component of at most
    ``ego_depth_rate`` x the nearest surface's depth per second."""
    z_bg = float(surfaces[0].centre[2])
    z_near = min(float(s.centre[2]) for s in surfaces)
    speed = rng.uniform(*params.ego_speed_px_s) * z_bg / camera.focal_px
    speed = min(speed, params.max_ego_image_speed_px_s * z_near / camera.focal_px)   # the draws stay the same
    angle = rng.uniform(0, 2 * np.pi)
    vz = rng.uniform(-1.0, 1.0) * params.ego_depth_rate * z_near
    return float(speed * np.cos(angle)), float(speed * np.sin(angle)), float(vz)


def random_ground(camera: StereoCamera, rng: np.random.Generator, params: SceneParams,
                  ego_velocity: tuple[float, float, float], ego_period_s: float,
                  background_disparity: float = 0.0) -> PlanarSurface:
    """A ground plane below a level rig: the plane ``Y = h`` (m; image y points down), its texture indexed by X and
    Z. Its disparity at the bottom image row, ``b·(H - 1 - cy)/h``, is drawn from ``ground_disparity`` (px), at
    least twice ``background_disparity`` (the background's, px: the ground meets the background where their
    disparities are equal, so at least half the rows below the horizon show ground), which sets the rig's height
    ``h``; its texel size (px) is drawn from ``texel_px`` at that depth. It keeps the height
    under the rig's vertical motion (a vehicle does not bob by metres), reaches to the horizon (or the background
    plane) and its texture fades where a texel looks smaller than 1 px (``PlanarSurface.min_texel_px``)."""
    rows_below = camera.height - 1 - camera.principal[1]
    lo, hi = params.ground_disparity
    d_bottom = rng.uniform(max(lo, 2.0 * background_disparity), max(hi, 2.0 * background_disparity + 1.0))
    height_m = camera.baseline_m * rows_below / d_bottom
    z_bottom = camera.fb / d_bottom                        # depth seen by the bottom row (m)
    return PlanarSurface(
        centre=(0.0, float(height_m), 0.0), normal=(0.0, 1.0, 0.0),
        velocity=(0.0, float(ego_velocity[1]), 0.0), half_size=(np.inf, np.inf),
        texel_m=rng.uniform(*params.texel_px) * z_bottom / camera.focal_px, texture=_random_texture(rng, params),
        period_s=float(ego_period_s), texture_axes=(0, 2), min_texel_px=1.0)


def random_ego_rotation(camera: StereoCamera, rng: np.random.Generator, params: SceneParams = SceneParams()
                        ) -> tuple[float, float, float]:
    """Rig angular velocity (rad/s about the rig's x, y, z axes): a pitch/yaw rate whose image speed at the
    principal point, ``f·|ω|``, is drawn in px/s from ``ego_rotation_px_s``, about any axis in the image plane,
    plus a roll rate of at most half of it."""
    rate = rng.uniform(*params.ego_rotation_px_s) / camera.focal_px
    angle = rng.uniform(0, 2 * np.pi)
    roll = rng.uniform(-0.5, 0.5) * rate
    return float(rate * np.cos(angle)), float(rate * np.sin(angle)), float(roll)


def rotation_matrix(rotation_vector) -> np.ndarray:
    """Axis-angle vector [3] (rad) -> rotation matrix [3, 3] (Rodrigues)."""
    r = np.asarray(rotation_vector, dtype=np.float64)
    angle = float(np.linalg.norm(r))
    if angle == 0.0:
        return np.eye(3)
    k = r / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * kx @ kx


def _oscillate(t_s: float, period_s: float) -> float:
    """Time warp of an oscillation: ``P/(2π)·sin(2πt/P)`` (velocity at t=0 unchanged); t if P <= 0."""
    return period_s / (2 * np.pi) * np.sin(2 * np.pi * t_s / period_s) if period_s > 0 else t_s


def ray_cast(camera: StereoCamera, surfaces: list[PlanarSurface], t_s: float, *, camera_x_m: float = 0.0,
             origin: tuple[float, float, float] = (0.0, 0.0, 0.0), rotation: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Render one view at time ``t_s`` (s) from a camera at ``(camera_x_m, 0, 0)`` (m) in a rig whose left
    camera sits at ``origin`` and whose axes are turned by ``rotation`` [3, 3] (rig -> world; None: looking
    down +Z).

    Returns ``(intensity float64 [H, W] in (0, 1], depth float64 [H, W] in metres along the rig's optical axis,
    inf where no surface)``.
    """
    f = camera.focal_px
    cx, cy = camera.principal
    u = np.arange(camera.width, dtype=np.float64)[None, :]
    v = np.arange(camera.height, dtype=np.float64)[:, None]
    rx = np.broadcast_to((u - cx) / f, (camera.height, camera.width))
    ry = np.broadcast_to((v - cy) / f, (camera.height, camera.width))
    if rotation is None:
        ox, oy, oz = float(origin[0]) + camera_x_m, float(origin[1]), float(origin[2])
        dx, dy, dz = rx, ry, 1.0
    else:
        R = np.asarray(rotation, dtype=np.float64)
        ox, oy, oz = (float(o + camera_x_m * R[i, 0]) for i, o in enumerate(origin))
        # ray (rx, ry, 1) of the rig in world axes: a hit at ray parameter z lies at rig depth z
        dx, dy, dz = (R[i, 0] * rx + R[i, 1] * ry + R[i, 2] for i in range(3))
    depth = np.full((camera.height, camera.width), np.inf)
    image = np.full((camera.height, camera.width), 0.5)
    for surf in surfaces:
        c = surf.centre_at(t_s)
        n = np.asarray(surf.normal)
        denom = n[0] * dx + n[1] * dy + n[2] * dz
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (n[0] * (c[0] - ox) + n[1] * (c[1] - oy) + n[2] * (c[2] - oz)) / denom
        a, b = surf.texture_axes
        o, d = (ox, oy, oz), (dx, dy, dz)
        lx, ly = o[a] + z * d[a] - c[a], o[b] + z * d[b] - c[b]   # (X, Y) offsets, or the surface's texture_axes
        hit = (z > 1e-6) & (np.abs(lx) <= surf.half_size[0]) & (np.abs(ly) <= surf.half_size[1]) & (z < depth)
        if not hit.any():
            continue
        coords = np.stack([ly[hit] / surf.texel_m, lx[hit] / surf.texel_m])
        values = ndimage.map_coordinates(surf.texture, coords, order=1, mode="grid-wrap")
        if surf.min_texel_px > 0:
            # apparent texel size (px): texel_m·f/z, times |cos| between the ray and the normal (foreshortening)
            norm = np.sqrt(np.broadcast_to(dx * dx + dy * dy + dz * dz, z.shape)[hit])
            size = surf.texel_m * f / z[hit] * np.abs(np.broadcast_to(denom, z.shape)[hit]) / norm
            mean = float(surf.texture.mean())
            values = mean + (values - mean) * np.clip(size / surf.min_texel_px, 0.0, 1.0)
        image[hit] = values
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
    """A deterministic moving stereo scene: render frames, emulate events, give GT disparity.

    ``ego_velocity`` (m/s) moves the rig and ``ego_angular_velocity`` (rad/s about the rig's x, y, z axes)
    turns it about its left camera, both oscillating with ``ego_period_s`` like the surfaces (0 = linear).
    Event statistics: emulator ``contrast`` with per-pixel ``contrast_std``, ``refractory_us``,
    background ``noise_rate_hz`` per pixel, and ``hot_pixel_fraction`` of each sensor's pixels firing at
    ``hot_pixel_rate_hz`` (Poisson, one polarity per hot pixel).
    """

    camera: StereoCamera
    surfaces: tuple[PlanarSurface, ...]
    seed: int = 0
    contrast: float = 0.2
    contrast_std: float = 0.03
    noise_rate_hz: float = 0.0
    refractory_us: int = 0
    hot_pixel_fraction: float = 0.0
    hot_pixel_rate_hz: float = 0.0
    ego_velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ego_period_s: float = 0.0
    ego_angular_velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def random(cls, camera: StereoCamera, seed: int, params: SceneParams = SceneParams(), **kwargs) -> "StereoScene":
        """Surfaces, ego-motion and event statistics drawn from ``params`` (``kwargs`` override fields)."""
        rng = np.random.default_rng(seed)
        surfaces = random_scene(camera, rng, params)
        contrast = float(rng.uniform(*params.contrast))
        drawn = dict(
            ego_velocity=random_ego_velocity(camera, surfaces, rng, params),
            ego_period_s=float(rng.uniform(*params.period_s)),
            contrast=contrast, contrast_std=contrast * float(rng.uniform(*params.contrast_spread)),
            refractory_us=int(rng.uniform(*params.refractory_us)),
            noise_rate_hz=float(rng.uniform(*params.noise_rate_hz)),
            hot_pixel_fraction=float(rng.uniform(*params.hot_pixel_fraction)),
            hot_pixel_rate_hz=float(rng.uniform(*params.hot_pixel_rate_hz)))
        if params.ego_rotation_px_s[1] > 0:   # drawn last: scenes without rotation keep their draws
            drawn["ego_angular_velocity"] = random_ego_rotation(camera, rng, params)
        drawn.update(kwargs)
        if params.ground_prob > 0:   # its own stream: the scene's other draws stay those of a scene without ground
            ground_rng = np.random.default_rng((int(seed), 13))
            if ground_rng.random() < params.ground_prob:
                surfaces.append(random_ground(camera, ground_rng, params, drawn["ego_velocity"],
                                              drawn["ego_period_s"], camera.fb / float(surfaces[0].centre[2])))
        return cls(camera=camera, surfaces=tuple(surfaces), seed=seed, **drawn)

    def origin(self, t_us: int) -> tuple[float, float, float]:
        """Left camera centre (m) at ``t_us``."""
        k = _oscillate(t_us * 1e-6, self.ego_period_s)
        return tuple(float(k * v) for v in self.ego_velocity)

    def rotation(self, t_us: int) -> np.ndarray | None:
        """Rig axes in the world at ``t_us`` (rotation matrix [3, 3], rig -> world); None for a rig that does not
        rotate."""
        if not any(self.ego_angular_velocity):
            return None
        k = _oscillate(t_us * 1e-6, self.ego_period_s)
        return rotation_matrix(k * np.asarray(self.ego_angular_velocity))

    def render(self, t_us: int, view: str = "left") -> np.ndarray:
        """Intensity frame float32 [H, W] in (0, 1] of ``view`` ("left"/"right") at ``t_us`` (µs)."""
        x = 0.0 if view == "left" else self.camera.baseline_m
        return ray_cast(self.camera, list(self.surfaces), t_us * 1e-6, camera_x_m=x,
                        origin=self.origin(t_us), rotation=self.rotation(t_us))[0].astype(np.float32)

    def disparity(self, t_us: int) -> np.ndarray:
        """Exact left-view disparity float32 [H, W] (px, NaN invalid) at ``t_us``."""
        _, depth = ray_cast(self.camera, list(self.surfaces), t_us * 1e-6, origin=self.origin(t_us),
                            rotation=self.rotation(t_us))
        return disparity_from_depth(self.camera, depth)

    def _emulators(self):
        from eventvision.simulate.emulator import EventEmulator
        kw = dict(contrast=self.contrast, contrast_std=self.contrast_std, noise_rate_hz=self.noise_rate_hz,
                  refractory_us=int(self.refractory_us))
        return (EventEmulator(self.camera.width, self.camera.height, seed=2 * self.seed + 1, **kw),
                EventEmulator(self.camera.width, self.camera.height, seed=2 * self.seed + 2, **kw))

    def _hot_pixels(self, view: int) -> tuple[np.random.Generator, np.ndarray, np.ndarray, np.ndarray]:
        """(rng, x, y, polarity) of one camera's hot pixels."""
        rng = np.random.default_rng((self.seed, 7, view))
        n_pix = self.camera.width * self.camera.height
        fraction = min(max(self.hot_pixel_fraction, 0.0), 1.0)
        n = int(rng.binomial(n_pix, fraction)) if fraction > 0 else 0
        idx = rng.choice(n_pix, size=n, replace=False) if n else np.zeros(0, dtype=np.int64)
        return rng, idx % self.camera.width, idx // self.camera.width, rng.choice([-1, 1], size=n)

    def _hot_events(self, hot, t_a: int, t_b: int) -> np.ndarray:
        rng, xs, ys, ps = hot
        if not len(xs) or self.hot_pixel_rate_hz <= 0:
            return empty_events()
        counts = rng.poisson(self.hot_pixel_rate_hz * (t_b - t_a) * 1e-6, size=len(xs))
        ev = np.empty(int(counts.sum()), dtype=EVENT_DTYPE)
        ev["x"], ev["y"], ev["p"] = np.repeat(xs, counts), np.repeat(ys, counts), np.repeat(ps, counts)
        ev["t"] = rng.integers(t_a + 1, t_b + 1, len(ev))
        return ev[np.argsort(ev["t"], kind="stable")]

    def iter_events(self, t_end_us: int, *, frame_dt_us: int = 1000, chunk_us: int = 50_000, t_begin_us: int = 0
                    ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """Emulate both cameras from ``t_begin_us`` (the sensors start there, with that moment's frame as their
        reference) to ``t_end_us``; yield ``(t0, t1, left, right)`` per ``chunk_us``.

        Frames are rendered every ``frame_dt_us``; the emulator interpolates event times between them.
        Memory is bounded by one chunk.
        """
        emu_l, emu_r = self._emulators()
        hot_l, hot_r = self._hot_pixels(0), self._hot_pixels(1)
        t = chunk_start = int(t_begin_us)
        emu_l.reset(self.render(t, "left"), t)
        emu_r.reset(self.render(t, "right"), t)
        buf_l: list[np.ndarray] = []
        buf_r: list[np.ndarray] = []
        while t < t_end_us:
            t_prev, t = t, min(t + frame_dt_us, t_end_us)
            buf_l.append(np.asarray(emu_l.step(self.render(t, "left"), t), dtype=EVENT_DTYPE))
            buf_r.append(np.asarray(emu_r.step(self.render(t, "right"), t), dtype=EVENT_DTYPE))
            if self.hot_pixel_fraction > 0:
                buf_l.append(self._hot_events(hot_l, t_prev, t))
                buf_r.append(self._hot_events(hot_r, t_prev, t))
            while t >= chunk_start + chunk_us or (t >= t_end_us and chunk_start < t_end_us):
                chunk_end = min(chunk_start + chunk_us, t_end_us)
                left, buf_l = _split_at(buf_l, chunk_end)
                right, buf_r = _split_at(buf_r, chunk_end)
                yield chunk_start, chunk_end, left, right
                chunk_start = chunk_end

    def events(self, t_end_us: int, *, frame_dt_us: int = 1000, t_begin_us: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
        """All left/right events in ``[t_begin_us, t_end_us)`` (small scenes only)."""
        parts = list(self.iter_events(t_end_us, frame_dt_us=frame_dt_us, chunk_us=t_end_us - int(t_begin_us),
                                      t_begin_us=t_begin_us))
        return (np.concatenate([p[2] for p in parts]) if parts else empty_events(),
                np.concatenate([p[3] for p in parts]) if parts else empty_events())


@dataclass(frozen=True)
class RectifyDistortion:
    """A raw sensor's pixel grid relative to the rectified one: rectified = rotation by ``rotation_rad``
    about the image centre, plus ``shift_px``, of the radially distorted raw position
    (``r' = r (1 + k1 r^2)``, r normalised by the half-diagonal). Real rigs record raw coordinates; the
    dataset ships the map that rectifies them (DSEC ``rectify_map.h5``: ``map[y_raw, x_raw] = (x, y)``).
    """

    width: int
    height: int
    rotation_rad: float = 0.0
    shift_px: tuple[float, float] = (0.0, 0.0)
    k1: float = 0.0

    @classmethod
    def random(cls, width: int, height: int, rng: np.random.Generator, *, max_rotation_deg: float = 1.0,
               max_shift_px: float = 3.0, max_k1: float = 0.04) -> "RectifyDistortion":
        return cls(width, height, float(np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))),
                   (float(rng.uniform(-max_shift_px, max_shift_px)),
                    float(rng.uniform(-max_shift_px, max_shift_px))),
                   float(rng.uniform(-max_k1, max_k1)))

    def rectified(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw pixel positions -> rectified positions (float64 px)."""
        cx, cy = (self.width - 1) / 2.0, (self.height - 1) / 2.0
        norm = np.hypot(cx, cy)
        dx, dy = np.asarray(x, np.float64) - cx, np.asarray(y, np.float64) - cy
        g = 1.0 + self.k1 * (dx * dx + dy * dy) / norm ** 2
        dx, dy = dx * g, dy * g
        c, s = np.cos(self.rotation_rad), np.sin(self.rotation_rad)
        return cx + c * dx - s * dy + self.shift_px[0], cy + s * dx + c * dy + self.shift_px[1]

    def raw(self, xr: np.ndarray, yr: np.ndarray, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """Rectified positions -> raw positions (fixed-point inverse of :meth:`rectified`, float64 px)."""
        xr, yr = np.asarray(xr, np.float64), np.asarray(yr, np.float64)
        x, y = xr.copy(), yr.copy()
        for _ in range(iterations):
            fx, fy = self.rectified(x, y)
            x, y = x - (fx - xr), y - (fy - yr)
        return x, y

    def rectify_map(self) -> np.ndarray:
        """float32 [H, W, 2]: rectified (x, y) of every raw pixel (DSEC ``rectify_map`` convention)."""
        ys, xs = np.mgrid[0:self.height, 0:self.width]
        fx, fy = self.rectified(xs, ys)
        return np.stack([fx, fy], axis=-1).astype(np.float32)

    def to_raw(self, events: np.ndarray) -> np.ndarray:
        """Rectified events -> raw sensor events (rounded; those falling off the sensor are dropped)."""
        x, y = self.raw(events["x"], events["y"])
        xi, yi = np.floor(x + 0.5).astype(np.int64), np.floor(y + 0.5).astype(np.int64)
        keep = (xi >= 0) & (xi < self.width) & (yi >= 0) & (yi < self.height)
        out = events[keep].copy()
        out["x"], out["y"] = xi[keep], yi[keep]
        return out


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
