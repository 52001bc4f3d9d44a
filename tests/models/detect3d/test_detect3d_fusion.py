"""StreamDSGN feature-flow fusion and motion-consistency loss, rule by rule as released."""

from __future__ import annotations

import numpy as np
import torch

from eventvision.models.detect3d.fusion import (FeatureFlowFusion, estimate_bev_flow, match_to_current,
                                                motion_consistency_loss, shift_map, smooth_l1, warp_by_shift)


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
    for interp in ("nearest", "bilinear"):
        shift = estimate_bev_flow(prev, cur, radius=3, prob_factor=0.8, interp=interp)
        inner = shift[0, :, 8:-8, 8:-8]
        assert (inner[0] == dy).float().mean() > 0.9 and (inner[1] == dx).float().mean() > 0.9
    # pseudo-next continues the motion: next(q) = cur(q − s)
    nxt = warp_by_shift(cur, shift)
    expect = shift_map(cur, dy, dx)
    close = (nxt[0, :, 10:-10, 10:-10] - expect[0, :, 10:-10, 10:-10]).abs().amax(dim=0) < 1e-4
    assert close.float().mean() > 0.9


def test_bilinear_shift_upsampling_and_warp_are_fractional_with_a_validity_mask():
    prev = torch.zeros(1, 1, 8, 8)
    shift_lo = torch.zeros(1, 2, 4, 4)
    shift_lo[:, 1, :, 2:] = 1.0  # right half moved one pooled cell
    up = torch.nn.functional.interpolate(shift_lo, scale_factor=2, mode="bilinear", align_corners=False) * 2
    assert 0 < float(up[0, 1, 0, 3]) < 2  # INTERP_TYPE bilinear: fractional at the motion boundary
    x = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8).contiguous()
    half = torch.zeros(1, 2, 8, 8)
    half[:, 1] = 0.5
    out = warp_by_shift(x, half)  # out(q) = x(q − 0.5): mean of the two neighbours
    np.testing.assert_allclose(out[0, 0, 3, 1:].numpy(), np.arange(7) + 0.5, atol=1e-5)
    assert float(out[0, 0, 3, 0]) == 0.0  # reaches outside the map -> masked to 0 as released
    assert estimate_bev_flow(prev, prev).abs().sum() == 0


def test_feature_flow_keeps_zero_shift_for_static_or_flat_maps():
    prev = _smooth_features(seed=3)
    assert estimate_bev_flow(prev, prev).abs().sum() == 0
    flat = torch.ones(1, 8, 32, 32)  # every shift equally similar -> uniform softmax -> below threshold
    assert estimate_bev_flow(flat, flat)[..., 10:-10, 10:-10].abs().sum() == 0


def test_fusion_block_as_released():
    torch.manual_seed(0)
    fuse = FeatureFlowFusion(15).eval()
    # one shared BaseConv (1x1 conv + BN, C -> C/3), no output conv
    assert [n for n, _ in fuse.named_parameters()] == ["reduce.0.weight", "reduce.1.weight", "reduce.1.bias"]
    assert fuse.reduce[0].weight.shape == (5, 15, 1, 1)
    prev, cur = _smooth_features(c=15), _smooth_features(c=15, seed=1)
    out, shift = fuse(prev, cur)
    nxt = warp_by_shift(cur, shift)
    expect = cur + torch.cat([fuse.reduce(prev), fuse.reduce(cur), fuse.reduce(nxt)], dim=1)  # concat + current
    torch.testing.assert_close(out, expect)
    # no fusion on the first frame of a sequence (no previous map), per sample in a batch too
    first, zero = fuse(None, cur)
    assert torch.equal(first, cur) and zero.abs().sum() == 0
    both, _ = fuse(torch.cat([prev, prev]), torch.cat([cur, cur]), torch.tensor([True, False]))
    torch.testing.assert_close(both[0], out[0])
    assert torch.equal(both[1], cur[0])


def test_zero_gate_starts_as_no_fusion_and_learns():
    """fusion_gate_init (not released): the added term is scaled per channel from a start value; at 0 the fused
    map equals the current map, and the gate still gets a gradient (the branch output is not zero)."""
    fuse = FeatureFlowFusion(15, gate_init=0.0)
    assert fuse.gate.shape == (1, 15, 1, 1)
    prev, cur = _smooth_features(c=15), _smooth_features(c=15, seed=1)
    out, _ = fuse(prev, cur)
    torch.testing.assert_close(out, cur)
    (out * torch.randn_like(out)).sum().backward()
    assert fuse.gate.grad.abs().sum() > 0


