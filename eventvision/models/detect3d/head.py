"""Anchor head for BEV 3D detection (SECOND/OpenPCDet style), in plain torch.

Anchors: on every BEV head cell, for each class (Car, Pedestrian, Cyclist) one box of the class mean size at
two rotations (0, π/2) -> 6 anchors per cell, class-major. Boxes are grid-frame ``(x, y, z, l, w, h, θ)``
(see ``geometry``). Residual coding (diag = √(la² + wa²)):
``(Δx, Δy)/diag, Δz/ha, log(l/la), log(w/wa), log(h/ha), θ − θa``; the angle is trained with the
sin-difference trick plus a 2-bin direction classifier (period π, offset π/4).
Target assignment uses the axis-aligned IoU of the boxes rotated to the nearest of 0/90° (OpenPCDet's
CPU assigner); decoding keeps the top scores and runs a rotated BEV NMS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eventvision.models.detect3d.geometry import limit_period
from eventvision.models.detect3d.iou_loss import rotated_iou3d

CLASS_NAMES = ("Car", "Pedestrian", "Cyclist")
#: mean sizes (l, w, h) in metres (KITTI statistics as used by SECOND/OpenPCDet)
DEFAULT_SIZES = ((3.9, 1.6, 1.56), (0.8, 0.6, 1.73), (1.76, 0.6, 1.73))
DIR_OFFSET = math.pi / 4


@dataclass(frozen=True)
class AnchorSpec:
    sizes: tuple = DEFAULT_SIZES
    rotations: tuple = (0.0, math.pi / 2)
    ground_z: float = -1.65  # ground height in the grid frame (camera height above the road, negated)
    pos_iou: tuple = (0.6, 0.5, 0.5)
    neg_iou: tuple = (0.45, 0.35, 0.35)

    @property
    def per_cell(self) -> int:
        return len(self.sizes) * len(self.rotations)


def make_anchors(bev_xy: torch.Tensor, spec: AnchorSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors for BEV cell centres [H, W, 2] (x, y) -> (anchors [H, W, A, 7], anchor class [A])."""
    h, w = bev_xy.shape[:2]
    rows, cls = [], []
    for ci, (l, wd, ht) in enumerate(spec.sizes):
        for rot in spec.rotations:
            rows.append([l, wd, ht, rot, spec.ground_z + ht / 2])
            cls.append(ci)
    p = torch.tensor(rows, device=bev_xy.device, dtype=bev_xy.dtype)  # [A, 5]
    a = p.shape[0]
    xy = bev_xy.unsqueeze(2).expand(h, w, a, 2)
    z = p[:, 4].view(1, 1, a, 1).expand(h, w, a, 1)
    lwh = p[:, :3].view(1, 1, a, 3).expand(h, w, a, 3)
    rot = p[:, 3].view(1, 1, a, 1).expand(h, w, a, 1)
    return torch.cat([xy, z, lwh, rot], dim=-1), torch.tensor(cls, device=bev_xy.device)


