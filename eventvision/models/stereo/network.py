"""SpikeDHS stereo network: spiking (or ANN) feature net -> concat cost volume -> 3D matching
net -> trilinear upsample -> soft-argmin disparity.

Shapes (``N`` batch, ``B`` SBT bins, ``P`` polarity channels, ``H x W`` input, ``D`` = max_disp):

* input ``left``/``right``: ``[N, B, H, W]`` or ``[N, B, P, H, W]`` (SBT, 5 bins by default)
* features: ``[N, C, h, w]`` (``[T, N, C, h, w]`` in a spiking stage), ``C = 3 * fea_F``,
  ``h = ceil(H / 3)``, ``w = ceil(W / 3)``
* cost volume: ``[N, 2C, D // 3, h, w]``
* output disparity: ``[N, H, W]`` float, pixels in ``[0, D - 1]``.

Spiking <-> ANN boundaries: a spiking feature net feeding an ANN matching net is read out by
:class:`MultiStepToANN` (mean over T of the last 1x1 conv's output); an ANN feature net feeding
a spiking matching net repeats the cost volume over T (direct encoding). A spiking matching net
is read out the same way before the disparity regression.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from eventvision.errors import ConfigError, InvalidValueError
from eventvision.models.stereo.genotype import STEPS, Genotype, resolve_genotype
from eventvision.models.stereo.layers import CellStack, ConvBN, NeuronSpec, StageSpec
from eventvision.spiking.adapters import MultiStepToANN

STAGE_KINDS = ("spiking", "ann")
INPUT_MODES = ("channels", "steps")


def build_cost_volume(left: torch.Tensor, right: torch.Tensor, num_disp: int) -> torch.Tensor:
    """Concatenation cost volume (GC-Net/LEAStereo).

    ``left``, ``right``: ``[..., C, h, w]`` -> ``[..., 2C, num_disp, h, w]`` with
    ``cost[..., :C, d, y, x] = left[..., y, x]`` and ``cost[..., C:, d, y, x] = right[..., y, x - d]``
    for ``x >= d``, zero for ``x < d``.
    """
    w = left.shape[-1]
    lefts, rights = [], []
    for d in range(num_disp):
        if d == 0:
            lefts.append(left)
            rights.append(right)
        elif d >= w:
            lefts.append(torch.zeros_like(left))
            rights.append(torch.zeros_like(right))
        else:
            lefts.append(F.pad(left[..., d:], (d, 0)))
            rights.append(F.pad(right[..., : w - d], (d, 0)))
    return torch.cat([torch.stack(lefts, dim=-3), torch.stack(rights, dim=-3)], dim=-4)


def soft_argmin(cost: torch.Tensor) -> torch.Tensor:
    """``cost`` ``[N, D, H, W]`` -> disparity ``[N, H, W]`` = sum_d d * softmax(-cost)_d (pixels)."""
    prob = torch.softmax(-cost, dim=1)
    disp = torch.arange(cost.shape[1], device=cost.device, dtype=prob.dtype).view(1, -1, 1, 1)
    return (prob * disp).sum(1)


def regress_disparity(cost: torch.Tensor, max_disp: int, size: tuple[int, int]) -> torch.Tensor:
    """Matching output ``[N, 1, D/3, h, w]`` -> trilinear upsample to ``[N, max_disp, H, W]`` (LEAStereo) ->
    soft-argmin -> ``[N, H, W]``.

    The trilinear upsample is done separably (disparity axis at 1/3 resolution, then bilinear in the image
    plane with the disparities as channels): the same interpolation (linear per axis, ``align_corners=False``)
    at about 3/4 of the time of one full-resolution trilinear pass."""
    d = F.interpolate(cost, size=(max_disp, *cost.shape[-2:]), mode="trilinear", align_corners=False)[:, 0]
    return soft_argmin(F.interpolate(d, size=tuple(size), mode="bilinear", align_corners=False))


class FeatureNet(nn.Module):
    """LEAStereo/SpikeDHS feature net: stems (3x3; 3x3 stride 3; 3x3) -> cells along the path ->
    tail to level 0 -> 1x1 conv (no BN, no activation): ``3 * F`` channels at 1/3 resolution."""

    def __init__(self, spec: StageSpec, in_channels: int, cells: nn.Module, filter_multiplier: int,
                 block_multiplier: int = STEPS):
        super().__init__()
        init = filter_multiplier * block_multiplier
        self.out_channels = init
        self.stem0 = ConvBN(spec, in_channels, max(init // 2, 1), 3)
        self.stem1 = ConvBN(spec, max(init // 2, 1), init, 3, stride=3)
        self.stem2 = ConvBN(spec, init, init, 3)
        self.cells = cells
        self.last = ConvBN(spec, init, init, 1, bn=False, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = self.stem1(self.stem0(x))
        s1 = self.stem2(s0)
        return self.last(self.cells(s0, s1))


class MatchingNet(nn.Module):
    """3D matching net: stems (3x3x3) -> cells along the path -> tail -> 3x3x3 conv to 1 channel."""

    def __init__(self, spec: StageSpec, in_channels: int, cells: nn.Module, filter_multiplier: int,
                 block_multiplier: int = STEPS):
        super().__init__()
        init = filter_multiplier * block_multiplier
        self.stem0 = ConvBN(spec, in_channels, init, 3)
        self.stem1 = ConvBN(spec, init, init, 3)
        self.cells = cells
        self.last = ConvBN(spec, init, 1, 3, bn=False, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = self.stem0(x)
        s1 = self.stem1(s0)
        return self.last(self.cells(s0, s1))


def model_defaults(config: str = "stereo/default") -> dict[str, Any]:
    """The ``model:`` section of a packaged stereo config (``stereo/default`` declares every key with its
    default; ``stereo/full`` is the released SpikeDHS size, ``stereo/small`` the CPU hybrid): the one
    place where stereo model defaults are written down."""
    from eventvision.config import load_config

    return load_config(config).model.to_dict()


@dataclasses.dataclass(frozen=True)
class StereoModelConfig:
    """Every key ``SpikeDHSStereo`` reads (docs/stereo_model.md); defaults come from the ``model:``
    section of ``eventvision/configs/stereo/default.yaml`` (:meth:`from_mapping`)."""

    genotype: Any
    feature: str
    matching: str
    fea_filter_multiplier: int
    mat_filter_multiplier: int
    block_multiplier: int
    max_disp: int
    num_bins: int
    polarity_channels: int
    input_mode: str
    time_steps: int
    neuron: str
    dgs: bool
    learn_tau: bool
    tau: float | None
    readout: str

    def __post_init__(self):
        for key in ("feature", "matching"):
            if getattr(self, key) not in STAGE_KINDS:
                raise ConfigError(f"model.{key} must be one of {', '.join(STAGE_KINDS)}, "
                                  f"got {getattr(self, key)!r}")
        if self.input_mode not in INPUT_MODES:
            raise ConfigError(f"model.input_mode must be one of {', '.join(INPUT_MODES)}, "
                              f"got {self.input_mode!r}")
        if self.max_disp < 3:
            raise ConfigError(f"model.max_disp must be >= 3 (the cost volume has max_disp // 3 levels), "
                              f"got {self.max_disp}")
        for key in ("fea_filter_multiplier", "mat_filter_multiplier", "num_bins", "polarity_channels", "time_steps"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.block_multiplier != STEPS:
            raise ConfigError(f"model.block_multiplier must be {STEPS} "
                              f"(cells concatenate their {STEPS} nodes)")
        if self.readout not in ("mean", "sum", "last"):
            raise ConfigError(f"model.readout must be mean, sum or last, got {self.readout!r}")
        spiking = "spiking" in (self.feature, self.matching)
        if spiking and self.learn_tau and self.input_mode == "channels" and int(self.time_steps) < 2:
            raise ConfigError("model.learn_tau=true needs model.time_steps >= 2: at one time step the leak "
                              "never acts, so it gets no gradient")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> "StereoModelConfig":
        """The packaged defaults updated by ``cfg``'s known keys (others are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        merged = {k: v for k, v in model_defaults().items() if k in names}
        merged.update({k: v for k, v in dict(cfg).items() if k in names})
        return cls(**merged)

    @property
    def neuron_spec(self) -> NeuronSpec:
        return NeuronSpec(kind=self.neuron, dgs=bool(self.dgs), learn_tau=bool(self.learn_tau), tau=self.tau)


