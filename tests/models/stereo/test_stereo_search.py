import numpy as np
import pytest
import torch

from eventvision.errors import UserError
from eventvision.models.stereo import SMALL_CONFIG, build_stereo_model, load_genotype, save_genotype
from eventvision.models.stereo.genotype import validate_path
from eventvision.models.stereo.search import SearchConfig, build_supernet, search_stereo

TINY = dict(SMALL_CONFIG, feature="spiking", matching="spiking", max_disp=12, time_steps=1, learn_tau=False)
LAYOUT = dict(filter_multiplier=1, fea_num_layers=2, mat_num_layers=3, max_level=2)


def _batches(n, seed, h=18, w=27):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        gt = torch.rand(2, h, w, generator=g) * 10
        gt[:, :2] = float("nan")
        out.append({"left": torch.randint(-1, 2, (2, 5, 1, h, w), generator=g).float(),
                    "right": torch.randint(-1, 2, (2, 5, 1, h, w), generator=g).float(), "disparity": gt})
    return out


@pytest.mark.parametrize("feature", ["spiking", "ann"])
def test_gradients_reach_alpha_beta_and_weights(feature):
    net = build_supernet(dict(TINY, feature=feature, matching=feature), SearchConfig(**LAYOUT))
    b = _batches(1, 0)[0]
    out = net(b["left"], b["right"])
    assert out.shape == (2, 18, 27)
    out.mean().backward()
    for stack in net.stacks.values():
        assert stack.arch_alpha.grad is not None and stack.arch_alpha.grad.abs().sum() > 0
        g = stack.arch_beta.grad
        assert g is not None and g[stack.legal].abs().sum() > 0
        assert torch.all(g[~stack.legal] == 0)   # illegal transitions get no gradient
    weights = net.weight_parameters()
    assert sum(float(p.grad.abs().sum()) for p in weights if p.grad is not None) > 0
    assert {id(p) for p in weights}.isdisjoint({id(p) for p in net.arch_parameters()})


def test_beta_probabilities_are_legal_softmaxes():
    net = build_supernet(TINY, SearchConfig(**LAYOUT))
    beta = net.stacks["matching"].beta_probs().detach()
    legal = net.stacks["matching"].legal
    assert torch.all(beta[~legal] == 0)
    sums = beta.sum(-1)
    assert torch.allclose(sums[legal.any(-1)], torch.ones(()))
    # layer 0 starts from the stem (level 0): only stay or down
    assert legal[0, 0].tolist() == [True, True, False] and not legal[0, 1:].any()
    # max_level 2: from level 2 there is no way down
    assert not legal[2, 2, 0]


def test_energy_term_prefers_skip():
    net = build_supernet(dict(TINY, feature="ann", matching="ann"), SearchConfig(**LAYOUT))
    b = _batches(1, 1)[0]
    with torch.no_grad():
        net(b["left"], b["right"])
    ratio = net.energy_ratio()
    # uniform alpha: 2 of 3 ops are convs on node edges, all 3 on the 6 edges from cell inputs
    assert ratio.item() == pytest.approx((3 * 2 / 3 + 6) / 9, abs=0.02)
    ratio.backward()
    g = net.stacks["feature"].arch_alpha.grad
    node_edges_ = [4, 7, 8]
    assert torch.all(g[node_edges_, 0] < 0) and torch.all(g[node_edges_, 1:] > 0)   # raising skip lowers it
    assert torch.allclose(g[[0, 1, 2, 3, 5, 6]], torch.zeros(6, 3), atol=1e-7)  # skip from an input is a conv


def test_search_derives_valid_genotype_that_builds(tmp_path):
    torch.manual_seed(0)
    search = SearchConfig(**LAYOUT, epochs=2, warmup_epochs=1, energy_weight=0.5, energy_budget=0.3)
    net = build_supernet(TINY, search)
    alpha0 = net.stacks["feature"].arch_alpha.detach().clone()
    result = search_stereo(net, _batches(2, 2), _batches(2, 3), search, show_progress=False)
    assert not torch.equal(alpha0, net.stacks["feature"].arch_alpha.detach())
    assert [h["arch"] for h in result.history] == [False, True]
    assert all(np.isfinite(h["loss"]) for h in result.history) and result.history[1]["energy"] > 0
    g = result.genotype
    assert len(g.feature.path) == 2 and len(g.matching.path) == 3
    validate_path(g.matching.path)
    assert max(g.matching.path) <= 2
    path = tmp_path / "genotype.yaml"
    save_genotype(path, g, extra={"search": {"arch": result.arch}})
    assert load_genotype(path) == g
    model = build_stereo_model(**dict(TINY, genotype=str(path)))
    assert model(_batches(1, 4)[0]["left"], _batches(1, 4)[0]["right"]).shape == (2, 18, 27)


def test_search_config_rejects_unknown_keys():
    with pytest.raises(UserError, match="search.epoch"):
        SearchConfig.from_mapping({"epoch": 3})
    with pytest.raises(UserError, match="max_level"):
        build_supernet(TINY, SearchConfig(max_level=4))
