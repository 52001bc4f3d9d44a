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


def test_row_correlation_peaks_at_the_shift():
    from eventvision.models.stereo.refine import correlate_rows

    torch.manual_seed(0)
    right = torch.randn(2, 16, 6, 30)
    left = torch.zeros_like(right)
    left[..., 3:] = right[..., :-3]                        # left(x) = right(x - 3)
    corr = correlate_rows(left, right, 8)
    assert corr.shape == (2, 8, 6, 30)
    torch.testing.assert_close(corr[:, 2, :, 5], (left[..., 5] * right[..., 3]).mean(1))
    assert (corr[:, 5, :, :5] == 0).all()                  # no right column to compare with
    assert (corr[..., 10:].argmax(1) == 3).float().mean() > 0.95


def test_matching_branch_starts_as_the_model_without_it_and_needs_the_right_view():
    torch.manual_seed(0)
    plain = SGBMRefineStereo(max_disp=32).eval()
    branch = SGBMRefineStereo(max_disp=32, correlation=8, correlation_channels=8).eval()
    missing = branch.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("match_") for k in missing)
    left = torch.randint(0, 256, (1, 3, 20, 36), dtype=torch.uint8)
    right = torch.randint(0, 256, (1, 3, 20, 36), dtype=torch.uint8)
    guide = _guide(1, 20, 36, torch.rand(1, 20, 36) * 20)
    torch.testing.assert_close(branch(left, guide, right), plain(left, guide))
    with pytest.raises(InvalidValueError, match="right time surface"):
        branch(left, guide)
    # trained, the branch's features get a gradient (the head's and the branch's last convs start at zero:
    # from the third step on)
    branch.train()
    opt = torch.optim.SGD(branch.parameters(), 0.1)
    for _ in range(3):
        opt.zero_grad()
        (branch(left, guide, right) - guide[:, 0] - 3).abs().mean().backward()
        opt.step()
    assert branch.match_features[0][0].weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="ANN encoder"):
        SGBMRefineStereo(correlation=8, encoder="spiking")
    with pytest.raises(ConfigError, match="correlation"):
        SGBMRefineStereo(correlation=-1)


def test_matching_context_blocks_start_as_the_identity_and_learn():
    torch.manual_seed(0)
    branch = SGBMRefineStereo(max_disp=32, correlation=8, correlation_channels=8).eval()
    wider = SGBMRefineStereo(max_disp=32, correlation=8, correlation_channels=8, correlation_context=[1, 2]).eval()
    missing = wider.load_state_dict(branch.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("match_context.") for k in missing)
    left = torch.randint(0, 256, (1, 3, 20, 36), dtype=torch.uint8)
    right = torch.randint(0, 256, (1, 3, 20, 36), dtype=torch.uint8)
    guide = _guide(1, 20, 36, torch.rand(1, 20, 36) * 20)
    torch.testing.assert_close(wider(left, guide, right), branch(left, guide, right))
    # the branch's logits (the matching loss's input) differ once the blocks move away from the identity
    _, logits = wider(left, guide, right, with_matching=True)
    wider.train()
    opt = torch.optim.SGD(wider.match_context.parameters(), 0.5)
    for _ in range(2):
        opt.zero_grad()
        wider(left, guide, right, with_matching=True)[1].logsumexp(1).mean().backward()
        opt.step()
    assert all(p.grad is not None for p in wider.match_context.parameters())
    wider.eval()
    assert (wider(left, guide, right, with_matching=True)[1] - logits).abs().max() > 1e-4
    with pytest.raises(ConfigError, match="needs the matching branch"):
        SGBMRefineStereo(correlation_context=[1])
    with pytest.raises(ConfigError, match="dilations >= 1"):
        SGBMRefineStereo(correlation=8, correlation_context=[0])


def test_encoder_adds_the_right_time_surface_for_the_matching_branch():
    from eventvision.matching.sgbm import event_image_pair

    left, right = _plane_events(64, 32, 5)
    enc = make_pair_encoder({"kind": "sgbm_refine", "right_image": True}, width=64, height=32, max_disparity=20)
    out = enc(left, right, 0, 50_000)
    assert set(out) == {"left", "guide", "right"}
    _, img_r = event_image_pair(left, right, width=64, height=32, t_start=0, t_end=50_000)
    np.testing.assert_array_equal(out["right"], img_r.transpose(2, 0, 1))


