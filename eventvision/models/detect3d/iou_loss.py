"""Differentiable rotated 3D IoU of paired boxes (the IoU loss of the released StreamDSGN head), plain torch.

Boxes are grid-frame ``(x, y, z, l, w, h, θ)`` [K, 7] (gravity centre, heading θ about z; see ``geometry``).
The BEV intersection polygon of two rotated rectangles is built from the corners of each inside the other
and the 16 edge-edge intersections, ordered by angle around their mean and measured with the shoelace
formula; the ordering is discrete, the area is differentiable in every vertex.
"""

from __future__ import annotations

import torch


def bev_corners(boxes: torch.Tensor) -> torch.Tensor:
    """[K, 7] boxes -> BEV corners [K, 4, 2] (x, y), counter-clockwise."""
    x, y, l, w, t = boxes[:, 0], boxes[:, 1], boxes[:, 3], boxes[:, 4], boxes[:, 6]
    sx = torch.tensor([0.5, -0.5, -0.5, 0.5], device=boxes.device, dtype=boxes.dtype)
    sy = torch.tensor([0.5, 0.5, -0.5, -0.5], device=boxes.device, dtype=boxes.dtype)
    lx, ly = l[:, None] * sx, w[:, None] * sy
    c, s = torch.cos(t)[:, None], torch.sin(t)[:, None]
    return torch.stack([x[:, None] + c * lx - s * ly, y[:, None] + s * lx + c * ly], dim=-1)


def _inside(points: torch.Tensor, boxes: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """points [K, P, 2] inside the BEV rectangle of boxes [K, 7] -> [K, P] bool."""
    d = points - boxes[:, None, :2]
    c, s = torch.cos(boxes[:, 6])[:, None], torch.sin(boxes[:, 6])[:, None]
    u = d[..., 0] * c + d[..., 1] * s
    v = -d[..., 0] * s + d[..., 1] * c
    return (u.abs() <= boxes[:, None, 3] / 2 + eps) & (v.abs() <= boxes[:, None, 4] / 2 + eps)


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def bev_intersection_area(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Area [K] (m²) of the BEV intersection of paired rotated boxes a, b [K, 7]."""
    ca, cb = bev_corners(a), bev_corners(b)
    ea = torch.roll(ca, -1, dims=1) - ca  # edges [K, 4, 2]
    eb = torch.roll(cb, -1, dims=1) - cb
    p, r = ca[:, :, None], ea[:, :, None]  # [K, 4, 1, 2]
    q, s = cb[:, None], eb[:, None]  # [K, 1, 4, 2]
    denom = _cross(r, s)  # [K, 4, 4]
    parallel = denom.abs() < 1e-8
    safe = torch.where(parallel, torch.ones_like(denom), denom)
    t = _cross(q - p, s) / safe
    u = _cross(q - p, r) / safe
    hit = ~parallel & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
    cross_pts = (p + t.unsqueeze(-1) * r).reshape(a.shape[0], 16, 2)
    pts = torch.cat([ca, cb, cross_pts], dim=1)  # [K, 24, 2]
    valid = torch.cat([_inside(ca, b), _inside(cb, a), hit.reshape(-1, 16)], dim=1)
    n = valid.sum(dim=1)
    with torch.no_grad():
        w = valid.to(pts.dtype).unsqueeze(-1)
        centre = (pts * w).sum(1) / w.sum(1).clamp(min=1)
        ang = torch.atan2(pts[..., 1] - centre[:, None, 1], pts[..., 0] - centre[:, None, 0])
        order = torch.where(valid, ang, torch.full_like(ang, 10.0)).argsort(dim=1)
    sp = torch.gather(pts, 1, order.unsqueeze(-1).expand(-1, -1, 2))
    sv = torch.gather(valid, 1, order)
    sp = torch.where(sv.unsqueeze(-1), sp, sp[:, :1].expand_as(sp))  # unused slots repeat the first vertex
    area = 0.5 * _cross(sp, torch.roll(sp, -1, dims=1)).sum(dim=1).abs()
    return torch.where(n >= 3, area, torch.zeros_like(area))


def rotated_iou3d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """3D IoU [K] of paired boxes a, b [K, 7] (rotated BEV overlap × vertical overlap), differentiable."""
    if a.shape[0] == 0:
        return a.new_zeros(0)
    inter_bev = bev_intersection_area(a, b)
    top = torch.minimum(a[:, 2] + a[:, 5] / 2, b[:, 2] + b[:, 5] / 2)
    bottom = torch.maximum(a[:, 2] - a[:, 5] / 2, b[:, 2] - b[:, 5] / 2)
    inter = inter_bev * (top - bottom).clamp(min=0)
    vol_a, vol_b = a[:, 3] * a[:, 4] * a[:, 5], b[:, 3] * b[:, 4] * b[:, 5]
    return inter / (vol_a + vol_b - inter).clamp(min=1e-6)