def encode_boxes(gt: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Residual targets [..., 7] of ``gt`` relative to ``anchors`` (both [..., 7])."""
    xa, ya, za, la, wa, ha, ra = anchors.unbind(-1)
    xg, yg, zg, lg, wg, hg, rg = gt.unbind(-1)
    diag = torch.sqrt(la ** 2 + wa ** 2)
    return torch.stack([(xg - xa) / diag, (yg - ya) / diag, (zg - za) / ha, torch.log(lg / la),
                        torch.log(wg / wa), torch.log(hg / ha), rg - ra], dim=-1)


def decode_boxes(deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode_boxes`."""
    xa, ya, za, la, wa, ha, ra = anchors.unbind(-1)
    dx, dy, dz, dl, dw, dh, dr = deltas.unbind(-1)
    diag = torch.sqrt(la ** 2 + wa ** 2)
    return torch.stack([dx * diag + xa, dy * diag + ya, dz * ha + za, torch.exp(dl.clamp(max=6)) * la,
                        torch.exp(dw.clamp(max=6)) * wa, torch.exp(dh.clamp(max=6)) * ha, dr + ra], dim=-1)


def nearest_bev_rects(boxes: torch.Tensor) -> torch.Tensor:
    """[N, 7] boxes -> axis-aligned BEV rectangles [N, 4] (x1, y1, x2, y2) after rotating each box to the
    nearest of 0/90°."""
    rot = limit_period(boxes[:, 6], 0.5, math.pi).abs()
    swap = rot > math.pi / 4
    l = torch.where(swap, boxes[:, 4], boxes[:, 3])
    w = torch.where(swap, boxes[:, 3], boxes[:, 4])
    return torch.stack([boxes[:, 0] - l / 2, boxes[:, 1] - w / 2, boxes[:, 0] + l / 2, boxes[:, 1] + w / 2], dim=1)


def aligned_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of axis-aligned rectangles a [N, 4], b [M, 4] -> [N, M]."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-9)


def assign_targets(anchors: torch.Tensor, anchor_cls: torch.Tensor, gt_boxes: torch.Tensor, gt_labels: torch.Tensor,
                   spec: AnchorSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Match flat anchors [A, 7] (class [A]) to ground truth [M, 7] (class [M]).

    Returns (labels [A]: 1 positive, 0 negative, −1 ignored; matched gt index [A], −1 where none). An anchor
    is positive if its nearest-BEV IoU with a same-class box reaches ``pos_iou`` of its class, or if it is that
    box's best anchor; negative below ``neg_iou``.
    """
    n_a = anchors.shape[0]
    labels = torch.zeros(n_a, dtype=torch.long, device=anchors.device)
    matched = torch.full((n_a,), -1, dtype=torch.long, device=anchors.device)
    if gt_boxes.shape[0] == 0:
        return labels, matched
    iou = aligned_iou(nearest_bev_rects(anchors), nearest_bev_rects(gt_boxes))
    iou = torch.where(anchor_cls[:, None] == gt_labels[None, :], iou, torch.zeros_like(iou))
    best_iou, best_gt = iou.max(dim=1)
    pos_thr = torch.tensor(spec.pos_iou, device=anchors.device, dtype=iou.dtype)[anchor_cls]
    neg_thr = torch.tensor(spec.neg_iou, device=anchors.device, dtype=iou.dtype)[anchor_cls]
    labels[(best_iou >= neg_thr)] = -1
    pos = best_iou >= pos_thr
    gt_best_iou, gt_best_anchor = iou.max(dim=0)
    forced = gt_best_anchor[gt_best_iou > 0]
    pos[forced] = True
    best_gt[gt_best_anchor[gt_best_iou > 0]] = torch.nonzero(gt_best_iou > 0).flatten()
    labels[pos] = 1
    matched[pos] = best_gt[pos]
    return labels, matched


def direction_targets(gt_rot: torch.Tensor, anchor_rot: torch.Tensor) -> torch.Tensor:
    """2-bin direction class of the true heading (period π after removing ``DIR_OFFSET``)."""
    rot = limit_period(gt_rot - DIR_OFFSET, 0.0, 2 * math.pi)
    return torch.floor(rot / math.pi).long().clamp(0, 1)


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    pt = p * targets + (1 - p) * (1 - targets)
    w = alpha * targets + (1 - alpha) * (1 - targets)
    return w * (1 - pt) ** gamma * ce


class AnchorHead(nn.Module):
    """The released StreamDetHead on the BEV map [N, C, H, W]: ``num_convs`` 3x3 conv-BN-ReLU layers per branch
    (classification / box, ``hidden`` channels), 3x3 class and box convs, a 1x1 direction conv on the
    classification branch (``stream_det_head.py``). Returns class logits [N, H, W, A], box deltas
    [N, H, W, A, 7], direction logits [N, H, W, A, 2]. ``num_convs=0``: 1x1 convs straight on the map."""

    def __init__(self, channels: int, spec: AnchorSpec, *, num_convs: int = 2, hidden: int = 64):
        super().__init__()
        a = spec.per_cell
        self.spec = spec

        def branch():
            layers, cin = [], channels
            for _ in range(num_convs):
                layers += [nn.Conv2d(cin, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden),
                           nn.ReLU(inplace=True)]
                cin = hidden
            return nn.Sequential(*layers), cin

        self.cls_convs, c_cls = branch()
        self.box_convs, c_box = branch()
        k = 3 if num_convs > 0 else 1
        self.cls = nn.Conv2d(c_cls, a, k, padding=k // 2)
        self.reg = nn.Conv2d(c_box, a * 7, k, padding=k // 2)
        self.dir = nn.Conv2d(c_cls, a * 2, 1)
        nn.init.constant_(self.cls.bias, -math.log((1 - 0.01) / 0.01))
        nn.init.normal_(self.reg.weight, std=0.001)
        nn.init.zeros_(self.reg.bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        n, _, h, w = x.shape
        a = self.spec.per_cell
        fc, fb = self.cls_convs(x), self.box_convs(x)
        return {"cls": self.cls(fc).permute(0, 2, 3, 1),
                "reg": self.reg(fb).permute(0, 2, 3, 1).reshape(n, h, w, a, 7),
                "dir": self.dir(fc).permute(0, 2, 3, 1).reshape(n, h, w, a, 2)}


def head_losses(out: dict, anchors: torch.Tensor, anchor_cls: torch.Tensor, targets: list[dict], spec: AnchorSpec,
                *, cls_weight: float = 1.0, loc_weight: float = 2.0, dir_weight: float = 0.2, iou_weight: float = 0.0,
                pos_norm_clamp: float = 1.0):
    """Detection losses over a batch. ``targets[i]`` holds ``boxes`` [M, 7] and ``labels`` [M].

    Focal classification (normalised by the sample's positives), SmoothL1 (β 1/9) on the residuals with the
    sin-difference angle, the direction cross-entropy and, when ``iou_weight`` > 0, the released IoU loss
    ``1 − IoU3d(decoded prediction, decoded target)`` (``loss_utils.IOU3dLoss``); box, direction and IoU terms
    are normalised by ``max(#positives, pos_norm_clamp)`` (the release's CLAMP_VALUE 10).
    Returns (total, parts dict, per-sample (positive anchor indices, matched gt index) for other losses)."""
    n = out["cls"].shape[0]
    flat_anchors = anchors.reshape(-1, 7)
    cls_all = out["cls"].reshape(n, -1)
    reg_all = out["reg"].reshape(n, -1, 7)
    dir_all = out["dir"].reshape(n, -1, 2)
    a_cls = anchor_cls.repeat(flat_anchors.shape[0] // anchor_cls.numel())
    cls_loss = reg_loss = dir_loss = iou_loss = cls_all.sum() * 0.0
    num_pos_total = 0
    matches = []
    for i in range(n):
        gt_b, gt_l = targets[i]["boxes"], targets[i]["labels"]
        labels, matched = assign_targets(flat_anchors, a_cls, gt_b, gt_l, spec)
        pos = torch.nonzero(labels == 1).flatten()
        matches.append((pos, matched[pos]))
        care = labels >= 0
        num_pos = max(int(pos.numel()), 1)
        num_pos_total += int(pos.numel())
        target = (labels[care] == 1).to(cls_all.dtype)
        cls_loss = cls_loss + sigmoid_focal_loss(cls_all[i][care], target).sum() / num_pos
        norm = max(float(pos.numel()), float(pos_norm_clamp), 1.0)
        if pos.numel():
            gt = gt_b[matched[pos]]
            tgt = encode_boxes(gt, flat_anchors[pos])
            pred = reg_all[i][pos]
            # sin-difference: sin(a − b) = sin a cos b − cos a sin b
            p_ang = torch.sin(pred[:, 6:7]) * torch.cos(tgt[:, 6:7])
            t_ang = torch.cos(pred[:, 6:7]) * torch.sin(tgt[:, 6:7])
            pred_e = torch.cat([pred[:, :6], p_ang], dim=1)
            tgt_e = torch.cat([tgt[:, :6], t_ang], dim=1)
            reg_loss = reg_loss + F.smooth_l1_loss(pred_e, tgt_e, beta=1.0 / 9.0, reduction="sum") / norm
            dir_t = direction_targets(gt[:, 6], flat_anchors[pos, 6])
            dir_loss = dir_loss + F.cross_entropy(dir_all[i][pos], dir_t, reduction="sum") / norm
            if iou_weight > 0:
                dec_pred = decode_boxes(pred, flat_anchors[pos])
                dec_tgt = decode_boxes(tgt, flat_anchors[pos])
                iou_loss = iou_loss + (1.0 - rotated_iou3d(dec_pred, dec_tgt)).sum() / norm
    cls_loss, reg_loss, dir_loss, iou_loss = cls_loss / n, reg_loss / n, dir_loss / n, iou_loss / n
    total = cls_weight * cls_loss + loc_weight * reg_loss + dir_weight * dir_loss + iou_weight * iou_loss
    parts = {"loss_cls": float(cls_loss.detach()), "loss_loc": float(reg_loss.detach()),
             "loss_dir": float(dir_loss.detach()), "loss_iou": float(iou_loss.detach()),
             "num_pos": num_pos_total / n}
    return total, parts, matches


def decode_predictions(out: dict, anchors: torch.Tensor, anchor_cls: torch.Tensor, *, score_thresh: float = 0.1,
                       pre_nms: int = 500, nms_thresh: float = 0.1, max_dets: int = 50) -> list[dict]:
    """Per sample: ``{"boxes": [K, 7] grid frame, "scores": [K], "labels": [K]}`` after score threshold, top-k
    and a per-class rotated BEV NMS."""
    n = out["cls"].shape[0]
    flat_anchors = anchors.reshape(-1, 7)
    a_cls = anchor_cls.repeat(flat_anchors.shape[0] // anchor_cls.numel())
    results = []
    for i in range(n):
        scores = torch.sigmoid(out["cls"][i].reshape(-1))
        keep = torch.nonzero(scores > score_thresh).flatten()
        if keep.numel() > pre_nms:
            keep = keep[scores[keep].topk(pre_nms).indices]
        boxes = decode_boxes(out["reg"][i].reshape(-1, 7)[keep], flat_anchors[keep])
        dir_lab = out["dir"][i].reshape(-1, 2)[keep].argmax(dim=1).to(boxes.dtype)
        rot = limit_period(boxes[:, 6] - DIR_OFFSET, 0.0, math.pi)
        boxes[:, 6] = limit_period(rot + DIR_OFFSET + math.pi * dir_lab, 0.5, 2 * math.pi)
        sc, lab = scores[keep], a_cls[keep]
        chosen = []
        for c in lab.unique():
            idx = torch.nonzero(lab == c).flatten()
            kept = rotated_nms(boxes[idx], sc[idx], nms_thresh)
            chosen.append(idx[kept])
        sel = torch.cat(chosen) if chosen else keep.new_zeros(0)
        sel = sel[sc[sel].argsort(descending=True)][:max_dets]
        results.append({"boxes": boxes[sel].detach(), "scores": sc[sel].detach(), "labels": lab[sel].detach()})
    return results


def bev_rects_camera(boxes: np.ndarray) -> np.ndarray:
    """Grid-frame boxes [N, 7] -> KITTI camera BEV rectangles [N, 5] (x, z, l, w, ry)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    return np.stack([-b[:, 1], b[:, 0], b[:, 3], b[:, 4], -b[:, 6] - np.pi / 2], axis=1)


def rotated_bev_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotated BEV IoU [N, M] of grid-frame boxes (kitti's numba rotated IoU on camera BEV rectangles)."""
    from eventvision.geometry.rotated_iou import bev_overlap
    return np.asarray(bev_overlap(bev_rects_camera(a), bev_rects_camera(b)), dtype=np.float64)


def rotated_nms(boxes: torch.Tensor, scores: torch.Tensor, thresh: float) -> torch.Tensor:
    """Greedy NMS with rotated BEV IoU; returns kept indices sorted by score."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    from eventvision.geometry.rotated_iou import bev_overlap

    order = scores.argsort(descending=True)
    rects = bev_rects_camera(boxes[order].detach().cpu().numpy())
    alive = np.ones(len(rects), dtype=bool)
    keep = []
    for i in range(len(rects)):
        if not alive[i]:
            continue
        keep.append(i)
        # IoU of the kept box with the lower-scored survivors only: #kept x N overlaps instead of N x N
        rest = np.flatnonzero(alive[i + 1:]) + i + 1
        if rest.size:
            alive[rest[bev_overlap(rects[i:i + 1], rects[rest])[0] > thresh]] = False
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]
