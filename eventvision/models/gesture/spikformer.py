"""Spikformer-style gesture classifier built from the spiking core's blocks.

SPS (spiking patch splitting, 4 conv stages, ``log2(R/8)`` of them pooling, so an R x R input
becomes 8 x 8 tokens) -> ``num_layers`` transformer blocks with Spikformer SSA, spike-driven SDSA
or QKFormer token attention -> mean over tokens and time -> Linear.
Input frames [N, T, 2, R, R]; output logits [N, classes].
"""

from __future__ import annotations

import math

import torch
from torch import nn

from eventvision.spiking.blocks import SPS, QKFormerBlock, SpikeDrivenBlock, SpikformerBlock

BLOCKS = {"ssa": SpikformerBlock, "sdsa": SpikeDrivenBlock, "qk": QKFormerBlock}


class SpikformerGesture(nn.Module):
    def __init__(self, *, num_classes: int = 11, in_channels: int = 2, resolution: int = 128, embed_dim: int = 256,
                 num_layers: int = 2, num_heads: int = 8, mlp_ratio: float = 4.0, attention: str = "ssa",
                 neuron: str = "lif"):
        super().__init__()
        if attention not in BLOCKS:
            raise ValueError(f"attention must be one of {sorted(BLOCKS)}, got '{attention}'")
        num_pools = int(math.log2(resolution // 8))
        if resolution != 8 * 2 ** num_pools or not 1 <= num_pools <= 4:
            raise ValueError(f"resolution must be 16, 32, 64 or 128, got {resolution}")
        self.patch = SPS(in_channels, embed_dim, num_stages=4, num_pools=num_pools, tokens=True, neuron=neuron)
        self.blocks = nn.Sequential(*(BLOCKS[attention](embed_dim, num_heads, mlp_ratio, neuron=neuron)
                                      for _ in range(num_layers)))
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        tokens = self.blocks(self.patch(frames.transpose(0, 1)))  # [T, N, L, D]
        return self.head(tokens.mean(dim=(0, 2)))
