"""StreamDSGN feature-flow fusion and motion-consistency loss."""

from __future__ import annotations

import numpy as np
import torch

from eventvision.models.detect3d.fusion import (FeatureFlowFusion, estimate_bev_flow, motion_consistency_loss,
                                                shift_map, warp_by_shift)


def _smooth_features(c=16, h=40, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, c, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False) + \
        0.3 * torch.randn(1, c, h, w, generator=g)


def test_shift_map_convention():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = shift_map(x, 1, -1)  # y(q) = x(q − (1, −1))
    assert y[0, 0, 1, 0] == x[0, 0, 0, 1] and y[0, 0, 0, 0] == 0 and y[0, 0, 3, 2] == x[0, 0, 2, 3]


def test_feature_flow_recovers_a_known_bev_shift():
    prev = _smooth_features()
    dy, dx = 2, -4  # content moves by (2, −4) cells between frames
    cur = shift_map(prev, dy, dx)
    shift = estimate_bev_flow(prev, cur, radius=3, prob_factor=0.8)
    inner = shift[0, :, 8:-8, 8:-8]
    assert (inner[0] == dy).float().mean() > 0.95 and (inner[1] == dx).float().mean() > 0.95
    # pseudo-next continues the motion: next(q) = cur(q − s)
    nxt = warp_by_shift(cur, shift)
    expect = shift_map(cur, dy, dx)
    close = (nxt[0, :, 10:-10, 10:-10] - expect[0, :, 10:-10, 10:-10]).abs().amax(dim=0) < 1e-6
    assert close.float().mean() > 0.95


def test_feature_flow_keeps_zero_shift_for_static_or_flat_maps():
    prev = _smooth_features(seed=3)
    assert estimate_bev_flow(prev, prev).abs().sum() == 0
    flat = torch.ones(1, 8, 16, 16)  # every shift equally similar -> uniform softmax -> below threshold
    assert estimate_bev_flow(flat, flat)[..., 4:-4, 4:-4].abs().sum() == 0


def test_fusion_module_starts_as_identity_and_learns():
    torch.manual_seed(0)
    fuse = FeatureFlowFusion(16)
    prev, cur = _smooth_features(), _smooth_features(seed=1)
    out, shift = fuse(prev, cur)
    assert torch.equal(out, cur) and shift.shape == (1, 2, 40, 48)
    out.sum().backward()
    assert fuse.out.weight.grad.abs().sum() > 0


def _track(v, theta_rate=0.0, n=4):
    """Boxes of one object at t−2, t−1, t, t+1 moving with constant velocity v (m/frame)."""
    base = torch.tensor([20.0, 3.0, -0.9, 3.9, 1.6, 1.5, 0.4])
    out = []
    for k in range(n):
        b = base.clone()
        b[:3] += k * torch.tensor(v)
        b[6] += k * theta_rate
        out.append(b)
    return [o[None] for o in out]


def test_motion_loss_is_zero_for_constant_velocity_tracks():
    g2, g1, g0, nxt = _track([0.8, -0.1, 0.0], theta_rate=0.05)
    assert float(motion_consistency_loss(nxt, g0, g1, g2)) < 1e-12


def test_motion_loss_value_for_a_known_deviation():
    g2, g1, g0, nxt = _track([0.5, 0.0, 0.0])
    pred = nxt.clone()
    pred[0, 0] += 0.3  # Δ1 = 0.8 vs Δ2 = 0.5 in x only
    # SmoothL1 (β=1) mean over 4 components: 0.5·0.3²/4; second term identical on (Δ1−Δ2) vs (Δ2−Δ3 = 0)
    expect = 0.5 * 0.09 / 4 * (1 + 0.2)
    np.testing.assert_allclose(float(motion_consistency_loss(pred, g0, g1, g2)), expect, rtol=1e-5)
    pred.requires_grad_(True)
    motion_consistency_loss(pred, g0, g1, g2).backward()
    assert pred.grad[0, 0] > 0 and pred.grad[0, 3:6].abs().sum() == 0
