"""SGBM + learned refinement: the classical matcher's answer, checked and corrected by a small 2D network.

    model = SGBMRefineStereo(max_disp=63)
    disparity = model(left, guide)                # [N, H, W] px

Inputs (made by :class:`eventvision.data.stereo.common.SGBMRefineEncoder` from a window's events):

* ``left``: uint8 or float ``[N, 3, H, W]``, the left camera's rectified three-channel time surface
  (OFF, ON, both; :func:`eventvision.matching.sgbm.event_image`), 0..255;
* ``guide``: float32 ``[N, 2 + K, H, W]``: channel 0 SGBM's disparity (px) with its holes filled,
  channel 1 = 1 where SGBM answered (0 where filled), then the matching cost ``|left - right(x - d0 - k)|``
  (mean over the 3 channels, images scaled to 0..1, right view sampled linearly, 0 outside) for each of
  the K integer offsets ``k`` (both from :mod:`eventvision.matching.refine_inputs`). The cost needs no
  gradient (it depends on inputs only), so it is computed with the inputs, off the network's thread.
* ``right`` (only with the matching branch, ``model.refine.correlation > 0``, or the second pass): the right
  camera's time surface, like ``left``.

The network sees the left image, the local matching-cost profile around the initial disparity, the
initial disparity and the answered mask; a 3-level encoder-decoder (1/2, 1/4, 1/8 resolution, dilated residual
blocks at 1/8 for context) predicts a correction ``delta`` at full resolution: ``d = d0 + delta``,
clamped to ``[0, max_disp - 1]``; with ``second_pass`` the matching cost is re-measured around that answer and
a second head adds its correction. The last convs are zero-initialised, so an untrained model returns the
filled SGBM map. This is the detect-replace-refine idea (Gidaris & Komodakis, CVPR 2017) on SGBM
(Hirschmüller 2008); it is not part of SpikeDHS (docs/stereo_model.md): the SpikeDHS network stays the
``model.arch: spikedhs`` variant.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eventvision.errors import ConfigError, InvalidValueError


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3x3 conv -> BN -> LeakyReLU(0.1)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.LeakyReLU(0.1, inplace=True))


def _residual_body(channels: int, dilation: int) -> nn.Sequential:
    """Dilated 3x3 conv-BN-LeakyReLU, dilated 3x3 conv-BN (the branch of a residual block)."""
    return nn.Sequential(_conv(channels, channels, dilation=dilation),
                         nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(channels))


class _ResBlock(nn.Module):
    """Two dilated 3x3 conv-BN layers plus the identity."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.body = _residual_body(channels, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.body(x), 0.1)


class _IdentityStartBlock(nn.Module):
    """``x + body(x)`` (:func:`_residual_body`) with the last BN's scale starting at zero: the identity until trained
    (no activation after the sum, unlike :class:`_ResBlock`)."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.body = _residual_body(channels, dilation)
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@dataclasses.dataclass(frozen=True)
class RefineConfig:
    """Keys of :class:`SGBMRefineStereo` (``model.refine`` in the stereo configs)."""

    max_disp: int = 63
    channels: tuple[int, int, int] = (16, 24, 32)
    offsets: tuple[int, ...] = (-4, -2, -1, 0, 1, 2, 4)
    dilations: tuple[int, ...] = (1, 2, 4)
    head_channels: int = 8
    encoder: str = "ann"
    time_steps: int = 2
    neuron: str = "spikedhs"
    learn_tau: bool = True
    #: full-range matching branch (0 = off): learned features of both views at 1/4 resolution, correlated at
    #: ``correlation`` disparities in 4-px steps (16 covers 0..60 px), added to the 1/4-level encoder features
    correlation: int = 0
    correlation_channels: int = 16
    #: dilations of residual context blocks in the matching branch's feature net at 1/4 resolution (empty = none):
    #: a wider view per feature, so a pixel in a repetitive or sparse event texture is told from its neighbours
    #: (each block starts as the identity, so a checkpoint without them fine-tunes from its own answers)
    correlation_context: tuple[int, ...] = ()
    #: second pass: the matching cost re-measured around the first answer ``d1`` (same offsets, on the time
    #: surfaces, :func:`eventvision.matching.refine_inputs.cost_profile_torch`) and a second zero-started head
    #: adds its correction; needs the right time surface like the matching branch
    second_pass: bool = False

    def __post_init__(self):
        if self.encoder not in ("ann", "spiking"):
            raise ConfigError(f"model.refine.encoder must be ann or spiking, got {self.encoder!r}")
        if self.encoder == "spiking" and self.time_steps < (2 if self.learn_tau else 1):
            raise ConfigError("model.refine.time_steps must be >= 2 with learn_tau (the leak acts from step 2 on)")
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise ConfigError(f"model.refine.channels must be three positive widths, got {list(self.channels)}")
        if not self.offsets:
            raise ConfigError("model.refine.offsets must list at least one disparity offset (px)")
        if any(float(k) != int(k) for k in self.offsets):
            raise ConfigError(f"model.refine.offsets must be whole pixels, got {list(self.offsets)}")
        if self.max_disp < 2:
            raise ConfigError(f"model.max_disp must be >= 2, got {self.max_disp}")
        if self.correlation < 0 or self.correlation_channels < 1:
            raise ConfigError(f"model.refine.correlation must be >= 0 (0 = off) and correlation_channels >= 1, "
                              f"got {self.correlation} / {self.correlation_channels}")
        if any(int(d) < 1 for d in self.correlation_context):
            raise ConfigError(f"model.refine.correlation_context must list dilations >= 1, got "
                              f"{list(self.correlation_context)}")
        if self.correlation_context and not self.correlation:
            raise ConfigError("model.refine.correlation_context needs the matching branch "
                              "(model.refine.correlation > 0)")
        if self.correlation and self.encoder != "ann":
            raise ConfigError("model.refine.correlation is implemented for the ANN encoder only")

    @classmethod
    def from_options(cls, **options) -> "RefineConfig":
        """From ``model.refine`` keys (plus ``max_disp``) as a config gives them: lists become tuples, unknown
        keys are refused with the known ones named."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ConfigError(f"model.refine: unknown option(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(names))}")
        return cls(**{k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in options.items()})

    @property
    def needs_right(self) -> bool:
        """Whether the network reads the right camera's time surface (matching branch or second pass)."""
        return bool(self.correlation) or bool(self.second_pass)