def test_second_pass_starts_as_the_model_without_it_and_learns_from_the_cost_around_its_answer():
    from eventvision.tasks.stereo import StereoTask
    from eventvision.config import load_config

    torch.manual_seed(0)
    first = SGBMRefineStereo(max_disp=32, correlation=8, correlation_channels=8).eval()
    both = SGBMRefineStereo(max_disp=32, correlation=8, correlation_channels=8, second_pass=True).eval()
    missing = both.load_state_dict(first.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("head2") for k in missing)
    # a right view that is the left one shifted by 6 px, SGBM's answer 4 px (2 px short)
    right = torch.randint(0, 256, (2, 3, 16, 48), dtype=torch.uint8)
    left = torch.zeros_like(right)
    left[..., 6:] = right[..., :-6]
    guide = _guide(2, 16, 48, torch.full((2, 16, 48), 4.0))
    torch.testing.assert_close(both(left, guide, right), first(left, guide, right))
    with pytest.raises(InvalidValueError, match="right time surface"):
        SGBMRefineStereo(max_disp=32, second_pass=True)(left, guide)
    # only the second head trained, from the first pass's answer: its cost profile shows where the match is
    for p in both.parameters():
        p.requires_grad_(False)
    head2 = [p for n, p in both.named_parameters() if n.startswith("head2")]
    for p in head2:
        p.requires_grad_(True)
    both.train()
    opt = torch.optim.Adam(head2, 3e-2)
    gt = torch.full((2, 16, 48), 6.0)
    start = (first(left, guide, right) - gt)[..., 12:].abs().mean().item()
    for _ in range(60):
        loss = (both(left, guide, right) - gt)[..., 12:].abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * start
    cfg = load_config("stereo/refine", overrides=["model.refine.second_pass=true"])
    assert StereoTask(cfg).encoding["right_image"] is True


def _random_weights(model, seed=3):
    """Non-zero heads and BatchNorm statistics, so every layout or kernel difference would show in the output."""
    torch.manual_seed(seed)
    for p in model.parameters():
        p.data.normal_(0.0, 0.1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("size", [(24, 40), (25, 41)])
def test_for_cpu_inference_keeps_the_outputs(size):
    h, w = size      # 25 x 41: odd, so the upsampling from 1/2 resolution is not an exact factor of two
    model = _random_weights(SGBMRefineStereo(max_disp=32, correlation=8, second_pass=True)).eval()
    left, right = (torch.randint(0, 256, (2, 3, h, w), dtype=torch.uint8) for _ in range(2))
    guide = _guide(2, h, w, torch.rand(2, h, w) * 20)
    guide[:, 1] = (torch.rand(2, h, w) > 0.3).float()
    with torch.inference_mode():
        want = model(left, guide, right)
        assert model.for_cpu_inference() is model and model.fused_cpu_inference
        got = model(left, guide, right)
    assert model.enc2[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    for conv in (model.head_inputs, model.head2_inputs):      # NCHW strides (a 1x1 kernel passes both checks)
        assert conv.weight.stride() == torch.empty(conv.weight.shape).stride()
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_fused_kernels_run_only_in_inference_and_gradients_still_flow(monkeypatch):
    import eventvision.models.stereo._kernels as kernels

    model = _random_weights(SGBMRefineStereo(max_disp=32, second_pass=True)).for_cpu_inference()
    left, right = (torch.randint(0, 256, (1, 3, 16, 24), dtype=torch.uint8) for _ in range(2))
    guide = _guide(1, 16, 24, torch.rand(1, 16, 24) * 20)
    calls = []
    original = kernels.correction_head_kernel
    monkeypatch.setattr(kernels, "correction_head_kernel", lambda *a: calls.append(1) or original(*a))
    model.train()
    model(left, guide, right).sum().backward()           # training: the torch path, with gradient
    assert not calls and model.head[-1].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        model(left, guide, right)
    assert len(calls) == 2                               # both heads, once each
    model(left, guide, right)                            # eval mode with gradient (e.g. a saliency map): torch
    assert len(calls) == 2


def test_packed_inputs_equal_the_concatenated_ones():
    model = SGBMRefineStereo(max_disp=48).eval()
    image = torch.randint(0, 256, (2, 3, 9, 13), dtype=torch.uint8)
    costs, disparity = torch.rand(2, 7, 9, 13), torch.rand(2, 1, 9, 13) * 50
    answered = (torch.rand(2, 1, 9, 13) > 0.5).float()
    image01 = image.float() / 255.0
    with torch.no_grad():
        want = model._inputs(image, image01, costs, disparity, answered)
        model.fused_cpu_inference = True
        got = model._inputs(image, image01, costs, disparity, answered)
    assert got.is_contiguous(memory_format=torch.channels_last) and not want.is_contiguous(
        memory_format=torch.channels_last)
    assert torch.equal(got, want)                        # the same float32 divisions: bit-equal
    with torch.no_grad():                                 # a float image (not the encoder's uint8): the torch path
        assert torch.equal(model._inputs(image.float(), image01, costs, disparity, answered), want)