def test_fusion_with_channels_not_divisible_by_three_passes_the_rest():
    fuse = FeatureFlowFusion(16).eval()
    prev, cur = _smooth_features(c=16), _smooth_features(c=16, seed=1)
    out, _ = fuse(prev, cur)
    assert torch.equal(out[:, 15:], cur[:, 15:]) and not torch.equal(out[:, :15], cur[:, :15])


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
    assert float(motion_consistency_loss(nxt, g0, g1, g2, torch.ones(1))) < 1e-8


def test_motion_loss_value_smoothl1_beta_ninth_weighted_and_summed():
    g2, g1, g0, nxt = _track([0.5, 0.0, 0.0])
    pred = torch.cat([nxt, nxt]).clone()
    pred[0, 0] += 0.3  # Δ1 − Δ2 = 0.3 in x: SmoothL1 with β = 1/9 is in its L1 part: 0.3 − 0.5/9
    pred[1, 1] += 0.05  # 0.05 < β: quadratic part 0.5·0.05²·9
    w = torch.tensor([0.1, 0.25])  # 1 / max(#positives, 10) of each anchor's sample
    per0 = (0.3 - 0.5 / 9) * (1 + 0.2)  # the second-order term sees the same deviation (Δ2 − Δ3 = 0)
    per1 = 0.5 * 0.05 ** 2 * 9 * (1 + 0.2)
    rep = lambda b: torch.cat([b, b])  # noqa: E731
    got = motion_consistency_loss(pred, rep(g0), rep(g1), rep(g2), w)
    np.testing.assert_allclose(float(got), 0.1 * per0 + 0.25 * per1, rtol=1e-5)
    # without a t−2 frame only the first-order term remains
    got1 = motion_consistency_loss(pred, rep(g0), rep(g1), None, w)
    np.testing.assert_allclose(float(got1), (0.1 * per0 + 0.25 * per1) / 1.2, rtol=1e-5)
    pred.requires_grad_(True)
    motion_consistency_loss(pred, rep(g0), rep(g1), rep(g2), w).backward()
    assert pred.grad[0, 0] > 0 and pred.grad[:, 3:6].abs().sum() == 0
    np.testing.assert_allclose(smooth_l1(torch.tensor([0.05, 1.0]), 1 / 9).numpy(), [0.01125, 1 - 0.5 / 9], rtol=1e-5)


def test_objects_are_matched_by_bev_iou_and_a_size_check():
    cur = torch.tensor([[20.0, 3.0, -0.9, 3.9, 1.6, 1.5, 0.0], [40.0, -5.0, -0.9, 4.2, 1.7, 1.6, 1.0]])
    nxt = torch.tensor([[20.6, 3.0, -0.9, 3.9, 1.6, 1.5, 0.0],   # moved 0.6 m: overlaps object 0
                        [40.3, -5.0, -0.9, 4.2, 1.7, 1.6, 1.0],  # object 1
                        [20.6, 3.0, -0.9, 3.9, 1.9, 1.5, 0.0],   # overlaps object 0 but 0.3 m wider: not it
                        [30.0, 9.0, -0.9, 3.9, 1.6, 1.5, 0.0]])  # overlaps nothing
    assert match_to_current(nxt, cur).tolist() == [0, 1, -1, -1]
    assert match_to_current(nxt, cur[:0]).tolist() == [-1] * 4


def test_streaming_fusion_reuses_the_previous_maps_with_the_same_result():
    """Streaming (eval, no grad): the previous call's pooled directions and reduced map are reused when the next
    call's previous map is that call's current map; the output equals a fresh computation, and reset_stream or
    another previous map drops the cache."""
    torch.manual_seed(0)
    block = FeatureFlowFusion(6, radius=1).eval()
    maps = [torch.randn(1, 6, 8, 10) for _ in range(3)]
    with torch.no_grad():
        block(maps[0], maps[1])
        assert block._last is not None and block._last[0] is maps[1]
        cached_out, cached_shift = block(maps[1], maps[2])        # reuses maps[1]'s directions and reduced map
        block.reset_stream()
        assert block._last is None
        again_out, again_shift = block(maps[1], maps[2])
        other = maps[1].clone()                                   # equal values, another tensor: no reuse
        block(maps[0], maps[1])
        other_out, _ = block(other, maps[2])
    assert torch.equal(cached_out, again_out) and torch.equal(cached_shift, again_shift)
    assert torch.equal(other_out, again_out)
    block.train()
    out, _ = block(maps[1], maps[2])
    assert block._last is None and out.requires_grad            # training never caches
