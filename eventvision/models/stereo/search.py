"""Differentiable hierarchical search for SpikeDHS stereo (LEAStereo/AutoDeepLab style).

Supernet (:class:`SearchStereoNet`): the feature and matching nets become :class:`SearchStack`s,
``num_layers`` layers x 4 levels. Each reachable (layer, source level, transition) owns a search
:class:`~eventvision.models.stereo.layers.Cell` whose 9 edges mix the ops
{skip, snn_b3, snn_b5} by ``softmax(alpha)`` (cell level, one alpha ``[9, 3]`` per stage, shared by
all its cells); the output of level ``t`` at layer ``l`` is
``sum_{src, k -> t} beta_p[l, src, k] * cell_{l, src, k}(h[l-2, t], h[l-1, src])`` with
``beta_p[l, src] = softmax`` over the legal transitions out of ``src`` (layer level). The last
layer's levels are brought back to level 0 and summed.

Search (:func:`search_stereo`): bi-level, first order. Weights take a step on a batch from one
half of the training data, then alpha/beta (and DGS weights if enabled) a step on a batch from
the other half, alternating; the architecture steps start after ``warmup_epochs``. An optional
energy term ``energy_weight * relu(E(alpha, beta) / E_ref - energy_budget)`` uses an analytic
per-op cost: each conv op costs its MACs (k^dim * C^2 * voxels * T) times 4.6 pJ (ANN stage,
MAC) or 0.9 pJ (spiking stage, AC, assuming every input spikes), skip costs 0 between nodes (from a
cell input it is a conv); ``E`` is that cost in expectation under the softmaxed alpha and beta,
``E_ref`` the same with every edge a conv.

Derivation: top-2 edges per node ranked by their best non-skip op, each with its best op
(:func:`decode_cell`), best layer path by Viterbi over ``beta_p`` with the 2-way boundary levels
scaled by 2/3 (:func:`rescale_boundary_levels`, :func:`viterbi_path`) -> :class:`Genotype`, saved with
:func:`save_genotype` and read back by ``model.genotype: path``.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from eventvision.errors import ConfigError, InvalidValueError
from eventvision.models.stereo.genotype import (
    NUM_LEVELS,
    PRIMITIVES,
    STEPS,
    Genotype,
    StageGenotype,
    decode_cell,
    num_edges,
    rescale_boundary_levels,
    transition_target,
    viterbi_path,
)
from eventvision.models.stereo.layers import (
    EDGES_FROM_S0,
    EDGES_FROM_S1,
    Cell,
    StageSpec,
    ToLevelZero,
    level_sizes,
    spatial_shape,
)
from eventvision.models.stereo.loss import disparity_loss
from eventvision.models.stereo.network import SpikeDHSStereo

#: energy per operation (pJ, 45 nm; DESIGN.md): MAC for ANN layers, AC for spike-driven layers
E_MAC_PJ = 4.6
E_AC_PJ = 0.9


def _legal_transitions(num_layers: int, max_level: int) -> np.ndarray:
    """Bool [L, NUM_LEVELS, 3]: may layer ``l`` go from ``src`` by transition ``k``?"""
    legal = np.zeros((num_layers, NUM_LEVELS, 3), dtype=bool)
    for layer in range(num_layers):
        for src in range(min(layer, max_level) + 1):  # levels reachable at layer-1 (stem = level 0)
            for k in range(3):
                dst = transition_target(src, k)
                legal[layer, src, k] = 0 <= dst <= max_level
    return legal


class SearchStack(nn.Module):
    """All layers x levels of one stage with their architecture weights ``arch_alpha``
    ``[9, 3]`` and ``arch_beta`` ``[L, 4, 3]`` (see module doc)."""

    def __init__(self, spec: StageSpec, num_layers: int, filter_multiplier: int, max_level: int = NUM_LEVELS - 1,
                 block_multiplier: int = STEPS):
        super().__init__()
        if not 0 <= max_level < NUM_LEVELS:
            raise ConfigError(f"search max_level must be in 0..{NUM_LEVELS - 1}, got {max_level}")
        if num_layers < 1:
            raise ConfigError(f"search needs at least one layer per stage, got {num_layers}")
        self.spec = spec
        self.num_layers = num_layers
        self.max_level = max_level
        self.filter_multiplier = filter_multiplier
        init = filter_multiplier * block_multiplier
        self.register_buffer("legal", torch.from_numpy(_legal_transitions(num_layers, max_level)), persistent=False)
        self.arch_alpha = nn.Parameter(1e-3 * torch.randn(num_edges(), len(PRIMITIVES)))
        self.arch_beta = nn.Parameter(1e-3 * torch.randn(num_layers, NUM_LEVELS, 3))
        self.cells = nn.ModuleDict()
        for layer in range(num_layers):
            for src, k in zip(*np.nonzero(self.legal[layer].numpy())):
                dst = transition_target(int(src), int(k))
                c_p = init if layer == 0 else block_multiplier * filter_multiplier * 2 ** int(src)
                c_pp = block_multiplier * filter_multiplier * 2 ** dst if self._has_prev_prev(layer, dst) else init
                self.cells[f"{layer}_{src}_{k}"] = Cell(spec, c_pp, c_p, filter_multiplier * 2 ** dst)
        last_levels = range(min(num_layers, max_level) + 1)
        self.tails = nn.ModuleList(ToLevelZero(spec, lv, filter_multiplier, block_multiplier) for lv in last_levels)
        self._voxels: list[int] = []

    def _has_prev_prev(self, layer: int, level: int) -> bool:
        return layer >= 2 and level <= min(layer - 1, self.max_level)

    def alpha_probs(self) -> torch.Tensor:
        return torch.softmax(self.arch_alpha, dim=-1)

    def beta_probs(self) -> torch.Tensor:
        logits = self.arch_beta.masked_fill(~self.legal, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        return torch.nan_to_num(probs, nan=0.0)  # rows without a legal move (unreachable sources)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        sizes = level_sizes(spatial_shape(s1, self.spec))
        self._voxels = [int(np.prod(s)) for s in sizes]
        alpha, beta = self.alpha_probs(), self.beta_probs()
        outs: dict[int, dict[int, torch.Tensor]] = {-2: {0: s0}, -1: {0: s1}}
        for layer in range(self.num_layers):
            cur: dict[int, torch.Tensor] = {}
            for name, cell in self.cells.items():
                l_, src, k = (int(v) for v in name.split("_"))
                if l_ != layer:
                    continue
                dst = transition_target(src, k)
                prev_prev = outs[layer - 2][dst] if self._has_prev_prev(layer, dst) else s1
                y = beta[layer, src, k] * cell(prev_prev, outs[layer - 1][src], sizes[dst], alpha)
                cur[dst] = cur[dst] + y if dst in cur else y
            outs[layer] = cur
        last = outs[self.num_layers - 1]
        return sum(tail(last[lv], sizes) for lv, tail in enumerate(self.tails))

    def expected_energy(self, time_steps: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """(expected, all-conv reference) energy of the searched cells in pJ (analytic, see module doc)."""
        if not self._voxels:
            raise RuntimeError("run a forward pass first (the cost depends on the input size)")
        alpha, beta = self.alpha_probs(), self.beta_probs()
        kernel = 3 ** self.spec.dim
        pj = E_AC_PJ if self.spec.spiking else E_MAC_PJ
        # expected number of conv edges per cell: skip is free except from a cell input (a conv there)
        from_input = torch.zeros(num_edges(), dtype=torch.bool, device=alpha.device)
        from_input[list(EDGES_FROM_S0 + EDGES_FROM_S1)] = True
        conv_mass = alpha[:, 1:].sum() + alpha[from_input, 0].sum()
        expected = alpha.new_zeros(())
        reference = alpha.new_zeros(())
        for name in self.cells:
            layer, src, k = (int(v) for v in name.split("_"))
            dst = transition_target(src, k)
            c = self.filter_multiplier * 2 ** dst
            per_conv = kernel * c * c * self._voxels[dst] * time_steps * pj
            expected = expected + beta[layer, src, k] * conv_mass * per_conv
            reference = reference + beta[layer, src, k].detach() * num_edges() * per_conv
        return expected, reference

    def derive(self) -> StageGenotype:
        """Genotype of this stage: top-2 edges per node with best ops, Viterbi path over beta."""
        with torch.no_grad():
            cell = decode_cell(self.alpha_probs().cpu().numpy())
            path = viterbi_path(rescale_boundary_levels(self.beta_probs().cpu().numpy()))
        return StageGenotype(cell=cell, path=path)


class SearchStereoNet(SpikeDHSStereo):
    """The SpikeDHS stereo supernet: same stems, cost volume, SNN/ANN switches and disparity head
    as :class:`SpikeDHSStereo`, with :class:`SearchStack` cells (``model.genotype`` is ignored).

    Extra keys: ``fea_num_layers`` (2 in SpikeDHS), ``mat_num_layers`` (4), ``max_level`` (3).
    """

    def __init__(self, *, fea_num_layers: int = 2, mat_num_layers: int = 4, max_level: int = NUM_LEVELS - 1, **kwargs):
        self._layout = {"feature": int(fea_num_layers), "matching": int(mat_num_layers), "max_level": int(max_level)}
        super().__init__(**kwargs)

    def make_cells(self, stage: str) -> nn.Module:
        spec = self.fea_spec if stage == "feature" else self.mat_spec
        fm = self.cfg.fea_filter_multiplier if stage == "feature" else self.cfg.mat_filter_multiplier
        return SearchStack(spec, self._layout[stage], fm, self._layout["max_level"], self.cfg.block_multiplier)

    @property
    def stacks(self) -> dict[str, SearchStack]:
        return {"feature": self.feature.cells, "matching": self.matching.cells}

    def arch_parameters(self) -> list[nn.Parameter]:
        """alpha, beta of both stages plus DGS surrogate weights (if ``dgs``)."""
        from eventvision.spiking.surrogate import dgs_parameters

        params = [p for s in self.stacks.values() for p in (s.arch_alpha, s.arch_beta)]
        return params + list(dgs_parameters(self))

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def energy_ratio(self) -> torch.Tensor:
        """Expected / all-conv energy of the searched cells (in [0, 1]; needs a forward first)."""
        expected, reference = zip(*(s.expected_energy(self.time_steps) for s in self.stacks.values()))
        return sum(expected) / sum(reference)

    def derive_genotype(self) -> Genotype:
        return Genotype(feature=self.stacks["feature"].derive(), matching=self.stacks["matching"].derive())

    def arch_summary(self) -> dict[str, Any]:
        """Softmaxed alpha / beta per stage as nested lists (saved next to the genotype)."""
        out = {}
        with torch.no_grad():
            for name, s in self.stacks.items():
                out[name] = {"alpha": np.round(s.alpha_probs().cpu().numpy(), 4).tolist(),
                             "beta": np.round(s.beta_probs().cpu().numpy(), 4).tolist()}
        return out


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Every ``search.*`` key (defaults = the released SpikeDHS search hyper.log where it applies:
    2 feature / 4 matching layers, filter multiplier 4, lr 2e-3, arch lr 2e-3 [Adam], weight decay
    3e-4, arch weight decay 1e-3, alpha from epoch 3 of 10)."""

    fea_num_layers: int = 2
    mat_num_layers: int = 4
    max_level: int = NUM_LEVELS - 1
    filter_multiplier: int = 4
    epochs: int = 10
    warmup_epochs: int = 3
    batch_size: int = 2
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 3e-4
    arch_lr: float = 2e-3
    arch_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    energy_weight: float = 0.0
    energy_budget: float = 0.0
    max_steps_per_epoch: int = 0

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> "SearchConfig":
        cfg = dict(cfg or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - names)
        if unknown:
            raise ConfigError(f"unknown search key(s) {', '.join('search.' + u for u in unknown)}; "
                              f"known: {', '.join(sorted(names))}")
        return cls(**cfg)