#: disparity between neighbouring levels of the matching branch, px: its features are at 1/4 resolution
MATCHING_STEP_PX = 4.0


class SGBMRefineStereo(nn.Module):
    """``forward(left, guide) -> disparity [N, H, W]`` px (see the module docstring for the inputs)."""

    def __init__(self, **kwargs):
        super().__init__()
        self.cfg = cfg = RefineConfig.from_options(**kwargs)
        self.max_disp = int(cfg.max_disp)
        self.offsets = tuple(int(k) for k in cfg.offsets)
        c1, c2, c3 = cfg.channels
        cin = 3 + len(cfg.offsets) + 2
        self.in_channels = cin
        if cfg.encoder == "spiking":
            # hybrid: SpikeDHS-neuron encoder on the inputs repeated over T steps, read out by the mean over T
            from eventvision.models.stereo.layers import ConvBN, NeuronSpec, StageSpec
            from eventvision.spiking.adapters import MultiStepToANN

            spec = StageSpec(2, True, NeuronSpec(kind=cfg.neuron, learn_tau=cfg.learn_tau))
            self.enc1 = ConvBN(spec, cin, c1, 3, stride=2)
            self.enc2 = nn.Sequential(ConvBN(spec, c1, c2, 3, stride=2), ConvBN(spec, c2, c2, 3))
            self.enc3 = nn.Sequential(ConvBN(spec, c2, c3, 3, stride=2),
                                      *[ConvBN(spec, c3, c3, 3) for _ in cfg.dilations])
            self.readout = MultiStepToANN(reduce="mean")
        else:
            self.enc1 = _conv(cin, c1, stride=2)
            self.enc2 = nn.Sequential(_conv(c1, c2, stride=2), _conv(c2, c2))
            self.enc3 = nn.Sequential(_conv(c2, c3, stride=2), *[_ResBlock(c3, d) for d in cfg.dilations])
        self.dec2 = _conv(c3 + c2, c2)
        self.dec1 = _conv(c2 + c1, c1)
        # full resolution is the expensive part. The head is a 1x1 conv of [upsampled features, inputs]; being
        # linear per pixel, its feature half is applied at 1/2 resolution before the (linear) upsampling
        self.head_features, self.head_inputs, self.head = _correction_head(c1, cin, cfg.head_channels)
        #: full-resolution work as numba kernels in CPU inference (:meth:`for_cpu_inference` turns it on)
        self.fused_cpu_inference = False
        if cfg.second_pass:
            # the first head's form on [left, cost around d1, d1, answered]; zero-started like it, so a model
            # fine-tuned with the second pass (train.init_weights) starts from the answers of the one without
            self.head2_features, self.head2_inputs, self.head2 = _correction_head(c1, cin, cfg.head_channels)
        if cfg.correlation:
            cc = cfg.correlation_channels
            # shared by both views; strides as enc1/enc2, so its maps have the 1/4-level size
            self.match_features = nn.Sequential(_conv(3, cc // 2, stride=2), _conv(cc // 2, cc, stride=2),
                                                _conv(cc, cc), nn.Conv2d(cc, cc, 3, padding=1))
            # optional context blocks between the last two layers (a separate module: the keys of checkpoints
            # without them stay valid)
            self.match_context = nn.Sequential(*[_IdentityStartBlock(cc, int(d)) for d in cfg.correlation_context])
            self.match_temperature = nn.Parameter(torch.ones(()))
            # correlation (D) + soft-argmax disparity, its difference to SGBM's, peak probability -> e2's width;
            # the last conv is zero-initialised: a model fine-tuned with the branch starts as the one without
            self.match_proj = nn.Sequential(_conv(cfg.correlation + 3, c2), nn.Conv2d(c2, c2, 1))
            nn.init.zeros_(self.match_proj[-1].weight)
            nn.init.zeros_(self.match_proj[-1].bias)

    def for_cpu_inference(self) -> "SGBMRefineStereo":
        """Prepare for inference on a CPU (``LearnedStereo`` calls it; measured with one thread at 346x260,
        ``benchmarks/bench_refine.py``): weights in channels-last memory (~1.4x faster than NCHW; outputs agree to
        3e-4 px), except the 1x1 convs that read the full-resolution inputs, which arrive in NCHW (with
        channels-last weights each first copied its input: 1.04x); and, whenever the model is in eval mode on the
        CPU without gradient, the full-resolution work runs as numba kernels (:mod:`eventvision.models.stereo.
        _kernels`): the input stacks written once in channels-last order, each correction head one pass over the
        image. Returns ``self``."""
        self.to(memory_format=torch.channels_last)
        for conv in (self.head_inputs, getattr(self, "head2_inputs", None)):
            if conv is not None:
                conv.to(memory_format=torch.contiguous_format)
        self.fused_cpu_inference = True
        return self

    @classmethod
    def from_config(cls, model_cfg: Mapping[str, Any]) -> "SGBMRefineStereo":
        """From a stereo ``model:`` section: ``max_disp`` plus the ``refine:`` sub-mapping."""
        refine = dict(model_cfg.get("refine") or {})
        return cls(max_disp=int(model_cfg.get("max_disp", 63)), **refine)

    def encode(self, x0: torch.Tensor, matching: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x0`` ``[N, C, H, W]`` -> features at 1/2, 1/4, 1/8 resolution (ANN tensors; a spiking encoder
        runs ``time_steps`` steps from a reset state and each level is read out as its mean spike rate).
        ``matching``: None, or the matching branch's term added at the 1/4 level (ANN encoder only)."""
        if self.cfg.encoder == "ann":
            e1 = self.enc1(x0)
            e2 = self.enc2(e1)
            if matching is not None:
                e2 = e2 + matching
            return e1, e2, self.enc3(e2)
        from spikingjelly.activation_based import functional
        functional.reset_net(self)
        s1 = self.enc1(x0.unsqueeze(0).expand(self.cfg.time_steps, *x0.shape).contiguous())
        s2 = self.enc2(s1)
        return self.readout(s1), self.readout(s2), self.readout(self.enc3(s2))

    def match(self, pair: torch.Tensor, d0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Full-range matching at 1/4 resolution: ``pair`` float ``[2N, 3, H, W]`` (0..1; the N left views, then
        the N right ones), ``d0`` ``[N, 1, H, W]`` px -> (``[N, c2, ceil(H/4), ceil(W/4)]``
        added to the encoder's 1/4-level features, matching logits ``[N, correlation, ceil(H/4), ceil(W/4)]``,
        level d = 4d px)."""
        n = d0.shape[0]
        feats = self.match_features[:-1](pair)
        feats = self.match_features[-1](self.match_context(feats))
        fl, fr = feats[:n], feats[n:]
        levels = self.cfg.correlation
        corr = correlate_rows(fl, fr, levels)          # level d = 4d px at full resolution
        prob = torch.softmax(corr * self.match_temperature, dim=1)
        grid = torch.arange(levels, dtype=corr.dtype, device=corr.device).view(1, -1, 1, 1) * MATCHING_STEP_PX
        coarse = (prob * grid).sum(1, keepdim=True)
        d0_low = F.adaptive_avg_pool2d(d0, corr.shape[-2:])
        cues = torch.cat([corr, coarse / self.max_disp, (coarse - d0_low) / self.max_disp,
                          prob.amax(1, keepdim=True)], dim=1)
        return self.match_proj(cues), corr * self.match_temperature

    def forward(self, left: torch.Tensor, guide: torch.Tensor, right: torch.Tensor | None = None, *,
                with_matching: bool = False):
        """-> disparity ``[N, H, W]`` px; with ``with_matching`` (training the matching branch) also its
        logits ``[N, correlation, ceil(H/4), ceil(W/4)]`` (:func:`eventvision.models.stereo.loss.matching_loss`)."""
        k = len(self.cfg.offsets)
        if guide.dim() != 4 or guide.shape[1] != 2 + k or left.dim() != 4 or left.shape[1] != 3 \
                or left.shape[-2:] != guide.shape[-2:]:
            raise InvalidValueError(
                f"SGBM refinement expects left [N, 3, H, W] and guide [N, {2 + k}, H, W] (filled SGBM disparity, "
                f"answered mask, {k} matching costs), got {list(left.shape)} and {list(guide.shape)}")
        if self.cfg.needs_right and (right is None or right.shape != left.shape):
            raise InvalidValueError(f"SGBM refinement with model.refine.correlation or second_pass needs the right "
                                    f"time surface [N, 3, H, W] like left {list(left.shape)}, got "
                                    f"{None if right is None else list(right.shape)}")
        left01, guide = left.float() / 255.0, guide.float()
        d0 = guide[:, :1]
        x0 = self._inputs(left, left01, guide[:, 2:], d0, guide[:, 1:2])
        # the matching branch reads both views stacked (a numba kernel writing them channels-last was no faster)
        matched = self.match(torch.cat([left01, right.float() / 255.0]), d0) if self.cfg.correlation else None
        e1, e2, e3 = self.encode(x0, None if matched is None else matched[0])
        u2 = self.dec2(torch.cat([_up(e3, e2), e2], dim=1))
        u1 = self.dec1(torch.cat([_up(u2, e1), e1], dim=1))
        disparity = self._correct((self.head_features, self.head_inputs, self.head), u1, x0, d0)
        if self.cfg.second_pass:
            disparity = self.second_pass((left, right), left01, guide[:, 1:2], disparity, u1)
        disparity = disparity[:, 0]
        if with_matching:
            if matched is None:
                raise ConfigError("with_matching needs the matching branch (model.refine.correlation > 0)")
            return disparity, matched[1]
        return disparity

    def second_pass(self, images: tuple[torch.Tensor, torch.Tensor], left01: torch.Tensor, answered: torch.Tensor,
                    d1: torch.Tensor, u1: torch.Tensor) -> torch.Tensor:
        """``d1`` ``[N, 1, H, W]`` px (the first answer) -> ``d1`` + a correction from the matching cost around
        ``d1`` on ``images`` (left, right time surfaces ``[N, 3, H, W]``, 0..255); ``left01`` the left one scaled
        to 0..1, ``answered`` SGBM's mask, ``u1`` the decoder's 1/2-level features. The cost sees no gradient
        through ``d1``, as the first pass's cost sees none through SGBM's map."""
        from eventvision.matching.refine_inputs import cost_profile_torch

        d1_in = d1.detach()
        cost = cost_profile_torch(images[0].to(torch.uint8), images[1].to(torch.uint8), d1_in, self.offsets)
        x1 = self._inputs(images[0], left01, cost.to(d1.device), d1_in, answered)
        return self._correct((self.head2_features, self.head2_inputs, self.head2), u1, x1, d1)

    def _fused(self, x: torch.Tensor) -> bool:
        """Whether the numba kernels run: :meth:`for_cpu_inference` was called, eval mode, CPU, no gradient."""
        return self.fused_cpu_inference and not self.training and not torch.is_grad_enabled() \
            and x.device.type == "cpu"

    def _inputs(self, image: torch.Tensor, image01: torch.Tensor, costs: torch.Tensor, disparity: torch.Tensor,
                answered: torch.Tensor) -> torch.Tensor:
        """The full-resolution inputs of the encoder and the heads, ``[N, 3 + K + 2, H, W]`` = ``[image01, costs,
        disparity / max_disp, answered]``: ``image`` the left time surface as given (0..255), ``image01`` the same
        scaled to 0..1, ``disparity`` and ``answered`` ``[N, 1, H, W]``. In CPU inference with a uint8 image a
        numba kernel writes the stack once, in the channels-last order the first conv reads (same values)."""
        if not (self._fused(costs) and image.dtype == torch.uint8):
            return torch.cat([image01, costs, disparity / self.max_disp, answered], dim=1)
        from eventvision.models.stereo._kernels import pack_inputs_kernel

        n, k, h, w = costs.shape
        out = np.empty((n, h, w, image.shape[1] + k + 2), dtype=np.float32)
        for i in range(n):
            pack_inputs_kernel(image[i].numpy(), costs[i].float().contiguous().numpy(),
                               disparity[i, 0].float().contiguous().numpy(),
                               answered[i, 0].float().contiguous().numpy(), self.max_disp, out[i])
        return torch.from_numpy(out).permute(0, 3, 1, 2)    # [N, C, H, W] with channels-last strides

    def _correct(self, head: tuple[nn.Conv2d, nn.Conv2d, nn.Sequential], u1: torch.Tensor, x: torch.Tensor,
                 base: torch.Tensor) -> torch.Tensor:
        """``base`` ``[N, 1, H, W]`` px + the correction of ``head`` (see :func:`_correction_head`) from the
        1/2-level features ``u1`` and the full-resolution inputs ``x`` ``[N, C, H, W]``, clamped to the range."""
        features, inputs, layers = head
        if self._fused(x):
            return _fused_correction(features, inputs, layers, u1, x, base, float(self.max_disp - 1))
        delta = layers(_up(features(u1), x) + inputs(x))
        return (base + delta).clamp(0.0, float(self.max_disp - 1))


def _correction_head(feature_channels: int, input_channels: int, width: int
                     ) -> tuple[nn.Conv2d, nn.Conv2d, nn.Sequential]:
    """(1x1 conv of the 1/2-level features, 1x1 conv of the full-resolution inputs, BN-LeakyReLU-3x3 conv to one
    channel): ``head(up(features(u1)) + inputs(x))`` is a disparity correction [N, 1, H, W] px. The last conv
    starts at zero, so a new head adds nothing until trained."""
    head = nn.Sequential(nn.BatchNorm2d(width), nn.LeakyReLU(0.1, inplace=True), nn.Conv2d(width, 1, 3, padding=1))
    nn.init.zeros_(head[-1].weight)
    nn.init.zeros_(head[-1].bias)
    return (nn.Conv2d(feature_channels, width, 1, bias=False), nn.Conv2d(input_channels, width, 1, bias=False),
            head)


def _fused_correction(features: nn.Conv2d, inputs: nn.Conv2d, layers: nn.Sequential, u1: torch.Tensor,
                      x: torch.Tensor, base: torch.Tensor, high: float) -> torch.Tensor:
    """``SGBMRefineStereo._correct`` in eval mode on a CPU without gradient (``x`` best channels-last, as
    ``SGBMRefineStereo._inputs`` writes it there): the 1x1 conv of ``u1`` stays a torch conv at 1/2 resolution;
    BatchNorm's running statistics are folded into both 1x1 convs, and the rest (bilinear upsampling, sum,
    LeakyReLU, 3x3 conv, adding to ``base``, clamping) is one numba pass per sample."""
    from eventvision.models.stereo._kernels import correction_head_kernel

    bn, act, last = layers
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    g = F.conv2d(u1, features.weight * scale.view(-1, 1, 1, 1)).float()
    w_in = (inputs.weight[:, :, 0, 0] * scale[:, None]).float().contiguous().numpy()
    w3 = last.weight[0].float().contiguous().numpy()
    b3, slope, low, high = (np.float32(v) for v in (last.bias[0].item(), act.negative_slope, 0.0, high))
    x, base = x.float(), base.float()
    return torch.from_numpy(np.stack([
        correction_head_kernel(g[i].contiguous().numpy(), x[i].permute(1, 2, 0).contiguous().numpy(), w_in,
                               shift.float().numpy(), slope, w3, b3, base[i, 0].contiguous().numpy(), low, high)
        for i in range(x.shape[0])]))[:, None]


def correlate_rows(left: torch.Tensor, right: torch.Tensor, levels: int) -> torch.Tensor:
    """Correlation of rectified feature maps along rows: ``left``, ``right`` ``[N, C, H, W]`` -> ``[N, levels,
    H, W]`` with ``out[:, d, y, x] = mean_c left[:, c, y, x] * right[:, c, y, x - d]`` (0 where ``x < d``)."""
    n, _, h, w = left.shape
    out = left.new_zeros((n, levels, h, w))
    for d in range(min(levels, w)):
        out[:, d, :, d:] = (left[..., d:] * right[..., :w - d]).mean(1)
    return out


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to ``like``'s height and width."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)
