"""SVFormer: a directly trained spiking video transformer (Yu et al. 2024).

Every video frame is one SNN time step. Input ``video`` float32 [N, T, C, H, W] (C = 3 for RGB,
2 for event frames); internally multi-step tensors [T, N, C, H, W]; output logits [N, classes].

Structure (DESIGN.md):
* stem: 4x4/4 conv + BN, then per stage a 2x2/2 conv + BN down-sampling (224 -> 56, 28, 14, 7);
* every block starts with a conditional position encoding ``x + DWConv3x3(x)`` (UniFormer style);
* stages 1-2 (local): ``x + ConvMixer(x)``, ``x + ConvMLP(x)`` with
  ConvMixer = PLIF -> 1x1 -> DW 5x5 -> 1x1 -> BN and ConvMLP = PLIF -> 1x1 -> BN -> PLIF -> 1x1 -> BN;
* stages 3-4 (global): spiking self-attention ``Q, K, V = PLIF(BN(Linear(PLIF(x))))``,
  ``out = Q (K^T V) d^-1/2`` per head (no softmax; the d x d product keeps it linear in tokens),
  then Linear + BN, and a spiking MLP;
* local-global fusion: a stage-3 side path (3x3/2 conv + BN to the stage-4 width) concatenated with
  the stage-4 output (2 x 512 = 1024 channels);
* temporal head: PLIF -> depth-wise Conv3d over (T, 7, 7) -> BN -> Linear.

Full size (``dims=(128, 256, 384, 512)``, ``depths=(1, 1, 3, 1)``, T = 16, 224^2, 101 classes) has
13.35 M parameters with this reading of the paper (the paper reports 13.8 M; the text does not
pin down the remaining 3 %, e.g. extra projections, so none are invented here).
"""

from __future__ import annotations

import torch
from torch import nn

from eventvision.spiking.adapters import SeqToANN
from eventvision.spiking.blocks import LinearBN, SSAProduct
from eventvision.spiking.neurons import make_neuron


