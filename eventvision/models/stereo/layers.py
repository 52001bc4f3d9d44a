"""Building blocks of the SpikeDHS stereo network, usable as spiking or ANN stages.

A stage is described by :class:`StageSpec`: ``dim`` (2 for the feature net, 3 for the matching
net) and ``spiking``. In a spiking stage tensors are multi-step ``[T, N, C, *spatial]`` and
every conv/BN runs through :class:`eventvision.spiking.adapters.SeqToANN` followed by a
multi-step neuron from :func:`eventvision.spiking.neurons.make_neuron`; in an ANN stage tensors
are ``[N, C, *spatial]`` and the activation is ReLU. The same genotype therefore gives both a
spiking and an ANN network (the journal version's hybrid switch).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from eventvision.models.conv import Conv3d

from eventvision.models.stereo.genotype import PRIMITIVES, STEPS, StageGenotype, node_edges
from eventvision.spiking.adapters import SeqToANN


@dataclasses.dataclass(frozen=True)
class NeuronSpec:
    """Which spiking neuron a spiking stage uses.

    ``kind``: a :func:`make_neuron` kind (``spikedhs`` default); ``dgs``: differentiable surrogate
    search (``DGSSurrogate`` around each op's width); ``learn_tau``: evolved (learnable per-layer)
    time constant; ``tau``: initial leak for ``spikedhs`` (0.2 when None) / tau for lif/plif.
    """

    kind: str = "spikedhs"
    dgs: bool = False
    learn_tau: bool = False
    tau: float | None = None

    def make(self, width: float) -> nn.Module:
        from eventvision.spiking.neurons import make_neuron

        if self.dgs:
            surrogate, w = "dgs", width
        elif self.kind == "spikedhs":
            surrogate, w = "spikedhs", width
        else:  # lif/plif keep their own default surrogate; SpikeDHS widths do not apply
            surrogate, w = None, None
        return make_neuron(self.kind, surrogate=surrogate, surrogate_width=w, learn_tau=self.learn_tau, tau=self.tau)


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """``dim``: 2 (images) or 3 (cost volumes); ``spiking``: multi-step SNN stage or ANN stage."""

    dim: int
    spiking: bool
    neuron: NeuronSpec = NeuronSpec()

    @property
    def channel_axis(self) -> int:
        return 2 if self.spiking else 1

    @property
    def batch_axis(self) -> int:
        return 1 if self.spiking else 0

    def conv(self, cin: int, cout: int, k: int, stride: int = 1, bias: bool = False) -> nn.Module:
        cls = nn.Conv2d if self.dim == 2 else Conv3d
        return cls(cin, cout, k, stride=stride, padding=k // 2, bias=bias)

    def bn(self, c: int) -> nn.Module:
        return nn.BatchNorm2d(c) if self.dim == 2 else nn.BatchNorm3d(c)

    def wrap(self, module: nn.Module) -> nn.Module:
        """ANN module -> applicable to this stage's tensors (SeqToANN in spiking stages)."""
        return SeqToANN(module) if self.spiking else module


class ConvBN(nn.Module):
    """Conv (k x k[x k], stride) + BN (optional) + activation (spiking neuron of surrogate width
    ``width`` in spiking stages, ReLU in ANN stages; optional)."""

    def __init__(self, spec: StageSpec, cin: int, cout: int, k: int = 3, stride: int = 1, *, bn: bool = True,
                 act: bool = True, width: float = 3.0):
        super().__init__()
        layers = [spec.conv(cin, cout, k, stride, bias=not bn)]
        if bn:
            layers.append(spec.bn(cout))
        self.body = spec.wrap(nn.Sequential(*layers) if len(layers) > 1 else layers[0])
        if not act:
            self.act = nn.Identity()
        elif spec.spiking:
            self.act = spec.neuron.make(width)
        else:
            self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x))


def spatial_shape(x: torch.Tensor, spec: StageSpec) -> tuple[int, ...]:
    return tuple(x.shape[-spec.dim:])


def resize(x: torch.Tensor, size: tuple[int, ...], spec: StageSpec) -> torch.Tensor:
    """Resample the spatial dims of ``x`` to ``size``: nearest in spiking stages (keeps spikes
    binary), (bi/tri)linear in ANN stages. No-op if already that size."""
    size = tuple(int(s) for s in size)
    if spatial_shape(x, spec) == size:
        return x
    if spec.spiking:
        y = F.interpolate(x.flatten(0, 1), size=size, mode="nearest")
        return y.view(*x.shape[:2], *y.shape[1:])
    mode = "bilinear" if spec.dim == 2 else "trilinear"
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def level_sizes(base: tuple[int, ...], levels: int = 4) -> list[tuple[int, ...]]:
    """Spatial size of each level: level 0 = ``base``, each next one halves (rounding up)."""
    sizes = [tuple(base)]
    for _ in range(levels - 1):
        sizes.append(tuple(math.ceil(s / 2) for s in sizes[-1]))
    return sizes


#: edges whose input is a cell input: s0 (prev-prev) feeds edges 0, 2, 5; s1 (prev) feeds 1, 3, 6
EDGES_FROM_S0 = (0, 2, 5)
EDGES_FROM_S1 = (1, 3, 6)


def edge_in_channels(edge: int, c_prev_prev: int, c_prev: int, c_out: int) -> int:
    """Input channels of ``edge``: the cell inputs' widths for edges from s0/s1, else a node's."""
    if edge in EDGES_FROM_S0:
        return c_prev_prev
    if edge in EDGES_FROM_S1:
        return c_prev
    return c_out


