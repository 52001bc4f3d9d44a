"""Synthetic KITTI Tracking scenes: exact folder layout and label format, geometry consistent with P2/P3."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from eventvision.geometry.boxes3d import boxes3d_from_objects, project_points
from eventvision.formats.kitti import read_calib, read_label_file, split_frames
from eventvision.simulate.kitti_scenes import (SceneConfig, load_base_calibration, render_view, sample_tracks,
                                               sequence_calibration, write_sequence)

CFG = SceneConfig(num_frames=3, num_objects=4, image_scale=0.25, supersample=1, z_range=(6.0, 25.0))


@pytest.fixture(scope="module")
def scene(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("kitti_syn")
    calib_path = shared_data / "kitti_tracking" / "training" / "calib" / "0005.txt"
    training = write_sequence(root, "0003", seed=7, cfg=CFG, calib_path=calib_path)
    return root, training, calib_path


def test_layout_and_formats(scene):
    root, training, calib_path = scene
    left = sorted((training / "image_02" / "0003").glob("*.png"))
    right = sorted((training / "image_03" / "0003").glob("*.png"))
    assert [p.name for p in left] == ["000000.png", "000001.png", "000002.png"] == [p.name for p in right]
    img = cv2.imread(str(left[0]))
    assert img.shape == (94, 310, 3) and img.std() > 10  # textured, not blank
    calib = read_calib(training / "calib" / "0003.txt")  # Tracking key names (R_rect, Tr_velo_cam)
    base = read_calib(calib_path)
    np.testing.assert_allclose(calib.P2[0, 0], base.P2[0, 0] * 0.25, rtol=1e-9)
    np.testing.assert_allclose(calib.baseline_m, base.baseline_m, rtol=1e-6)
    np.testing.assert_allclose(calib.R0_rect, base.R0_rect)
    text = (training / "label_02" / "0003.txt").read_text().splitlines()
    assert text and all(len(line.split()) == 17 for line in text)


def test_labels_are_tracks_moving_with_constant_velocity_on_the_ground(scene):
    _, training, _ = scene
    objs = read_label_file(training / "label_02" / "0003.txt")
    assert set(objs["type"]) <= {"Car", "Pedestrian", "Cyclist"} and len(objs) >= 3
    assert set(objs["truncated"]) <= {0.0, 1.0, 2.0} and set(objs["occluded"]) <= {0, 1, 2}
    np.testing.assert_allclose(objs["location"][:, 1], 1.65)  # bottom centre on the road plane
    for tid in np.unique(objs["track_id"]):
        o = objs[objs["track_id"] == tid]
        assert len(set(o["type"])) == 1 and np.ptp(o["dimensions"], axis=0).max() == 0
        if len(o) == 3:
            v = np.diff(o["location"], axis=0)
            np.testing.assert_allclose(v[0], v[1], atol=1e-6)
            heading = np.array([np.cos(o["rotation_y"][0]), 0.0, -np.sin(o["rotation_y"][0])])
            speed = np.linalg.norm(v[0])
            np.testing.assert_allclose(v[0], heading * speed, atol=1e-6)  # moves along its heading


def test_rendering_agrees_with_p2_and_p3(scene):
    """Each object's pixels appear where P2 projects it, and shifted by the stereo disparity in the right view."""
    _, training, calib_path = scene
    calib = sequence_calibration(CFG, calib_path)
    tracks = sample_tracks(np.random.default_rng(7), CFG)
    textures = {k: np.random.default_rng(0).random((128, 128)) for k in ("ground", "wall", "object")}
    w, h = 310, 94
    _, ids_l, sil, _ = render_view(calib.P2, w, h, tracks, 0, CFG, textures)
    _, ids_r, _, _ = render_view(calib.P3, w, h, tracks, 0, CFG, textures)
    objs = split_frames(read_label_file(training / "label_02" / "0003.txt"), 3)[0]
    checked = 0
    for o in objs[(objs["occluded"] == 0) & (objs["truncated"] == 0)]:
        k = int(o["track_id"])
        mask_l, mask_r = ids_l == k, ids_r == k
        assert mask_l.sum() == sil[k]  # fully visible: silhouette = visible pixels
        x1, y1, x2, y2 = o["bbox"]
        ys, xs = np.nonzero(mask_l)
        assert xs.min() >= x1 - 1 and xs.max() <= x2 + 1 and ys.min() >= y1 - 1 and ys.max() <= y2 + 1
        centre = boxes3d_from_objects(o[None])[0, :3] - np.array([0.0, o["dimensions"][0] / 2, 0.0])
        uv, depth = project_points(centre, calib.P2)
        assert abs(xs.mean() - uv[0]) < 0.25 * (x2 - x1) + 1
        disparity = (calib.P2[0, 3] - calib.P3[0, 3]) / depth
        shifted = np.roll(mask_l, -int(round(disparity)), axis=1)
        iou = (shifted & mask_r).sum() / (shifted | mask_r).sum()
        assert iou > 0.6, (k, iou)
        checked += 1
    assert checked >= 1


def test_deterministic_and_seed_dependent(tmp_path):
    cfg = SceneConfig(num_frames=1, num_objects=3, image_scale=0.1, supersample=1)
    a = write_sequence(tmp_path / "a", "0000", 1, cfg)
    b = write_sequence(tmp_path / "b", "0000", 1, cfg)
    c = write_sequence(tmp_path / "c", "0000", 2, cfg)
    la, lb, lc = ((p / "label_02" / "0000.txt").read_text() for p in (a, b, c))
    assert la == lb and la != lc
    assert load_base_calibration().baseline_m == pytest.approx(0.5327, abs=1e-3)


def test_rendered_depth_is_the_camera_depth_of_the_surface_seen(scene):
    """Depth maps (KITTI uint16 metres·256) equal the analytic camera depth of the road plane and of an
    object's front face."""
    _, training, calib_path = scene
    depth = cv2.imread(str(training / "depth_02" / "0003" / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (94, 310)
    calib = sequence_calibration(CFG, calib_path)
    tracks = sample_tracks(np.random.default_rng(7), CFG)
    textures = {k: np.random.default_rng(0).random((128, 128)) for k in ("ground", "wall", "object")}
    _, ids, _, d = render_view(calib.P2, 310, 94, tracks, 0, CFG, textures)
    # road pixels: the ray through (u, v) meets y = camera_height at depth z with
    # (v - cy)·z = fy·h + (P[1,3] - cy·P[2,3])
    P = calib.P2
    v = np.arange(94)[:, None].repeat(310, 1).astype(float)
    road = (ids < 0) & (d < 70.0) & (v > P[1, 2] + 3)
    z = (P[1, 1] * CFG.camera_height + P[1, 3] - v * P[2, 3]) / (v - P[1, 2])
    np.testing.assert_allclose(d[road], z[road], rtol=1e-3)
    # an object pixel lies on its box, nearer than the road behind it would be
    assert ((d[ids >= 0] > 0.5) & (d[ids >= 0] < 40)).all()
