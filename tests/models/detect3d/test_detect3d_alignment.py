"""Dense box alignment: surface pixels, range recovery on rendered stereo pairs, the range forecaster."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.geometry.boxes3d import camera_centre, camera_to_lidar_boxes, project_points
from eventvision.models.detect3d.alignment import (RangeForecaster, align_box_range, box_surface_points, grid_ranges,
                                                   scale_grid_range)
from eventvision.simulate.kitti_scenes import (SceneConfig, image_size, render_view, sample_tracks,
                                               sequence_calibration)


def _scene(seed: int, supersample: int, objects: int = 3):
    cfg = SceneConfig(num_frames=1, num_objects=objects, image_scale=0.25, class_probs=(1.0, 0.0, 0.0),
                      supersample=supersample, z_range=(7.0, 20.0))
    calib = sequence_calibration(cfg)
    rng = np.random.default_rng(seed)
    tracks = sample_tracks(rng, cfg)
    textures = {k: rng.random((128, 128)) for k in ("ground", "wall", "object")}
    width, height = image_size(cfg)
    left, ids, _, depth = render_view(calib.P2, width, height, tracks, 0, cfg, textures)
    right, _, _, _ = render_view(calib.P3, width, height, tracks, 0, cfg, textures)
    boxes = [np.array([*t.location(0, cfg.camera_height), t.hwl[2], t.hwl[0], t.hwl[1], t.ry]) for t in tracks]
    return calib, (left / 255.0).astype(np.float32), (right / 255.0).astype(np.float32), ids, depth, boxes


def _along_ray(box: np.ndarray, centre: np.ndarray, metres: float) -> np.ndarray:
    out = box.copy()
    ray = np.array([box[0] - centre[0], box[2] - centre[2]])
    out[[0, 2]] += metres * ray / np.linalg.norm(ray)
    return out


def test_surface_points_are_the_pixels_and_depths_the_renderer_draws():
    calib, _, _, ids, depth, boxes = _scene(seed=3, supersample=1, objects=1)
    height, width = ids.shape
    rows, cols, points = box_surface_points(calib.P2, boxes[0], width, height)
    assert len(rows) > 50
    drawn = np.argwhere(ids == 0)
    assert sorted(map(tuple, drawn)) == sorted(zip(rows.tolist(), cols.tolist()))
    np.testing.assert_allclose(points[:, 2], depth[rows, cols], atol=5e-3)  # depth: from the camera centre
    inner, _, _ = box_surface_points(calib.P2, boxes[0], width, height, margin_px=1)
    assert 0 < len(inner) < len(rows)


@pytest.mark.parametrize("seed", [0, 1])
def test_alignment_brings_a_box_moved_along_its_ray_back(seed):
    calib, left, right, ids, _, boxes = _scene(seed=seed, supersample=4)
    centre = camera_centre(calib.P2)
    errors = []
    for k, box in enumerate(boxes):
        covered = len(box_surface_points(calib.P2, box, ids.shape[1], ids.shape[0])[0])
        if (ids == k).sum() < 0.8 * covered:
            continue   # mostly hidden behind another car: nothing of it to align
        for shift in (-0.8, 0.6):
            moved = _along_ray(box, centre, shift)
            s = align_box_range(left, right, calib.P2, calib.P3, moved, margin_m=0.3)
            assert s is not None
            found = (moved[[0, 2]] - centre[[0, 2]]) * s + centre[[0, 2]]
            errors.append(np.hypot(*(found - box[[0, 2]])))
    # the start was 0.6-0.8 m off; objects at 7-20 m on a 310x94 pair (disparity 4.9-14 px)
    assert len(errors) >= 4
    assert np.median(errors) < 0.15 and max(errors) < 0.4


def test_alignment_declines_without_evidence():
    calib, left, right, _, _, boxes = _scene(seed=0, supersample=1)
    flat = np.full_like(left, 0.5)
    assert align_box_range(flat, flat, calib.P2, calib.P3, boxes[0]) is None   # no minimum inside the search
    behind_view = boxes[0].copy()
    behind_view[0] += 200.0                                                   # projects outside the image
    assert align_box_range(left, right, calib.P2, calib.P3, behind_view) is None


def test_scaling_the_range_keeps_the_box_on_its_viewing_ray():
    calib = sequence_calibration(SceneConfig(image_scale=0.25))
    centre = camera_centre(calib.P2)
    cam = np.array([[3.0, 1.65, 15.0, 3.9, 1.6, 1.56, 0.3], [-6.0, 1.65, 30.0, 4.1, 1.7, 1.5, -1.2]])
    grid = camera_to_lidar_boxes(cam)
    moved = scale_grid_range(grid, centre, np.array([1.1, 0.9]))
    np.testing.assert_allclose(grid_ranges(moved, centre), grid_ranges(grid, centre) * [1.1, 0.9])
    np.testing.assert_allclose(moved[:, 2:], grid[:, 2:])
    # the centre's image column does not move (camera-frame x and z scale together about the camera centre)
    def column(g):
        pts = np.stack([-g[:, 1], np.full(len(g), 1.65), g[:, 0]], axis=1)
        return project_points(pts, calib.P2)[0][:, 0]
    np.testing.assert_allclose(column(moved), column(grid), atol=1e-6)


def test_forecaster_tracks_a_constant_range_rate_and_restarts_on_a_jump():
    f = RangeForecaster(alpha=0.6, beta=0.2, horizon=1.0, max_jump=1.0)
    assert f.update(7, 0, 20.0) is None                  # first sight: the detector's own forecast stays
    assert f.update(7, 1, 19.5) == pytest.approx(19.0)   # the rate from two ranges
    assert f.update(7, 3, 18.5) == pytest.approx(18.0)   # a skipped frame: the rate is per frame
    assert f.update(7, 4, 23.0) is None                  # 5 m off the prediction: another object, start over
    assert f.update(7, 5, 23.2) == pytest.approx(23.4)
    f.reset()
    assert f.update(7, 6, 10.0) is None
