"""Synthetic stereo scenes: exact GT f·b/Z, consistent left/right rendering, determinism, events."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.simulate.stereo_scenes import (TEXTURE_CELLS, PlanarSurface, StereoCamera, StereoScene,
                                                make_stereo_sample)

CAM = StereoCamera(width=64, height=48, focal_px=80.0, baseline_m=0.25)


def _texture(seed=0):
    return np.random.default_rng(seed).uniform(0.1, 1.0, (TEXTURE_CELLS, TEXTURE_CELLS))


def _plane(z, normal=(0.0, 0.0, 1.0), velocity=(0.0, 0.0, 0.0), half=(np.inf, np.inf), centre_xy=(0.0, 0.0)):
    return PlanarSurface(centre=(centre_xy[0], centre_xy[1], z), normal=normal, velocity=velocity, half_size=half,
                         texel_m=0.05, texture=_texture())


def test_fronto_parallel_plane_gt_is_fb_over_z():
    z = 4.0
    scene = StereoScene(CAM, (_plane(z),))
    d = scene.disparity(0)
    expected = CAM.focal_px * CAM.baseline_m / z                     # 5 px
    x = np.arange(CAM.width)
    assert np.allclose(d[:, x >= expected], expected)
    assert np.isnan(d[:, x < expected]).all()                       # those points leave the right image


def test_slanted_plane_gt_matches_ray_plane_intersection():
    n = np.array([0.3, -0.2, 1.0]) / np.linalg.norm([0.3, -0.2, 1.0])
    c = np.array([0.1, 0.05, 3.0])
    scene = StereoScene(CAM, (_plane(c[2], normal=tuple(n), centre_xy=tuple(c[:2])),))
    d = scene.disparity(0)
    cx, cy = CAM.principal
    for v, u in [(5, 40), (24, 32), (40, 60)]:
        z = CAM.focal_px * CAM.baseline_m / d[v, u]
        p = z * np.array([(u - cx) / CAM.focal_px, (v - cy) / CAM.focal_px, 1.0])
        assert abs(float(n @ (p - c))) < 1e-6                      # on the plane (GT is float32)
    # disparity of a plane is affine in the pixel coordinates
    valid = np.isfinite(d)
    vv, uu = np.nonzero(valid)
    a = np.stack([uu, vv, np.ones_like(uu)], 1).astype(np.float64)
    coef, res, *_ = np.linalg.lstsq(a, d[valid].astype(np.float64), rcond=None)
    assert np.abs(a @ coef - d[valid]).max() < 1e-4 and abs(coef[0]) > 1e-3


def test_views_agree_at_the_disparity_and_occlusion_order():
    z_bg, z_fg = 10.0, 2.0                                          # 2 px and 10 px disparity
    fg = _plane(z_fg, half=(0.3, 0.3))
    scene = StereoScene(CAM, (_plane(z_bg), fg))
    left, right = scene.render(0, "left"), scene.render(0, "right")
    d = scene.disparity(0)
    assert d[24, 32] == pytest.approx(10.0) and d[2, 40] == pytest.approx(2.0)   # nearest surface wins
    for y, x in [(24, 32), (20, 35), (2, 40), (45, 10)]:
        assert right[y, x - int(round(d[y, x]))] == pytest.approx(left[y, x], abs=1e-5)


def test_random_scene_is_deterministic_and_moves():
    a, b = StereoScene.random(CAM, seed=7), StereoScene.random(CAM, seed=7)
    assert np.array_equal(a.render(20_000), b.render(20_000))
    assert np.array_equal(a.disparity(50_000), b.disparity(50_000), equal_nan=True)
    assert not np.array_equal(a.render(0), a.render(50_000))
    assert not np.array_equal(a.render(0), StereoScene.random(CAM, seed=8).render(0))
    d = a.disparity(50_000)
    assert np.nanmin(d) >= 2.0 - 1e-3 and np.nanmax(d) <= 22.0 * 1.2      # background and patch ranges (+ z motion)


def test_events_from_emulator_are_deterministic_and_per_camera():
    s1 = make_stereo_sample(3, width=64, height=48, window_us=30_000)
    s2 = make_stereo_sample(3, width=64, height=48, window_us=30_000)
    for cam in ("left", "right"):
        ev = s1[cam]
        assert len(ev) > 200
        assert ev["t"].min() >= 0 and ev["t"].max() < 30_000 and np.all(np.diff(ev["t"]) >= 0)
        assert set(np.unique(ev["p"]).tolist()) == {-1, 1}
        assert np.array_equal(ev, s2[cam])
    assert not np.array_equal(s1["left"][:100], s1["right"][:100])
