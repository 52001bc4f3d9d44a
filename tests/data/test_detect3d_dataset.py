"""KITTI Tracking stereo dataset for streaming 3D detection (read from a synthetic set in KITTI layout)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from eventvision.data.detect3d import KittiTrackingStereo, collate_detect3d, patch_split
from eventvision.data.detect3d.kitti_tracking import read_image
from eventvision.errors import DatasetNotFoundError, FileFormatError
from eventvision.formats.kitti import read_label_file, split_frames
from eventvision.geometry.boxes3d import objects_to_grid_boxes
from eventvision.simulate.kitti_scenes import SceneConfig, write_sequence


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("kitti_ds")
    write_sequence(r, "0002", seed=3, cfg=SceneConfig(num_frames=5, num_objects=4, image_scale=0.2, supersample=1,
                                                      z_range=(6.0, 30.0)))
    return r


def test_streamdsgn_patch_split():
    assert patch_split(100, 40, "train") == [(0, 40), (80, 100)]
    assert patch_split(100, 40, "val") == [(40, 80)]
    assert patch_split(100, 40, "test") == [(0, 100)]


def test_samples_pair_frame_t_with_next_frame_boxes_and_history(root):
    ds = KittiTrackingStereo(root, split="all", split_mode="sequence")
    assert len(ds) == 4  # frames 0..3 (frame 4 has no next frame)
    labels = split_frames(read_label_file(root / "training" / "label_02" / "0002.txt"), 5)
    s = ds[2]
    assert s["frame"] == 2 and s["seq"] == "0002" and s["has_prev"]
    assert s["left"].shape == (3, 75, 248) and s["P2"].shape == (3, 4)
    np.testing.assert_array_equal(s["prev_left"].numpy(), read_image(root / "training/image_02/0002/000001.png"))
    boxes, cls, ids = objects_to_grid_boxes(labels[3])
    np.testing.assert_allclose(s["targets"]["boxes"].numpy(), boxes)
    assert s["targets"]["track_ids"].tolist() == ids.tolist()
    for k in range(3):  # history: t, t−1, t−2
        np.testing.assert_allclose(s["history"][k]["boxes"].numpy(), objects_to_grid_boxes(labels[2 - k])[0])
    assert len(s["gt_objects"]) == len(labels[3]) and (s["gt_objects"]["frame"] == 3).all()
    first = ds[0]
    assert not first["has_prev"] and torch.equal(first["prev_left"], first["left"])
    assert len(first["history"][1]["boxes"]) == 0 and len(first["history"][2]["boxes"]) == 0
    batch = collate_detect3d([ds[0], ds[1]])
    assert batch["left"].shape == (2, 3, 75, 248) and batch["has_prev"].tolist() == [False, True]
    assert len(batch["targets"]) == 2


def test_event_input_variant(root):
    ds = KittiTrackingStereo(root, split="all", split_mode="sequence", input_kind="events", event_bins=4)
    s = ds[1]
    assert s["left"].shape == (4, 75, 248) and s["right"].shape == (4, 75, 248)
    assert s["left"].abs().sum() > 0 and s["right"].abs().sum() > 0  # moving objects make events
    assert float(s["prev_left"].abs().sum()) == 0.0  # frame 0 starts the patch: no earlier frame, no events
    again = ds[1]
    assert torch.equal(again["left"], s["left"])  # seeded per sequence/frame/camera
    # the same detector runs on event voxel grids (in_channels = bins, no image normalisation)
    from eventvision.models.detect3d import StereoDetector3D
    torch.manual_seed(0)
    model = StereoDetector3D(in_channels=4, feat_width=8, feat_channels=16, psv_channels=8, psv_convs=1,
                             num_depth_bins=16, voxel_size=(1.6, 1.6, 1.0), bev_channels=16, bev_embed_dims=(16, 16),
                             bev_depths=(1, 1), bev_up_filters=(16, 16), head_convs=1, head_channels=16,
                             image_mean=0.0, image_std=1.0)
    batch = collate_detect3d([s])
    loss, parts = model.loss(model(batch), batch)
    assert torch.isfinite(loss) and parts["num_pos"] > 0


def test_missing_dataset_says_where_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cvlibs.net"):
        KittiTrackingStereo(tmp_path / "nothing")


def test_depth_maps_become_the_plane_sweep_target(root):
    ds = KittiTrackingStereo(root, split="all", split_mode="sequence")
    s = ds[1]
    assert s["depth"].shape == (75, 248) and s["depth"].dtype == torch.float32
    raw = cv2.imread(str(root / "training/depth_02/0002/000001.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_allclose(s["depth"].numpy(), raw / 256.0)
    assert float(s["depth"].max()) > 2.0 and float(s["depth"].min()) >= 0.0
    assert collate_detect3d([ds[0], s])["depth"].shape == (2, 75, 248)
    bad = root / "training/depth_02/0002/000003.png"
    keep = bad.read_bytes()
    try:
        cv2.imwrite(str(bad), np.zeros((75, 248, 3), np.uint8))
        with pytest.raises(FileFormatError, match="000003.png"):
            ds[3]
    finally:
        bad.write_bytes(keep)


def test_lidar_scans_become_the_depth_target_where_no_depth_map_exists(shared_data, tmp_path):
    """A KITTI Tracking sequence with velodyne/<seq>/<frame>.bin and no depth_02 (real KITTI): the depth target
    is the real scan projected with the sequence's calibration (the real KITTI Object pair as a 2-frame
    sequence)."""
    from eventvision.data.detect3d import kitti_object
    from eventvision.geometry.depth import lidar_depth_map

    src = shared_data / "kitti_object" / "training"
    t = tmp_path / "training"
    for cam, theirs in (("image_02", "image_2"), ("image_03", "image_3")):
        (t / cam / "0000").mkdir(parents=True)
        for k in range(2):
            (t / cam / "0000" / f"{k:06d}.png").symlink_to(src / theirs / "000000.png")
    (t / "calib").mkdir()
    (t / "calib" / "0000.txt").write_text((src / "calib" / "000000.txt").read_text())
    (t / "label_02").mkdir()
    (t / "label_02" / "0000.txt").write_text("")
    (t / "velodyne" / "0000").mkdir(parents=True)
    (t / "velodyne" / "0000" / "000000.bin").symlink_to(src / "velodyne" / "000000.bin")
    ds = KittiTrackingStereo(tmp_path, split="all", split_mode="sequence")
    sample = ds[0]
    seq = kitti_object.load_frame(kitti_object.find_object_dir(shared_data / "kitti_object"), "000000")
    expected = lidar_depth_map(kitti_object.read_velodyne(src / "velodyne" / "000000.bin"), seq.calib, (1242, 375))
    assert sample["depth"].shape == (375, 1242)
    np.testing.assert_array_equal(sample["depth"].numpy(), expected)
    assert 0.02 < (expected > 0).mean() < 0.2
    # a depth_02 map, where present, is the target instead
    (t / "depth_02" / "0000").mkdir(parents=True)
    cv2.imwrite(str(t / "depth_02" / "0000" / "000000.png"), np.full((375, 1242), 2560, np.uint16))
    assert float(ds[0]["depth"].mean()) == pytest.approx(10.0)