def make_op(name: str, spec: StageSpec, cin: int, cout: int, *, from_input: bool) -> nn.Module:
    """One candidate op on an edge, as in the released SpikeDHS cell (``operations_2d.py`` ``OPS``,
    ``new_model_2d.py`` ``Cell``): every op returns the *membrane input* ``BN(conv3x3(x))``; the node
    neuron fires on the sum. ``skip`` from a cell input is a 3x3 conv + BN too (released
    ``skip_connect`` with ``signal=1``: the inputs have other widths than the nodes); ``skip`` from an
    earlier node is the identity. ``snn_b3``/``snn_b5`` differ only by the surrogate width their own
    neuron would use, and in the released retrain cell that neuron is bypassed (``mixed_at_mem``), so
    both are the same conv + BN here."""
    if name == "skip" and not from_input:
        return nn.Identity()
    if name in ("skip", "snn_b3", "snn_b5"):
        return ConvBN(spec, cin, cout, 3, act=False)
    raise ValueError(f"unknown op {name!r}; ops: {PRIMITIVES}")


class MixedOp(nn.Module):
    """All candidate ops on one edge, combined as ``sum_k w_k op_k(x)`` (search only; like the
    released search cell, the mixture is of membrane inputs and the node neuron fires on it)."""

    def __init__(self, spec: StageSpec, cin: int, cout: int, *, from_input: bool):
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, spec, cin, cout, from_input=from_input) for name in PRIMITIVES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops))


class Cell(nn.Module):
    """The released SpikeDHS cell (``models/snndarts_retrain/new_model_2d.py``): inputs ``s0``
    (prev-prev) and ``s1`` (prev) are resampled to this cell's level (nearest in spiking stages, so
    spikes stay binary; (bi/tri)linear in ANN stages) and read *as they are* (no 1x1
    pre-processing); 3 nodes each sum their two edges' ``BN(conv)`` outputs (fixed ``genes``) or
    all edges mixed by alpha (``genes=None``, the search cell), and one neuron per node fires on
    that sum (width 3, leak and threshold of the stage's neuron; ReLU in an ANN stage).
    Output: the 3 nodes concatenated, ``3 * c_out`` channels.
    """

    def __init__(self, spec: StageSpec, c_prev_prev: int, c_prev: int, c_out: int,
                 genes: tuple[tuple[int, str], ...] | None = None, steps: int = STEPS):
        super().__init__()
        self.spec = spec
        self.steps = steps
        self.genes = genes
        n_edges = sum(2 + i for i in range(steps))

        def cin(e: int) -> int:
            return edge_in_channels(e, c_prev_prev, c_prev, c_out)

        def from_input(e: int) -> bool:
            return e in EDGES_FROM_S0 or e in EDGES_FROM_S1

        if genes is None:
            self.ops = nn.ModuleList(MixedOp(spec, cin(e), c_out, from_input=from_input(e))
                                     for e in range(n_edges))
        else:
            self.ops = nn.ModuleDict({str(e): make_op(o, spec, cin(e), c_out, from_input=from_input(e))
                                      for e, o in genes})
        self.node_act = nn.ModuleList((spec.neuron.make(3.0) if spec.spiking else nn.ReLU())
                                      for _ in range(steps))

    @property
    def out_channels_factor(self) -> int:
        return self.steps

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, size: tuple[int, ...],
                alpha: torch.Tensor | None = None) -> torch.Tensor:
        states = [resize(s0, size, self.spec), resize(s1, size, self.spec)]
        for node in range(self.steps):
            edges = node_edges(node)
            if self.genes is None:
                out = sum(self.ops[e](states[e - edges.start], alpha[e]) for e in edges)
            else:
                out = sum(self.ops[str(e)](states[e - edges.start]) for e, _ in self.genes if e in edges)
            states.append(self.node_act[node](out))
        return torch.cat(states[-self.steps:], dim=self.spec.channel_axis)


class ToLevelZero(nn.Module):
    """LEAStereo's ``last_24/12/6`` tail: from level ``level`` back to level 0, each step a 1x1
    ConvBN(+act) halving the channels and an upsample; ends with ``block * F`` channels."""

    def __init__(self, spec: StageSpec, level: int, filter_multiplier: int, block_multiplier: int = STEPS):
        super().__init__()
        self.spec = spec
        self.level = level
        init = filter_multiplier * block_multiplier
        self.convs = nn.ModuleList(ConvBN(spec, init * 2 ** k, init * 2 ** (k - 1), 1) for k in range(level, 0, -1))

    def forward(self, x: torch.Tensor, sizes: list[tuple[int, ...]]) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = resize(conv(x), sizes[self.level - i - 1], self.spec)
        return x


class CellStack(nn.Module):
    """The derived (fixed) layer path: one :class:`Cell` per layer at the genotype's level, then
    the tail back to level 0. Input: the two stem outputs (``block * F`` channels, level 0)."""

    def __init__(self, spec: StageSpec, stage: StageGenotype, filter_multiplier: int, block_multiplier: int = STEPS):
        super().__init__()
        self.spec = spec
        self.path = stage.path
        init = filter_multiplier * block_multiplier
        chans = [init] + [block_multiplier * filter_multiplier * 2 ** lv for lv in stage.path]
        cells = []
        for layer, level in enumerate(stage.path):
            c_pp = chans[layer - 1] if layer >= 1 else init
            c_p = chans[layer]
            cells.append(Cell(spec, c_pp, c_p, filter_multiplier * 2 ** level, genes=stage.cell))
        self.cells = nn.ModuleList(cells)
        self.tail = ToLevelZero(spec, stage.path[-1], filter_multiplier, block_multiplier)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        sizes = level_sizes(spatial_shape(s1, self.spec))
        for cell, level in zip(self.cells, self.path):
            s0, s1 = s1, cell(s0, s1, sizes[level])
        return self.tail(s1, sizes)
