"""Plane-sweep stereo cost volume and the 3D geometry volume (DSGN), written with plain torch ops.

* :func:`build_cost_volume` — for each depth plane warp the right features onto the left view and either
  concatenate ``[L, R_warp]`` (DSGN) or take the group-wise correlation (GwcNet). [N, C, D, H, W].
* :class:`PlaneSweepNet` — 3D convs on the cost volume -> features [N, C3, D, H, W] + a depth
  probability [N, D, H, W] (softmax over planes).
* :func:`geometry_volume` — sample the depth-weighted plane-sweep features at every voxel centre
  (projected with P2, see ``geometry.voxel_sampling_grid``) -> [N, C3, Z, Y, X].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eventvision.models.conv import Conv3d
from eventvision.models.detect3d.geometry import DepthBins, VoxelGrid, plane_sweep_grid, voxel_sampling_grid
from eventvision.models.losses import triangle_cross_entropy


def warp_right_volume(right: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Right features [N, C, H, W] sampled at the plane-sweep ``grid`` [N, D, H, W, 2] -> [N, C, D, H, W]."""
    n, c, h, w = right.shape
    d = grid.shape[1]
    # the D planes stacked along the sampled rows: one pass over the right map, output already [N, C, D, H, W]
    warped = F.grid_sample(right, grid.reshape(n, d * h, w, 2), mode="bilinear", padding_mode="zeros",
                           align_corners=True)
    return warped.view(n, c, d, h, w)


