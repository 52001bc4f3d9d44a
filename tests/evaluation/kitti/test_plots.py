"""Pictures of detection results: the evaluator's PR curves and BEV overlays, image overlays."""

from __future__ import annotations

import numpy as np

from eventvision.evaluation.kitti.ap import KittiAPEvaluator
from eventvision.evaluation.kitti.plots import bev_overlay, detection_panel, image_overlay, lidar_overlay
from eventvision.evaluation.kitti.synthetic import jitter_predictions
from eventvision.formats import kitti as io


def test_evaluator_saves_pr_curves_and_bev_overlays(shared_data, tmp_path):
    gt = io.read_sequence_labels(shared_data / "kitti_tracking", "0006")
    gt_frames = io.split_frames(gt)[:30]
    dt_frames = io.split_frames(jitter_predictions(gt, seed=0), len(io.split_frames(gt)))[:30]
    ev = KittiAPEvaluator(overlap="loose")
    ev.process(gt_frames, dt_frames)
    written = ev.save_pictures(tmp_path / "plots")
    names = sorted(p.name for p in written)
    assert [n for n in names if n.startswith("pr_")] == ["pr_Car.png", "pr_Cyclist.png", "pr_Pedestrian.png"]
    assert len([n for n in names if n.startswith("bev_")]) == 4
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_overlays_draw_boxes_where_they_are():
    box = np.array([[20.0, 0.0, -0.8, 3.9, 1.6, 1.5, 0.0]])  # 20 m ahead, centred
    img = bev_overlay(box, np.array([0]), None, x_range=(0.0, 40.0), y_range=(-20.0, 20.0), px_per_m=4.0)
    assert img.shape == (160, 160, 3)
    rows, cols = np.nonzero((img == (255, 80, 80)).all(axis=2))
    assert 70 <= rows.mean() <= 90 and 75 <= cols.mean() <= 85  # x = 20 m -> row 80, y = 0 -> column 80
    P2 = np.array([[700.0, 0, 300, 0], [0, 700.0, 100, 0], [0, 0, 1, 0]])
    car = io.make_objects(type="Car", dimensions=(1.5, 1.6, 3.9), location=(0.0, 1.5, 15.0), rotation_y=0.0)
    drawn = image_overlay(np.zeros((200, 600, 3), np.uint8), car, P2)
    ys, xs = np.nonzero(drawn.any(axis=2))
    assert 200 < xs.mean() < 400 and 30 < ys.mean() < 170


def test_bev_overlay_draws_points_where_they_are():
    points = np.array([[20.0, 0.0], [10.0, 10.0], [99.0, 0.0]])   # the last is outside the area: not drawn
    img = bev_overlay(np.zeros((0, 7)), np.zeros(0), None, x_range=(0.0, 40.0), y_range=(-20.0, 20.0),
                      px_per_m=4.0, points=points)
    rows, cols = np.nonzero((img == 130).all(axis=2))
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(80, 80), (120, 40)]   # y = +10 m (left) -> column 40


def test_lidar_overlay_colours_near_red_far_blue_and_panel_stacks():
    image = np.full((40, 60, 3), 200, np.uint8)
    depth = np.zeros((40, 60), np.float32)
    depth[10, 10], depth[30, 50] = 3.0, 60.0
    drawn = lidar_overlay(image, depth)
    assert (drawn[0, 0] == 80).all()                                   # no point: the image at 40 %
    near, far = drawn[10:12, 10:12].reshape(-1, 3), drawn[30:32, 50:52].reshape(-1, 3)
    assert (near == near[0]).all() and (far == far[0]).all()           # 2x2 dots of one colour
    assert near[0, 0] > near[0, 2] and far[0, 2] > far[0, 0]           # near red, far blue
    bev = np.zeros((20, 30, 3), np.uint8)
    panel = detection_panel(image, bev, drawn)
    assert panel.shape == (80, 60 + 120, 3)                            # BEV scaled to the column's 80 px
    assert (panel[40:, :60] == drawn).all() and detection_panel(image, bev).shape == (40, 120, 3)
