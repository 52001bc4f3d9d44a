"""Synthetic stereo scenes: exact GT f·b/Z, consistent left/right rendering, determinism, events."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from eventvision.simulate.stereo_scenes import (FAMILIES, RANDOMIZED, TEXTURE_CELLS, TEXTURE_KINDS, PlanarSurface,
                                                RectifyDistortion, SceneParams, StereoCamera, StereoScene,
                                                family_params, make_stereo_sample, make_texture)

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


def test_rotating_rig_stays_rectified_and_its_gt_is_the_rig_depth():
    from eventvision.simulate.stereo_scenes import rotation_matrix

    omega = (0.3, -0.5, 0.2)                                       # pitch, yaw, roll (rad/s)
    R = rotation_matrix(np.multiply(omega, 0.1))
    assert np.allclose(R @ R.T, np.eye(3)) and np.linalg.det(R) == pytest.approx(1.0)
    smooth = [dataclasses.replace(p, texel_m=0.6) for p in (_plane(10.0), _plane(2.0, half=(0.3, 0.3)))]
    scene = StereoScene(CAM, tuple(smooth), ego_angular_velocity=omega)
    still = StereoScene(CAM, tuple(smooth))
    t = 100_000
    assert scene.rotation(0) is not None and np.allclose(scene.rotation(t), R) and still.rotation(t) is None
    left, right, d = scene.render(t, "left"), scene.render(t, "right"), scene.disparity(t)
    assert not np.allclose(left, still.render(t, "left"))
    # both views see the same surface point at (x - d, y): the turned rig is still rectified (disparities are
    # not whole pixels now: the right view is read between pixels, the textures are smooth for that)
    ys, xs = np.nonzero(np.isfinite(d) & (np.arange(CAM.width)[None, :] - d > 1))
    cols = np.arange(CAM.width)

    def mismatch(shift):
        return np.abs(np.array([np.interp(x - d[y, x] + shift, cols, right[y]) for y, x in zip(ys, xs)])
                      - left[ys, xs])

    assert len(ys) > 1000 and np.median(mismatch(0.0)) < 1e-3 and (mismatch(0.0) > 0.05).mean() < 0.1  # edges
    assert np.median(mismatch(1.0)) > 3 * np.median(mismatch(0.0)) + 0.01
    # GT is f·b over the depth along the rig's axis: a fronto-parallel plane at Z = 10 m seen by the turned rig
    f, (cx, cy) = CAM.focal_px, CAM.principal
    K_inv = np.linalg.inv(np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]]))
    wall = StereoScene(CAM, (_plane(10.0),), ego_angular_velocity=omega).disparity(t)
    for y, x in [(24, 32), (10, 12), (40, 55)]:
        ray_z = (R @ K_inv @ [x, y, 1.0])[2]                       # world depth of the rig ray at unit rig depth
        assert wall[y, x] == pytest.approx(CAM.fb * ray_z / 10.0, rel=1e-5)
    assert np.nanmax(wall) - np.nanmin(wall) > 0.05                 # the turned rig sees the wall slanted
    # the same point of the "rotating" family: same surfaces as its "mixed" scene, a rotation drawn last
    mixed = StereoScene.random(CAM, 3, family_params("mixed"))
    rotating = StereoScene.random(CAM, 3, family_params("rotating"))
    assert np.array_equal(rotating.render(0, "right"), mixed.render(0, "right"))   # not turned yet at t = 0
    assert rotating.ego_velocity == mixed.ego_velocity and rotating.contrast == mixed.contrast
    assert any(rotating.ego_angular_velocity) and not any(mixed.ego_angular_velocity)
    rate = np.hypot(*rotating.ego_angular_velocity[:2]) * CAM.focal_px
    assert 60.0 <= rate <= 300.0 and abs(rotating.ego_angular_velocity[2]) * CAM.focal_px <= 0.5 * rate + 1e-9



def test_ground_plane_gt_grows_row_by_row_and_both_views_see_it():
    from eventvision.simulate.stereo_scenes import random_ground

    params = family_params("ground")
    ground = random_ground(CAM, np.random.default_rng(5), params, ego_velocity=(0.0, 0.0, 0.0), ego_period_s=1.0)
    far_wall = _plane(40.0)                                         # 0.5 px: the ground ends where it meets it
    scene = StereoScene(CAM, (far_wall, ground))
    d = scene.disparity(0)
    h = ground.centre[1]
    cx, cy = CAM.principal
    bottom = CAM.height - 1
    lo, hi = params.ground_disparity
    assert lo <= CAM.baseline_m * (bottom - cy) / h <= hi
    for v in range(int(cy) + 2, CAM.height):                        # d = b·(v - cy)/h on every row below the horizon
        row = d[v][np.isfinite(d[v])]
        expected = CAM.baseline_m * (v - cy) / h
        if expected > 0.5:
            assert np.allclose(row, expected, rtol=1e-5), v
    # the texture runs along the ground (X and Z), not in stripes of constant Y
    left, right = scene.render(0, "left"), scene.render(0, "right")
    assert np.std(left[bottom - 3:, :]) > 0.02 and np.std(left[bottom - 8:bottom, 20]) > 0.005
    ys, xs = np.nonzero(np.isfinite(d) & (np.arange(CAM.width)[None, :] - d > 1) & (d > 2))
    cols = np.arange(CAM.width)
    mismatch = np.abs(np.array([np.interp(x - d[y, x], cols, right[y]) for y, x in zip(ys, xs)]) - left[ys, xs])
    assert len(ys) > 100 and np.median(mismatch) < 0.02
    # far away its texels are finer than a pixel: the texture fades to its mean there (no aliasing flicker)
    near_rows = left[bottom - 2:, :]
    far_rows = left[int(cy) + 1:int(cy) + 2, :]
    assert np.std(far_rows) < 0.5 * np.std(near_rows)
    # behind a near background the ground is nearer still (at least twice its disparity at the bottom row), so
    # at least half the rows below the horizon show it
    for seed in range(5):
        raised = random_ground(CAM, np.random.default_rng(seed), params, (0.0, 0.0, 0.0), 1.0,
                               background_disparity=30.0)
        assert CAM.baseline_m * (bottom - cy) / raised.centre[1] >= 60.0 - 1e-9


def test_ground_family_adds_a_ground_and_keeps_the_other_draws():
    mixed = StereoScene.random(CAM, 4, family_params("mixed"))
    ground = StereoScene.random(CAM, 4, family_params("ground"))
    assert len(ground.surfaces) == len(mixed.surfaces) + 1
    assert ground.surfaces[-1].texture_axes == (0, 2) and ground.surfaces[-1].normal == (0.0, 1.0, 0.0)
    assert all(np.array_equal(a.texture, b.texture) and a.centre == b.centre
               for a, b in zip(mixed.surfaces, ground.surfaces))
    assert ground.ego_velocity == mixed.ego_velocity and ground.contrast == mixed.contrast
    # the ground keeps the rig's height: it follows the rig's vertical motion with the rig's period
    g = ground.surfaces[-1]
    assert g.velocity[1] == ground.ego_velocity[1] and g.period_s == ground.ego_period_s
    t = 300_000
    assert g.centre_at(t * 1e-6)[1] - ground.origin(t)[1] == pytest.approx(g.centre[1])
    # the ground only adds nearer surfaces: GT as large or larger everywhere, larger somewhere below the horizon
    d_ground, d_mixed = ground.disparity(0), mixed.disparity(0)
    both = np.isfinite(d_ground) & np.isfinite(d_mixed)
    assert (d_ground[both] >= d_mixed[both] - 1e-4).all()
    changed = both & (d_ground > d_mixed + 1e-3)
    assert changed.any() and np.nonzero(changed)[0].min() > CAM.principal[1]

def test_random_scene_is_deterministic_and_moves():
    params = SceneParams(patch_disparity=(6.0, 22.0), background_disparity=(2.0, 5.0), background_slant_prob=0.0,
                         ego_depth_rate=0.0)
    a, b = StereoScene.random(CAM, seed=7, params=params), StereoScene.random(CAM, seed=7, params=params)
    assert np.array_equal(a.render(20_000), b.render(20_000))
    assert np.array_equal(a.disparity(50_000), b.disparity(50_000), equal_nan=True)
    assert not np.array_equal(a.render(0), a.render(50_000))
    assert not np.array_equal(a.render(0), StereoScene.random(CAM, seed=8, params=params).render(0))
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


@pytest.mark.parametrize("kind", TEXTURE_KINDS)
def test_texture_kinds_wrap_and_differ(kind):
    rng = np.random.default_rng(0)
    tex = make_texture(kind, rng)
    assert tex.shape == (TEXTURE_CELLS, TEXTURE_CELLS) and tex.min() > 0 and tex.max() <= 1
    spread = float(np.ptp(tex))
    assert spread < 0.1 if kind == "flat" else spread > 0.3            # low texture is nearly flat
    if kind == "edges":                                                # piecewise constant: few levels
        assert len(np.unique(np.round(tex, 6))) <= 17


def test_dead_leaves_texture_is_scale_invariant_with_flat_interiors():
    """Dead leaves: a power spectrum falling like 1/f^1.2..1/f^2.6 (blurred white noise, the ``noise`` kind, is
    nearly flat) and large constant interiors between occlusion edges (a third or more of neighbouring cells equal)."""
    def spectral_slope(tex):
        power = np.abs(np.fft.fft2(tex - tex.mean())) ** 2
        fy, fx = np.meshgrid(np.fft.fftfreq(TEXTURE_CELLS), np.fft.fftfreq(TEXTURE_CELLS), indexing="ij")
        f = np.hypot(fx, fy)
        band = (f >= 2 / TEXTURE_CELLS) & (f <= 0.25)
        return np.polyfit(np.log(f[band]), np.log(power[band] + 1e-12), 1)[0]

    for seed in range(5):
        leaves = make_texture("leaves", np.random.default_rng(seed))
        assert -2.6 < spectral_slope(leaves) < -1.2
        assert (np.abs(np.diff(leaves, axis=1)) < 0.02 * np.ptp(leaves)).mean() > 0.3
        assert spectral_slope(make_texture("noise", np.random.default_rng(seed))) > -1.0


def test_leaves_prob_textures_surfaces_with_dead_leaves_and_draws_nothing_at_zero(monkeypatch):
    from eventvision.simulate import stereo_scenes

    cam = StereoCamera(width=64, height=48, focal_px=60.0, baseline_m=0.1)
    # at 0 (the default) nothing is drawn: a scene is the one made before the option existed (figures of then)
    scene = StereoScene.random(cam, 7, RANDOMIZED.replace(ground_prob=0.5))
    assert len(scene.surfaces) == 4
    assert float(sum(s.texture.sum() for s in scene.surfaces)) == pytest.approx(4612.7122505296675, rel=1e-12)
    kinds = []
    real = stereo_scenes.make_texture
    monkeypatch.setattr(stereo_scenes, "make_texture", lambda kind, *a, **k: kinds.append(kind) or real(kind, *a, **k))
    for prob in (1.0, 0.3, 0.0):
        kinds.clear()
        for seed in range(30):
            StereoScene.random(cam, seed, RANDOMIZED.replace(leaves_prob=prob, ground_prob=0.3))
        share = kinds.count("leaves") / len(kinds)
        assert {1.0: share == 1.0, 0.3: 0.15 < share < 0.45, 0.0: share == 0.0}[prob], (prob, share)


def test_families_cover_disparity_range_ego_motion_and_event_statistics():
    cam = StereoCamera(width=128, height=64, focal_px=100.0, baseline_m=0.1)
    d_max, egos, stats = [], [], []
    for seed in range(12):
        scene = StereoScene.random(cam, seed, family_params("mixed"))
        d_max.append(np.nanmax(scene.disparity(0)))
        egos.append(np.asarray(scene.ego_velocity))
        stats.append((scene.contrast_std / scene.contrast, scene.refractory_us, scene.noise_rate_hz))
    assert max(d_max) > 45 and min(d_max) < 40                        # near and far scenes
    directions = np.array([np.arctan2(e[1], e[0]) for e in egos])
    assert np.ptp(directions) > np.pi                                  # ego-motion in many directions
    assert len({round(s[1]) for s in stats}) > 6 and max(s[2] for s in stats) > 0
    noisy = StereoScene.random(cam, 3, family_params("noisy"))
    assert noisy.hot_pixel_fraction > 0 and noisy.noise_rate_hz >= 1.0
    left, _ = noisy.events(20_000, frame_dt_us=5000)
    _, counts = np.unique(left["y"].astype(np.int64) * cam.width + left["x"], return_counts=True)
    assert counts.max() >= 3                                           # a hot pixel fires repeatedly
    with pytest.raises(Exception, match="family"):
        family_params("nope")
    assert set(FAMILIES) >= {"fronto", "slanted", "clutter", "dots", "smooth", "edges", "low_texture"}


def test_rectify_distortion_round_trip_through_the_map():
    from eventvision.representations import rectify

    dist = RectifyDistortion.random(96, 64, np.random.default_rng(1), max_rotation_deg=1.0, max_k1=0.04)
    ev = np.zeros(500, dtype=make_stereo_sample(0, width=8, height=8, window_us=1000)["left"].dtype)
    rng = np.random.default_rng(0)
    ev["x"], ev["y"] = rng.integers(10, 86, 500), rng.integers(8, 56, 500)
    ev["t"], ev["p"] = np.arange(500), 1
    raw = dist.to_raw(ev)
    assert len(raw) == 500 and (raw["x"] != ev["x"]).mean() > 0.3     # raw coordinates really differ
    back = rectify(raw, dist.rectify_map())
    err = np.hypot(back["x"].astype(float) - ev["x"], back["y"].astype(float) - ev["y"])
    assert (err == 0).mean() > 0.7 and err.max() <= 1.5               # rounding twice moves few events 1 px
