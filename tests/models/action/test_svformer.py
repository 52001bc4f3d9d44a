import collections
import json

import pytest
import torch
from spikingjelly.activation_based import functional

from eventvision.errors import CheckpointError
from eventvision.models.action.svformer import (
    SVFormer,
    count_parameters,
    load_released_state_dict,
    released_key,
)
from eventvision.spiking.neurons import PLIFNode

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def released(shared_data):
    return json.loads((shared_data / "reference" / "svformer_released_params.json").read_text())


def _seeded_state_dict(names_shapes, seed: int) -> dict:
    """Released names -> seeded values that keep spikes flowing (BN gains near 1, small running var)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in names_shapes:
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=g) * 0.5 + 0.1
        elif key.endswith(".w"):  # PLIF: 1/tau = sigmoid(w) around 0.5
            sd[key] = torch.randn(shape, generator=g) * 0.3
        elif key.endswith(("norm.weight", "norm1.weight", "norm2.weight", "lpBN.weight", "dwconv_bn.weight")):
            sd[key] = 1.0 + 0.5 * torch.rand(shape, generator=g)
        else:
            sd[key] = torch.randn(shape, generator=g) * 0.5
    return sd


def _seeded_released_state_dict(released) -> dict:
    return _seeded_state_dict(released["parameters"] + released["buffers"], seed=0)


def test_full_size_matches_the_released_parameters(released):
    model = SVFormer()  # defaults = exp/svformer_ucf101_scratch/config.yaml
    assert count_parameters(model) == released["total_parameters"] == 13_801_612
    ours = collections.Counter(tuple(p.shape) for p in model.parameters())
    theirs = collections.Counter(tuple(s) for _, s in released["parameters"])
    assert ours == theirs
    ours_buf = collections.Counter(tuple(b.shape) for b in model.buffers())
    assert ours_buf == collections.Counter(tuple(s) for _, s in released["buffers"])
    neurons = [m for m in model.modules() if isinstance(m, PLIFNode)]
    assert len(neurons) == sum(1 for k, _ in released["parameters"] if k.endswith(".w"))
    assert all(n.detach_reset for n in neurons)


def test_load_released_state_dict_maps_every_key(released):
    sd = _seeded_released_state_dict(released)
    model = SVFormer().eval()
    loaded = load_released_state_dict(model, {"model_state": {"module." + k: v for k, v in sd.items()}})
    assert len(loaded) == len(sd) == len(model.state_dict())
    ours = model.state_dict()
    assert torch.equal(ours["embed.0.conv.module.weight"], sd["patch_embed1.proj.weight"])
    assert torch.equal(ours["stages.2.1.attn.qkv_bn.running_var"], sd["blocks3.1.attn.norm1.running_var"])
    assert torch.equal(ours["side_dw.module.weight"], sd["lpDWConv.weight"])
    assert torch.equal(ours["head_sn.time_constant.raw"], sd["lif_bf_head.w"])
    video = torch.rand(1, 16, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    rates = []
    model.head_sn.register_forward_hook(lambda m, i, o: rates.append(float(o.mean())))
    with torch.no_grad():
        a = model(video)
        functional.reset_net(model)
        model.stages[0][0].conv1.module.weight.mul_(-1.0)  # released blocks1.0.conv1.weight
        b = model(video)
    assert a.shape == (1, 101) and torch.isfinite(a).all()
    assert 0.0 < rates[0] < 1.0  # spikes reach the head
    assert not torch.allclose(a, b)


def test_load_released_state_dict_names_what_does_not_fit(released):
    sd = _seeded_released_state_dict(released)
    sd["blocks9.0.extra.weight"] = torch.zeros(3)
    del sd["head.bias"]
    with pytest.raises(CheckpointError, match=r"unknown keys: blocks9\.0\.extra\.weight.*missing: fc\.bias"):
        load_released_state_dict(SVFormer(), sd)


def test_small_forward_backward_and_binary_spikes():
    model = SVFormer(num_classes=5, in_channels=3, num_frames=4, image_size=32, dims=(8, 16, 24, 32),
                     depths=(1, 1, 1, 1), head_dim=8)
    assert model.stages[2][0].attn.num_heads == 3
    qkv = model.stages[2][0].attn.qkv  # the release's init: trunc_normal(std=.02), zero bias
    assert abs(float(qkv.weight.detach().std()) - 0.02) < 0.004 and not qkv.bias.any()
    spikes = []
    model.stages[2][0].attn.q_sn.register_forward_hook(lambda m, i, o: spikes.append(o.detach()))
    video = torch.rand(2, 4, 3, 32, 32)
    logits = model(video)
    assert logits.shape == (2, 5)
    assert set(torch.unique(spikes[0]).tolist()) <= {0.0, 1.0}
    logits.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    functional.reset_net(model)
    with torch.no_grad():
        model.eval()
        a = model(video)
        functional.reset_net(model)
        b = model(video)
    assert torch.equal(a, b)  # reset restores the state exactly


# --- the released forward pass, written from yult0821/SVFormer uniformer2d_psnn_try.py with plain torch ops
# on a state_dict under the released names; our model must give the same logits.

def _plif(x, w):
    k, v, out = torch.sigmoid(w), torch.zeros_like(x[0]), []
    for xt in x:  # decay_input, v_reset 0, threshold 1 (SpikingJelly ParametricLIFNode defaults)
        h = v + (xt - v) * k
        s = (h >= 1.0).to(x.dtype)
        v = h * (1.0 - s)
        out.append(s)
    return torch.stack(out)


def _bn_et(x, sd, key):  # BatchNorm*_eT: [T, B, C, ...] -> [B, T*C, ...]
    y = x.transpose(0, 1).reshape(x.shape[1], -1, *x.shape[3:])
    y = torch.nn.functional.batch_norm(y, sd[key + ".running_mean"], sd[key + ".running_var"],
                                       sd[key + ".weight"], sd[key + ".bias"], False, 0.0, 1e-5)
    return y.reshape(x.shape[1], x.shape[0], *x.shape[2:]).transpose(0, 1)


def _conv(x, sd, key, stride=1, padding=0, groups=1):
    y = torch.nn.functional.conv2d(x.flatten(0, 1), sd[key + ".weight"], sd[key + ".bias"], stride, padding, 1,
                                   groups)
    return y.view(x.shape[0], x.shape[1], *y.shape[1:])


def _lin(x, sd, key):
    return torch.nn.functional.linear(x, sd[key + ".weight"], sd[key + ".bias"])


def _bn_tokens(x, sd, key):  # x [T, B, N, C]: the release transposes to [T, B, C, N] around BatchNorm1d_eT
    return _bn_et(x.transpose(-2, -1), sd, key).transpose(-2, -1)


def _released_forward(sd, video, depths, head_dim):
    x = video.permute(2, 0, 1, 3, 4)  # [B, C, T, H, W] (the release's input) -> [T, B, C, H, W]
    for stage in range(1, 5):
        p = f"patch_embed{stage}"
        if stage > 1:
            x = _plif(x, sd[p + ".in_lif.w"])
        x = _bn_et(_conv(x, sd, p + ".proj", stride=4 if stage == 1 else 2, padding=1), sd, p + ".norm")
        if stage == 3:
            lp = _plif(x, sd["lplif.w"])
            lp = _conv(lp, sd, "lpDWConv", stride=2, padding=1, groups=lp.shape[2])
            x_lp = _bn_et(_conv(lp, sd, "lpPWConv"), sd, "lpBN")
        for j in range(depths[stage - 1]):
            b = f"blocks{stage}.{j}"
            if stage < 3:  # CBlock
                y = _conv(_plif(x, sd[b + ".act1.w"]), sd, b + ".conv1")
                y = _conv(_conv(y, sd, b + ".attn", padding=2, groups=y.shape[2]), sd, b + ".conv2")
                x = x + _bn_et(y, sd, b + ".norm2")
                y = _bn_et(_conv(_plif(x, sd[b + ".mlp.act1.w"]), sd, b + ".mlp.fc1"), sd, b + ".mlp.norm1")
                y = _conv(_plif(y, sd[b + ".mlp.act2.w"]), sd, b + ".mlp.fc2")
                x = x + _bn_et(y, sd, b + ".mlp.norm2")
                continue
            T, B, C, H, W = x.shape  # SABlock
            t = x.flatten(3).transpose(2, 3)
            heads = C // head_dim
            qkv = _lin(_plif(t, sd[b + ".attn.in_lif.w"]), sd, b + ".attn.qkv")
            qkv = _bn_tokens(qkv, sd, b + ".attn.norm1")
            qkv = qkv.flatten(0, 1).reshape(T * B, H * W, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
            q, k, v = (_plif(z.reshape(T, B, heads, H * W, C // heads), sd[f"{b}.attn.{n}_lif.w"])
                       for z, n in zip(qkv, "qkv"))
            a = (q @ (k.transpose(-2, -1) @ v)) * (C // heads) ** -0.5
            a = _plif(a.transpose(2, 3).reshape(T, B, H * W, C), sd[b + ".attn.proj_lif.w"])
            t = t + _bn_tokens(_lin(a, sd, b + ".attn.proj"), sd, b + ".attn.norm2")
            y = _bn_tokens(_lin(_plif(t, sd[b + ".mlp.act1.w"]), sd, b + ".mlp.fc1"), sd, b + ".mlp.norm1")
            y = _lin(_plif(y, sd[b + ".mlp.act2.w"]), sd, b + ".mlp.fc2")
            t = t + _bn_tokens(y, sd, b + ".mlp.norm2")
            x = t.transpose(2, 3).reshape(T, B, C, H, W)
    x = _plif(torch.cat((x_lp, x), 2), sd["lif_bf_head.w"]).permute(1, 2, 0, 3, 4)
    x = torch.nn.functional.conv3d(x, sd["dwconv_bf_head.weight"], sd["dwconv_bf_head.bias"],
                                   groups=x.shape[1] // 2)
    x = torch.nn.functional.batch_norm(x, sd["dwconv_bn.running_mean"], sd["dwconv_bn.running_var"],
                                       sd["dwconv_bn.weight"], sd["dwconv_bn.bias"], False, 0.0, 1e-5)
    return _lin(x.flatten(1), sd, "head")


def test_forward_equals_the_released_forward_on_released_names(released):
    depths = (1, 1, 2, 1)
    keep = [k for k, _ in released["parameters"] + released["buffers"] if not k.startswith("blocks3.2.")]
    model = SVFormer(num_classes=5, in_channels=3, num_frames=4, image_size=64, dims=(8, 16, 24, 32),
                     depths=depths, head_dim=8).eval()
    ours = model.state_dict()
    sd = _seeded_state_dict([(k, ours[released_key(k)].shape) for k in keep], seed=3)
    load_released_state_dict(model, sd)
    video = torch.rand(2, 4, 3, 64, 64, generator=torch.Generator().manual_seed(4)) * 4.0
    rates = []
    model.head_sn.register_forward_hook(lambda m, i, o: rates.append(float(o.mean())))
    with torch.no_grad():
        expected = _released_forward(sd, video.transpose(1, 2), depths, head_dim=8)
        got = model(video)
    assert 0.0 < rates[0] < 1.0  # spikes reached the head
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
