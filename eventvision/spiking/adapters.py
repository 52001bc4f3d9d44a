"""Adapters between multi-step spiking tensors ``[T, N, ...]`` and ordinary (ANN) modules.

* :class:`SeqToANN` -- wrap stateless ANN modules (conv, BN, pooling, an entire ANN head) so they
  run on ``[T, N, ...]``: fold to ``[T*N, ...]``, apply, unfold to ``[T, N, ...]``. This is
  SpikingJelly's ``SeqToANNContainer``, written here so hybrid SNN-ANN models (SpikeDHS journal
  version, hybrid stereo/matching nets) have one spelling.
* :class:`MultiStepToANN` -- the readout from the spiking part into an ANN part: reduce over T
  (``"mean"`` firing rate, ``"sum"`` spike count, ``"last"`` step) to ``[N, ...]``, then an
  optional ANN module.
* :class:`MeanOverTime` -- ``x_seq.mean(0)`` as a module.
* :class:`StepBatchNorm` -- batch norm with separate statistics and affine per time step (SVFormer's
  ``BatchNorm*_eT``): ``T*C`` features for ``[T, N, C, ...]``.
* :func:`seq_to_ann` / :func:`ann_to_seq` -- the folding itself.
"""

from __future__ import annotations

import torch
from torch import nn


def seq_to_ann(x_seq: torch.Tensor) -> torch.Tensor:
    """``[T, N, ...] -> [T*N, ...]`` (a view when possible)."""
    return x_seq.flatten(0, 1)


def ann_to_seq(y: torch.Tensor, T: int) -> torch.Tensor:
    """``[T*N, ...] -> [T, N, ...]``."""
    if y.shape[0] % T:
        raise ValueError(f"leading dimension {y.shape[0]} is not a multiple of T={T}")
    return y.view(T, y.shape[0] // T, *y.shape[1:])


class SeqToANN(nn.Module):
    """Apply ANN ``modules`` (run in order) to every time step of ``x_seq`` ``[T, N, ...]`` at once.

    The wrapped modules must not mix samples along the batch axis beyond what a batch of
    ``T*N`` independent images allows (BatchNorm statistics then pool over T and N, as in
    SpikingJelly's ``SeqToANNContainer``).
    """

    def __init__(self, *modules: nn.Module):
        super().__init__()
        self.module = modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return ann_to_seq(self.module(seq_to_ann(x_seq)), x_seq.shape[0])


class StepBatchNorm(nn.BatchNorm1d):
    """Batch norm per (time step, channel) on ``[T, N, C, *spatial]`` (any number of spatial axes).

    The ``T*C`` features each have their own running mean/variance and affine weight and bias, as
    SVFormer's ``BatchNorm1d_eT`` / ``BatchNorm2d_eT`` (yult0821/SVFormer
    ``slowfast/models/uniformer2d_psnn_try.py``): fold to ``[N, T*C, prod(spatial)]`` and normalise
    over ``N`` and the spatial axes (for one spatial axis of length 1 this equals BatchNorm1d on
    ``[N, T*C]``; for ``H, W`` it equals BatchNorm2d on ``[N, T*C, H, W]``). Parameters and buffers
    have shape ``[T*C]`` like the released ones, so their weights load unchanged. ``T`` is fixed at
    construction. ``channels_last=True`` takes tokens ``[T, N, L, C]`` instead.
    """

    def __init__(self, num_channels: int, num_steps: int, eps: float = 1e-5, momentum: float = 0.1,
                 channels_last: bool = False):
        super().__init__(num_channels * num_steps, eps=eps, momentum=momentum)
        self.num_channels, self.num_steps = int(num_channels), int(num_steps)
        self.channels_last = channels_last

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            return self._norm(x_seq.transpose(-2, -1)).transpose(-2, -1)
        return self._norm(x_seq)

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        T, N, C = x.shape[:3]
        if T != self.num_steps or C != self.num_channels:
            raise ValueError(f"StepBatchNorm built for T={self.num_steps}, C={self.num_channels}; "
                             f"got input {tuple(x.shape)}")
        y = super().forward(x.transpose(0, 1).reshape(N, T * C, -1))
        return y.view(N, T, *x.shape[2:]).transpose(0, 1)

    def extra_repr(self) -> str:
        return f"channels={self.num_channels}, steps={self.num_steps}, channels_last={self.channels_last}"


class MeanOverTime(nn.Module):
    """``[T, N, ...] -> [N, ...]`` by the mean over T (firing rate of spike inputs)."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return x_seq.mean(0)


class MultiStepToANN(nn.Module):
    """Spiking -> ANN readout: reduce ``[T, N, ...]`` over T, then apply ``module`` (optional).

    ``reduce``: ``"mean"`` (rate), ``"sum"`` (count) or ``"last"`` (final step, e.g. membrane
    readouts that integrate over the window).
    """

    def __init__(self, module: nn.Module | None = None, reduce: str = "mean"):
        super().__init__()
        if reduce not in ("mean", "sum", "last"):
            raise ValueError(f"reduce must be mean, sum or last, got {reduce!r}")
        self.reduce = reduce
        self.module = module if module is not None else nn.Identity()

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if self.reduce == "mean":
            x = x_seq.mean(0)
        elif self.reduce == "sum":
            x = x_seq.sum(0)
        else:
            x = x_seq[-1]
        return self.module(x)

    def extra_repr(self) -> str:
        return f"reduce={self.reduce}"
