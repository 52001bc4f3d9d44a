"""Pictures of detection results: the evaluator's PR curves and BEV overlays, image overlays."""

from __future__ import annotations

import numpy as np

from eventvision.evaluation.kitti.ap import KittiAPEvaluator
from eventvision.evaluation.kitti.plots import bev_overlay, image_overlay
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
