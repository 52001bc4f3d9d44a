"""Geometry of the stereo 3D detector: frames, voxel projection, plane-sweep cost volume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eventvision.geometry.boxes3d import project_points
from eventvision.formats.kitti import read_calib
from eventvision.models.detect3d.geometry import (DepthBins, VoxelGrid, camera_to_lidar_boxes, lidar_to_camera_boxes,
                                                  plane_sweep_grid, stereo_disparity_numerator, voxel_sampling_grid)
from eventvision.models.detect3d.volume import (PlaneSweepNet, build_cost_volume, concat_volume_conv, geometry_volume,
                                              warp_right_volume)


@pytest.fixture(scope="module")
def calib(shared_data):
    return read_calib(shared_data / "kitti_tracking" / "training" / "calib" / "0000.txt")


def test_box_frames_round_trip_and_convention():
    cam = np.array([[2.0, 1.65, 20.0, 3.9, 1.6, 1.5, 0.0], [-4.0, 1.7, 10.0, 0.8, 0.6, 1.7, -np.pi / 2]])
    lid = camera_to_lidar_boxes(cam)
    # x forward = camera z, y left = -camera x, z up = -(bottom y) + h/2 (gravity centre)
    np.testing.assert_allclose(lid[0, :3], [20.0, -2.0, -1.65 + 0.75], atol=1e-5)
    # ry = 0 faces camera +x (= grid −y): heading −π/2; ry = −π/2 faces forward: heading 0
    np.testing.assert_allclose(lid[:, 6], [-np.pi / 2, 0.0], atol=1e-6)
    np.testing.assert_allclose(lidar_to_camera_boxes(lid), cam, atol=1e-5)


def test_voxel_grid_shape_and_centres():
    g = VoxelGrid(voxel_size=(0.8, 0.8, 0.8))
    assert g.shape == (5, 72, 64)
    c = g.centres()
    np.testing.assert_allclose(c[0, 0, 0].numpy(), [2.4, -28.4, -2.6], atol=1e-5)
    np.testing.assert_allclose(c[-1, -1, -1].numpy(), [52.8, 28.4, 0.6], atol=1e-5)


def test_voxel_centre_samples_where_the_calibration_projects_it(calib):
    """A plane-sweep volume holding (u_feat, v_feat, depth) as channels, sampled at the voxel centres,
    returns exactly the projection of each centre computed independently from P2."""
    stride, h, w = 4, 94, 311
    bins = DepthBins(2.0, 53.2, 24)
    grid = VoxelGrid(voxel_size=(1.6, 1.6, 1.0))
    P2 = torch.tensor(calib.P2, dtype=torch.float64)[None]
    d = bins.values(dtype=torch.float64)
    cols = torch.arange(w, dtype=torch.float64).view(1, 1, w).expand(bins.num, h, w)
    rows = torch.arange(h, dtype=torch.float64).view(1, h, 1).expand(bins.num, h, w)
    deps = d.view(-1, 1, 1).expand(bins.num, h, w)
    psv = torch.stack([cols, rows, deps])[None]  # [1, 3, D, h, w]
    vol = geometry_volume(psv, None, grid, bins, P2, stride)[0]  # [3, Z, Y, X]
    _, valid = voxel_sampling_grid(grid, bins, P2, (h, w), stride)
    valid = valid[0].numpy()
    assert valid.sum() > 1000 and (~valid).sum() > 1000  # part of the grid is outside the view
    centres = grid.centres(dtype=torch.float64).numpy()[valid]  # grid frame
    cam = np.stack([-centres[:, 1], -centres[:, 2], centres[:, 0]], axis=1)
    uv, _ = project_points(cam, calib.P2)
    expect_feat = (uv + 0.5) / stride - 0.5
    got = vol.permute(1, 2, 3, 0).numpy()[valid]
    np.testing.assert_allclose(got[:, 0], expect_feat[:, 0], atol=1e-6)
    np.testing.assert_allclose(got[:, 1], expect_feat[:, 1], atol=1e-6)
    np.testing.assert_allclose(got[:, 2], cam[:, 2], atol=1e-6)
    # outside the image / depth range the volume is zero
    assert np.abs(vol.permute(1, 2, 3, 0).numpy()[~valid]).max() == 0.0


def test_cost_volume_matches_at_the_true_depth_plane(calib):
    """Right features = left features seen at depth z_k: the warped right volume equals the left features at
    plane k (and not at the others); group-wise correlation peaks at plane k."""
    stride, h, w, c = 4, 12, 40, 16
    bins = DepthBins(2.0, 53.2, 24)
    k, shift = 9, 3  # plane k has a disparity of exactly `shift` feature columns
    z_k = float(bins.values(dtype=torch.float64)[k])
    num = torch.tensor([shift * stride * z_k], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    left = torch.randn(1, c, h, w, generator=g, dtype=torch.float64)
    right = torch.zeros_like(left)
    right[..., : w - shift] = left[..., shift:]  # a point at left column u appears at right column u − shift
    grid = plane_sweep_grid(bins.values(dtype=torch.float64), num, h, w, stride)
    warped = warp_right_volume(right, grid)
    np.testing.assert_allclose(warped[0, :, k, :, shift:].numpy(), left[0, :, :, shift:].numpy(), atol=1e-9)
    assert (warped[0, :, k - 2, :, shift:] - left[0, :, :, shift:]).abs().mean() > 0.5
    cv = build_cost_volume(left, right, grid, kind="concat")
    assert cv.shape == (1, 2 * c, bins.num, h, w)
    np.testing.assert_allclose(cv[0, c:, k].numpy(), warped[0, :, k].numpy())
    gwc = build_cost_volume(left, right, grid, kind="gwc", groups=4)
    best = gwc.mean(dim=1)[0, :, :, shift + 6:].argmax(dim=0)
    assert (best == k).float().mean() > 0.95


def test_stereo_disparity_numerator_is_baseline_times_focal(calib):
    num = stereo_disparity_numerator(torch.tensor(calib.P2)[None], torch.tensor(calib.P3)[None])
    np.testing.assert_allclose(float(num[0]), calib.baseline_m * calib.focal_px, rtol=1e-9)
    assert 0.5 < calib.baseline_m < 0.6


@pytest.mark.parametrize("planes", [1, 2, 6])
def test_concat_volume_conv_equals_the_conv_of_the_built_volume(planes):
    """The factorised stem (left half as 2D convs of depth-summed kernels) = conv3d of [L, R_warp], values and
    gradients, for one plane, two (no interior plane) and more."""
    torch.manual_seed(planes)
    left = torch.randn(1, 4, 6, 7, requires_grad=True)
    right = torch.randn(1, 4, 6, 7, requires_grad=True)
    grid = torch.rand(1, planes, 6, 7, 2) * 2.2 - 1.1
    weight = torch.randn(3, 8, 3, 3, 3, requires_grad=True)
    bias = torch.randn(3, requires_grad=True)
    ref = torch.nn.functional.conv3d(build_cost_volume(left, right, grid), weight, bias, padding=1)
    new = concat_volume_conv(left, warp_right_volume(right, grid), weight, bias)
    torch.testing.assert_close(new, ref, rtol=1e-5, atol=1e-5)
    probe = torch.randn_like(ref)
    g_ref = torch.autograd.grad((ref * probe).sum(), [left, right, weight, bias])
    g_new = torch.autograd.grad((new * probe).sum(), [left, right, weight, bias])
    for a, b in zip(g_new, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    net = PlaneSweepNet(in_channels=8, channels=3, num_convs=1).eval()
    with torch.no_grad():
        for a, b in zip(net.forward_concat(left, warp_right_volume(right, grid)), net(build_cost_volume(left, right,
                                                                                                            grid))):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_warp_right_volume_samples_each_plane_like_a_separate_grid_sample():
    torch.manual_seed(0)
    right = torch.randn(2, 3, 5, 8)
    grid = torch.rand(2, 4, 5, 8, 2) * 2.4 - 1.2
    warped = warp_right_volume(right, grid)
    assert warped.shape == (2, 3, 4, 5, 8) and warped.is_contiguous()
    for d in range(4):
        plane = torch.nn.functional.grid_sample(right, grid[:, d], mode="bilinear", padding_mode="zeros",
                                                align_corners=True)
        assert torch.equal(warped[:, :, d], plane)


def test_voxel_sampling_grid_is_kept_only_while_the_calibration_and_size_stay(calib):
    from eventvision.models.detect3d import StereoDetector3D
    from eventvision.models.detect3d.geometry import voxel_sampling_grid

    model = StereoDetector3D(feat_width=8, feat_channels=16, psv_channels=8, psv_convs=1, num_depth_bins=16,
                             voxel_size=(0.8, 0.8, 0.8), bev_channels=16, bev_embed_dims=(16, 16),
                             bev_depths=(1, 1), bev_up_filters=(16, 16), head_convs=1, head_channels=16)
    P2 = torch.tensor(calib.P2, dtype=torch.float32)[None]
    first = model._voxel_sampling(P2, (24, 78), 4)
    assert model._voxel_sampling(P2.clone(), (24, 78), 4) is first          # same values: kept
    other = P2.clone()
    other[0, 0, 0] += 10.0
    for p2, hw in ((other, (24, 78)), (P2, (12, 39))):
        got = model._voxel_sampling(p2, hw, 4)
        assert got is not first
        assert torch.equal(got, voxel_sampling_grid(model.grid, model.bins, p2, hw, 4)[0])