def build_cost_volume(left: torch.Tensor, right: torch.Tensor, grid: torch.Tensor, *, kind: str = "concat",
                      groups: int = 8) -> torch.Tensor:
    """Plane-sweep cost volume: ``kind="concat"`` -> [N, 2C, D, H, W]; ``"gwc"`` -> [N, groups, D, H, W]
    with the mean product of each channel group (group-wise correlation)."""
    warped = warp_right_volume(right, grid)
    n, c, d, h, w = warped.shape
    lv = left.unsqueeze(2).expand(n, c, d, h, w)
    if kind == "concat":
        return torch.cat([lv, warped], dim=1)
    if kind == "gwc":
        if c % groups:
            raise ValueError(f"gwc cost volume: {c} channels not divisible into {groups} groups")
        return (lv * warped).view(n, groups, c // groups, d, h, w).mean(dim=2)
    raise ValueError(f"unknown cost volume kind {kind!r}; use concat or gwc")


def concat_volume_conv(left: torch.Tensor, warped: torch.Tensor, weight: torch.Tensor,
                       bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 3x3x3 conv (stride 1, zero padding 1) of the concat cost volume ``[L, R_warp]`` without building it:
    ``left`` [N, C, H, W], ``warped`` [N, C, D, H, W], ``weight`` [Co, 2C, 3, 3, 3], ``bias`` [Co] or None ->
    [N, Co, D, H, W], equal (to float rounding) to ``conv3d(build_cost_volume(..., kind="concat"), weight, bias)``.

    The left half of the volume is the same map on every plane, so its share is a 2D conv with the kernel
    summed over the depth taps (interior planes) or over the two taps that stay inside the volume (first and
    last plane): three 2D convs instead of a 3D conv over D planes, and the 2C-channel volume is never
    copied. The right half is a 3D conv over C channels (half the original cost)."""
    from eventvision.models.conv import conv3d

    c, d = left.shape[1], warped.shape[2]
    w_left, w_right = weight[:, :c], weight[:, c:]
    out = conv3d(warped, w_right, bias, padding=1)
    if d == 1:
        return out + F.conv2d(left, w_left[:, :, 1], padding=1).unsqueeze(2)
    co = weight.shape[0]
    kernels = torch.cat([w_left.sum(2), w_left[:, :, 1] + w_left[:, :, 2], w_left[:, :, 0] + w_left[:, :, 1]])
    inner, first, last = F.conv2d(left, kernels, padding=1).split(co, dim=1)
    out = out + inner.unsqueeze(2)
    out[:, :, 0] += first - inner       # in place on a fresh sum: autograd tracks it (no op here needs its output)
    out[:, :, -1] += last - inner
    return out


def conv3d_bn_relu(cin: int, cout: int, s: int = 1) -> nn.Sequential:
    return nn.Sequential(Conv3d(cin, cout, 3, s, 1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


class PlaneSweepNet(nn.Module):
    """3D aggregation of the cost volume: stem conv, ``num_convs`` residual 3x3x3 convs, a 1-channel depth
    cost whose softmax over the D planes is the depth probability."""

    def __init__(self, *, in_channels: int, channels: int = 32, num_convs: int = 2):
        super().__init__()
        self.stem = conv3d_bn_relu(in_channels, channels)
        self.convs = nn.ModuleList(conv3d_bn_relu(channels, channels) for _ in range(num_convs))
        self.cost = Conv3d(channels, 1, 3, 1, 1)

    def forward(self, volume: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (features [N, C, D, H, W], depth probability [N, D, H, W], depth logits [N, D, H, W])."""
        return self._aggregate(self.stem(volume))

    def forward_concat(self, left: torch.Tensor, warped: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`forward` of the concat volume ``[L, R_warp]`` from its halves (``left`` [N, C, H, W], ``warped``
        [N, C, D, H, W]) without building it (:func:`concat_volume_conv`): same parameters, same outputs to
        float rounding, ~2x less stem work."""
        conv = self.stem[0]
        return self._aggregate(self.stem[1:](concat_volume_conv(left, warped, conv.weight, conv.bias)))

    def _aggregate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        for conv in self.convs:
            x = x + conv(x)
        cost = self.cost(x).squeeze(1)
        return x, torch.softmax(cost, dim=1), cost


def depth_ce_loss(cost: torch.Tensor, depth: torch.Tensor, bins: DepthBins) -> torch.Tensor:
    """DSGN2/StreamDSGN depth supervision of the plane sweep (``stream_depth_loss_head.py``, loss ``ce``).

    ``cost`` [N, D, h, w] depth logits of a stride-s feature map, ``depth`` [N, H, W] metres (0 = no
    measurement: LiDAR points projected into the image, or a renderer's depth). The logits are upsampled to
    the image (bilinear, cell centres at ``(j + 0.5)·s − 0.5``); at every pixel with
    ``depth_min < depth < depth_max`` the target is the triangle ``max(0, 1 − |d_k − depth| / step)`` over
    the planes d_k; loss = mean over those pixels of ``−Σ_k target_k · log softmax_k``. 0 without pixels."""
    valid = (depth > bins.min_m) & (depth < bins.max_m)
    return triangle_cross_entropy(cost, depth, valid, bins.values(cost.device, cost.dtype), bins.step)


def geometry_volume(psv: torch.Tensor, depth_prob: torch.Tensor | None, grid: VoxelGrid, bins: DepthBins,
                    P2: torch.Tensor, stride: int, *, sampling_grid: torch.Tensor | None = None) -> torch.Tensor:
    """Sample plane-sweep features [N, C, D, H, W] (times the depth probability [N, D, H, W] if given, as in
    DSGN) at every voxel centre -> [N, C, Z, Y, X]; voxels outside the image or depth range are 0.
    ``sampling_grid``: :func:`voxel_sampling_grid`'s grid for these arguments when the caller has it."""
    feat = psv if depth_prob is None else psv * depth_prob.unsqueeze(1)
    g = sampling_grid if sampling_grid is not None else voxel_sampling_grid(grid, bins, P2, tuple(psv.shape[-2:]),
                                                                           stride)[0]
    return F.grid_sample(feat, g.to(feat.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)


def stereo_volume_inputs(left_feat: torch.Tensor, bins: DepthBins, disp_numerator: torch.Tensor,
                         stride: int) -> torch.Tensor:
    """The plane-sweep grid for feature maps like ``left_feat`` [N, C, H, W] (convenience wrapper)."""
    h, w = left_feat.shape[-2:]
    return plane_sweep_grid(bins.values(left_feat.device, left_feat.dtype), disp_numerator, h, w, stride)
