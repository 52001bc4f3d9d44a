"""Convolution layers shared by the models."""

from __future__ import annotations

import torch
from torch import nn


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that uses oneDNN (mkldnn) on the CPU for a batch of one sample.

    PyTorch's backend heuristic sends single-sample 3D convolutions with small kernels and
    ``N*C*D*H <= 20480`` to its reference kernel (``slow_conv3d``), about 10x slower than oneDNN on
    the same input (measured: 63 ms vs 6 ms for 16->16 channels on 8x87x116). Streaming inference
    (``run stereo``, ``run detect3d``) runs exactly that case. Same parameters, state dict and
    results (to float rounding) as ``nn.Conv3d``; autograd works through both paths.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode == "zeros" and isinstance(self.padding, tuple):
            return conv3d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                          dilation=self.dilation, groups=self.groups)
        return super().forward(x)


def conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *, stride=1, padding=0,
           dilation=1, groups: int = 1) -> torch.Tensor:
    """``F.conv3d`` (zero padding) that takes oneDNN for a single float32 CPU sample (see :class:`Conv3d`).
    x [N, C, D, H, W]."""
    if (x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 5 and x.shape[0] == 1
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        triple = [(v,) * 3 if isinstance(v, int) else tuple(v) for v in (padding, stride, dilation)]
        return torch.mkldnn_convolution(x.contiguous(), weight, bias, *triple, groups)
    return nn.functional.conv3d(x, weight, bias, stride, padding, dilation, groups)


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold every ``BatchNorm2d`` that directly follows a ``Conv2d`` in an ``nn.Sequential`` into that conv, in
    place (the BN becomes ``nn.Identity``); returns ``module``. Inference only: the folded conv applies the BN's
    running statistics, so ``module`` must be in eval mode. Same outputs to float rounding, fewer passes over
    the feature maps (the SGBM-refine checkpoints at 346x260, one thread: 5-8 % of the network's time,
    ``benchmarks/bench_refine.py``)."""
    if module.training:
        raise ValueError("fuse_conv_bn folds running statistics: call it on a model in eval mode")
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for sequence in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(sequence) - 1):
            conv, bn = sequence[i], sequence[i + 1]
            if type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and bn.track_running_stats:
                sequence[i], sequence[i + 1] = fuse_conv_bn_eval(conv, bn), nn.Identity().eval()
    return module
