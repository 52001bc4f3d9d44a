"""2D feature net (ResNet-18-like + SPP + FPN neck) and the BEV large-kernel backbone (VAN/LKA blocks).

Shapes: images [N, C_in, H, W] -> features [N, C_out, H/4, W/4]; BEV [N, C, Y, X] -> [N, C_out, Y/s, X/s].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


class LKA(nn.Module):
    """Large-kernel attention (VAN): DW 5x5 -> DW 7x7 dilation 3 -> 1x1; output = x * attention."""

    def __init__(self, c: int):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 5, padding=2, groups=c)
        self.dw_d = nn.Conv2d(c, c, 7, padding=9, dilation=3, groups=c)
        self.pw = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return x * self.pw(self.dw_d(self.dw(x)))


class VANBlock(nn.Module):
    """VAN block: x + proj(LKA(GELU(proj(BN x)))); x + MLP(BN x) with a DW 3x3 in the MLP."""

    def __init__(self, c: int, mlp_ratio: float = 2.0):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c)
        self.attn = nn.Sequential(nn.Conv2d(c, c, 1), nn.GELU(), LKA(c), nn.Conv2d(c, c, 1))
        hidden = int(c * mlp_ratio)
        self.norm2 = nn.BatchNorm2d(c)
        self.mlp = nn.Sequential(nn.Conv2d(c, hidden, 1), nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
                                 nn.GELU(), nn.Conv2d(hidden, c, 1))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class BEVBackbone(nn.Module):
    """Two-stage large-kernel BEV backbone: stage 1 at the input resolution, stage 2 at half, fused
    (upsample + concat + 1x1) at ``out_stride`` (1 or 2) of the input. [N, C_in, Y, X] -> [N, C, Y/s, X/s]."""

    def __init__(self, *, in_channels: int, channels: int = 64, blocks=(2, 2), out_stride: int = 2):
        super().__init__()
        c = channels
        self.stem = conv_bn_relu(in_channels, c, 3)
        self.stage1 = nn.Sequential(*[VANBlock(c) for _ in range(blocks[0])])
        self.down = conv_bn_relu(c, 2 * c, 3, 2)
        self.stage2 = nn.Sequential(*[VANBlock(2 * c) for _ in range(blocks[1])])
        self.out_stride = out_stride
        self.fuse = conv_bn_relu(3 * c, c, 1)
        self.out_channels = c

    def forward(self, x):
        x1 = self.stage1(self.stem(x))
        x2 = self.stage2(self.down(x1))
        if self.out_stride == 2:
            x1 = F.max_pool2d(x1, 2)
        else:
            x2 = F.interpolate(x2, size=x1.shape[-2:], mode="bilinear", align_corners=False)
        x2 = x2[..., : x1.shape[-2], : x1.shape[-1]]
        return self.fuse(torch.cat([x1, x2], dim=1))
