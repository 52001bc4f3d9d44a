"""SVFormer: a directly trained spiking video transformer (Yu et al. 2024), as released.

Every video frame is one SNN time step. Input ``video`` float32 [N, T, C, H, W] (C = 3 for RGB,
2 for event frames); internally multi-step tensors [T, N, C, H, W]; output logits [N, classes].

Structure of the released model (yult0821/SVFormer ``slowfast/models/uniformer2d_psnn_try.py``,
class ``Uniformer2d_psnn_try``, built by ``exp/svformer_ucf101_scratch/config.yaml``); every
normalisation is a batch norm per time step (:class:`~eventvision.spiking.adapters.StepBatchNorm`,
the release's ``BatchNorm*_eT``, ``T*C`` features); every neuron is a PLIF (ATan surrogate,
detach_reset); every conv and linear layer has a bias; there is no position encoding.

* patch embedding 1: conv 6x6 stride 4 pad 1 -> BN (direct input, no neuron) -- ``SpeicalPatchEmbed``;
  patch embeddings 2-4: PLIF -> conv 4x4 stride 2 pad 1 -> BN -- ``PatchEmbed``
  (224 -> 56 -> 28 -> 14 -> 7);
* stages 1-2, local block (``CBlock``): ``x + BN(PW(DW5x5(PW(PLIF(x)))))``, then
  ``x + BN(PW(PLIF(BN(PW(PLIF(x))))))`` (conv MLP, hidden = ``mlp_ratio * dim``);
* stages 3-4, global block (``SABlock``/``Attention``): ``s = PLIF(x)``,
  ``Q, K, V = PLIF(BN(Linear_qkv(s)))`` split into heads of width ``head_dim``,
  ``out = Q (K^T V) head_dim^-1/2`` (no softmax), then ``BN(Linear(PLIF(out)))``; then the MLP
  ``BN(Linear(PLIF(BN(Linear(PLIF(x))))))``; both residual;
* local-global fusion: a side path from the *input* of stage 3,
  ``BN(PW(DW3x3/2(PLIF(x))))`` to the stage-4 width, concatenated with the stage-4 output;
* head: PLIF -> Conv3d over (T, h, w) grouped by ``dims[3]`` (two channels per group) with bias ->
  BatchNorm3d -> Linear.
* initialisation: Linear weights truncated normal with std 0.02 and zero biases (``_init_weights``),
  convolutions PyTorch's default;
* stochastic depth (``drop_path``, linearly increasing over the blocks, 0.2 in the release) drops a
  residual branch per *time step*: the release applies timm's ``DropPath`` to ``[T, N, ...]``
  tensors, whose first axis is time.

Full size (``dims=(128, 256, 384, 512)``, ``depths=(1, 1, 3, 1)``, ``head_dim=64``,
``mlp_ratio=2``, T = 16, 224^2, 101 classes): 13,801,612 parameters, every name and shape
matching the release (:func:`load_released_state_dict` loads its checkpoints).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from eventvision.errors import CheckpointError, ConfigError
from eventvision.spiking.adapters import SeqToANN, StepBatchNorm
from eventvision.spiking.blocks import SSAProduct
from eventvision.spiking.neurons import make_neuron


class DropPath(nn.Module):
    """Stochastic depth on ``[T, N, ...]``: zero the branch for a random subset of time steps
    (rate ``p``) and scale the rest by ``1/(1-p)``; identity in eval mode or at ``p = 0``."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class PatchEmbed(nn.Module):
    """[PLIF ->] Conv(k, stride, pad 1) -> per-step BN on [T, N, C, H, W]."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, steps: int, spiking_input: bool,
                 neuron: dict):
        super().__init__()
        self.sn = make_neuron(**neuron) if spiking_input else nn.Identity()
        self.conv = SeqToANN(nn.Conv2d(cin, cout, kernel, stride, 1))
        self.bn = StepBatchNorm(cout, steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.sn(x)))


class ConvMLP(nn.Module):
    """``BN(PW(PLIF(BN(PW(PLIF(x))))))`` on [T, N, C, H, W] (the release's ``CMlp``)."""

    def __init__(self, dim: int, hidden: int, steps: int, neuron: dict):
        super().__init__()
        self.sn1, self.fc1, self.bn1 = make_neuron(**neuron), SeqToANN(nn.Conv2d(dim, hidden, 1)), \
            StepBatchNorm(hidden, steps)
        self.sn2, self.fc2, self.bn2 = make_neuron(**neuron), SeqToANN(nn.Conv2d(hidden, dim, 1)), \
            StepBatchNorm(dim, steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.fc2(self.sn2(self.bn1(self.fc1(self.sn1(x))))))


class TokenMLP(nn.Module):
    """``BN(Linear(PLIF(BN(Linear(PLIF(x))))))`` on tokens [T, N, L, C] (the release's ``Mlp``)."""

    def __init__(self, dim: int, hidden: int, steps: int, neuron: dict):
        super().__init__()
        self.sn1, self.fc1 = make_neuron(**neuron), nn.Linear(dim, hidden)
        self.bn1 = StepBatchNorm(hidden, steps, channels_last=True)
        self.sn2, self.fc2 = make_neuron(**neuron), nn.Linear(hidden, dim)
        self.bn2 = StepBatchNorm(dim, steps, channels_last=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.fc2(self.sn2(self.bn1(self.fc1(self.sn1(x))))))


class LocalBlock(nn.Module):
    """Local conv block on [T, N, C, H, W] (the release's ``CBlock``)."""

    def __init__(self, dim: int, mlp_ratio: float, steps: int, neuron: dict, drop_path: float = 0.0):
        super().__init__()
        self.sn = make_neuron(**neuron)
        self.conv1 = SeqToANN(nn.Conv2d(dim, dim, 1))
        self.dw = SeqToANN(nn.Conv2d(dim, dim, 5, padding=2, groups=dim))
        self.conv2 = SeqToANN(nn.Conv2d(dim, dim, 1))
        self.bn = StepBatchNorm(dim, steps)
        self.mlp = ConvMLP(dim, int(dim * mlp_ratio), steps, neuron)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.bn(self.drop_path(self.conv2(self.dw(self.conv1(self.sn(x))))))
        return x + self.drop_path(self.mlp(x))


class SpikingSelfAttention(nn.Module):
    """SVFormer attention on tokens [T, N, L, C] (the release's ``Attention``):
    ``Q, K, V = PLIF(BN(Linear_qkv(PLIF(x))))``, ``out = BN(Linear(PLIF(Q (K^T V) d^-1/2)))``."""

    def __init__(self, dim: int, num_heads: int, steps: int, neuron: dict):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"model.dims: width {dim} is not divisible into {num_heads} heads; "
                              "choose dims that are multiples of model.head_dim")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.in_sn = make_neuron(**neuron)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.qkv_bn = StepBatchNorm(3 * dim, steps, channels_last=True)
        self.q_sn, self.k_sn, self.v_sn = (make_neuron(**neuron) for _ in range(3))
        self.product = SSAProduct(scale=self.head_dim ** -0.5)  # counted by the energy profiler
        self.proj_sn = make_neuron(**neuron)
        self.proj = nn.Linear(dim, dim)
        self.proj_bn = StepBatchNorm(dim, steps, channels_last=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, n, l, c = x.shape
        qkv = self.qkv_bn(self.qkv(self.in_sn(x)))  # [T, N, L, 3C]
        qkv = qkv.reshape(t, n, l, 3, self.num_heads, self.head_dim).permute(3, 0, 1, 4, 2, 5)
        q, k, v = self.q_sn(qkv[0]), self.k_sn(qkv[1]), self.v_sn(qkv[2])  # [T, N, h, L, d]
        out = self.product(q, k, v).transpose(2, 3).reshape(t, n, l, c)
        return self.proj_bn(self.proj(self.proj_sn(out)))


class GlobalBlock(nn.Module):
    """Spiking self-attention block on [T, N, C, H, W] (tokens = H*W; the release's ``SABlock``)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, steps: int, neuron: dict,
                 drop_path: float = 0.0):
        super().__init__()
        self.attn = SpikingSelfAttention(dim, num_heads, steps, neuron)
        self.mlp = TokenMLP(dim, int(dim * mlp_ratio), steps, neuron)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, n, c, h, w = x.shape
        tokens = x.flatten(3).transpose(2, 3)  # [T, N, L, C]
        tokens = tokens + self.drop_path(self.attn(tokens))
        tokens = tokens + self.drop_path(self.mlp(tokens))
        return tokens.transpose(2, 3).reshape(t, n, c, h, w)


class SVFormer(nn.Module):
    """The released SVFormer, scaled by ``dims``/``depths``/``head_dim``/``mlp_ratio`` (module doc).

    ``heads per global stage = max(1, dim // head_dim)`` (the release: ``dim // head_dim``; the
    floor of one head lets small widths work). ``neuron``: an ``eventvision.spiking.neurons`` kind,
    ``detach_reset`` as in the release (True). ``dropout`` before the classifier (0 in the release).
    """

    def __init__(self, *, num_classes: int = 101, in_channels: int = 3, num_frames: int = 16,
                 image_size: int = 224, dims: tuple[int, ...] = (128, 256, 384, 512),
                 depths: tuple[int, ...] = (1, 1, 3, 1), head_dim: int = 64, mlp_ratio: float = 2.0,
                 neuron: str = "plif", detach_reset: bool = True, drop_path: float = 0.0,
                 dropout: float = 0.0):
        super().__init__()
        if len(dims) != 4 or len(depths) != 4:
            raise ConfigError("model.dims and model.depths: SVFormer has 4 stages, give 4 entries each")
        if image_size % 32:
            raise ConfigError(f"data.image_size must be a multiple of 32, got {image_size}")
        self.num_frames, self.image_size = num_frames, image_size
        nk = {"kind": neuron, "detach_reset": detach_reset, "T": num_frames}
        T = num_frames
        self.embed = nn.ModuleList([PatchEmbed(in_channels, dims[0], 6, 4, T, False, nk)] +
                                   [PatchEmbed(dims[i - 1], dims[i], 4, 2, T, True, nk) for i in range(1, 4)])
        rates = torch.linspace(0, drop_path, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            r = rates[sum(depths[:i]):sum(depths[:i + 1])]
            heads = max(1, dim // head_dim)
            blocks = [LocalBlock(dim, mlp_ratio, T, nk, r[j]) if i < 2 else
                      GlobalBlock(dim, heads, mlp_ratio, T, nk, r[j]) for j in range(depth)]
            self.stages.append(nn.Sequential(*blocks))
        # local path: from the stage-3 input to the stage-4 grid and width
        self.side_sn = make_neuron(**nk)
        self.side_dw = SeqToANN(nn.Conv2d(dims[2], dims[2], 3, 2, 1, groups=dims[2]))
        self.side_pw = SeqToANN(nn.Conv2d(dims[2], dims[3], 1))
        self.side_bn = StepBatchNorm(dims[3], T)
        fused = 2 * dims[3]
        final = image_size // 32
        self.head_sn = make_neuron(**nk)
        self.head_conv = nn.Conv3d(fused, fused, (num_frames, final, final), groups=dims[3])
        self.head_bn = nn.BatchNorm3d(fused)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(fused, num_classes)
        self.apply(_init_linear)

    @classmethod
    def from_config(cls, model_cfg, *, num_classes: int, in_channels: int, num_frames: int, image_size: int):
        return cls(num_classes=num_classes, in_channels=in_channels, num_frames=num_frames,
                   image_size=image_size, dims=tuple(model_cfg.dims), depths=tuple(model_cfg.depths),
                   head_dim=int(model_cfg.head_dim),
                   mlp_ratio=float(model_cfg.mlp_ratio), neuron=model_cfg.neuron,
                   detach_reset=bool(model_cfg.get("detach_reset", True)),
                   drop_path=float(model_cfg.get("drop_path", 0.0)), dropout=float(model_cfg.dropout))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``video`` [N, T, C, H, W] -> logits [N, num_classes]."""
        x = video.transpose(0, 1)  # [T, N, C, H, W]
        if x.shape[0] != self.num_frames:
            raise ValueError(f"SVFormer built for {self.num_frames} frames, got {x.shape[0]}")
        side = None
        for i, (embed, stage) in enumerate(zip(self.embed, self.stages)):
            x = embed(x)
            if i == 2:
                side = self.side_bn(self.side_pw(self.side_dw(self.side_sn(x))))
            x = stage(x)
        x = torch.cat([side, x], dim=2)  # [T, N, 2*C4, h, w], local path first as released
        s = self.head_sn(x).permute(1, 2, 0, 3, 4)  # [N, C, T, h, w]
        z = self.head_bn(self.head_conv(s)).flatten(1)  # [N, C]
        return self.fc(self.dropout(z))


def _init_linear(m: nn.Module) -> None:
    """The release's ``_init_weights``: Linear weights truncated normal (std 0.02), biases 0;
    convolutions keep PyTorch's default initialisation."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# released name -> ours, applied in order to each key (yult0821/SVFormer uniformer2d_psnn_try.py names)
_RELEASED_RENAMES = (
    (r"^patch_embed(\d)\.", lambda m: f"embed.{int(m[1]) - 1}."),
    (r"^blocks(\d)\.", lambda m: f"stages.{int(m[1]) - 1}."),
    (r"\.in_lif\.w$", ".in_sn.time_constant.raw"),
    (r"^(embed\.\d+)\.in_sn\.", r"\1.sn."),
    (r"^(embed\.\d+)\.proj\.", r"\1.conv.module."),
    (r"^(embed\.\d+)\.norm\.", r"\1.bn."),
    (r"\.mlp\.act(\d)\.w$", r".mlp.sn\1.time_constant.raw"),
    (r"\.mlp\.norm(\d)\.", r".mlp.bn\1."),
    (r"\.act1\.w$", ".sn.time_constant.raw"),
    (r"\.attn\.([qkv]|proj)_lif\.w$", r".attn.\1_sn.time_constant.raw"),
    (r"\.attn\.norm1\.", ".attn.qkv_bn."),
    (r"\.attn\.norm2\.", ".attn.proj_bn."),
    (r"^(stages\.[01]\.\d+)\.attn\.", r"\1.dw.module."),
    (r"^(stages\.[01]\.\d+)\.conv(\d)\.", r"\1.conv\2.module."),
    (r"^(stages\.[01]\.\d+)\.norm2\.", r"\1.bn."),
    (r"^(stages\.[01]\.\d+\.mlp\.fc\d)\.", r"\1.module."),
    (r"^lplif\.w$", "side_sn.time_constant.raw"),
    (r"^lpDWConv\.", "side_dw.module."),
    (r"^lpPWConv\.", "side_pw.module."),
    (r"^lpBN\.", "side_bn."),
    (r"^lif_bf_head\.w$", "head_sn.time_constant.raw"),
    (r"^dwconv_bf_head\.", "head_conv."),
    (r"^dwconv_bn\.", "head_bn."),
    (r"^head\.", "fc."),
)


def released_key(name: str) -> str:
    """Our parameter/buffer name for a key of the released ``Uniformer2d_psnn_try`` state_dict."""
    for pattern, repl in _RELEASED_RENAMES:
        name = re.sub(pattern, repl, name)
    return name


def load_released_state_dict(model: SVFormer, state_dict: dict, *, source: str = "state_dict") -> list[str]:
    """Load weights saved by the released SVFormer code into ``model`` (built with the same sizes).

    ``state_dict``: the release's ``model.state_dict()`` or its slowfast checkpoint dict (weights
    under ``model_state``); a DataParallel ``module.`` prefix is dropped. Every released key must map
    to a parameter or buffer of ``model`` with the same shape and every one of ours must be
    covered, else :class:`CheckpointError` naming the keys. Returns our names in load order.
    """
    if "model_state" in state_dict and isinstance(state_dict["model_state"], dict):
        state_dict = state_dict["model_state"]
    ours = model.state_dict()
    mapped, unknown, wrong = {}, [], []
    for key, value in state_dict.items():
        name = released_key(key.removeprefix("module."))
        if name not in ours:
            unknown.append(key)
        elif tuple(ours[name].shape) != tuple(value.shape):
            wrong.append(f"{key} {tuple(value.shape)} vs {tuple(ours[name].shape)}")
        else:
            mapped[name] = value
    missing = sorted(set(ours) - set(mapped))
    if unknown or wrong or missing:
        parts = [f"{label}: {', '.join(items[:4])}{' ...' if len(items) > 4 else ''}"
                 for label, items in (("unknown keys", unknown), ("shape mismatch", wrong),
                                      ("missing", missing)) if items]
        raise CheckpointError(f"{source}: not a released SVFormer of this size ({'; '.join(parts)}); build "
                              "the model with the release's dims, depths, head_dim, mlp_ratio, frames and "
                              "image size")
    model.load_state_dict(mapped, strict=True)
    return list(mapped)
