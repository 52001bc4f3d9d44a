"""SGBM + learned refinement (eventvision.models.stereo.refine) and its window encoder."""

import numpy as np
import pytest
import torch

from eventvision.data.stereo.common import SGBMRefineEncoder, crop_sample, make_pair_encoder
from eventvision.errors import ConfigError, InvalidValueError
from eventvision.models.stereo.refine import SGBMRefineStereo


def _guide(n, h, w, d, k=7):
    return torch.cat([d[:, None], torch.ones(n, 1, h, w), torch.rand(n, k, h, w)], dim=1)


def test_untrained_model_returns_the_filled_sgbm_map_and_learns():
    torch.manual_seed(0)
    model = SGBMRefineStereo(max_disp=32)
    left = torch.randint(0, 256, (2, 3, 24, 40), dtype=torch.uint8)
    guide = _guide(2, 24, 40, torch.rand(2, 24, 40) * 20)
    out = model(left, guide)
    assert out.shape == (2, 24, 40)
    torch.testing.assert_close(out, guide[:, 0])             # zero-initialised last layer
    gt = guide[:, 0] + 2.0
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    first = None
    for _ in range(30):
        loss = (model(left, guide) - gt).abs().mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_output_clamped_to_the_model_range_and_bad_inputs_refused():
    model = SGBMRefineStereo(max_disp=16).eval()
    img = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    guide = _guide(1, 16, 16, torch.full((1, 16, 16), 40.0))
    assert model(img, guide).max().item() == 15.0
    with pytest.raises(InvalidValueError, match="guide"):
        model(img, guide[:, :2])
    with pytest.raises(ConfigError, match="whole pixels"):
        SGBMRefineStereo(offsets=[0.5])
    with pytest.raises(ConfigError, match="unknown option"):
        SGBMRefineStereo(widths=[1, 2, 3])


def _plane_events(width, height, disparity, seed=0):
    """Random-dot events of a fronto-parallel plane at ``disparity`` px: left(x) = right(x - d)."""
    from eventvision.events.core import EVENT_DTYPE

    rng = np.random.default_rng(seed)
    n = 6000
    xr = rng.integers(0, width, n)
    y = rng.integers(0, height, n)
    t = np.sort(rng.integers(0, 50_000, n))
    p = rng.integers(0, 2, n)
    right = np.zeros(n, EVENT_DTYPE)
    right["x"], right["y"], right["t"], right["p"] = xr, y, t, p
    left = right.copy()
    left["x"] = xr + disparity
    keep = left["x"] < width
    return left[keep], right


def test_encoder_outputs_and_sgbm_answer_on_a_plane():
    left, right = _plane_events(96, 48, 9)
    enc = make_pair_encoder({"kind": "sgbm_refine", "mode": "sgbm", "offsets": [-1, 0, 1]}, width=96, height=48,
                            max_disparity=30)
    assert isinstance(enc, SGBMRefineEncoder) and enc.max_disparity == 30 and enc.offsets == (-1, 0, 1)
    out = enc(left, right, 0, 50_000)
    assert set(out) == {"left", "guide"}
    assert out["left"].shape == (3, 48, 96) and out["left"].dtype == np.uint8
    assert out["guide"].shape == (5, 48, 96) and not np.isnan(out["guide"]).any()
    answered = out["guide"][1] > 0
    assert answered.mean() > 0.5
    assert np.median(np.abs(out["guide"][0][answered] - 9)) < 0.5
    # where SGBM is right the cost is lowest at offset 0
    costs = out["guide"][2:][:, answered & (np.abs(out["guide"][0] - 9) < 0.1)]
    assert costs.mean(axis=1).argmin() == 1
    with pytest.raises(ConfigError, match="unknown option"):
        make_pair_encoder({"kind": "sgbm_refine", "speed": 2}, width=8, height=8)
    with pytest.raises(ConfigError, match="encoding"):
        make_pair_encoder({"kind": "voxels"}, width=8, height=8)


def test_crop_cuts_every_image_of_the_sample_alike():
    rng = np.random.default_rng(0)
    sample = {"left": np.arange(3 * 10 * 12, dtype=np.uint8).reshape(3, 10, 12),
              "right": np.zeros((3, 10, 12), np.uint8),
              "guide": rng.random((9, 10, 12)).astype(np.float32),
              "disparity": rng.random((10, 12)).astype(np.float32), "meta": {"index": 0}}
    out = crop_sample(sample, (4, 6), np.random.default_rng(3))
    assert out["left"].shape == (3, 4, 6) and out["guide"].shape == (9, 4, 6) and out["disparity"].shape == (4, 6)
    y0, x0 = np.argwhere(sample["disparity"] == out["disparity"][0, 0])[0]
    np.testing.assert_array_equal(out["guide"], sample["guide"][:, y0:y0 + 4, x0:x0 + 6])
    np.testing.assert_array_equal(out["left"], sample["left"][:, y0:y0 + 4, x0:x0 + 6])
