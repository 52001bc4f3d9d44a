"""StreamDSGN feature-flow fusion (BEV) and motion-consistency loss, in plain torch.

Shift convention: a BEV shift ``s = (dy, dx)`` (cells) means the content moved by ``s`` from the previous
to the current map, ``cur(q) ≈ prev(q − s)``; the pseudo-next map extrapolates it, ``next(q) = cur(q − s)``
(= warp(current, −s) with ``warp(x, f)(q) = x(q + f)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eventvision.errors import ConfigError


def shift_map(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``out(q) = x(q − (dy, dx))`` with zeros where q − s leaves the map. x [N, C, H, W]."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out


def estimate_bev_flow(prev: torch.Tensor, cur: torch.Tensor, *, radius: int = 3, prob_factor: float = 0.8,
                      pool: int = 2, interp: str = "bilinear") -> torch.Tensor:
    """Per-cell BEV motion from ``prev`` to ``cur`` (both [N, C, H, W]) -> shift field [N, 2, H, W] (dy, dx)
    in cells of the input resolution.

    As released (``feature_alignment.py`` + ``ops/feature_flow/feature_flow_utils.py``): max-pool both by
    ``pool``; for each of the (2r+1)² shifts the cosine similarity of ``cur(q)`` and ``prev(q − s)``; softmax
    over shifts; the argmax shift is kept where its probability exceeds ``1 / ((2r+1)² · prob_factor)``, else
    0; the integer field is upsampled ×pool with ``interp`` (INTERP_TYPE, ``bilinear`` in the released
    model: fractional shifts at motion boundaries) and multiplied by ``pool``. Odd sizes pool with
    ``ceil_mode`` and the upsampled field is cropped (the release floors and needs even maps).
    """
    return flow_from_directions(pooled_directions(prev, pool), pooled_directions(cur, pool), tuple(cur.shape[-2:]),
                                radius=radius, prob_factor=prob_factor, pool=pool, interp=interp)


def pooled_directions(x: torch.Tensor, pool: int = 2) -> torch.Tensor:
    """The per-cell unit feature vectors :func:`estimate_bev_flow` compares: ``x`` [N, C, H, W] max-pooled by
    ``pool`` (``ceil_mode``) and L2-normalised over channels -> [N, C, ceil(H/pool), ceil(W/pool)]."""
    return F.normalize(F.max_pool2d(x, pool, ceil_mode=True), dim=1)


def flow_from_directions(p: torch.Tensor, c: torch.Tensor, size: tuple[int, int], *, radius: int = 3,
                         prob_factor: float = 0.8, pool: int = 2, interp: str = "bilinear") -> torch.Tensor:
    """:func:`estimate_bev_flow` from the previous and current :func:`pooled_directions` ``p``, ``c``;
    ``size`` = (H, W) of the unpooled maps -> shift field [N, 2, H, W]."""
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    h, w = c.shape[-2:]
    padded = F.pad(p, (radius, radius, radius, radius))   # shift_map(p, dy, dx) is a window of it: no copy per shift
    sims = torch.stack([(c * padded[..., radius - dy:radius - dy + h, radius - dx:radius - dx + w]).sum(dim=1)
                        for dy, dx in offsets], dim=1)  # [N, S, h, w]
    prob = torch.softmax(sims, dim=1)
    best_p, best = prob.max(dim=1)
    table = torch.tensor(offsets, device=c.device, dtype=c.dtype)  # [S, 2]
    shift = table[best].permute(0, 3, 1, 2)  # [N, 2, h, w]
    keep = (best_p > 1.0 / (len(offsets) * prob_factor)).unsqueeze(1)
    shift = torch.where(keep, shift, torch.zeros_like(shift))
    if interp == "nearest":
        shift = F.interpolate(shift, scale_factor=pool, mode="nearest")
    else:
        shift = F.interpolate(shift, scale_factor=pool, mode=interp, align_corners=False)
    return shift[..., : size[0], : size[1]] * pool


def warp_by_shift(x: torch.Tensor, shift: torch.Tensor, *, mode: str = "bilinear") -> torch.Tensor:
    """``out(q) = x(q − shift(q))`` for a shift field [N, 2, H, W] (dy, dx, cells); ``mode`` bilinear
    (fractional shifts) or nearest. As released, samples that reach outside the map are 0 (a warped mask of
    ones must stay 1)."""
    n, _, h, w = x.shape
    ys = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1) - shift[:, 0]
    xs = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w) - shift[:, 1]
    grid = torch.stack([xs / max(w - 1, 1) * 2 - 1, ys / max(h - 1, 1) * 2 - 1], dim=-1)
    out = F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=True)
    ones = torch.ones(n, 1, h, w, device=x.device, dtype=x.dtype)
    inside = F.grid_sample(ones, grid, mode=mode, padding_mode="zeros", align_corners=True) >= 1.0 - 1e-5
    return out * inside


class FeatureFlowFusion(nn.Module):
    """StreamDSGN's fusion of the previous and current *spatial* BEV features (before the BEV backbone).

    As released (``pcdet/models/fusion_module/feature_alignment.py``, FUSION_TYPE ``avg``): one shared
    ``BaseConv`` (1x1 conv, BN, ReLU) reduces each of the previous, current and pseudo-next maps to ``C // 3``
    channels; the three are concatenated and **added to the current map** (no output conv). The pseudo-next
    map is the current map warped by the feature flow (``estimate_bev_flow``, shifts upsampled with
    ``interp`` and warped bilinearly with a validity mask, INTERP_TYPE). Without a previous map (first frame
    of a sequence) the current map passes unchanged. When ``C`` is not a multiple of 3 (the release needs
    ``C = 3k``: 96 = 32·3) the last ``C mod 3`` channels pass unchanged. [N, C, H, W] -> [N, C, H, W].
    """

    def __init__(self, channels: int, *, radius: int = 3, prob_factor: float = 0.8, pool: int = 2,
                 interp: str = "bilinear", gate_init: float | None = None):
        super().__init__()
        if channels < 3:
            raise ConfigError(f"model fusion: {channels} spatial feature channels, need at least 3 "
                              "(one reduced map per previous/current/pseudo-next frame)")
        self.radius, self.prob_factor, self.pool, self.interp = radius, prob_factor, pool, interp
        self.branch = channels // 3
        self.reduce = nn.Sequential(nn.Conv2d(channels, self.branch, 1, bias=False), nn.BatchNorm2d(self.branch),
                                    nn.ReLU(inplace=True))
        # not in the release (None): a learnable per-channel scale of the added term, started at gate_init (0: the
        # fused map starts as the current map, as ReZero / layer scale start a residual branch at zero)
        self.gate = (nn.Parameter(torch.full((1, 3 * self.branch, 1, 1), float(gate_init)))
                     if gate_init is not None else None)
        # streaming (no grad): the last call's current map with its pooled directions and reduced map; the next
        # call's previous map is that very tensor, so both are reused instead of recomputed
        self._last: tuple | None = None

    def reset_stream(self) -> None:
        self._last = None

    def forward(self, prev: torch.Tensor | None, cur: torch.Tensor,
                has_prev: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``prev``/``cur`` [N, C, H, W]; ``has_prev`` [N] bool (False: that sample has no previous frame).
        Returns (fused map, shift field [N, 2, H, W] in cells, zero where nothing was fused)."""
        n, _, h, w = cur.shape
        if prev is None:
            return cur, cur.new_zeros(n, 2, h, w)
        streaming = not torch.is_grad_enabled() and not self.training
        last = self._last if streaming and self._last is not None and self._last[0] is prev else None
        with torch.no_grad():
            p = last[1] if last is not None else pooled_directions(prev, self.pool)
            c = pooled_directions(cur, self.pool)
            shift = flow_from_directions(p, c, (h, w), radius=self.radius, prob_factor=self.prob_factor,
                                         pool=self.pool, interp=self.interp)
        nxt = warp_by_shift(cur, shift, mode="bilinear" if self.interp != "nearest" else "nearest")
        reduced_cur = self.reduce(cur)
        fused = torch.cat([last[2] if last is not None else self.reduce(prev), reduced_cur, self.reduce(nxt)], dim=1)
        self._last = (cur, c, reduced_cur) if streaming else None
        if self.gate is not None:
            fused = fused * self.gate
        k = fused.shape[1]
        out = torch.cat([cur[:, :k] + fused, cur[:, k:]], dim=1)
        if has_prev is not None:
            keep = has_prev.to(cur.device).view(n, 1, 1, 1)
            out = torch.where(keep, out, cur)
            shift = torch.where(keep, shift, torch.zeros_like(shift))
        return out, shift