class SpikeDHSStereo(nn.Module):
    """SpikeDHS stereo (hybrid SNN-ANN per stage). ``forward(left, right) -> disparity [N, H, W]``.

    Spiking state is reset at the start of every forward (each stereo window is an independent
    sample, as SpikeDHS resets at ``is_first``): the one place for every forward path, so callers
    (``StereoTask``, the trainer, streaming) need not reset.
    """

    def __init__(self, **kwargs):
        super().__init__()
        cfg = StereoModelConfig.from_mapping(kwargs)
        self.cfg = cfg
        self.genotype: Genotype = resolve_genotype(cfg.genotype)
        self.max_disp = int(cfg.max_disp)
        self.num_disp = self.max_disp // 3
        neuron = cfg.neuron_spec
        self.fea_spec = StageSpec(2, cfg.feature == "spiking", neuron)
        self.mat_spec = StageSpec(3, cfg.matching == "spiking", neuron)
        per_step = cfg.input_mode == "channels" or not self.fea_spec.spiking
        in_ch = cfg.polarity_channels * (cfg.num_bins if per_step else 1)
        self.in_channels = in_ch
        self.feature = FeatureNet(self.fea_spec, in_ch, self.make_cells("feature"), cfg.fea_filter_multiplier)
        self.matching = MatchingNet(self.mat_spec, 2 * self.feature.out_channels, self.make_cells("matching"),
                                    cfg.mat_filter_multiplier)
        self.readout = MultiStepToANN(reduce=cfg.readout)

    def make_cells(self, stage: str) -> nn.Module:
        """The cell part of ``stage`` ("feature"/"matching"): the genotype's fixed path here; the
        search supernet overrides this with all layers x levels."""
        spec = self.fea_spec if stage == "feature" else self.mat_spec
        fm = self.cfg.fea_filter_multiplier if stage == "feature" else self.cfg.mat_filter_multiplier
        return CellStack(spec, getattr(self.genotype, stage), fm, self.cfg.block_multiplier)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "SpikeDHSStereo":
        """Build from a config section (``cfg.model``); keys not in :class:`StereoModelConfig` are ignored."""
        names = {f.name for f in dataclasses.fields(StereoModelConfig)}
        return cls(**{k: v for k, v in dict(cfg).items() if k in names})

    @property
    def time_steps(self) -> int:
        if self.cfg.input_mode == "steps" and self.fea_spec.spiking:
            return self.cfg.num_bins
        return self.cfg.time_steps

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, B, H, W]`` / ``[N, B, P, H, W]`` -> the feature net's input: ``[N, B*P, H, W]``
        (ANN / channels mode), ``[T, N, B*P, H, W]`` repeated (spiking, channels mode) or
        ``[B, N, P, H, W]`` (spiking, steps mode)."""
        cfg = self.cfg
        if x.dim() == 4:
            x = x.unsqueeze(2)
        if x.dim() != 5 or x.shape[1] != cfg.num_bins or x.shape[2] != cfg.polarity_channels:
            raise InvalidValueError(f"stereo model expects input [N, {cfg.num_bins}, "
                                    f"{cfg.polarity_channels}, H, W] "
                            f"(or [N, {cfg.num_bins}, H, W] for 1 channel), got {list(x.shape)}; "
                            "set model.num_bins / model.polarity_channels to match the representation")
        if not self.fea_spec.spiking:
            return x.flatten(1, 2)
        if cfg.input_mode == "steps":
            return x.transpose(0, 1).contiguous()
        return x.flatten(1, 2).unsqueeze(0).expand(cfg.time_steps, *([-1] * 4)).contiguous()

    def features(self, left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shared-weight features of both views (one batched pass)."""
        n, axis = left.shape[0], self.fea_spec.batch_axis
        f = self.feature(torch.cat([self.prepare_input(left), self.prepare_input(right)], dim=axis))
        return f.narrow(axis, 0, n), f.narrow(axis, n, n)

    def cost_volume(self, fl: torch.Tensor, fr: torch.Tensor) -> torch.Tensor:
        """Features -> cost volume in the matching stage's layout (handles the SNN/ANN boundary)."""
        if self.fea_spec.spiking and not self.mat_spec.spiking:
            fl, fr = self.readout(fl), self.readout(fr)
        cost = build_cost_volume(fl, fr, self.num_disp)
        if self.mat_spec.spiking and not self.fea_spec.spiking:
            cost = cost.unsqueeze(0).expand(self.time_steps, *([-1] * cost.dim())).contiguous()
        return cost

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        if self.fea_spec.spiking or self.mat_spec.spiking:
            from spikingjelly.activation_based import functional
            functional.reset_net(self)
        fl, fr = self.features(left, right)
        out = self.matching(self.cost_volume(fl, fr))
        if self.mat_spec.spiking:
            out = self.readout(out)
        return regress_disparity(out, self.max_disp, tuple(left.shape[-2:]))


def build_stereo_model(**kwargs) -> SpikeDHSStereo:
    """``SpikeDHSStereo(**kwargs)``; see :class:`StereoModelConfig` for the keys."""
    return SpikeDHSStereo(**kwargs)


#: published SpikeDHS retrain size (``stereo/full``: filter multiplier 8, max disparity 63, all spiking)
FULL_CONFIG: dict[str, Any] = model_defaults("stereo/full")
#: the CPU hybrid of the bundled checkpoint (``stereo/small``): spiking feature net (multiplier 4, T = 2,
#: learnable leak) + ANN matching net (multiplier 2), max disparity 63
SMALL_CONFIG: dict[str, Any] = model_defaults("stereo/small")
