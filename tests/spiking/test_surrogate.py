"""SpikeDHS surrogate and DGS (differentiable surrogate-gradient search)."""

import math

import pytest
import torch
from torch import nn

from eventvision.spiking.surrogate import (
    DGS_OFFSETS,
    DGSSurrogate,
    SpikeDHSSurrogate,
    dgs_parameters,
    make_surrogate,
    recenter_surrogates,
    spikedhs_primitive,
)

X = torch.tensor([-1.0, -0.5, -0.2, 0.0, 0.1, 0.5, 2.0], dtype=torch.float64)


def _g(x, b):
    """Released SpikeDHS surrogate (SNN.py ActFun_changeable): zero unless 0 < u < 1 (|x| < 0.5)."""
    if abs(x) >= 0.5:
        return 0.0
    return b / (2 * math.tanh(b / 2)) * (1 - math.tanh(b * x) ** 2)


@pytest.mark.parametrize("width", [0.5, 3.0, 5.0])
def test_spikedhs_surrogate_forward_is_heaviside_backward_is_formula(width):
    x = X.clone().requires_grad_(True)
    s = SpikeDHSSurrogate(width)(x)
    assert s.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]   # fires on u > threshold (strict)
    s.backward(torch.ones_like(s))
    expected = [_g(float(v), width) for v in X]
    assert torch.allclose(x.grad, torch.tensor(expected, dtype=torch.float64), rtol=1e-12)


@pytest.mark.parametrize("width", [0.3, 3.0, 5.0])
def test_spikedhs_gradient_integrates_to_one_over_threshold_band(width):
    # the normalisation b / (2 tanh(b/2)) makes the integral over u in [0, 1] (x in [-0.5, 0.5]) equal 1
    u = torch.linspace(-0.5, 0.5, 200001, dtype=torch.float64)
    g = torch.tensor([_g(0.0, width)], dtype=torch.float64)  # scale reference
    vals = width / (2 * math.tanh(width / 2)) * (1 - torch.tanh(width * u) ** 2)
    assert abs(float(torch.trapezoid(vals, u)) - 1.0) < 1e-9
    assert float(spikedhs_primitive(torch.tensor(-0.5, dtype=torch.float64), width)) == pytest.approx(0.0, abs=1e-12)
    assert float(spikedhs_primitive(torch.tensor(0.5, dtype=torch.float64), width)) == pytest.approx(1.0, abs=1e-12)
    assert float(g) > 0


def test_dgs_forward_binary_and_gradients_are_the_softmax_mixture():
    torch.manual_seed(0)
    sg = DGSSurrogate(width=3.0).double()
    with torch.no_grad():
        sg.alpha.copy_(torch.tensor([0.3, -0.1, 0.5, 0.0, -0.7]))
    x = X.clone().requires_grad_(True)
    s = sg(x)
    assert s.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    grad_out = torch.arange(1.0, 8.0, dtype=torch.float64)
    s.backward(grad_out)
    w = torch.softmax(sg.alpha.detach(), 0)
    widths = [3.0 + d for d in DGS_OFFSETS]
    expected_x = [sum(float(w[k]) * _g(float(v), widths[k]) for k in range(5)) * float(go)
                  for v, go in zip(X, grad_out)]
    assert torch.allclose(x.grad, torch.tensor(expected_x, dtype=torch.float64), rtol=1e-10)
    # d/dalpha_j of sum_i go_i sum_k w_k sigma_k(x_i) = w_j (S_j - sum_k w_k S_k), S_k = sum_i go_i sigma_k(x_i)
    S = torch.tensor([float((grad_out * spikedhs_primitive(X, b)).sum()) for b in widths], dtype=torch.float64)
    expected_alpha = w * (S - (w * S).sum())
    assert torch.allclose(sg.alpha.grad, expected_alpha, rtol=1e-10)
    assert sg.alpha.grad.abs().sum() > 0


def test_dgs_recenter_moves_width_to_winner_and_resets_alpha():
    model = nn.ModuleDict({"a": DGSSurrogate(3.0), "b": DGSSurrogate(1.2)})
    with torch.no_grad():
        model["a"].alpha.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 2.0]))   # +0.4 wins
        model["b"].alpha.copy_(torch.tensor([5.0, 0.0, 0.0, 0.0, 0.0]))   # -0.4 wins, clamped at 1 (released)
    assert model["a"].best_width() == pytest.approx(3.4)
    new = recenter_surrogates(model)
    assert new == {"a": pytest.approx(3.4), "b": pytest.approx(1.0)}
    assert float(model["a"].width) == pytest.approx(3.4)
    assert torch.equal(model["a"].alpha.detach(), torch.zeros(5))
    assert [p is model[k].alpha for p, k in zip(dgs_parameters(model), "ab")] == [True, True]
    # search off: fixed winning width, plain SpikeDHS gradient
    sg = DGSSurrogate(3.0, search=False)
    x = X.float().clone().requires_grad_(True)
    sg(x).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([_g(float(v), 3.0) for v in X]), rtol=1e-5, atol=1e-7)


def test_make_surrogate_names():
    assert isinstance(make_surrogate("spikedhs", 5.0), SpikeDHSSurrogate)
    assert make_surrogate("spikedhs", 5.0).width == 5.0
    assert isinstance(make_surrogate("dgs"), DGSSurrogate)
    from eventvision.errors import UserError
    with pytest.raises(UserError, match="unknown surrogate"):
        make_surrogate("nope")


def test_dgs_moves_b_to_the_accumulated_winner_clamped_to_1_6():
    """Released train.py: softmax(alpha) summed over the DGS batches, b += delta of the argmax,
    clamp(b, 1, 6); a single late batch does not decide."""
    from eventvision.spiking.surrogate import accumulate_surrogates

    sg = DGSSurrogate(5.9)
    model = nn.Sequential(sg)
    for logits in ([0, 0, 0, 0, 3.0], [0, 0, 0, 0, 3.0], [3.0, 0, 0, 0, 0]):
        with torch.no_grad():
            sg.alpha.copy_(torch.tensor(logits))
        accumulate_surrogates(model)
    assert recenter_surrogates(model) == {"0": pytest.approx(6.0)}   # +0.4 won twice; 6.3 clamped to 6
    assert float(sg.accumulated.sum()) == 0.0
