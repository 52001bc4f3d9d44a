"""2D feature net (ResNet-18-like + SPP + FPN neck) and the BEV large-kernel backbone (VAN/LKA blocks).

Shapes: images [N, C_in, H, W] -> features [N, C_out, H/4, W/4]; BEV [N, C, Y, X] -> [N, C_out, Y/s, X/s].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eventvision.errors import ConfigError


def conv_bn_relu(cin: int, cout: int, k: int = 3, s: int = 1, d: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, padding=d * (k // 2), dilation=d, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs, identity or 1x1 projection shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(y)) + self.short(x), inplace=True)


class SPP(nn.Module):
    """PSMNet-style spatial pyramid pooling: average pools at several grid sizes, 1x1 conv, upsample, concat."""

    def __init__(self, channels: int, branch: int, bins: tuple[int, ...] = (1, 2, 4, 8)):
        super().__init__()
        self.bins = bins
        self.branches = nn.ModuleList(conv_bn_relu(channels, branch, 1) for _ in bins)
        self.fuse = conv_bn_relu(channels + branch * len(bins), channels, 1)

    def forward(self, x):
        h, w = x.shape[-2:]
        outs = [x]
        for b, conv in zip(self.bins, self.branches):
            p = F.adaptive_avg_pool2d(x, (min(b, h), min(b, w)))
            outs.append(F.interpolate(conv(p), size=(h, w), mode="bilinear", align_corners=False))
        return self.fuse(torch.cat(outs, dim=1))


class FeatureNet(nn.Module):
    """ResNet-18-like encoder (2-2-2-2 basic blocks at strides 4, 8, 16, 16 with dilation on the last),
    SPP on the deepest map, FPN top-down to stride 4. ``width`` scales every stage (ResNet-18: 64)."""

    stride = 4

    def __init__(self, *, in_channels: int = 3, width: int = 32, out_channels: int = 32, blocks=(2, 2, 2, 2)):
        super().__init__()
        w = width
        self.stem = nn.Sequential(conv_bn_relu(in_channels, w, 3, 2), conv_bn_relu(w, w, 3, 1))
        chans = (w, 2 * w, 4 * w, 4 * w)
        strides = (2, 2, 2, 1)
        layers, cin = [], w
        for c, s, n in zip(chans, strides, blocks):
            layers.append(nn.Sequential(BasicBlock(cin, c, s), *[BasicBlock(c, c) for _ in range(n - 1)]))
            cin = c
        self.layers = nn.ModuleList(layers)
        self.spp = SPP(chans[-1], max(chans[-1] // 4, 8))
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in chans[:3])
        self.top = nn.Conv2d(chans[-1], out_channels, 1)
        self.smooth = conv_bn_relu(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        top = self.top(self.spp(feats[-1]))  # stride 16
        for lat, f in zip(reversed(self.lateral), reversed(feats[:3])):  # 16 -> 8 -> 4
            top = lat(f) + F.interpolate(top, size=f.shape[-2:], mode="bilinear", align_corners=False)
        return self.smooth(top)


#: VAN's large-kernel decompositions (K_SIZE -> DW kernel, dilated DW kernel, dilation), as released in
#: ``pcdet/models/backbones_2d/van_backbone.py`` (the released StreamDSGN model uses K_SIZE 7)
LKA_KERNELS = {7: (3, 3, 2), 11: (3, 5, 2), 23: (5, 7, 3), 35: (5, 11, 3), 41: (5, 13, 3), 53: (5, 17, 3)}


def _van_init(m: nn.Module) -> None:
    """The release's conv initialisation: normal(0, √(2 / fan_out)) with fan_out per group, zero bias."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class LKA(nn.Module):
    """Large-kernel attention: DW k0 x k0 -> DW k1 x k1 dilation d -> 1x1; output = x * attention.
    ``k_size`` 7: 3x3 then 3x3 dilation 2 (receptive field 7)."""

    def __init__(self, c: int, k_size: int = 7):
        super().__init__()
        if k_size not in LKA_KERNELS:
            raise ConfigError(f"model.bev_kernel: {k_size} is not a VAN kernel size; use one of "
                              f"{sorted(LKA_KERNELS)}")
        k0, k1, d = LKA_KERNELS[k_size]
        self.dw = nn.Conv2d(c, c, k0, padding=k0 // 2, groups=c)
        self.dw_d = nn.Conv2d(c, c, k1, padding=d * (k1 // 2), dilation=d, groups=c)
        self.pw = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return x * self.pw(self.dw_d(self.dw(x)))


class LKAAttention(nn.Module):
    """proj 1x1 -> GELU -> LKA -> proj 1x1, plus the inner shortcut of the released ``Attention``."""

    def __init__(self, c: int, k_size: int = 7):
        super().__init__()
        self.proj1 = nn.Conv2d(c, c, 1)
        self.lka = LKA(c, k_size)
        self.proj2 = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return x + self.proj2(self.lka(F.gelu(self.proj1(x))))


class VANBlock(nn.Module):
    """VAN block: ``x + γ1·Attn(BN x)``, then ``x + γ2·MLP(BN x)`` (MLP: 1x1, DW 3x3, GELU, 1x1), layer scales
    γ initialised to ``layer_scale`` (1e-2 in the release)."""

    def __init__(self, c: int, *, k_size: int = 7, mlp_ratio: float = 2.0, layer_scale: float = 1e-2):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c)
        self.attn = LKAAttention(c, k_size)
        hidden = int(c * mlp_ratio)
        self.norm2 = nn.BatchNorm2d(c)
        self.mlp = nn.Sequential(nn.Conv2d(c, hidden, 1), nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
                                 nn.GELU(), nn.Conv2d(hidden, c, 1))
        self.gamma1 = nn.Parameter(torch.full((c,), float(layer_scale)))
        self.gamma2 = nn.Parameter(torch.full((c,), float(layer_scale)))
        self.apply(_van_init)

    def forward(self, x):
        x = x + self.gamma1.view(1, -1, 1, 1) * self.attn(self.norm1(x))
        return x + self.gamma2.view(1, -1, 1, 1) * self.mlp(self.norm2(x))


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of [N, C, H, W] (VAN's per-stage norm)."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.LayerNorm(c)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class BEVBackbone(nn.Module):
    """The released VANBackbone (``van_backbone.py``, MULTI_FUSION_TYPE SUM), [N, C_in, Y, X] -> [N, C_out, Y, X].

    1x1 conv-BN-ReLU stem to ``channels``; per stage an overlapping patch embedding (3x3 conv stride 2 + BN),
    ``depths[i]`` VAN blocks, a channel LayerNorm; top-down: each stage's map (plus the upsampled deeper one)
    goes through a 2x2 stride-2 transposed conv + BN + ReLU, so the output is at the **input** resolution
    with ``up_filters[-1]`` channels. Odd sizes are cropped after each transposed conv.
    """

    def __init__(self, *, in_channels: int, channels: int = 64, embed_dims=(128, 128), depths=(2, 2),
                 mlp_ratios=(2.0, 2.0), k_size: int = 7, up_filters=(128, 64), layer_scale: float = 1e-2):
        super().__init__()
        if not (len(embed_dims) == len(depths) == len(mlp_ratios) == len(up_filters)):
            raise ConfigError("model.bev_embed_dims, bev_depths, bev_mlp_ratios and bev_up_filters must have the "
                              "same length (one entry per VAN stage)")
        self.stem = conv_bn_relu(in_channels, channels, 1)
        self.embeds, self.stages = nn.ModuleList(), nn.ModuleList()
        self.norms, self.ups = nn.ModuleList(), nn.ModuleList()
        cin = channels
        for dim, depth, ratio in zip(embed_dims, depths, mlp_ratios):
            embed = nn.Sequential(nn.Conv2d(cin, dim, 3, 2, 1), nn.BatchNorm2d(dim))
            embed.apply(_van_init)
            self.embeds.append(embed)
            self.stages.append(nn.Sequential(*[VANBlock(dim, k_size=k_size, mlp_ratio=ratio, layer_scale=layer_scale)
                                               for _ in range(depth)]))
            self.norms.append(ChannelLayerNorm(dim))
            cin = dim
        # the release builds up-block i from stage i's width and applies them deepest first
        deep_first = list(reversed(embed_dims))
        for i, f in enumerate(up_filters):
            cin_up = deep_first[0] if i == 0 else up_filters[i - 1]
            if i > 0 and cin_up != deep_first[i]:
                raise ConfigError(f"model.bev_up_filters[{i - 1}] ({cin_up}) must equal the width of the stage it "
                                  f"is summed with ({deep_first[i]})")
            self.ups.append(nn.Sequential(nn.ConvTranspose2d(cin_up, f, 2, 2, bias=False), nn.BatchNorm2d(f),
                                          nn.ReLU(inplace=True)))
        self.out_channels = up_filters[-1]

    def forward(self, x):
        x = self.stem(x)
        sizes, outs = [], []
        for embed, stage, norm in zip(self.embeds, self.stages, self.norms):
            sizes.append(x.shape[-2:])
            x = norm(stage(embed(x)))
            outs.append(x)
        up = None
        for i, (o, size) in enumerate(zip(reversed(outs), reversed(sizes))):
            if up is not None:
                o = o + up
            up = self.ups[i](o)[..., : size[0], : size[1]]
        return up
