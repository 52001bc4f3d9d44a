"""KITTI Tracking label/result/calib I/O and box geometry, on the real labels in shared data."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.errors import UserError
from eventvision.formats import kitti as io
from eventvision.geometry import boxes3d as boxes


def _root(shared_data):
    return shared_data / "kitti_tracking"


def test_read_real_labels(shared_data):
    objs = io.read_sequence_labels(_root(shared_data), "0001")
    assert len(objs) == 4271
    assert objs["frame"].max() == 446
    first = objs[objs["type"] == "Car"][0]
    assert first["frame"] == 0 and first["track_id"] == 0
    np.testing.assert_allclose(first["bbox"], [776.295323, 167.346734, 1241.0, 374.0])
    np.testing.assert_allclose(first["dimensions"], [1.509920, 1.850000, 4.930564])  # h, w, l
    np.testing.assert_allclose(first["location"], [2.921483, 1.510843, 6.348542])
    assert first["rotation_y"] == pytest.approx(-1.570796)
    assert first["score"] == 1.0  # no score column -> 1
    dc = objs[objs["type"] == "DontCare"]
    assert (dc["track_id"] == -1).all() and (dc["truncated"] == -1).all()
    assert set(np.unique(objs["truncated"][objs["type"] != "DontCare"])) <= {0.0, 1.0, 2.0}


def test_split_frames_and_roundtrip(shared_data, tmp_path):
    objs = io.read_sequence_labels(_root(shared_data), "0006")
    frames = io.split_frames(objs, 275)
    assert len(frames) == 275 and sum(len(f) for f in frames) == len(objs)
    assert all((f["frame"] == i).all() for i, f in enumerate(frames))
    dets = objs.copy()
    dets["score"] = np.linspace(0.1, 0.9, len(dets))
    path = tmp_path / "0006.txt"
    io.write_result_file(path, dets)
    back = io.read_label_file(path)
    assert len(back) == len(dets) and (back["type"] == dets["type"]).all()
    np.testing.assert_allclose(back["score"], dets["score"], atol=1e-6)
    np.testing.assert_allclose(back["location"], dets["location"], atol=1e-6)
    io.write_result_file(path, dets, with_score=False)
    assert len(path.read_text().splitlines()[0].split()) == 17
    assert (io.read_label_file(path)["score"] == 1.0).all()


def test_bad_label_file(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1 Car 0 0 0.1 1 2 3\n")
    with pytest.raises(UserError, match="expected 17 or 18 columns"):
        io.read_label_file(bad)
    with pytest.raises(UserError, match="not found"):
        io.read_label_file(tmp_path / "missing.txt")


def test_calib_both_spellings(shared_data, tmp_path):
    obj = io.read_sequence_calib(_root(shared_data), "0001")  # Object spelling with colons
    assert obj.focal_px == pytest.approx(721.5377)
    assert obj.baseline_m == pytest.approx((44.85728 + 339.5242) / 721.5377)
    assert 0.5 < obj.baseline_m < 0.56
    # official tracking spelling: R_rect / Tr_velo_cam / Tr_imu_velo, keys followed by a space
    text = (_root(shared_data) / "training" / "calib" / "0001.txt").read_text()
    text = (text.replace("R0_rect:", "R_rect").replace("Tr_velo_to_cam:", "Tr_velo_cam")
            .replace("Tr_imu_to_velo:", "Tr_imu_velo").replace("P2:", "P2"))
    path = tmp_path / "0001.txt"
    path.write_text(text)
    trk = io.read_calib(path)
    for name in ("P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam", "Tr_imu_to_velo"):
        np.testing.assert_array_equal(getattr(trk, name), getattr(obj, name))
    path.write_text("P0: 1 2 3\n")
    with pytest.raises(UserError, match="expected 12"):
        io.read_calib(path)


def test_projection_matches_labelled_2d_boxes(shared_data):
    root = _root(shared_data)
    calib = io.read_sequence_calib(root, "0001")
    objs = io.read_sequence_labels(root, "0001")
    cars = objs[(objs["type"] == "Car") & (objs["truncated"] == 0) & (objs["occluded"] == 0)]
    proj = boxes.project_boxes_2d(boxes.boxes3d_from_objects(cars), calib.P2)
    inside = (proj[:, 0] > 5) & (proj[:, 2] < 1235) & (proj[:, 1] > 5) & (proj[:, 3] < 370)
    err = np.abs(proj[inside] - cars["bbox"][inside])
    assert inside.sum() > 100
    assert np.median(err) < 2.0  # labelled boxes are the projected 3D boxes up to annotation noise
    # alpha = ry - atan2(x, z)
    a = boxes.alpha_from_rotation_y(cars["rotation_y"], cars["location"][:, 0], cars["location"][:, 2])
    assert np.abs(boxes.wrap_angle(a - cars["alpha"])).max() < 0.05


def test_corners_and_bev():
    box = np.array([[1.0, 2.0, 10.0, 4.0, 1.5, 2.0, np.pi / 2]])  # x y z l h w ry
    c = boxes.corners_3d(box)[0]
    # ry = pi/2 turns the length onto the z axis (x' = l cos + ..., z' = -l sin)
    assert np.ptp(c[:, 2]) == pytest.approx(4.0) and np.ptp(c[:, 0]) == pytest.approx(2.0)
    assert c[:4, 1] == pytest.approx([2.0] * 4) and c[4:, 1] == pytest.approx([0.5] * 4)  # bottom y, top y - h
    bev = boxes.bev_from_boxes3d(box)
    np.testing.assert_allclose(bev, [[1.0, 10.0, 4.0, 2.0, np.pi / 2]])
    np.testing.assert_allclose(boxes.bev_corners(bev)[0], c[:4, [0, 2]])
    assert boxes.disparity_from_depth(10.0, 721.5377, 0.54) == pytest.approx(38.963, abs=1e-3)


def test_object_label_columns_round_trip(tmp_path):
    line = "Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59 0.87\n"
    objs = io.parse_object_label_lines([line, "\n"], frame=7)
    assert len(objs) == 1 and objs["frame"][0] == 7 and objs["track_id"][0] == -1
    np.testing.assert_allclose(objs["location"][0], [-0.65, 1.71, 46.70])
    assert objs["score"][0] == pytest.approx(0.87)
    text = io.format_object_lines(objs)
    assert len(text.split()) == 16 and text.split()[0] == "Car"
    path = tmp_path / "000007.txt"
    path.write_text(text)
    back = io.read_object_label_file(path, frame=7)
    np.testing.assert_allclose(back["bbox"], objs["bbox"]) and np.testing.assert_allclose(back["rotation_y"], -1.59)
    with pytest.raises(UserError, match="15 or 16 columns"):
        io.parse_object_label_lines(["Car 0 0 1 2 3\n"])


def test_png_size_and_calibration_scaling(tmp_path, shared_data):
    import cv2
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((94, 310, 3), np.uint8))
    assert io.png_size(tmp_path / "a.png") == (310, 94)
    (tmp_path / "b.png").write_bytes(b"not a png at all, sorry")
    with pytest.raises(UserError, match="not a PNG"):
        io.png_size(tmp_path / "b.png")
    calib = io.read_sequence_calib(_root(shared_data), "0001")
    half = io.scale_calibration(calib, 0.5)
    assert half.focal_px == pytest.approx(calib.focal_px / 2) and half.baseline_m == pytest.approx(calib.baseline_m)
    back = io.parse_calib_lines(io.format_calibration(half).splitlines())
    np.testing.assert_allclose(back.P3, half.P3) and np.testing.assert_allclose(back.R0_rect, calib.R0_rect)
