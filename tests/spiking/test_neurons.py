"""Neurons: hand-computed dynamics, binary outputs, gradients to every parameter, exact reset."""

import math

import pytest
import torch
from spikingjelly.activation_based import functional, neuron as sj_neuron, surrogate as sj_surrogate
from torch import nn

from eventvision.errors import UserError
from eventvision.spiking.adapters import SeqToANN
from eventvision.spiking.neurons import (
    NEURON_KINDS,
    PSN,
    LIFNode,
    MaskedPSN,
    PLIFNode,
    SlidingPSN,
    SpikeDHSNeuron,
    make_neuron,
    set_psn_lambda,
)
from eventvision.spiking.surrogate import DGSSurrogate, recenter_surrogates

T = 4


def _spikedhs_reference(x_seq, threshold=0.5, leak=0.2):
    u, spikes, us = 0.0, [], []
    for x in x_seq:
        u = u + x
        s = 1.0 if u >= threshold else 0.0
        u = leak * u * (1.0 - s)
        spikes.append(s)
        us.append(u)
    return spikes, us


def test_spikedhs_matches_hand_computed_sequence():
    x = [0.3, 0.3, 0.6, 0.1, 0.45, 0.0, 1.2, -0.3]
    # by hand: u=0.3 (no spike) -> 0.06; 0.36 -> 0.072; 0.672 spike -> 0; 0.1 -> 0.02; 0.47 -> 0.094;
    # 0.094 -> 0.0188; 1.2188 spike -> 0; -0.3 -> -0.06
    spikes_hand = [0, 0, 1, 0, 0, 0, 1, 0]
    u_final_hand = -0.06
    ref_s, ref_u = _spikedhs_reference(x)
    assert ref_s == spikes_hand and ref_u[-1] == pytest.approx(u_final_hand)
    n = SpikeDHSNeuron().double()
    out = n(torch.tensor(x, dtype=torch.float64).view(-1, 1))
    assert out.flatten().tolist() == spikes_hand
    assert float(n.v) == pytest.approx(u_final_hand, abs=1e-8)  # leak 0.2 held as float32
    # single-step mode gives the same
    functional.reset_net(n)
    n.step_mode = "s"
    single = [float(n(torch.tensor([v], dtype=torch.float64))) for v in x]
    assert single == spikes_hand


def test_lif_equals_spikingjelly_lif_forward():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 5) * 1.5
    ours = LIFNode(tau=2.0, surrogate=sj_surrogate.Sigmoid())
    ref = sj_neuron.LIFNode(tau=2.0, surrogate_function=sj_surrogate.Sigmoid(), step_mode="m")
    assert torch.equal(ours(x), ref(x))
    assert torch.allclose(ours.v, ref.v)
    soft = LIFNode(tau=3.0, v_reset=None)
    ref_soft = sj_neuron.LIFNode(tau=3.0, v_reset=None, step_mode="m")
    assert torch.equal(soft(x), ref_soft(x))


def test_time_constants_per_type():
    assert LIFNode().tau == pytest.approx(2.0)
    assert PLIFNode(tau=3.0).tau == pytest.approx(3.0)
    assert SpikeDHSNeuron().leak.tau == pytest.approx(1.25)  # leak 0.2 = 1 - 1/tau
    assert [n for n, _ in LIFNode().named_parameters()] == []
    assert [n for n, _ in PLIFNode().named_parameters()] == ["time_constant.raw"]
    assert [n for n, _ in SpikeDHSNeuron(learn_tau=True).named_parameters()] == ["leak.raw"]
    assert LIFNode(learn_tau=True).time_constant.param == "direct"
    assert PLIFNode().time_constant.param == "sigmoid"
    assert SpikeDHSNeuron().leak.param == "sigmoid_leak"


