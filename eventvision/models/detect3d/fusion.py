"""StreamDSGN feature-flow fusion (BEV) and motion-consistency loss, in plain torch.

Shift convention: a BEV shift ``s = (dy, dx)`` (cells) means the content moved by ``s`` from the previous
to the current map, ``cur(q) ≈ prev(q − s)``; the pseudo-next map extrapolates it, ``next(q) = cur(q − s)``
(= warp(current, −s) with ``warp(x, f)(q) = x(q + f)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def shift_map(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``out(q) = x(q − (dy, dx))`` with zeros where q − s leaves the map. x [N, C, H, W]."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out


def estimate_bev_flow(prev: torch.Tensor, cur: torch.Tensor, *, radius: int = 3, prob_factor: float = 0.8,
                      pool: int = 2) -> torch.Tensor:
    """Per-cell BEV motion from ``prev`` to ``cur`` (both [N, C, H, W]) -> shift field [N, 2, H, W] (dy, dx)
    in cells of the input resolution, integer valued.

    Max-pool both by ``pool``; for each of the (2r+1)² shifts the cosine similarity of ``cur(q)`` and
    ``prev(q − s)``; softmax over shifts; the argmax shift is kept where its probability exceeds
    ``1 / ((2r+1)² · prob_factor)``, else 0; the field is upsampled ×pool (values ×pool).
    """
    p = F.normalize(F.max_pool2d(prev, pool, ceil_mode=True), dim=1)
    c = F.normalize(F.max_pool2d(cur, pool, ceil_mode=True), dim=1)
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    sims = torch.stack([(c * shift_map(p, dy, dx)).sum(dim=1) for dy, dx in offsets], dim=1)  # [N, S, h, w]
    prob = torch.softmax(sims, dim=1)
    best_p, best = prob.max(dim=1)
    table = torch.tensor(offsets, device=cur.device, dtype=cur.dtype)  # [S, 2]
    shift = table[best].permute(0, 3, 1, 2)  # [N, 2, h, w]
    keep = (best_p > 1.0 / (len(offsets) * prob_factor)).unsqueeze(1)
    shift = torch.where(keep, shift, torch.zeros_like(shift))
    shift = F.interpolate(shift, scale_factor=pool, mode="nearest") * pool
    return shift[..., : cur.shape[-2], : cur.shape[-1]]


def warp_by_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``out(q) = x(q − shift(q))`` for an integer shift field [N, 2, H, W] (dy, dx); zeros outside."""
    n, _, h, w = x.shape
    ys = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1) - shift[:, 0]
    xs = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w) - shift[:, 1]
    grid = torch.stack([xs / max(w - 1, 1) * 2 - 1, ys / max(h - 1, 1) * 2 - 1], dim=-1)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=True)


class FeatureFlowFusion(nn.Module):
    """Fuse previous, current and pseudo-next BEV maps: a shared 1x1 conv on each, concat, 1x1 conv,
    residual add to the current map. [N, C, H, W] -> [N, C, H, W]."""

    def __init__(self, channels: int, *, radius: int = 3, prob_factor: float = 0.8, reduce: int = 2):
        super().__init__()
        mid = max(channels // reduce, 8)
        self.radius, self.prob_factor = radius, prob_factor
        self.shared = nn.Sequential(nn.Conv2d(channels, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(3 * mid, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, prev: torch.Tensor | None, cur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (fused map, shift field [N, 2, H, W])."""
        if prev is None:
            prev = cur
        with torch.no_grad():
            shift = estimate_bev_flow(prev, cur, radius=self.radius, prob_factor=self.prob_factor)
        nxt = warp_by_shift(cur, shift)
        fused = torch.cat([self.shared(prev), self.shared(cur), self.shared(nxt)], dim=1)
        return cur + self.out(fused), shift


def motion_vector(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """v(a) − v(b) for boxes [..., 7] (x, y, z, l, w, h, θ): [Δx, Δy, Δz, sin(θa − θb)] -> [..., 4]."""
    return torch.cat([a[..., :3] - b[..., :3], torch.sin(a[..., 6:7] - b[..., 6:7])], dim=-1)


def motion_consistency_loss(pred_next: torch.Tensor, gt_t: torch.Tensor, gt_t1: torch.Tensor,
                            gt_t2: torch.Tensor, *, second_order_weight: float = 0.2) -> torch.Tensor:
    """StreamDSGN motion consistency for K tracked objects (all [K, 7] grid-frame boxes of the same track):
    Δ1 = pred(t+1) − gt(t), Δ2 = gt(t) − gt(t−1), Δ3 = gt(t−1) − gt(t−2);
    L = SmoothL1(Δ1, Δ2) + 0.2·SmoothL1(Δ1 − Δ2, Δ2 − Δ3) (mean over objects and components; 0 if K = 0)."""
    if pred_next.numel() == 0:
        return pred_next.sum() * 0.0
    d1 = motion_vector(pred_next, gt_t)
    d2 = motion_vector(gt_t, gt_t1)
    d3 = motion_vector(gt_t1, gt_t2)
    return F.smooth_l1_loss(d1, d2) + second_order_weight * F.smooth_l1_loss(d1 - d2, d2 - d3)
