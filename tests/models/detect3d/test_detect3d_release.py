"""StreamDSGN structure as released: VAN/LKA BEV backbone, fusion placement, history gradient, IoU loss,
depth supervision and the release's defaults in ``detect3d/full``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eventvision.config import load_config
from eventvision.errors import ConfigError
from eventvision.models.detect3d import StereoDetector3D
from eventvision.models.detect3d.backbone import LKA, BEVBackbone, VANBlock
from eventvision.models.detect3d.geometry import DepthBins, lidar_to_camera_boxes
from eventvision.models.detect3d.iou_loss import rotated_iou3d
from eventvision.models.detect3d.volume import depth_ce_loss


def test_lka_kernel_7_is_3x3_then_3x3_dilation_2():
    lka = LKA(8, 7)
    assert lka.dw.kernel_size == (3, 3) and lka.dw.groups == 8
    assert lka.dw_d.kernel_size == (3, 3) and lka.dw_d.dilation == (2, 2) and lka.dw_d.padding == (2, 2)
    with pytest.raises(ConfigError, match="bev_kernel"):
        LKA(8, 9)


def test_van_block_layer_scale_and_inner_shortcut():
    blk = VANBlock(8).eval()
    assert torch.equal(blk.gamma1.data, torch.full((8,), 1e-2)) and torch.equal(blk.gamma2.data, torch.full((8,), 1e-2))
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        blk.attn.proj2.weight.zero_()
        blk.attn.proj2.bias.zero_()
        y = blk.attn(x)  # the released Attention adds its input back inside the block
    torch.testing.assert_close(y, x)


@pytest.mark.parametrize("hw", [(16, 12), (15, 13)])
def test_van_backbone_returns_full_resolution_through_transposed_convs(hw):
    bb = BEVBackbone(in_channels=10, channels=8, embed_dims=(12, 12), depths=(1, 1), mlp_ratios=(2, 2),
                     up_filters=(12, 6))
    assert isinstance(bb.ups[0][0], torch.nn.ConvTranspose2d) and bb.ups[0][0].stride == (2, 2)
    assert bb(torch.randn(2, 10, *hw)).shape == (2, 6, *hw)
    with pytest.raises(ConfigError, match="bev_up_filters"):
        BEVBackbone(in_channels=10, channels=8, embed_dims=(12, 16), depths=(1, 1), mlp_ratios=(2, 2),
                    up_filters=(10, 6))


def _tiny(**kw):
    torch.manual_seed(0)
    args = dict(feat_width=8, feat_channels=16, psv_channels=6, psv_convs=1, num_depth_bins=16,
                voxel_size=(1.6, 1.6, 1.0), bev_channels=16, bev_embed_dims=(16, 16), bev_depths=(1, 1),
                bev_up_filters=(16, 16), head_convs=1, head_channels=16)
    return StereoDetector3D(**{**args, **kw})


def _batch(n=1, grad=False):
    P2 = torch.tensor([[180.4, 0, 152.0, 11.2], [0, 180.4, 42.8, 0.05], [0, 0, 1, 0.0027]])[None].repeat(n, 1, 1)
    P3 = P2.clone()
    P3[:, 0, 3] = -84.9
    g = torch.Generator().manual_seed(1)
    b = {k: torch.rand(n, 3, 64, 160, generator=g) for k in ("left", "right", "prev_left", "prev_right")}
    if grad:
        b["prev_left"].requires_grad_(True)
    return {**b, "P2": P2, "P3": P3, "has_prev": torch.ones(n, dtype=torch.bool)}


def test_fusion_runs_on_spatial_features_before_the_bev_backbone():
    m = _tiny()
    nz = m.grid.shape[0]
    assert m.fusion.reduce[0].in_channels == 6 * nz == m.bev.stem[0].in_channels
    seen = []
    m.bev.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach().clone()))
    m.eval()
    b = _batch()
    with torch.no_grad():
        m(b)
        spatial, _ = m.spatial_features(b["left"], b["right"], b["P2"], b["P3"])
        prev, _ = m.spatial_features(b["prev_left"], b["prev_right"], b["P2"], b["P3"])
        fused, _ = m.fusion(prev, spatial)
    torch.testing.assert_close(seen[0], fused)  # the backbone gets the fused spatial map
    assert m.head.cls.in_channels == 16 and m(b)["cls"].shape[1:3] == m.grid.shape[1:]  # full BEV resolution


@pytest.mark.parametrize("history_grad", [True, False])
def test_previous_frame_is_computed_with_gradient_as_released(history_grad):
    m = _tiny(history_grad=history_grad)
    b = _batch(grad=True)
    out = m(b)
    (out["cls"].sum() + out["reg"].sum()).backward()
    got = b["prev_left"].grad
    assert (got is not None and float(got.abs().sum()) > 0) if history_grad else got is None


def test_streaming_does_not_fuse_the_first_frame():
    m = _tiny().eval()
    b = _batch()
    out = m.stream_step(b["left"], b["right"], b["P2"], b["P3"])
    assert out["shift"].abs().sum() == 0
    m.reset_stream()
    plain = m.stream_step(b["left"], b["right"], b["P2"], b["P3"])
    torch.testing.assert_close(plain["cls"], out["cls"])
    with torch.no_grad():
        spatial, _ = m.spatial_features(b["left"], b["right"], b["P2"], b["P3"])
        expect = m.head(m.bev(spatial))  # first frame: current map straight into the backbone
    torch.testing.assert_close(expect["cls"], out["cls"])


def test_rotated_iou3d_matches_kitti_and_is_differentiable():
    from eventvision.geometry.rotated_iou import iou3d

    rng = np.random.default_rng(0)
    a = np.c_[rng.uniform(-2, 2, (50, 3)), rng.uniform(1, 4, (50, 3)), rng.uniform(-3, 3, 50)]
    b = a + np.c_[rng.normal(0, 1.5, (50, 3)), rng.normal(0, 0.3, (50, 3)), rng.normal(0, 0.5, 50)]
    b[:, 3:6] = np.abs(b[:, 3:6]) + 0.2

    def cam(x):  # kitti.boxes order (x, y, z, l, h, w, ry)
        c = lidar_to_camera_boxes(x)
        return np.c_[c[:, :4], c[:, 5], c[:, 4], c[:, 6]]

    ref = np.array([iou3d(cam(a[i:i + 1]), cam(b[i:i + 1]))[0, 0] for i in range(50)])
    ta = torch.tensor(a, requires_grad=True)
    got = rotated_iou3d(ta, torch.tensor(b))
    np.testing.assert_allclose(got.detach().numpy(), ref, atol=1e-9)
    assert ref.min() == 0.0 and ref.max() > 0.3  # both disjoint and overlapping pairs
    got.sum().backward()
    assert torch.isfinite(ta.grad).all() and ta.grad.abs().sum() > 0
    same = torch.tensor([[10.0, 1.0, -0.8, 3.9, 1.6, 1.5, 0.3]])
    np.testing.assert_allclose(float(rotated_iou3d(same, same)), 1.0, atol=1e-6)


def test_depth_cross_entropy_uses_triangle_targets_over_the_planes():
    bins = DepthBins(2.0, 17.0, 16)  # 1 m planes
    cost = torch.zeros(1, 16, 2, 2, requires_grad=True)
    depth = torch.zeros(1, 8, 8)
    depth[0, 0, 0] = 5.25  # between planes 3 (5 m) and 4 (6 m): targets 0.75 / 0.25
    depth[0, 7, 7] = 60.0  # beyond the range: ignored, like pixels without a measurement (0)
    loss = depth_ce_loss(cost, depth, bins)
    np.testing.assert_allclose(float(loss.detach()), math.log(16), rtol=1e-6)  # uniform prediction
    loss.backward()
    logits = torch.full((1, 16, 2, 2), -10.0)
    logits[:, 3], logits[:, 4] = math.log(0.75), math.log(0.25)
    p = torch.softmax(logits[0, :, 0, 0], 0)
    expect = -(0.75 * torch.log(p[3]) + 0.25 * torch.log(p[4]))
    np.testing.assert_allclose(float(depth_ce_loss(logits, depth, bins)), float(expect), rtol=1e-5)
    assert float(depth_ce_loss(cost.detach(), torch.zeros(1, 8, 8), bins)) == 0.0


def test_training_loss_has_depth_iou_and_motion_terms():
    m = _tiny()
    b = _batch()
    tgt = torch.tensor([[20.0, 2.0, -0.87, 3.9, 1.6, 1.56, 0.3]])
    b["targets"] = [{"boxes": tgt, "labels": torch.tensor([0]), "track_ids": torch.tensor([4])}]
    b["history"] = [[{"boxes": tgt - torch.tensor([k * 0.5, 0, 0, 0, 0, 0, 0]), "track_ids": torch.tensor([4])}
                     for k in (1, 2, 3)]]
    b["depth"] = torch.full((1, 64, 160), 12.0)
    loss, parts = m.loss(m(b), b)
    assert parts["loss_depth"] > 0 and parts["loss_iou"] > 0 and parts["loss_motion"] > 0
    assert math.isfinite(parts["loss"])


def test_full_config_has_the_release_defaults():
    m = load_config("detect3d/full", []).model
    assert list(m.voxel_size) == [0.2, 0.2, 0.4] and m.num_depth_bins == 64
    assert m.loc_weight == 0.5 and m.iou_weight == 1.0 and m.nms_thresh == 0.25 and m.depth_weight == 1.0
    assert m.bev_kernel == 7 and m.bev_layer_scale == 0.01 and m.fusion_interp == "bilinear" and m.history_grad
    assert m.pos_norm_clamp == 10.0 and m.motion_weight == 0.2 and m.head_convs == 2


def test_rpn3d_conv_puts_spatial_features_on_the_bn_scale():
    m = _tiny(geo_convs=1)
    conv = m.geo_convs[0]
    assert conv.kernel_size == (1, 1, 1) and isinstance(m.geo_convs[1], torch.nn.BatchNorm3d)
    assert len(_tiny().geo_convs) == 0  # geo_convs 0: the raw depth-weighted samples (earlier checkpoints)
    b = _batch(n=2)
    spatial, _ = m.spatial_features(b["left"], b["right"], b["P2"], b["P3"])
    spatial = spatial.detach()
    assert float(spatial.min()) >= 0.0 and 0.2 < float(spatial.std()) < 5.0  # after BN + ReLU (training mode)
