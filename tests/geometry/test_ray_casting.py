"""Ray casting helpers of geometry.boxes3d: the pixel window of a box holds every ray that hits it."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.geometry.boxes3d import box_ray_window, camera_rays, pixel_rays, project_points, ray_box_intersection
from eventvision.simulate.kitti_scenes import KITTI_P2

P = KITTI_P2 * np.array([[0.25], [0.25], [1.0]])   # a 310x94 camera
WIDTH, HEIGHT = 310, 94


def _random_boxes(rng, n):
    """(x, y, z, l, h, w, ry) camera frame: some far off to the side, some reaching behind the camera."""
    return np.stack([rng.uniform(-40, 40, n), rng.uniform(0.5, 2.5, n), rng.uniform(-3, 60, n),
                     rng.uniform(0.5, 5, n), rng.uniform(0.5, 2, n), rng.uniform(0.5, 2, n),
                     rng.uniform(-np.pi, np.pi, n)], axis=1)


@pytest.mark.parametrize("ss", [1, 3])
def test_every_hit_lies_in_the_window(ss):
    origin, dirs = camera_rays(P, WIDTH, HEIGHT, ss)
    rng = np.random.default_rng(0)
    hits_seen = 0
    for box in _random_boxes(rng, 60):
        t, _, _ = ray_box_intersection(origin, dirs, box[:3], (box[4], box[5], box[3]), box[6])
        hit = np.isfinite(t)
        win = box_ray_window(P, box, WIDTH, HEIGHT, ss)
        if win is None:
            assert not hit.any()
            continue
        inside = np.zeros_like(hit)
        inside[win] = True
        assert not (hit & ~inside).any()
        assert win[0].start % ss == 0 and win[0].stop % ss == 0   # whole pixels: [mid::ss] stays aligned
        hits_seen += int(hit.any())
    assert hits_seen > 10


def test_pixel_rays_reproject_to_their_pixels():
    u, v = np.meshgrid(np.arange(0, WIDTH, 37.0), np.arange(0, HEIGHT, 11.0))
    centre, dirs = pixel_rays(P, u, v)
    np.testing.assert_allclose(dirs[..., 2], 1.0)
    uv, _ = project_points(centre + 12.5 * dirs, P)
    np.testing.assert_allclose(uv[..., 0], u, atol=1e-9)
    np.testing.assert_allclose(uv[..., 1], v, atol=1e-9)
