import pytest
import torch
from torch import nn

from eventvision.config import config_from_dict
from eventvision.errors import UserError
from eventvision.models.stereo import (
    FULL_CONFIG,
    SMALL_CONFIG,
    SPIKEDHS_MVSEC,
    SpikeDHSStereo,
    build_cost_volume,
    build_stereo_model,
    save_genotype,
    soft_argmin,
)
from eventvision.spiking.adapters import SeqToANN
from eventvision.spiking.neurons import SpikeDHSNeuron
from eventvision.spiking.surrogate import DGSSurrogate

TINY = dict(SMALL_CONFIG, feature="spiking", matching="spiking", fea_filter_multiplier=1, mat_filter_multiplier=1,
            max_disp=12, time_steps=1, learn_tau=False)


def _pair(n=2, h=24, w=36, bins=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(-1, 2, (n, bins, 1, h, w), generator=g).float(),
            torch.randint(-1, 2, (n, bins, 1, h, w), generator=g).float())


def test_cost_volume_values():
    left = torch.arange(2 * 1 * 5, dtype=torch.float32).view(1, 2, 1, 5) + 1
    right = -left
    cost = build_cost_volume(left, right, 3)
    assert cost.shape == (1, 4, 3, 1, 5)
    for d in range(3):
        for x in range(5):
            if x >= d:
                assert torch.equal(cost[0, :2, d, 0, x], left[0, :, 0, x])
                assert torch.equal(cost[0, 2:, d, 0, x], right[0, :, 0, x - d])
            else:
                assert torch.all(cost[0, :, d, 0, x] == 0)
    # leading time axis is carried through
    expand = (4, -1, -1, -1, -1)
    seq = build_cost_volume(left.unsqueeze(0).expand(*expand), right.unsqueeze(0).expand(*expand), 3)
    assert seq.shape == (4, 1, 4, 3, 1, 5) and torch.equal(seq[2], cost)


def test_soft_argmin():
    cost = torch.full((1, 5, 1, 2), 100.0)
    cost[0, 3, 0, 0] = 0.0
    cost[0, :, 0, 1] = 0.0   # flat cost -> mean of 0..4
    d = soft_argmin(cost)
    assert d[0, 0, 0].item() == pytest.approx(3.0, abs=1e-6)
    assert d[0, 0, 1].item() == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("feature,matching", [("spiking", "spiking"), ("ann", "ann"), ("spiking", "ann"),
                                              ("ann", "spiking")])
def test_shapes_range_and_stage_types(feature, matching):
    model = build_stereo_model(**dict(TINY, feature=feature, matching=matching))
    left, right = _pair()
    d = model(left, right)
    assert d.shape == (2, 24, 36)
    assert torch.isfinite(d).all() and d.min() >= 0 and d.max() <= TINY["max_disp"] - 1
    for stage, kind in ((model.feature, feature), (model.matching, matching)):
        neurons = [m for m in stage.modules() if isinstance(m, SpikeDHSNeuron)]
        relus = [m for m in stage.modules() if isinstance(m, nn.ReLU)]
        seq = [m for m in stage.modules() if isinstance(m, SeqToANN)]
        if kind == "spiking":
            assert neurons and seq and not relus
        else:
            assert relus and not neurons and not seq
    # features: 3 * F channels at 1/3 resolution
    fl, _ = model.features(left, right)
    assert fl.shape[-3:] == (3, 8, 12)


def test_spiking_stage_emits_binary_spikes():
    model = build_stereo_model(**dict(TINY, matching="ann"))
    outs = []
    hooks = [m.register_forward_hook(lambda mod, i, o: outs.append(o)) for m in model.feature.modules()
             if isinstance(m, SpikeDHSNeuron)]
    model(*_pair())
    for h in hooks:
        h.remove()
    assert outs and all(torch.all((o == 0) | (o == 1)) for o in outs)
    assert any(o.sum() > 0 for o in outs)


def test_steps_mode_runs_bins_as_time_steps():
    model = build_stereo_model(**dict(TINY, input_mode="steps"))
    assert model.in_channels == 1 and model.time_steps == 5
    seen = []
    neuron = next(m for m in model.feature.modules() if isinstance(m, SpikeDHSNeuron))
    neuron.register_forward_hook(lambda mod, i, o: seen.append(i[0].shape[0]))
    model(*_pair())
    assert seen == [5]


