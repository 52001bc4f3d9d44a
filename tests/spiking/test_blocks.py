"""Spiking transformer blocks: wiring equals the published formulas, spikes are binary, gradients flow."""

import pytest
import torch
from spikingjelly.activation_based import functional
from torch import nn

from eventvision.spiking.blocks import (
    SDSA,
    SPS,
    SSA,
    CMLDownsample,
    QKFormerBlock,
    QKTokenAttention,
    SpikeDrivenBlock,
    SpikformerBlock,
    SpikingMLP,
    SSAProduct,
    _heads,
    _merge_heads,
)

T, N, L, D, H = 3, 2, 16, 16, 4


def _spikes(*shape, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


def _binary(x):
    return set(x.detach().unique().tolist()) <= {0.0, 1.0}


def _train_some_bn(module, x):
    # one forward in train mode moves the BN running stats so eval-mode firing is not trivial
    module.train()
    module(x)
    functional.reset_net(module)


@pytest.mark.parametrize("order_L", [16, 2])  # L > d_h: Q (K^T V); L <= d_h: (Q K^T) V
def test_ssa_product_equals_qkv_without_softmax(order_L):
    q, k, v = (_spikes(T, N, H, order_L, 4, seed=s) for s in (1, 2, 3))
    out = SSAProduct(scale=0.125)(q, k, v)
    ref = torch.einsum("tnhld,tnhmd,tnhme->tnhle", q, k, v) * 0.125
    assert torch.allclose(out, ref, atol=1e-6)


def test_ssa_wiring_matches_formula():
    torch.manual_seed(0)
    ssa = SSA(D, H)
    x = _spikes(T, N, L, D)
    _train_some_bn(ssa, x)
    ssa.eval()
    out = ssa(x)
    functional.reset_net(ssa)
    q = _heads(ssa.q_sn(ssa.q(x)), H)
    k = _heads(ssa.k_sn(ssa.k(x)), H)
    v = _heads(ssa.v_sn(ssa.v(x)), H)
    attn = ssa.attn_sn(_merge_heads(q @ k.transpose(-2, -1) @ v * 0.125))
    ref = ssa.proj_sn(ssa.proj(attn))
    assert torch.equal(out, ref) and _binary(out)
    assert ssa.attn_sn.v_threshold == 0.5


def test_sdsa_wiring_matches_formula():
    torch.manual_seed(1)
    sdsa = SDSA(D, H)
    x = torch.randn(T, N, L, D) * 2
    _train_some_bn(sdsa, x)
    sdsa.eval()
    out = sdsa(x)
    functional.reset_net(sdsa)
    s = sdsa.in_sn(x)
    q = _heads(sdsa.q_sn(sdsa.q(s)), H)
    k = _heads(sdsa.k_sn(sdsa.k(s)), H)
    v = _heads(sdsa.v_sn(sdsa.v(s)), H)
    kv = sdsa.kv_sn((k * v).sum(dim=-2, keepdim=True))  # SN(sum over tokens of K*V), per channel
    ref = sdsa.proj(_merge_heads(q * kv))
    assert torch.allclose(out, ref, atol=1e-6)
    assert not _binary(out)  # membrane shortcut: real-valued output


def test_qk_token_attention_wiring_matches_formula():
    torch.manual_seed(2)
    qkta = QKTokenAttention(D, H)
    x = _spikes(T, N, L, D, p=0.5)
    _train_some_bn(qkta, x)
    qkta.eval()
    out = qkta(x)
    functional.reset_net(qkta)
    q = _heads(qkta.q_sn(qkta.q(x)), H)
    k = _heads(qkta.k_sn(qkta.k(x)), H)
    a = qkta.attn_sn(q.sum(dim=-1, keepdim=True))  # [T, N, heads, L, 1]: one score per token
    assert a.shape == (T, N, H, L, 1) and _binary(a)
    ref = qkta.proj_sn(qkta.proj(_merge_heads(a * k)))
    assert torch.equal(out, ref) and _binary(out)


def test_maps_and_tokens_give_the_same_result():
    torch.manual_seed(3)
    for block in (SSA(D, H), QKTokenAttention(D, H), SpikingMLP(D, 32)):
        block.eval()
        x_map = _spikes(T, N, D, 4, 4, seed=5)
        out_map = block(x_map)
        functional.reset_net(block)
        out_tok = block(x_map.flatten(3).transpose(2, 3))
        assert out_map.shape == x_map.shape
        assert torch.equal(out_map.flatten(3).transpose(2, 3), out_tok)


def test_cml_downsample_and_sps_shapes_and_binary():
    torch.manual_seed(4)
    x = _spikes(T, N, 2, 32, 32)
    cml = CMLDownsample(2, 8)
    y = cml(x)
    assert y.shape == (T, N, 8, 16, 16) and _binary(y)
    # pool before the neuron: equals SN(maxpool(BN(conv(x))))
    functional.reset_net(cml)
    assert isinstance(cml.body.module[2], nn.MaxPool2d)
    sps = SPS(2, 32, num_stages=4, num_pools=2)
    z = sps(x)
    assert z.shape == (T, N, 32, 8, 8)
    assert set(z.detach().unique().tolist()) <= {0.0, 1.0, 2.0}  # spikes + RPE spikes
    assert SPS(2, 32, num_pools=4, tokens=True)(x).shape == (T, N, 4, 32)


@pytest.mark.parametrize("block_cls", [SpikformerBlock, SpikeDrivenBlock, QKFormerBlock])
@pytest.mark.parametrize("neuron", ["lif", "plif", "spikedhs", "sliding_psn"])
def test_blocks_gradients_reach_every_parameter(block_cls, neuron):
    torch.manual_seed(5)
    kw = {"surrogate": "dgs"} if neuron == "spikedhs" else {"learn_tau": True}
    block = block_cls(D, H, mlp_ratio=2.0, neuron=neuron, neuron_kw=kw)
    x = _spikes(T, N, L, D, p=0.5) * 2.0
    out = block(x)
    assert out.shape == x.shape
    (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
    missing = [n for n, p in block.named_parameters() if p.grad is None]
    assert missing == []


def _neurons(module):
    from eventvision.spiking.neurons import LIFNode

    found = [m for m in module.modules() if isinstance(m, LIFNode)]
    assert found
    return found


def test_ssa_neurons_detach_reset_like_spikformer():
    # ZK-Zhou/spikformer cifar10/model.py: q/k/v/attn/proj_lif = MultiStepLIFNode(..., detach_reset=True)
    assert all(n.detach_reset for n in _neurons(SSA(D, H)))
    assert not any(n.detach_reset for n in _neurons(SSA(D, H, neuron_kw={"detach_reset": False})))


def test_sdsa_neurons_detach_reset_like_spike_driven_transformer():
    # BICLab/Spike-Driven-Transformer module/ms_conv.py: every MultiStepLIFNode has detach_reset=True
    assert all(n.detach_reset for n in _neurons(SDSA(D, H)))
    assert all(n.detach_reset for n in _neurons(SpikeDrivenBlock(D, H)))


def test_qkformer_neurons_detach_reset_like_qkformer():
    # zhouchenlin2096/QKFormer cifar10-dvs/model.py: q/k/attn/proj_lif and mlp lifs detach_reset=True
    assert all(n.detach_reset for n in _neurons(QKTokenAttention(D, H)))
    assert all(n.detach_reset for n in _neurons(QKFormerBlock(D, H)))


def test_cml_downsample_neuron_detaches_reset_like_cml():
    # zhouchenlin2096/Spikingformer-CML cifar10-dvs/model.py: proj*_lif after maxpool, detach_reset=True
    block = CMLDownsample(2, 4)
    assert all(n.detach_reset for n in _neurons(block))
    # the flag changes the gradient, not the spikes: twice over threshold in a row needs the reset path
    x = torch.full((T, 1, 2, 4, 4), 3.0, requires_grad=True)
    plain = CMLDownsample(2, 4, neuron_kw={"detach_reset": False})
    plain.load_state_dict(block.state_dict())
    grads, outs = [], []
    for b in (block, plain):
        functional.reset_net(b)
        out = b(x)
        out.sum().backward()
        grads.append(x.grad.clone())
        outs.append(out.detach())
        x.grad = None
    assert torch.equal(outs[0], outs[1]) and outs[0].sum() > 0
    assert not torch.allclose(grads[0], grads[1])
