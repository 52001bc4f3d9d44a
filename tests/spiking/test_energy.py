"""Energy profiler: counts equal hand-computed counts at firing rates 0, 0.5, 1."""

import pytest
import torch
from torch import nn

from eventvision.errors import InvalidValueError
from eventvision.spiking.adapters import SeqToANN
from eventvision.spiking.blocks import SSA, QKTAProduct, SDSAProduct, SpikeMatMul, SSAProduct
from eventvision.spiking.energy import E_AC_PJ, E_MAC_PJ, is_binary, profile_energy
from eventvision.spiking.neurons import LIFNode

RATES = [0.0, 0.5, 1.0]


def _with_rate(shape, fr, seed=0):
    """A 0/1 tensor with exactly round(fr * numel) ones at random places."""
    n = int(torch.Size(shape).numel())
    flat = torch.zeros(n)
    flat[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: round(fr * n)]] = 1.0
    return flat.view(shape)


class _Call(nn.Module):
    def __init__(self, product):
        super().__init__()
        self.product = product

    def forward(self, *xs):
        return self.product(*xs)


def test_constants_and_detector():
    assert (E_MAC_PJ, E_AC_PJ) == (4.6, 0.9)
    assert is_binary(torch.tensor([0.0, 1.0, 1.0])) and is_binary(torch.zeros(3)) and is_binary(torch.ones(2))
    assert not is_binary(torch.tensor([0.0, 1.0, 2.0])) and not is_binary(torch.tensor([-1.0, 0.0, 1.0]))
    assert not is_binary(torch.tensor([0.5]))


@pytest.mark.parametrize("fr", RATES)
def test_conv_counts(fr):
    conv = SeqToANN(nn.Conv2d(2, 3, 3, padding=1, bias=False))
    x = _with_rate((2, 1, 2, 4, 4), fr)  # T=2, N=1
    ops = (2 * 1 * 3 * 4 * 4) * (2 * 9)  # output elements x (C_in x k x k) = 1728
    rep = profile_energy(conv, x)
    row = rep.row("module")
    assert row.op == "AC" and row.macs == 0.0
    assert row.acs == pytest.approx(fr * ops) and rep.total_acs == pytest.approx(fr * ops)
    assert row.fr_in == pytest.approx(fr)
    assert rep.energy_mj == pytest.approx(0.9 * fr * ops * 1e-9)
    # the same layer fed with a non-spike input counts MACs
    rep2 = profile_energy(conv, x * 0.5 + 0.25)
    assert rep2.total_macs == ops and rep2.total_acs == 0.0 and rep2.row("module").op == "MAC"
    assert rep2.energy_mj == pytest.approx(4.6 * ops * 1e-9)


@pytest.mark.parametrize("fr", RATES)
def test_linear_counts_batch_and_constants(fr):
    lin = nn.Linear(8, 4)
    x = _with_rate((2, 3, 8), fr)  # [T=2, N=3, 8]
    ops = 2 * 3 * 4 * 8
    rep = profile_energy(lin, x, batch_size=3, e_mac_pj=1.0, e_ac_pj=2.0)
    assert rep.total_acs == pytest.approx(fr * ops / 3)
    assert rep.energy_pj == pytest.approx(2.0 * fr * ops / 3)