@pytest.mark.parametrize("feature,matching", [("spiking", "spiking"), ("ann", "ann"), ("spiking", "ann")])
def test_both_variants_train(feature, matching):
    torch.manual_seed(0)
    model = build_stereo_model(**dict(TINY, feature=feature, matching=matching))
    left, right = _pair(n=2, h=18, w=30)
    gt = torch.full((2, 18, 30), 6.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(6):
        loss = (model(left, right) - gt).abs().mean()
        opt.zero_grad()
        loss.backward()
        if not losses:
            grads = [p.grad for p in model.parameters() if p.requires_grad]
            assert all(g is not None for g in grads)
            assert sum(float(g.abs().sum()) for g in grads) > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8


def test_state_reset_makes_forward_repeatable():
    model = build_stereo_model(**TINY).eval()
    left, right = _pair()
    with torch.no_grad():
        a = model(left, right)
        b = model(left, right)
    assert torch.equal(a, b)


def test_from_config_and_errors(tmp_path):
    path = tmp_path / "g.yaml"
    save_genotype(path, SPIKEDHS_MVSEC)
    cfg = config_from_dict(dict(TINY, genotype=str(path), name="ignored_by_the_model"))
    model = SpikeDHSStereo.from_config(cfg)
    assert model.genotype == SPIKEDHS_MVSEC
    with pytest.raises(UserError, match="model.feature"):
        build_stereo_model(**dict(TINY, feature="cnn"))
    with pytest.raises(UserError, match="expects input"):
        model(torch.zeros(1, 4, 24, 36), torch.zeros(1, 4, 24, 36))
    # [N, B, H, W] is accepted for one polarity channel
    assert model(torch.zeros(1, 5, 24, 36), torch.zeros(1, 5, 24, 36)).shape == (1, 24, 36)


def test_dgs_and_evolved_tau_switches():
    model = build_stereo_model(**dict(TINY, dgs=True, learn_tau=True, time_steps=2))
    assert any(isinstance(m, DGSSurrogate) for m in model.modules())
    leak = [n for n, p in model.named_parameters() if n.endswith("leak.raw")]
    assert leak
    plain = build_stereo_model(**TINY)
    assert not any(isinstance(m, DGSSurrogate) for m in plain.modules())
    assert not [n for n, _ in plain.named_parameters() if n.endswith("leak.raw")]
    # released cell: ops hand BN(conv) to the node neuron, which fires with width 3 (DGS centre)
    cell = model.matching.cells.cells[0]
    assert float(cell.node_act[1].surrogate_function.width) == pytest.approx(3.0)
    # the DGS mixture weights and the leaks learn through the loss (leaks matter from T = 2 on)
    model = build_stereo_model(**dict(TINY, dgs=True, learn_tau=True, input_mode="steps"))
    model(*_pair(h=18, w=27)).mean().backward()
    dgs_alpha = [m.alpha.grad for m in model.modules() if isinstance(m, DGSSurrogate)]
    assert all(g is not None for g in dgs_alpha) and sum(float(g.abs().sum()) for g in dgs_alpha) > 0
    assert any(float(p.grad.abs()) > 0 for n, p in model.named_parameters() if n.endswith("leak.raw"))


def test_full_config_matches_published_size():
    model = build_stereo_model(**FULL_CONFIG)
    assert model.feature.out_channels == 24      # filter multiplier 8 x 3 nodes
    assert model.num_disp == 21                  # 63 / 3
    assert [c.ops["1"].body.module[0].out_channels for c in model.matching.cells.cells] == [16, 32, 32, 16]


def test_released_cell_one_neuron_per_node_no_preprocess():
    """Released SpikeDHS cell (new_model_2d.py): ops hand BN(conv) to the node, one neuron fires per node on
    the sum, no 1x1 pre-processing, skip from a cell input is a 3x3 conv, skip between nodes the identity."""
    from eventvision.models.stereo.layers import Cell, ConvBN, StageSpec
    from eventvision.spiking.neurons import SpikeDHSNeuron

    spec = StageSpec(2, True)
    genes = ((0, "skip"), (1, "snn_b3"), (2, "snn_b5"), (4, "skip"), (6, "snn_b3"), (8, "snn_b3"))
    cell = Cell(spec, 6, 9, 4, genes=genes)
    neurons = [m for m in cell.modules() if isinstance(m, SpikeDHSNeuron)]
    assert len(neurons) == 3 and all(n is a for n, a in zip(neurons, cell.node_act))
    assert not hasattr(cell, "pre0") and not hasattr(cell, "pre1")
    for e, _ in genes:
        op = cell.ops[str(e)]
        if e == 4:
            assert isinstance(op, nn.Identity)                           # node -> node skip
        else:
            assert isinstance(op, ConvBN) and isinstance(op.act, nn.Identity)   # BN(conv), no own neuron
            assert op.body.module[0].kernel_size == (3, 3)
    assert cell.ops["0"].body.module[0].in_channels == 6 and cell.ops["1"].body.module[0].in_channels == 9
    out = cell(torch.rand(2, 1, 6, 8, 8).round(), torch.rand(2, 1, 9, 8, 8).round(), (8, 8))
    assert out.shape == (2, 1, 12, 8, 8) and set(out.unique().tolist()) <= {0.0, 1.0}


def test_tau_gets_a_gradient_in_the_shipped_config():
    """stereo/small (the bundled checkpoint's config) learns the leak and runs T = 2 steps, so the leak
    has a non-zero gradient (at T = 1 it has exactly none)."""
    cfg = dict(SMALL_CONFIG, max_disp=12)
    assert cfg["learn_tau"] and cfg["time_steps"] > 1
    torch.manual_seed(0)
    model = build_stereo_model(**cfg)
    model(*_pair(h=18, w=27)).mean().backward()
    grads = [float(p.grad.abs()) for n, p in model.named_parameters() if n.endswith("leak.raw")]
    assert grads and sum(g > 0 for g in grads) >= len(grads) // 2
    with pytest.raises(UserError, match="time_steps"):            # T = 1: the leak would get no gradient
        build_stereo_model(**dict(cfg, time_steps=1))


def test_separable_regression_equals_full_trilinear():
    import torch.nn.functional as F

    from eventvision.models.stereo.network import regress_disparity, soft_argmin

    cost = torch.randn(2, 1, 7, 9, 13, dtype=torch.float64)
    full = soft_argmin(F.interpolate(cost, size=(21, 26, 38), mode="trilinear", align_corners=False)[:, 0])
    torch.testing.assert_close(regress_disparity(cost, 21, (26, 38)), full, rtol=1e-9, atol=1e-9)