class ConvBN(SeqToANN):
    """Conv2d + BN applied to every time step of [T, N, C, H, W]."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(cout))


class LocalBlock(nn.Module):
    """Local conv block on [T, N, C, H, W]."""

    def __init__(self, dim: int, mlp_ratio: float, neuron: str):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.pos = SeqToANN(nn.Conv2d(dim, dim, 3, padding=1, groups=dim))
        self.mix_sn = make_neuron(neuron)
        self.mix = SeqToANN(nn.Conv2d(dim, dim, 1), nn.Conv2d(dim, dim, 5, padding=2, groups=dim),
                            nn.Conv2d(dim, dim, 1), nn.BatchNorm2d(dim))
        self.mlp_sn1 = make_neuron(neuron)
        self.mlp_fc1 = ConvBN(dim, hidden, 1)
        self.mlp_sn2 = make_neuron(neuron)
        self.mlp_fc2 = ConvBN(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos(x)
        x = x + self.mix(self.mix_sn(x))
        h = self.mlp_fc1(self.mlp_sn1(x))
        return x + self.mlp_fc2(self.mlp_sn2(h))


class SpikingSelfAttention(nn.Module):
    """SVFormer SSA on tokens [T, N, L, C]: out = Q (K^T V) / sqrt(d), heads of width d = C / heads."""

    def __init__(self, dim: int, num_heads: int, neuron: str):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.in_sn = make_neuron(neuron)
        self.q, self.k, self.v = (LinearBN(dim, dim, bias=True) for _ in range(3))
        self.q_sn, self.k_sn, self.v_sn = (make_neuron(neuron) for _ in range(3))
        self.product = SSAProduct(scale=self.head_dim ** -0.5)  # counted by the energy profiler
        self.proj = LinearBN(dim, dim, bias=True)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # [T, N, L, C] -> [T, N, h, L, d]
        t, n, l, _ = x.shape
        return x.reshape(t, n, l, self.num_heads, self.head_dim).transpose(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.in_sn(x)
        q = self._heads(self.q_sn(self.q(s)))
        k = self._heads(self.k_sn(self.k(s)))
        v = self._heads(self.v_sn(self.v(s)))
        out = self.product(q, k, v)  # Q (K^T V) d^-1/2 -> [T, N, h, L, d]
        out = out.transpose(2, 3).flatten(-2)  # [T, N, L, C]
        return self.proj(out)


class GlobalBlock(nn.Module):
    """Spiking self-attention block on [T, N, C, H, W] (tokens = H*W)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, neuron: str):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.pos = SeqToANN(nn.Conv2d(dim, dim, 3, padding=1, groups=dim))
        self.attn = SpikingSelfAttention(dim, num_heads, neuron)
        self.mlp_sn1 = make_neuron(neuron)
        self.mlp_fc1 = LinearBN(dim, hidden, bias=True)
        self.mlp_sn2 = make_neuron(neuron)
        self.mlp_fc2 = LinearBN(hidden, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, n, c, h, w = x.shape
        x = x + self.pos(x)
        tokens = x.flatten(3).transpose(2, 3)  # [T, N, L, C]
        tokens = tokens + self.attn(tokens)
        tokens = tokens + self.mlp_fc2(self.mlp_sn2(self.mlp_fc1(self.mlp_sn1(tokens))))
        return tokens.transpose(2, 3).reshape(t, n, c, h, w)


class SVFormer(nn.Module):
    def __init__(self, *, num_classes: int = 101, in_channels: int = 3, num_frames: int = 16,
                 image_size: int = 224, dims: tuple[int, ...] = (128, 256, 384, 512),
                 depths: tuple[int, ...] = (1, 1, 3, 1), num_heads: int = 8, mlp_ratio: float = 4.0,
                 neuron: str = "plif", dropout: float = 0.0):
        super().__init__()
        if len(dims) != 4 or len(depths) != 4:
            raise ValueError("SVFormer has 4 stages: dims and depths need 4 entries")
        if image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32, got {image_size}")
        self.num_frames, self.image_size = num_frames, image_size
        self.downsample = nn.ModuleList([ConvBN(in_channels, dims[0], 4, 4)] +
                                        [ConvBN(dims[i - 1], dims[i], 2, 2) for i in range(1, 4)])
        self.stages = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            blocks = [LocalBlock(dim, mlp_ratio, neuron) if i < 2 else GlobalBlock(dim, num_heads, mlp_ratio, neuron)
                      for _ in range(depth)]
            self.stages.append(nn.Sequential(*blocks))
        self.side = ConvBN(dims[2], dims[3], 3, 2, 1)  # stage-3 side path to the stage-4 grid
        fused = 2 * dims[3]
        final = image_size // 32
        self.head_sn = make_neuron(neuron)
        self.head_conv = nn.Conv3d(fused, fused, (num_frames, final, final), groups=fused, bias=False)
        self.head_bn = nn.BatchNorm1d(fused)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(fused, num_classes)

    @classmethod
    def from_config(cls, model_cfg, *, num_classes: int, in_channels: int, num_frames: int, image_size: int):
        return cls(num_classes=num_classes, in_channels=in_channels, num_frames=num_frames, image_size=image_size,
                   dims=tuple(model_cfg.dims), depths=tuple(model_cfg.depths), num_heads=model_cfg.num_heads,
                   mlp_ratio=float(model_cfg.mlp_ratio), neuron=model_cfg.neuron, dropout=float(model_cfg.dropout))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``video`` [N, T, C, H, W] -> logits [N, num_classes]."""
        x = video.transpose(0, 1)  # [T, N, C, H, W]
        if x.shape[0] != self.num_frames:
            raise ValueError(f"SVFormer built for {self.num_frames} frames, got {x.shape[0]}")
        stage3 = None
        for i, (down, stage) in enumerate(zip(self.downsample, self.stages)):
            x = stage(down(x))
            if i == 2:
                stage3 = x
        x = torch.cat([x, self.side(stage3)], dim=2)  # [T, N, 2*C4, h, w]
        s = self.head_sn(x).permute(1, 2, 0, 3, 4)  # [N, C, T, h, w]
        z = self.head_conv(s).flatten(1)  # [N, C]
        return self.fc(self.dropout(self.head_bn(z)))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