def test_grouped_conv3d_transposed_and_residual_input():
    conv3 = nn.Conv3d(4, 6, (3, 3, 3), padding=1, groups=2, bias=False)
    x = torch.randn(1, 4, 2, 3, 3)
    rep = profile_energy(conv3, x)
    assert rep.total_macs == (6 * 2 * 3 * 3) * (4 // 2) * 27
    convt = nn.ConvTranspose2d(3, 5, 2, stride=2)
    rep = profile_energy(convt, torch.randn(1, 3, 4, 4))
    assert rep.total_macs == (3 * 4 * 4) * 5 * 4
    # a sum of two spike maps (values 0, 1, 2) is not spike input: MACs
    lin = nn.Linear(4, 2)
    rep = profile_energy(lin, torch.tensor([[0.0, 1.0, 2.0, 1.0]]))
    assert rep.total_macs == 8 and rep.total_acs == 0


@pytest.mark.parametrize("fr", RATES)
def test_ssa_product_counts(fr):
    # kv_first (L=8 > d_h=4): ACs = T N H L d_h^2 (min(fr_K, fr_V) + fr_Q)
    q, k, v = (_with_rate((2, 1, 2, 8, 4), fr, seed=s) for s in (1, 2, 3))
    rep = profile_energy(_Call(SSAProduct()), (q, k, v))
    assert rep.row("product").op == "attention"
    assert rep.total_acs == pytest.approx(2 * 1 * 2 * 8 * 16 * (fr + fr)) and rep.total_macs == 0
    # qk_first (L=2 <= d_h=4): ACs = T N H L^2 d_h (min(fr_Q, fr_K) + fr_V)
    q, k, v = (_with_rate((2, 1, 2, 2, 4), fr, seed=s) for s in (1, 2, 3))
    rep = profile_energy(_Call(SSAProduct()), (q, k, v))
    assert rep.total_acs == pytest.approx(2 * 1 * 2 * 4 * 4 * (fr + fr))


def test_ssa_product_mixed_rates():
    shape = (2, 1, 2, 8, 4)
    q, k, v = _with_rate(shape, 0.5), _with_rate(shape, 1.0), _with_rate(shape, 0.0)
    rep = profile_energy(_Call(SSAProduct()), (q, k, v))
    assert rep.total_acs == pytest.approx(512 * (min(1.0, 0.0) + 0.5))


@pytest.mark.parametrize("fr", RATES)
def test_sdsa_qkta_and_matmul_counts(fr):
    k = _with_rate((2, 1, 2, 8, 4), fr, seed=4)
    rep = profile_energy(_Call(SDSAProduct()), (k, k))  # K*V = K: one AC per nonzero addend
    assert rep.total_acs == pytest.approx(128 * fr) and rep.total_macs == 0
    rep = profile_energy(_Call(QKTAProduct()), (k,))
    assert rep.total_acs == pytest.approx(128 * fr)
    a = _with_rate((4, 5), fr, seed=6)
    b = torch.randn(5, 2)
    rep = profile_energy(_Call(SpikeMatMul()), (a, b))
    assert rep.total_acs == pytest.approx(fr * 4 * 2 * 5)
    rep = profile_energy(_Call(SpikeMatMul()), (b.T, torch.randn(5, 3)))
    assert rep.total_macs == 2 * 3 * 5 and rep.total_acs == 0


@pytest.mark.parametrize("fr", RATES)
def test_ssa_block_linear_rows(fr):
    ssa = SSA(8, 2)
    x = _with_rate((2, 1, 16, 8), fr)  # T=2, N=1, L=16, D=8
    rep = profile_energy(ssa, x)
    ops = 2 * 1 * 16 * 8 * 8
    for name in ("q.linear", "k.linear", "v.linear"):
        assert rep.row(name).op == "AC" and rep.row(name).acs == pytest.approx(fr * ops)
    att = rep.row("product")
    fq, fk, fv = (rep.firing_rates[n] for n in ("q_sn", "k_sn", "v_sn"))
    assert att.acs == pytest.approx(2 * 1 * 2 * 16 * 16 * (min(fk, fv) + fq), rel=1e-6)
    assert rep.total_acs == pytest.approx(sum(r.acs for r in rep.rows))


def test_neuron_firing_rate_and_mode_restored():
    net = nn.Sequential(LIFNode(), SeqToANN(nn.Linear(4, 2, bias=False)))
    x = torch.zeros(3, 2, 4)
    x[:, :, :2] = 10.0  # half the neurons fire at every step, the other half never
    net.train()
    rep = profile_energy(net, x)
    assert rep.firing_rates == {"0": pytest.approx(0.5)}
    assert rep.row("1.module").acs == pytest.approx(0.5 * 3 * 2 * 2 * 4)
    assert net.training and net[0].v == 0.0  # train flag restored, state reset
    assert "mJ per sample" in rep.table()
    d = rep.to_dict()
    assert d["total_acs"] == pytest.approx(24.0) and len(d["rows"]) == 2
    with pytest.raises(InvalidValueError, match="batch_size"):
        profile_energy(net, x, batch_size=0)


# --- syops convention (iCGY96/syops-counter syops/ops.py rules)

@pytest.mark.parametrize("fr", RATES)
def test_syops_conv_with_bias_bn_pool_and_neuron(fr):
    net = nn.Sequential(SeqToANN(nn.Conv2d(2, 3, 3, padding=1)), SeqToANN(nn.BatchNorm2d(3)), LIFNode(),
                        SeqToANN(nn.MaxPool2d(2)))
    x = _with_rate((2, 1, 2, 4, 4), fr)  # T=2, N=1
    rep = profile_energy(net, x, convention="syops")
    positions = 2 * 1 * 4 * 4
    conv = positions * 9 * 2 * 3 + 3 * positions  # taps x C_in x C_out, plus the bias per output
    assert rep.row("0.module").acs == pytest.approx(fr * conv) and rep.row("0.module").macs == 0.0
    bn = rep.row("1.module")  # conv output is not binary: BN x2 (affine) as MACs
    assert bn.macs == 2 * (2 * 3 * 16) and bn.acs == 0.0
    assert rep.row("2").acs == 2 * 3 * 16 and rep.row("2").op == "neuron"  # one update per neuron and step
    pool = rep.row("3.module")
    assert pool.acs == pytest.approx(pool.fr_in * 2 * 3 * 16) and pool.macs == 0.0
    assert rep.convention == "syops" and "syops convention" in rep.table()
    base = profile_energy(net, x)  # today's convention: conv only, no bias, no BN/pool/neuron
    assert base.total_acs == pytest.approx(fr * positions * 3 * 18) and base.total_macs == 0.0


def test_syops_linear_bias_once_activation_and_spike_test():
    lin = nn.Linear(8, 4)
    x = torch.randn(2, 3, 8)
    assert profile_energy(lin, x, convention="syops").total_macs == 2 * 3 * 8 * 4 + 4  # bias once per call
    half = torch.full((2, 3, 8), 0.5)  # one distinct value in [0, 1]: syops calls it spikes at rate 0.5
    rep = profile_energy(lin, half, convention="syops")
    assert rep.total_macs == 0.0 and rep.total_acs == pytest.approx(0.5 * (2 * 3 * 8 * 4 + 4))
    assert profile_energy(lin, half).total_macs == 2 * 3 * 8 * 4  # today's detector: not spikes
    relu = nn.Sequential(nn.ReLU())
    assert profile_energy(relu, torch.randn(5, 6), convention="syops").row("0").macs == 30
    bn = nn.BatchNorm1d(4, affine=False)
    assert profile_energy(bn, torch.randn(3, 4), convention="syops").total_macs == 12


def test_syops_does_not_count_attention_products():
    q, k, v = (_with_rate((2, 1, 2, 8, 4), 0.5, seed=s) for s in range(3))
    assert profile_energy(_Call(SSAProduct()), (q, k, v), convention="syops").rows == ()
    assert profile_energy(_Call(SSAProduct()), (q, k, v)).total_acs > 0
    with pytest.raises(InvalidValueError, match="convention"):
        profile_energy(_Call(SSAProduct()), (q, k, v), convention="flops")


# --- cross-check with SpikingJelly 2.0's op counters (spikingjelly.activation_based.op_counter)

class _CrossNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = SeqToANN(nn.Conv2d(2, 8, 3, padding=1, bias=False))  # event frames in: MACs
        self.bn1 = SeqToANN(nn.BatchNorm2d(8))
        self.sn1 = LIFNode()
        self.conv2 = SeqToANN(nn.Conv2d(8, 8, 1, bias=False))  # 1x1 on spikes
        self.sn2 = LIFNode()
        self.conv3 = SeqToANN(nn.Conv2d(8, 4, 3, padding=1, bias=False))  # padded 3x3 on spikes
        self.sn3 = LIFNode()
        self.fc = nn.Linear(4 * 8 * 8, 5, bias=False)  # linear on spikes

    def forward(self, x):
        s = self.sn3(self.conv3(self.sn2(self.conv2(self.sn1(self.bn1(self.conv1(x)))))))
        return self.fc(s.flatten(2)).mean(0)


def test_counts_match_spikingjelly_op_counter_where_conventions_agree():
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.op_counter import DispatchCounterMode, MACCounter, SynOpCounter

    torch.manual_seed(0)
    net = _CrossNet().eval()
    with torch.no_grad():
        for conv in (net.conv2, net.conv3):
            conv.module.weight.abs_().mul_(3.0)  # keep the later layers firing
    x = torch.randn(3, 2, 2, 8, 8) * 3.0  # [T, N, C, H, W]
    mac, syn = MACCounter(), SynOpCounter()
    with torch.no_grad(), DispatchCounterMode([mac, syn]):
        net(x)
    functional.reset_net(net)
    sj_mac, sj_syn = mac.get_counts(), syn.get_counts()
    conv_op = torch.ops.aten.convolution.default

    def sj(counts, scope):
        return sum(counts.get(f"_CrossNet.{scope}", {}).values())

    ours = profile_energy(net, x, batch_size=1)
    syops = profile_energy(net, x, batch_size=1, convention="syops")
    # equal: MACs of a dense-fed conv; synaptic ops of a spike-fed 1x1 conv and of a spike-fed linear layer
    assert ours.row("conv1.module").macs == sj_mac["_CrossNet.conv1"][conv_op] == 3 * 2 * 8 * 64 * 2 * 9
    assert syops.row("conv1.module").macs == ours.row("conv1.module").macs  # no bias: syops agrees
    assert 0 < ours.row("conv2.module").fr_in < 1
    assert ours.row("conv2.module").acs == pytest.approx(sj(sj_syn, "conv2"))
    assert 0 < ours.row("fc").fr_in < 1
    assert ours.row("fc").acs == pytest.approx(sj(sj_syn, "fc"))
    assert syops.row("fc").acs == pytest.approx(sj(sj_syn, "fc"))
    # differ, by definition:
    # 1. a padded 3x3 conv on spikes: SpikingJelly counts the weights each spike really meets (none in the
    #    zero padding); both conventions here scale all taps by the mean rate, so they count more.
    assert 0 < sj(sj_syn, "conv3") < ours.row("conv3.module").acs
    # 2. BatchNorm: SpikingJelly's MACCounter counts x_hat * gamma + beta as one MAC per element,
    #    syops-counter as two ops per element, the Spikformer convention not at all (folded into the conv).
    bn_sj = sj_mac["_CrossNet.bn1"][torch.ops.aten.native_batch_norm.default]
    assert bn_sj == 3 * 2 * 8 * 64 and syops.row("bn1.module").macs == 2 * bn_sj
    assert "bn1.module" not in [r.name for r in ours.rows]
    # 3. neurons: syops counts one AC per membrane update; SpikingJelly's MAC/SynOp counters count none
    assert syops.row("sn1").acs == 3 * 2 * 8 * 64 and sj(sj_syn, "sn1") == 0 == ours.row("sn1").acs
