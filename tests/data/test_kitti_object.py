"""KITTI Object layout on the real pair: frames, calibration, LiDAR scan and its depth map."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.data.detect3d import kitti_object
from eventvision.errors import UserError
from eventvision.geometry.depth import lidar_depth_map


@pytest.fixture(scope="module")
def training(shared_data):
    return kitti_object.find_object_dir(shared_data / "kitti_object")


def test_reads_the_real_pair(training):
    assert kitti_object.list_frames(training) == ["000000"]
    seq = kitti_object.load_frame(training, "000000")
    assert seq.num_frames == 1 and seq.image_size == (1242, 375)
    assert seq.calib.baseline_m == pytest.approx(0.5327, abs=1e-4)
    assert seq.calib.focal_px == pytest.approx(721.5377)
    assert len(seq.objects[0]) == 0  # no label_2 in the sample


def test_lidar_projects_in_front_into_the_image(training):
    points = kitti_object.frame_velodyne(training, "000000")
    assert points.shape == (103344, 4) and points.dtype == np.float32
    seq = kitti_object.load_frame(training, "000000")
    depth = lidar_depth_map(points, seq.calib, seq.image_size)
    assert depth.shape == (375, 1242) and depth.dtype == np.float32
    filled = depth > 0
    # the 64-beam scan covers the lower part of the image; a few percent of pixels get a point
    assert 0.02 < filled.mean() < 0.2
    assert filled[:100].mean() < filled[200:].mean()
    assert 1.0 < depth[filled].min() and depth[filled].max() < 120.0
    # points ahead beyond 12 m (x forward in the LiDAR frame, |y| small; nearer ground is below the view)
    # land in the image with depth ~ x
    ahead = points[(points[:, 0] > 12) & (points[:, 0] < 60) & (np.abs(points[:, 1]) < 2)]
    rect = seq.calib.velo_to_rect(ahead[:, :3])
    uv = rect @ seq.calib.P2[:, :3].T + seq.calib.P2[:, 3]
    u, v = uv[:, 0] / uv[:, 2], uv[:, 1] / uv[:, 2]
    assert ((u > 0) & (u < 1241) & (v > 0) & (v < 374)).mean() > 0.95
    np.testing.assert_allclose(rect[:, 2], ahead[:, 0], atol=0.5)  # camera z ~ LiDAR x (0.27 m offset)
    # nearest point wins a shared pixel; the release's last-written rule differs only there
    last = lidar_depth_map(points, seq.calib, seq.image_size, keep="last")
    assert ((last > 0) == filled).all() and (depth <= last + 1e-6).all()


def test_bad_scan_and_missing_layout(tmp_path):
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"\0" * 20)
    with pytest.raises(UserError, match="x.bin"):
        kitti_object.read_velodyne(bad)
    with pytest.raises(UserError, match="cvlibs"):
        kitti_object.find_object_dir(tmp_path)


def test_tracking_layout_scan_path(tmp_path):
    folder = tmp_path / "velodyne" / "0003"
    folder.mkdir(parents=True)
    np.array([[10.0, 0.5, -1.0, 0.3]], dtype="<f4").tofile(folder / "000012.bin")
    pts = kitti_object.frame_velodyne(tmp_path, "000012", seq="0003")
    np.testing.assert_allclose(pts, [[10.0, 0.5, -1.0, 0.3]], rtol=1e-6)
