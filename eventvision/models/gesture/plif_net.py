"""The PLIF convolutional net for DVS128 Gesture (Fang et al. 2021, SpikingJelly's DVSGestureNet).

``{Conv3x3(C) - BN - PLIF - MaxPool2}`` x ``num_blocks`` -> Flatten -> Dropout -> FC(hidden) - PLIF
-> Dropout -> FC(classes x voting) - PLIF -> voting (average pool over groups of ``voting`` neurons).
Input frames [N, T, 2, R, R]; output firing rates [N, classes] in [0, 1] (mean over T).
"""

from __future__ import annotations

import torch
from torch import nn

from eventvision.spiking.adapters import SeqToANN
from eventvision.spiking.neurons import make_neuron


class PLIFGestureNet(nn.Module):
    def __init__(self, *, num_classes: int = 11, in_channels: int = 2, resolution: int = 128, channels: int = 128,
                 num_blocks: int = 5, hidden: int = 512, voting: int = 10, dropout: float = 0.5,
                 neuron: str = "plif", tau: float = 2.0):
        super().__init__()
        side = resolution >> num_blocks
        if side < 1:
            raise ValueError(f"{num_blocks} pooling blocks do not fit a {resolution}x{resolution} input")
        layers: list[nn.Module] = []
        cin = in_channels
        for _ in range(num_blocks):
            layers += [SeqToANN(nn.Conv2d(cin, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)),
                       make_neuron(neuron, tau=tau, detach_reset=True), SeqToANN(nn.MaxPool2d(2, 2))]
            cin = channels
        layers += [SeqToANN(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * side * side, hidden)),
                   make_neuron(neuron, tau=tau, detach_reset=True),
                   SeqToANN(nn.Dropout(dropout), nn.Linear(hidden, num_classes * voting)),
                   make_neuron(neuron, tau=tau, detach_reset=True)]
        self.net = nn.Sequential(*layers)
        self.num_classes, self.voting = num_classes, voting

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames`` [N, T, 2, R, R] -> class firing rates [N, num_classes]."""
        spikes = self.net(frames.transpose(0, 1))  # [T, N, classes * voting]
        rates = spikes.mean(0)
        return rates.view(rates.shape[0], self.num_classes, self.voting).mean(2)