def motion_vector(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """v(a) − v(b) for boxes [..., 7] (x, y, z, l, w, h, θ): [Δx, Δy, Δz, sin(θa − θb)] -> [..., 4]."""
    return torch.cat([a[..., :3] - b[..., :3], torch.sin(a[..., 6:7] - b[..., 6:7])], dim=-1)


def smooth_l1(diff: torch.Tensor, beta: float) -> torch.Tensor:
    """Element-wise SmoothL1: 0.5·x²/β for |x| < β, |x| − 0.5·β otherwise."""
    a = diff.abs()
    return torch.where(a < beta, 0.5 * a * a / beta, a - 0.5 * beta)


def motion_consistency_loss(pred_next: torch.Tensor, gt_t: torch.Tensor, gt_t1: torch.Tensor,
                            gt_t2: torch.Tensor | None, weights: torch.Tensor, *, beta: float = 1.0 / 9.0,
                            second_order_weight: float = 0.2) -> torch.Tensor:
    """StreamDSGN's motion-consistency ("trend") loss, as released (``stream_det_head.get_trend_layer_loss``):
    for K positive anchors matched to tracked objects (boxes [K, 7], grid frame),
    Δ1 = pred(t+1) − gt(t), Δ2 = gt(t) − gt(t−1), Δ3 = gt(t−1) − gt(t−2) on ``[x, y, z, sin Δθ]``;
    ``L = Σ_k w_k Σ_c [SmoothL1_β(Δ1 − Δ2) + 0.2·SmoothL1_β((Δ1 − Δ2) − (Δ2 − Δ3))]`` with β = 1/9 and
    ``w_k`` [K] the anchor's regression weight (1 / max(#positives of its sample, 10)). ``gt_t2`` None (no
    t−2 frame) drops the second-order term. Summed (the caller divides by the batch size); 0 if K = 0."""
    if pred_next.numel() == 0:
        return pred_next.sum() * 0.0
    d1 = motion_vector(pred_next, gt_t)
    d2 = motion_vector(gt_t, gt_t1)
    per = smooth_l1(d1 - d2, beta)
    if gt_t2 is not None and second_order_weight > 0:
        d3 = motion_vector(gt_t1, gt_t2)
        per = per + second_order_weight * smooth_l1((d1 - d2) - (d2 - d3), beta)
    return (per * weights.unsqueeze(-1)).sum()


def match_to_current(next_boxes: torch.Tensor, cur_boxes: torch.Tensor, *, size_tol: float = 0.1) -> torch.Tensor:
    """Match the next-frame boxes of positive anchors [P, 7] to the current frame's tracked boxes [M, 7] as
    released: the largest rotated BEV IoU (must be > 0) and edge lengths within ``size_tol`` metres in total
    (``Σ|Δl, Δw, Δh| < 0.1``: otherwise not the same object). Returns the index into ``cur_boxes`` [P]
    (−1: no match)."""
    from eventvision.models.detect3d.head import rotated_bev_iou

    p = next_boxes.shape[0]
    if p == 0 or cur_boxes.shape[0] == 0:
        return torch.full((p,), -1, dtype=torch.long, device=next_boxes.device)
    iou = torch.from_numpy(rotated_bev_iou(next_boxes.detach().cpu().numpy(), cur_boxes.detach().cpu().numpy()))
    best, idx = iou.max(dim=1)
    idx = idx.to(next_boxes.device)
    same = (next_boxes[:, 3:6] - cur_boxes[idx, 3:6]).abs().sum(dim=1) < size_tol
    ok = best.to(next_boxes.device) > 0
    return torch.where(ok & same, idx, torch.full_like(idx, -1))
