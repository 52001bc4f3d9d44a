"""Surrogate spike functions: the SpikeDHS tanh surrogate and DGS (differentiable surrogate search).

All surrogates here are ``nn.Module``s called as ``spike = sg(x)`` with ``x = u - threshold``
(any shape); the forward value is the strict step ``H(x) = 1 if x > 0 else 0`` (the released SpikeDHS
fires on ``u > 0.5``: ``input.gt(thresh)`` in ``models/snndarts_search/SNN.py``), only the backward
differs. They are interchangeable with SpikingJelly's own
surrogates (``spikingjelly.activation_based.surrogate.ATan()`` ...), which share the call form.

SpikeDHS surrogate of width ``b`` (released ``ActFun_changeable`` in ``models/snndarts_search/SNN.py``)::

    ds/du = b / (2 tanh(b/2)) * (1 - tanh^2(b (u - 0.5)))   for 0 < u < 1,   0 elsewhere   (threshold 0.5)

i.e. in ``x = u - threshold`` the gradient is clipped to ``|x| < CLIP_HALF_WIDTH`` (0.5). Its primitive
``sigma_b(x) = tanh(b x) / (2 tanh(b/2)) + 1/2`` is 0 at ``x = -0.5`` and 1 at ``x = +0.5``: the clipped
gradient integrates to exactly 1 over that band, for every width.

DGS (differentiable surrogate-gradient search, SpikeDHS NeurIPS 2022 / journal): per layer,
candidate widths ``b_k = b + delta_k``, ``delta = (-0.4, -0.2, 0, 0.2, 0.4)``, mixed with
``w = softmax(alpha)``. The spike is still exactly ``H(x)``; we add the straight-through term
``soft - soft.detach()`` with ``soft = sum_k w_k sigma_{b_k}(x)``, so that

* ``ds/dx = sum_k w_k g_{b_k}(x)`` -- the softmax-mixed surrogate gradient, and
* ``ds/dalpha = sum_k (dw_k/dalpha) sigma_{b_k}(x)`` -- alpha learns which width makes the
  (relaxed) spike output most useful to the loss, by ordinary gradient descent.

``recenter()`` moves ``b`` to the winning candidate and resets alpha to uniform; a trainer calls it
every few epochs (``recenter_surrogates(model)``), so the search walks along the width axis instead of
being confined to ``b +- 0.4``. As released (``train.py``: every 5 epochs, softmax(alpha) accumulated
over at most 200 batches, ``clamp(b + delta, 1, 6)``), the winner is the argmax of the *accumulated*
weights (:meth:`DGSSurrogate.accumulate`) and b stays in ``[MIN_WIDTH, MAX_WIDTH] = [1, 6]``.
Difference kept (documented in docs/stereo_model.md): the release keeps one conv copy per candidate
width and mixes their membrane inputs; here the candidates share the conv and differ only in the
surrogate (the straight-through mixture above), which costs one conv instead of five.
"""

from __future__ import annotations

import torch
from torch import nn

#: DGS candidate offsets around the current width b (DESIGN.md)
DGS_OFFSETS: tuple[float, ...] = (-0.4, -0.2, 0.0, 0.2, 0.4)
#: DGS keeps b in [MIN_WIDTH, MAX_WIDTH] (released train.py: clamp(b, 1, 6))
MIN_WIDTH = 1.0
MAX_WIDTH = 6.0
#: the surrogate gradient is zero unless |u - threshold| < CLIP_HALF_WIDTH (released: 0 < u < 1)
CLIP_HALF_WIDTH = 0.5


def spikedhs_surrogate_grad(x: torch.Tensor, width: float | torch.Tensor) -> torch.Tensor:
    """``g_b(x) = b / (2 tanh(b/2)) * (1 - tanh^2(b x))`` for ``|x| < 0.5``, else 0 (x = u - threshold)."""
    b = torch.as_tensor(width, dtype=x.dtype, device=x.device)
    # 1 - tanh^2 = cosh^-2, which keeps its relative precision where tanh saturates
    g = b / (2.0 * torch.tanh(b / 2.0)) / torch.cosh(b * x) ** 2
    return g * (x.abs() < CLIP_HALF_WIDTH).to(x.dtype)


