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


def make_op(name: str, spec: StageSpec, channels: int) -> nn.Module:
    """One candidate op on an edge: ``skip`` = identity, ``snn_bW`` = 3x3 conv + BN + neuron of
    surrogate width W (in an ANN stage: conv + BN + ReLU)."""
    if name == "skip":
        return nn.Identity()
    if name in ("snn_b3", "snn_b5"):
        return ConvBN(spec, channels, channels, 3, width=float(name[-1]))
    raise ValueError(f"unknown op {name!r}; ops: {PRIMITIVES}")


class MixedOp(nn.Module):
    """All candidate ops on one edge, combined as ``sum_k w_k op_k(x)`` (search only)."""

    def __init__(self, spec: StageSpec, channels: int):
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, spec, channels) for name in PRIMITIVES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops))


class Cell(nn.Module):
    """A SpikeDHS/LEAStereo cell: inputs ``s0`` (prev-prev), ``s1`` (prev) are resampled to this
    cell's level, projected by 1x1 ConvBN(+neuron) to ``c_out`` channels, then 3 nodes each sum
    two edges (fixed ``genes``) or all edges mixed by alpha (``genes=None``, the search cell);
    in a spiking stage the sum feeds a node neuron (width 3), so node outputs are spikes.
    Output: the 3 nodes concatenated, ``block_multiplier * c_out`` channels (block_multiplier 3).
    """

    def __init__(self, spec: StageSpec, c_prev_prev: int, c_prev: int, c_out: int,
                 genes: tuple[tuple[int, str], ...] | None = None, steps: int = STEPS):
        super().__init__()
        self.spec = spec
        self.steps = steps
        self.genes = genes
        self.pre0 = ConvBN(spec, c_prev_prev, c_out, 1)
        self.pre1 = ConvBN(spec, c_prev, c_out, 1)
        if genes is None:
            self.ops = nn.ModuleList(MixedOp(spec, c_out) for _ in range(sum(2 + i for i in range(steps))))
        else:
            self.ops = nn.ModuleDict({str(e): make_op(o, spec, c_out) for e, o in genes})
        # spiking stages fire once more per node (u += sum of edges; the released SpikeDHS cell's
        # node neuron, width 3) so every node output, and every conv it feeds, stays spike-driven
        self.node_act = nn.ModuleList(spec.neuron.make(3.0) for _ in range(steps)) if spec.spiking else None

    @property
    def out_channels_factor(self) -> int:
        return self.steps

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, size: tuple[int, ...],
                alpha: torch.Tensor | None = None) -> torch.Tensor:
        s0 = self.pre0(resize(s0, size, self.spec))
        s1 = self.pre1(resize(s1, size, self.spec))
        states = [s0, s1]
        for node in range(self.steps):
            edges = node_edges(node)
            if self.genes is None:
                out = sum(self.ops[e](states[e - edges.start], alpha[e]) for e in edges)
            else:
                out = sum(self.ops[str(e)](states[e - edges.start]) for e, _ in self.genes if e in edges)
            if self.node_act is not None:
                out = self.node_act[node](out)
            states.append(out)
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
