"""The SGBM-refine network's non-learned inputs (eventvision.matching.refine_inputs): hole filling and the
matching-cost profile, each against a plain reference."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eventvision.errors import InvalidValueError
from eventvision.matching.refine_inputs import cost_profile, cost_profile_torch, fill_disparity_holes


def warp_right_to_left(right: torch.Tensor, disparity: torch.Tensor) -> torch.Tensor:
    """Sample ``right`` ``[N, C, H, W]`` at ``x - disparity`` (``disparity`` ``[N, 1, H, W]`` px), bilinear,
    zeros outside: the right view seen from the left view's pixels."""
    n, _, h, w = right.shape
    xs = torch.arange(w, device=right.device, dtype=right.dtype).view(1, 1, w).expand(n, h, w)
    ys = torch.arange(h, device=right.device, dtype=right.dtype).view(1, h, 1).expand(n, h, w)
    gx = 2.0 * (xs - disparity[:, 0]) / max(w - 1, 1) - 1.0
    gy = 2.0 * ys / max(h - 1, 1) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(right, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def test_fill_takes_the_smaller_neighbour_and_keeps_valid_pixels():
    d = np.array([[np.nan, 5.0, np.nan, np.nan, 9.0, np.nan],
                  [np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
                  [3.0, 3.0, 3.0, 3.0, 3.0, 3.0]], dtype=np.float32)
    out = fill_disparity_holes(d)
    # row 0: left edge only has a right neighbour (5); between 5 and 9 -> 5; right edge only a left one (9)
    np.testing.assert_array_equal(out[0], [5, 5, 5, 5, 9, 9])
    # a row without any answer gets the map's median
    np.testing.assert_array_equal(out[1], np.full(6, np.median(d[np.isfinite(d)])))
    np.testing.assert_array_equal(out[2], d[2])
    assert not np.isnan(out).any() and out.dtype == np.float32
    assert np.isnan(d).sum() == 10   # the input is not touched
    np.testing.assert_array_equal(fill_disparity_holes(np.full((2, 3), np.nan)), np.zeros((2, 3)))


def test_fill_equals_a_plain_per_pixel_rule_on_random_maps():
    rng = np.random.default_rng(4)
    d = (rng.random((9, 30)) * 40).astype(np.float32)
    d[rng.random(d.shape) < 0.6] = np.nan
    d[3] = np.nan
    out = fill_disparity_holes(d)
    median = np.median(d[np.isfinite(d)])
    for y in range(9):
        for x in range(30):
            if np.isfinite(d[y, x]):
                assert out[y, x] == d[y, x]
                continue
            left = [v for v in d[y, :x][::-1] if np.isfinite(v)][:1]
            right = [v for v in d[y, x + 1:] if np.isfinite(v)][:1]
            assert out[y, x] == (min(left + right) if left + right else np.float32(median))


def test_cost_profile_equals_a_bilinear_warp_per_offset():
    rng = np.random.default_rng(0)
    left = rng.integers(0, 256, (12, 40, 3)).astype(np.uint8)
    right = rng.integers(0, 256, (12, 40, 3)).astype(np.uint8)
    d0 = (rng.random((12, 40)) * 48 - 4).astype(np.float32)      # also beyond the image on both sides
    offsets = (-4, -2, -1, 0, 1, 2, 4)
    got = cost_profile(left, right, d0, offsets)
    lt, rt = (torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255 for a in (left, right))
    dt = torch.from_numpy(d0)[None, None]
    want = torch.stack([(lt - warp_right_to_left(rt, dt + k)).abs().mean(1)[0] for k in offsets]).numpy()
    assert got.shape == (7, 12, 40) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)
    far = d0 * 25                                   # positions far outside the image (the kernel clamps them)
    want_far = torch.stack([(lt - warp_right_to_left(rt, torch.from_numpy(far)[None, None] + k)).abs().mean(1)[0]
                            for k in offsets]).numpy()
    np.testing.assert_allclose(cost_profile(left, right, far, offsets), want_far, atol=1e-5)
    with pytest.raises(InvalidValueError, match="whole pixels"):
        cost_profile(left, right, d0, (0.5,))


def test_three_channel_cost_is_the_mean_of_the_single_channel_costs():
    # the kernel unrolls the three-channel case; the general loop (here with one channel) must agree with it
    rng = np.random.default_rng(4)
    left = rng.integers(0, 256, (9, 50, 3)).astype(np.uint8)
    right = rng.integers(0, 256, (9, 50, 3)).astype(np.uint8)
    d0 = (rng.random((9, 50)) * 70 - 8).astype(np.float32)
    offsets = (-4, -1, 0, 2)
    per_channel = [cost_profile(np.ascontiguousarray(left[..., c]), np.ascontiguousarray(right[..., c]), d0, offsets)
                   for c in range(3)]
    np.testing.assert_allclose(cost_profile(left, right, d0, offsets), np.mean(per_channel, axis=0), atol=1e-6)


def test_cost_profile_is_zero_at_the_true_shift():
    rng = np.random.default_rng(1)
    right = rng.integers(0, 256, (8, 64, 3)).astype(np.uint8)
    shift = 7
    left = np.zeros_like(right)
    left[:, shift:] = right[:, :-shift]          # left(x) = right(x - 7)
    offsets = (-2, -1, 0, 1, 2)
    cost = cost_profile(left, right, np.full((8, 64), shift - 1, np.float32), offsets)
    k1 = offsets.index(1)
    assert np.abs(cost[k1, :, shift:]).max() < 1e-6           # d0 + 1 = 7: exact match
    assert cost[:, :, shift:].mean(axis=(1, 2)).argmin() == k1


def test_cost_profile_torch_equals_the_numba_kernel_batched():
    rng = np.random.default_rng(2)
    offsets = (-4, -2, -1, 0, 1, 2, 4)
    lefts = rng.integers(0, 256, (2, 10, 33, 3)).astype(np.uint8)
    rights = rng.integers(0, 256, (2, 10, 33, 3)).astype(np.uint8)
    ds = (rng.random((2, 10, 33)) * 40 - 4).astype(np.float32)
    want = np.stack([cost_profile(lefts[i], rights[i], ds[i], offsets) for i in range(2)])
    lt, rt = (torch.from_numpy(a).permute(0, 3, 1, 2) for a in (lefts, rights))
    got = cost_profile_torch(lt, rt, torch.from_numpy(ds)[:, None], offsets)      # CPU: the numba kernel
    assert got.shape == (2, 7, 10, 33)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


def test_cost_profile_torch_grid_sample_path_equals_the_numba_kernel():
    """The path used off the CPU (one grid_sample per batch), run on the CPU."""
    rng = np.random.default_rng(3)
    offsets = (-4, -1, 0, 2)
    lefts = rng.integers(0, 256, (2, 9, 31, 3)).astype(np.uint8)
    rights = rng.integers(0, 256, (2, 9, 31, 3)).astype(np.uint8)
    ds = (rng.random((2, 9, 31)) * 36 - 3).astype(np.float32)
    want = np.stack([cost_profile(lefts[i], rights[i], ds[i], offsets) for i in range(2)])
    lt, rt = (torch.from_numpy(a).permute(0, 3, 1, 2) for a in (lefts, rights))
    got = cost_profile_torch(lt, rt, torch.from_numpy(ds)[:, None], offsets, backend="grid_sample")
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    with pytest.raises(InvalidValueError, match="backend"):
        cost_profile_torch(lt, rt, torch.from_numpy(ds)[:, None], offsets, backend="opencl")


def test_cost_profile_writes_into_a_given_array_and_refuses_a_wrong_one():
    rng = np.random.default_rng(5)
    left, right = (rng.integers(0, 256, (6, 20, 3)).astype(np.uint8) for _ in range(2))
    d0 = (rng.random((6, 20)) * 10).astype(np.float32)
    buffer = np.full((3, 3, 6, 20), np.nan, np.float32)
    target = buffer[1]
    assert cost_profile(left, right, d0, (-1, 0, 1), out=target) is target
    np.testing.assert_array_equal(buffer[1], cost_profile(left, right, d0, (-1, 0, 1)))
    assert np.isnan(buffer[0]).all() and np.isnan(buffer[2]).all()
    with pytest.raises(InvalidValueError, match="C-contiguous float32"):
        cost_profile(left, right, d0, (-1, 0, 1), out=np.empty((3, 6, 20), np.float64))
    with pytest.raises(InvalidValueError, match="shape"):
        cost_profile(left, right, d0, (-1, 0, 1), out=np.empty((2, 6, 20), np.float32))
