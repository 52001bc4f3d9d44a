"""A tiny synthetic task that exercises the whole engine in seconds (used by tests/engine).

Data: ``num_classes`` Gaussian blobs in ``dim`` dimensions (centres ~ N(0, separation²), points ~
N(centre, spread²)); train and val are drawn from the same centres with independent streams.
A sample is ``(x float32 [dim], y int64 [])``; a batch ``(x [N, dim], y [N])``.
Model: MLP ``dim -> hidden -> num_classes`` (optionally dropout), or a spiking version where the
hidden layer is a multi-step LIF neuron run for ``timesteps`` steps on the repeated input and the
logits are the time-average of the output layer ([T, N, C] -> [N, C]).
Metric: top-1 accuracy (and mean cross-entropy) over the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from eventvision.evaluation.base import Evaluator
from eventvision.tasks.base import Task, check_split


def make_blobs(*, num_classes: int, dim: int, size: int, separation: float, spread: float, seed: int,
               stream: int) -> tuple[np.ndarray, np.ndarray]:
    """Points ``float32 [size, dim]`` and labels ``int64 [size]``; the centres depend only on ``seed``."""
    centres = np.random.default_rng(seed).normal(0.0, separation, size=(num_classes, dim))
    rng = np.random.default_rng([seed, stream])
    labels = rng.integers(0, num_classes, size=size)
    points = centres[labels] + rng.normal(0.0, spread, size=(size, dim))
    return points.astype(np.float32), labels.astype(np.int64)


class BlobDataset(torch.utils.data.Dataset):
    def __init__(self, points: np.ndarray, labels: np.ndarray, *, jitter: float = 0.0):
        self.points = torch.from_numpy(points)
        self.labels = torch.from_numpy(labels)
        self.jitter = float(jitter)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.points[i]
        if self.jitter > 0:  # drawn from the global torch RNG on purpose: resumption must restore it
            x = x + self.jitter * torch.randn(x.shape)
        return x, self.labels[i]


class ToyMLP(nn.Module):
    def __init__(self, *, dim: int, hidden: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, dim]`` -> logits ``[N, num_classes]``."""
        return self.net(x)


class ToySpikingMLP(nn.Module):
    def __init__(self, *, dim: int, hidden: int, num_classes: int, timesteps: int = 4, dropout: float = 0.0):
        super().__init__()
        from spikingjelly.activation_based import layer, neuron, surrogate
        self.timesteps = timesteps
        self.fc1 = layer.Linear(dim, hidden, step_mode="m")
        self.lif = neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), step_mode="m")
        self.drop = layer.Dropout(dropout, step_mode="m") if dropout > 0 else nn.Identity()
        self.fc2 = layer.Linear(hidden, num_classes, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, dim]`` repeated to ``[T, N, dim]`` -> time-averaged logits ``[N, num_classes]``."""
        seq = x.unsqueeze(0).expand(self.timesteps, *x.shape)
        return self.fc2(self.drop(self.lif(self.fc1(seq)))).mean(0)


class AccuracyEvaluator(Evaluator):
    """Top-1 accuracy and mean cross-entropy; sums, so it merges across ranks."""

    def reset(self) -> None:
        self.correct, self.total, self.nll = 0, 0, 0.0

    def process(self, inputs: Any, outputs: torch.Tensor) -> None:
        _, y = inputs
        logits = outputs.float()
        self.correct += int((logits.argmax(1) == y).sum())
        self.total += int(y.numel())
        self.nll += float(F.cross_entropy(logits, y, reduction="sum"))

    def evaluate(self) -> dict[str, float]:
        n = max(1, self.total)
        return {"accuracy": self.correct / n, "loss": self.nll / n}

    def state(self) -> tuple[int, int, float]:
        return self.correct, self.total, self.nll

    def merge(self, states: list[tuple[int, int, float]]) -> None:
        self.correct = sum(s[0] for s in states)
        self.total = sum(s[1] for s in states)
        self.nll = sum(s[2] for s in states)


@dataclass(frozen=True)
class ToyTask(Task):
    cfg: Any = None
    name = "toy"
    default_config = "toy/default"
    best_metric = "accuracy"

    def _blobs(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        d = self.cfg.data
        check_split(self.name, split)
        size = {"train": d.train_size, "val": d.val_size, "test": d.val_size}[split]
        stream = {"train": 0, "val": 1, "test": 2}[split]
        return make_blobs(num_classes=d.num_classes, dim=d.dim, size=size, separation=d.separation,
                          spread=d.spread, seed=d.seed, stream=stream)

    def build_model(self) -> nn.Module:
        m, d = self.cfg.model, self.cfg.data
        if m.spiking:
            return ToySpikingMLP(dim=d.dim, hidden=m.hidden, num_classes=d.num_classes, timesteps=m.timesteps,
                                 dropout=m.dropout)
        return ToyMLP(dim=d.dim, hidden=m.hidden, num_classes=d.num_classes, dropout=m.dropout)

    def build_dataset(self, split: str) -> BlobDataset:
        points, labels = self._blobs(split)
        return BlobDataset(points, labels, jitter=self.cfg.data.jitter if split == "train" else 0.0)

    def build_evaluator(self) -> AccuracyEvaluator:
        return AccuracyEvaluator()

    def training_step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        acc = (logits.detach().argmax(1) == y).float().mean()
        return loss, {"accuracy": float(acc)}

    def predict(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, _ = batch
        return model(x)