@dataclasses.dataclass
class SearchResult:
    genotype: Genotype
    history: list[dict[str, float]]
    arch: dict[str, Any]


def build_supernet(model_cfg: Mapping[str, Any], search: SearchConfig) -> SearchStereoNet:
    """Supernet from a ``model`` section (its hybrid/neuron/disparity keys) and the search layout;
    both stages use ``search.filter_multiplier``."""
    from eventvision.models.stereo.network import StereoModelConfig

    base = dataclasses.asdict(StereoModelConfig.from_mapping(model_cfg))
    base.update(fea_filter_multiplier=search.filter_multiplier, mat_filter_multiplier=search.filter_multiplier)
    return SearchStereoNet(fea_num_layers=search.fea_num_layers, mat_num_layers=search.mat_num_layers,
                           max_level=search.max_level, **base)


def search_stereo(model: SearchStereoNet, weight_batches: Iterable[Mapping[str, torch.Tensor]],
                  arch_batches: Iterable[Mapping[str, torch.Tensor]], search: SearchConfig, *,
                  max_disp: float | None = None, device: torch.device | str = "cpu",
                  loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                  show_progress: bool = True) -> SearchResult:
    """Run the bi-level first-order search and derive the genotype.

    ``weight_batches`` / ``arch_batches``: re-iterable collections (e.g. DataLoaders over the two
    halves of the training set) of ``{"left": [N, B, (P,) H, W], "right": ..., "disparity":
    [N, H, W] (NaN invalid)}``. ``max_disp``: GT at or above it is ignored by the default loss
    (default: the model's ``max_disp - 1``).
    """
    from eventvision.utils.progress import progress

    device = torch.device(device)
    model.to(device).train()
    max_disp = float(model.max_disp - 1 if max_disp is None else max_disp)
    loss_fn = loss_fn or (lambda p, g: disparity_loss(p, g, max_disp))
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=search.lr, momentum=search.momentum,
                            weight_decay=search.weight_decay)
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=search.arch_lr, betas=(0.5, 0.999),
                             weight_decay=search.arch_weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=max(search.epochs, 1), eta_min=search.lr * 0.5)

    def to_dev(batch):
        return {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}

    try:
        n_steps = len(weight_batches)  # type: ignore[arg-type]
    except TypeError:
        n_steps = None
    if search.max_steps_per_epoch:
        n_steps = search.max_steps_per_epoch if n_steps is None else min(n_steps, search.max_steps_per_epoch)
    history: list[dict[str, float]] = []
    for epoch in range(search.epochs):
        search_arch = epoch >= search.warmup_epochs
        arch_iter = itertools.cycle(arch_batches) if search_arch else None
        sums = {"loss": 0.0, "arch_loss": 0.0, "energy": 0.0}
        steps = 0
        bar = progress(weight_batches, total=n_steps, desc=f"search {epoch + 1}/{search.epochs}", unit="batch",
                       disable=None if show_progress else True)
        for step, batch in enumerate(bar):
            if search.max_steps_per_epoch and step >= search.max_steps_per_epoch:
                break
            b = to_dev(batch)
            loss = loss_fn(model(b["left"], b["right"]), b["disparity"])
            w_opt.zero_grad(set_to_none=True)
            a_opt.zero_grad(set_to_none=True)
            loss.backward()
            if search.grad_clip:
                nn.utils.clip_grad_norm_(model.weight_parameters(), search.grad_clip)
            w_opt.step()
            sums["loss"] += loss.item()
            if search_arch:
                a = to_dev(next(arch_iter))
                arch_loss = loss_fn(model(a["left"], a["right"]), a["disparity"])
                total = arch_loss
                if search.energy_weight > 0:
                    ratio = model.energy_ratio()
                    total = total + search.energy_weight * torch.relu(ratio - search.energy_budget)
                    sums["energy"] += ratio.item()
                w_opt.zero_grad(set_to_none=True)
                a_opt.zero_grad(set_to_none=True)
                total.backward()
                a_opt.step()
                sums["arch_loss"] += arch_loss.item()
            steps += 1
            bar.set_postfix(loss=f"{sums['loss'] / steps:.3f}")
        sched.step()
        history.append({"epoch": epoch + 1, **{k: v / max(steps, 1) for k, v in sums.items()}, "arch": search_arch})
    genotype = model.derive_genotype()
    return SearchResult(genotype=genotype, history=history, arch=model.arch_summary())


def split_halves(dataset) -> tuple[Any, Any]:
    """Two disjoint halves (even / odd indices) of a dataset: weights / architecture data."""
    if len(dataset) < 2:
        raise InvalidValueError(f"the search needs at least 2 training samples (one per half), "
                                f"got {len(dataset)}")
    idx = list(range(len(dataset)))
    return torch.utils.data.Subset(dataset, idx[0::2]), torch.utils.data.Subset(dataset, idx[1::2])


__all__ = ["SearchStack", "SearchStereoNet", "SearchConfig", "SearchResult", "build_supernet", "search_stereo",
           "split_halves", "E_MAC_PJ", "E_AC_PJ"]