def spikedhs_primitive(x: torch.Tensor, width: float | torch.Tensor) -> torch.Tensor:
    """Primitive of :func:`spikedhs_surrogate_grad`: ``tanh(b x) / (2 tanh(b/2)) + 1/2`` inside the
    band, 0 below it and 1 above it."""
    b = torch.as_tensor(width, dtype=x.dtype, device=x.device)
    xc = x.clamp(-CLIP_HALF_WIDTH, CLIP_HALF_WIDTH)
    return torch.tanh(b * xc) / (2.0 * torch.tanh(b / 2.0)) + 0.5


class _SpikeDHSSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, width: float):
        ctx.save_for_backward(x)
        ctx.width = width
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * spikedhs_surrogate_grad(x, ctx.width), None


def spikedhs_spike(x: torch.Tensor, width: float) -> torch.Tensor:
    """Strict step forward (``x > 0``), clipped SpikeDHS tanh surrogate of width ``width`` backward."""
    return _SpikeDHSSpike.apply(x, float(width))


class _DGSSpike(torch.autograd.Function):
    """DGS spike: forward ``H(x)``; backward = the gradients of ``H(x) + soft - soft.detach()``
    with ``soft = sum_k w_k sigma_{b_k}(x)``, ``w = softmax(alpha)``, computed one candidate at a
    time (memory O(x), not O(K x)):

    * ``dL/dx = g_out * sum_k w_k g_{b_k}(x)``
    * ``dL/dalpha_j = w_j (S_j - sum_k w_k S_k)``, ``S_k = sum_i g_out_i sigma_{b_k}(x_i)``
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor, widths: torch.Tensor):
        w = torch.softmax(alpha.detach(), dim=0)
        ctx.save_for_backward(x, w, widths)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, w, widths = ctx.saved_tensors
        gx = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        S = torch.zeros_like(w, dtype=torch.float64)
        for k in range(w.shape[0]):
            b = widths[k].to(x.dtype)
            if gx is not None:
                gx = gx + w[k].to(x.dtype) * spikedhs_surrogate_grad(x, b)
            if ctx.needs_input_grad[1]:
                S[k] = (grad_out * spikedhs_primitive(x, b)).sum(dtype=torch.float64)
        if gx is not None:
            gx = gx * grad_out
        galpha = None
        if ctx.needs_input_grad[1]:
            w64 = w.to(torch.float64)
            galpha = (w64 * (S - (w64 * S).sum())).to(w.dtype)
        return gx, galpha, None


class SpikeDHSSurrogate(nn.Module):
    """Fixed-width SpikeDHS surrogate (``width`` = b, e.g. 3 or 5 as in the searched cell ops)."""

    def __init__(self, width: float = 3.0):
        super().__init__()
        if width <= 0:
            raise ValueError(f"surrogate width must be > 0, got {width}")
        self.width = float(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spikedhs_spike(x, self.width)

    def extra_repr(self) -> str:
        return f"width={self.width}"


class DGSSurrogate(nn.Module):
    """Differentiable surrogate-gradient search over widths ``b + offsets`` (see module doc).

    Parameters: ``alpha`` (len(offsets), the mixture logits, learnable). Buffers: ``width``
    (the current centre b, moved by :meth:`recenter`), ``offsets``, ``accumulated`` (sum of
    ``softmax(alpha)`` recorded by :meth:`accumulate`). ``search=False`` freezes the choice: the
    forward then uses the single winning width (derive step after the search).
    """

    def __init__(self, width: float = 3.0, offsets: tuple[float, ...] = DGS_OFFSETS,
                 min_width: float = MIN_WIDTH, max_width: float = MAX_WIDTH, search: bool = True):
        super().__init__()
        if width <= 0:
            raise ValueError(f"surrogate width must be > 0, got {width}")
        self.min_width, self.max_width = float(min_width), float(max_width)
        self.search = bool(search)
        self.register_buffer("width", torch.tensor(float(width)))
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.float32))
        self.register_buffer("accumulated", torch.zeros(len(offsets)))
        self.alpha = nn.Parameter(torch.zeros(len(offsets)))

    def candidate_widths(self) -> torch.Tensor:
        """Candidate widths ``[K]``, clamped to ``[min_width, max_width]``."""
        return (self.width + self.offsets).clamp(self.min_width, self.max_width)

    def weights(self) -> torch.Tensor:
        """Mixture weights ``softmax(alpha)`` ``[K]``."""
        return torch.softmax(self.alpha, dim=0)

    @torch.no_grad()
    def accumulate(self) -> None:
        """Record the current ``softmax(alpha)`` (released train.py: once per batch of the DGS phase)."""
        self.accumulated += self.weights().detach()

    def _winner(self) -> int:
        """Index of argmax of the accumulated weights (of alpha when nothing was accumulated);
        ties go to the current centre (offset 0), then the first."""
        score = self.accumulated if bool(self.accumulated.any()) else self.alpha.detach()
        centre = int(torch.argmin(self.offsets.abs()))
        return centre if score[centre] >= score.max() else int(torch.argmax(score))

    def best_width(self) -> float:
        """The width the search currently prefers."""
        return float(self.candidate_widths()[self._winner()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.search:
            return spikedhs_spike(x, self.best_width())
        return _DGSSpike.apply(x, self.alpha, self.candidate_widths())

    @torch.no_grad()
    def recenter(self) -> float:
        """Move b to the winning candidate (clamped to [min_width, max_width]), reset alpha to
        uniform and the accumulator to zero; returns the new b."""
        self.width.copy_(self.candidate_widths()[self._winner()])
        self.alpha.zero_()
        self.accumulated.zero_()
        return float(self.width)

    def extra_repr(self) -> str:
        return f"width={float(self.width):.3f}, offsets={self.offsets.tolist()}, search={self.search}"


def accumulate_surrogates(model: nn.Module) -> None:
    """:meth:`DGSSurrogate.accumulate` on every DGS module of ``model``."""
    for m in model.modules():
        if isinstance(m, DGSSurrogate):
            m.accumulate()


def recenter_surrogates(model: nn.Module) -> dict[str, float]:
    """Call :meth:`DGSSurrogate.recenter` on every DGS module; returns {module name: new width}."""
    return {name: m.recenter() for name, m in model.named_modules() if isinstance(m, DGSSurrogate)}


def dgs_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The DGS mixture logits of a model (for a separate optimizer group / bi-level search)."""
    return [m.alpha for m in model.modules() if isinstance(m, DGSSurrogate)]


def make_surrogate(name: str | nn.Module | None = "atan", width: float | None = None) -> nn.Module:
    """Surrogate by name: "spikedhs" / "dgs" (``width`` = b, default 3), "atan" / "sigmoid"
    (SpikingJelly's, ``width`` = their alpha, defaults 2 / 4). A module is returned unchanged."""
    if isinstance(name, nn.Module):
        return name
    from spikingjelly.activation_based import surrogate as sj_surrogate

    name = (name or "atan").lower()
    if name == "spikedhs":
        return SpikeDHSSurrogate(3.0 if width is None else width)
    if name == "dgs":
        return DGSSurrogate(3.0 if width is None else width)
    if name == "atan":
        return sj_surrogate.ATan(alpha=2.0 if width is None else float(width))
    if name == "sigmoid":
        return sj_surrogate.Sigmoid(alpha=4.0 if width is None else float(width))
    from eventvision.errors import ConfigError
    raise ConfigError(f"unknown surrogate '{name}'; one of spikedhs, dgs, atan, sigmoid")