@pytest.mark.parametrize("kind", NEURON_KINDS)
def test_every_kind_binary_output_and_gradients_reach_every_parameter(kind):
    torch.manual_seed(1)
    sg = "dgs" if kind in ("spikedhs", "plif") else None
    net = nn.Sequential(SeqToANN(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)),
                        make_neuron(kind, T=T, k=3, learn_tau=True, surrogate=sg))
    x = torch.rand(T, 3, 2, 6, 6) * 2
    out = net(x)
    assert out.shape == (T, 3, 4, 6, 6)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert 0.0 < float(out.detach().mean()) < 1.0
    (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
    names = [n for n, _ in net.named_parameters()]
    missing = [n for n, p in net.named_parameters() if p.grad is None or float(p.grad.abs().sum()) == 0.0]
    assert missing == []
    if kind in ("lif", "plif", "spikedhs"):
        assert any(n.endswith(".raw") for n in names)  # the learnable time constant
    if sg == "dgs":
        assert any(n.endswith("alpha") for n in names)


@pytest.mark.parametrize("kind", NEURON_KINDS)
def test_reset_restores_state_exactly(kind):
    torch.manual_seed(2)
    net = nn.Sequential(SeqToANN(nn.Linear(5, 6)), make_neuron(kind, T=T, k=2),
                        SeqToANN(nn.Linear(6, 6)), make_neuron(kind, T=T, k=2))
    x = torch.randn(T, 2, 5) * 3
    first = net(x)
    stateful = [m for m in net.modules() if "v" in getattr(m, "_memories", {})]
    if kind in ("lif", "plif", "spikedhs"):
        assert len(stateful) == 2 and all(float(m.v.detach().abs().sum()) > 0 for m in stateful)
    functional.reset_net(net)
    assert all(m.v == m.get_reset_value("v") for m in stateful)
    again = net(x)
    assert torch.equal(first, again)


@pytest.mark.parametrize("kind", ["lif", "plif", "spikedhs"])
def test_state_carries_over_without_reset(kind):
    n = make_neuron(kind)
    x = torch.full((2, 1), 0.45 if kind == "spikedhs" else 1.5)
    # first step alone does not reach threshold, the second (with the carried state) does
    assert n(x).flatten().tolist() == [0.0, 1.0]
    assert n(x[:1]).flatten().tolist() == [0.0]  # after a spike the state was reset by the neuron
    functional.reset_net(n)
    assert n(x).flatten().tolist() == [0.0, 1.0]


def test_psn_equals_hand_computed_matrix_product():
    psn = PSN(T=3)
    with torch.no_grad():
        psn.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [-1.0, 2.0, 0.5]]))
        psn.bias.copy_(torch.tensor([[-1.0], [-0.5], [-2.0]]))
    x = torch.tensor([[1.0, 0.2], [0.0, 0.4], [1.0, 1.0]]).view(3, 2, 1)
    # H = W X: column 0: [1, 0.5, -1+0+0.5=-0.5]; column 1: [0.2, 0.1+0.4=0.5, -0.2+0.8+0.5=1.1]
    # S = H(H + bias): [1-1=0 -> 1, 0.5-0.5=0 -> 1, -0.5-2 -> 0]; [0.2-1 -> 0, 0.5-0.5 -> 1, 1.1-2 -> 0]
    out = psn(x).view(3, 2)
    assert out.tolist() == [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match="T=3"):
        psn(torch.zeros(4, 2, 1))


def test_masked_psn_mask_and_lambda():
    m = MaskedPSN(T=4, k=2, lambda_init=0.0)
    with torch.no_grad():
        m.weight.fill_(1.0)
    assert torch.equal(m.weight_matrix(4), torch.ones(4, 4))  # lambda = 0: full matrix
    set_psn_lambda(nn.Sequential(m), 1.0)
    band = torch.tensor([[1.0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]])
    assert torch.equal(m.weight_matrix(4), band)
    x = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(4, 1)
    # H = band @ x = [1, 1, 0, 1]; bias -1 -> spikes where H >= 1
    assert m(x).flatten().tolist() == [1.0, 1.0, 0.0, 1.0]


def test_sliding_psn_equals_hand_computed():
    s = SlidingPSN(k=3)
    assert s.weight.tolist() == [0.25, 0.5, 1.0]
    W = s.weight_matrix(5)
    expected = torch.tensor([[1.0, 0, 0, 0, 0], [0.5, 1, 0, 0, 0], [0.25, 0.5, 1, 0, 0],
                             [0, 0.25, 0.5, 1, 0], [0, 0, 0.25, 0.5, 1]])
    assert torch.equal(W.detach(), expected)
    x = torch.tensor([0.5, 0.5, 0.0, 0.0, 2.0]).view(5, 1)
    # H = [0.5, 0.75, 0.375, 0.125, 2.0]; threshold 1 -> only the last step spikes
    assert s(x).flatten().tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_make_neuron_errors_and_ignored_keywords():
    with pytest.raises(UserError, match="unknown neuron kind"):
        make_neuron("izhikevich")
    with pytest.raises(UserError, match="needs the number of time steps"):
        make_neuron("psn")
    assert isinstance(make_neuron("lif", T=8, k=3), LIFNode)  # PSN-only keywords ignored
    n = make_neuron("spikedhs", surrogate="dgs", surrogate_width=5.0, learn_tau=True)
    assert isinstance(n.surrogate_function, DGSSurrogate) and float(n.surrogate_function.width) == 5.0
    assert recenter_surrogates(nn.Sequential(n)) == {"0.surrogate_function": pytest.approx(5.0)}
    assert make_neuron("spikedhs").surrogate_function.width == 3.0
    assert math.isclose(make_neuron("plif", tau=4.0).tau, 4.0)


@pytest.mark.parametrize("cls,kw", [
    (LIFNode, dict(learn_tau=True)), (LIFNode, dict(v_reset=None, learn_tau=True)),
    (LIFNode, dict(detach_reset=True, learn_tau=True, surrogate="spikedhs")), (PLIFNode, {}),
    (SpikeDHSNeuron, dict(learn_tau=True))])
def test_fused_sequence_equals_autograd_step_loop(cls, kw):
    """The hand-written whole-sequence backward gives the autograd gradients (x, initial v, tau)."""
    results = []
    for fused in (True, False):
        torch.manual_seed(0)
        m = cls(**kw).double()
        m.fused = fused
        x = (torch.randn(6, 3, 5, dtype=torch.float64) * 1.5).requires_grad_(True)
        v0 = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
        m.v = v0  # state carried in from a previous chunk (truncated BPTT)
        y = m(x)
        ((y * torch.randn_like(y)).sum() + (m.v * torch.arange(5.0)).sum()).backward()
        results.append([y.detach(), m.v.detach(), x.grad, v0.grad] + [p.grad for p in m.parameters()])
    assert len(results[0]) == 5
    assert torch.equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1:], results[1][1:]):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
