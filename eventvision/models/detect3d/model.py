"""StreamDSGN / DSGN-like stereo 3D detector (one code path, fusion and motion loss switched by config).

Pipeline (shapes for a batch of N stereo pairs [N, C_in, H, W], stride-4 features [N, F, h, w]):

1. ``FeatureNet`` on left and right (shared weights) -> [N, F, h, w] each.
2. plane-sweep cost volume over D depth planes (2..53.2 m) -> ``PlaneSweepNet`` -> [N, C3, D, h, w] and depth
   probability [N, D, h, w].
3. geometry volume: voxel centres of the grid (lidar-like frame, x 2..53.2, y −28.8..28.8, z −3..1 m) projected
   with P2 -> ``grid_sample`` -> [N, C3, Z, Y, X] -> BEV [N, C3·Z, Y, X] -> 1x1 conv.
4. ``BEVBackbone`` (VAN/LKA blocks) -> [N, C, Y/s, X/s].
5. (StreamDSGN) ``FeatureFlowFusion`` of the previous frame's BEV map with the current one.
6. ``AnchorHead`` -> class/box/direction maps; trained on the *next* frame's boxes (the task supplies them),
   plus (StreamDSGN) the motion-consistency loss on tracked objects.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import torch
from torch import nn

from eventvision.models.detect3d.backbone import BEVBackbone, FeatureNet
from eventvision.models.detect3d.fusion import FeatureFlowFusion, motion_consistency_loss
from eventvision.models.detect3d.geometry import DepthBins, VoxelGrid, stereo_disparity_numerator
from eventvision.models.detect3d.head import (CLASS_NAMES, AnchorHead, AnchorSpec, decode_boxes, decode_predictions,
                                              head_losses, make_anchors)
from eventvision.models.detect3d.volume import PlaneSweepNet, build_cost_volume, geometry_volume, stereo_volume_inputs


class StageTimer:
    """Accumulates wall-clock milliseconds per named stage (synchronising CUDA so figures are real)."""

    def __init__(self):
        self.ms: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str, device: torch.device):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        yield
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - t0) * 1e3


@contextmanager
def _no_timer(name, device):
    yield


class StereoDetector3D(nn.Module):
    """DSGN-like stereo detector; ``fusion=True`` adds StreamDSGN's feature-flow fusion, ``motion_weight > 0``
    its motion-consistency loss."""

    def __init__(self, *, in_channels: int = 3, feat_width: int = 32, feat_channels: int = 32,
                 volume: str = "concat", gwc_groups: int = 8, psv_channels: int = 32, psv_convs: int = 2,
                 depth_min: float = 2.0, depth_max: float = 53.2, num_depth_bins: int = 64,
                 x_range=(2.0, 53.2), y_range=(-28.8, 28.8), z_range=(-3.0, 1.0), voxel_size=(0.2, 0.2, 0.2),
                 voxel_channels: int = 32, bev_channels: int = 64, bev_blocks=(2, 2), head_stride: int = 2,
                 fusion: bool = True, fusion_radius: int = 3, fusion_prob_factor: float = 0.8,
                 motion_weight: float = 0.2, camera_height: float = 1.65, anchor_sizes=None,
                 score_thresh: float = 0.1, nms_thresh: float = 0.1, max_dets: int = 50,
                 image_mean: float = 0.45, image_std: float = 0.225):
        super().__init__()
        self.grid = VoxelGrid(tuple(x_range), tuple(y_range), tuple(z_range), tuple(voxel_size))
        self.bins = DepthBins(depth_min, depth_max, num_depth_bins)
        self.volume_kind, self.gwc_groups = volume, gwc_groups
        self.image_mean, self.image_std = image_mean, image_std
        self.features = FeatureNet(in_channels=in_channels, width=feat_width, out_channels=feat_channels)
        cv_in = 2 * feat_channels if volume == "concat" else gwc_groups
        self.psv = PlaneSweepNet(in_channels=cv_in, channels=psv_channels, num_convs=psv_convs)
        nz = self.grid.shape[0]
        self.to_bev = nn.Sequential(nn.Conv2d(psv_channels * nz, voxel_channels, 1, bias=False),
                                    nn.BatchNorm2d(voxel_channels), nn.ReLU(inplace=True))
        self.bev = BEVBackbone(in_channels=voxel_channels, channels=bev_channels, blocks=tuple(bev_blocks),
                               out_stride=head_stride)
        self.head_stride = head_stride
        self.fusion = FeatureFlowFusion(bev_channels, radius=fusion_radius, prob_factor=fusion_prob_factor) if fusion else None
        self.motion_weight = float(motion_weight)
        sizes = tuple(tuple(s) for s in anchor_sizes) if anchor_sizes else AnchorSpec().sizes
        self.anchor_spec = AnchorSpec(sizes=sizes, ground_z=-camera_height)
        self.head = AnchorHead(bev_channels, self.anchor_spec)
        self.decode_kw = dict(score_thresh=score_thresh, nms_thresh=nms_thresh, max_dets=max_dets)
        self._stream_prev: torch.Tensor | None = None

    @classmethod
    def from_config(cls, m) -> "StereoDetector3D":
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(m).items()})

    # ------------------------------------------------------------------------------- forward pieces
    def anchors(self, device, dtype=torch.float32):
        xy = self.grid.bev_centres(self.head_stride, device=device, dtype=dtype)
        return make_anchors(xy, self.anchor_spec)

    def bev_features(self, left, right, P2, P3, timer=_no_timer) -> torch.Tensor:
        """Stereo pair [N, C, H, W] + calibration [N, 3, 4] -> BEV map [N, C_bev, Y/s, X/s]."""
        dev = left.device
        with timer("features", dev):
            n = left.shape[0]
            both = self.features((torch.cat([left, right]) - self.image_mean) / self.image_std)
            fl, fr = both[:n], both[n:]
        with timer("volume", dev):
            stride = self.features.stride
            grid = stereo_volume_inputs(fl, self.bins, stereo_disparity_numerator(P2, P3), stride)
            cost = build_cost_volume(fl, fr, grid, kind=self.volume_kind, groups=self.gwc_groups)
            psv, prob = self.psv(cost)
            geo = geometry_volume(psv, prob, self.grid, self.bins, P2, stride)  # [N, C, Z, Y, X]
        with timer("bev", dev):
            n, c, z, y, x = geo.shape
            bev = self.bev(self.to_bev(geo.reshape(n, c * z, y, x)))
        return bev

    def forward(self, batch: dict, timer=_no_timer) -> dict:
        """Training/eval forward. ``batch``: left/right [N, C, H, W], P2/P3 [N, 3, 4], optional prev_left/prev_right
        (the previous frame, used when fusion is on). Returns head maps (+ ``shift`` when fused)."""
        bev = self.bev_features(batch["left"], batch["right"], batch["P2"], batch["P3"], timer)
        out = {}
        if self.fusion is not None:
            prev = None
            if batch.get("prev_left") is not None:
                with torch.no_grad():
                    prev = self.bev_features(batch["prev_left"], batch["prev_right"], batch["P2"], batch["P3"])
            with timer("fusion", bev.device):
                bev, out["shift"] = self.fusion(prev, bev)
        with timer("head", bev.device):
            out.update(self.head(bev))
        return out

    @torch.no_grad()
    def stream_step(self, left, right, P2, P3, timer=_no_timer) -> dict:
        """Streaming inference on one frame: fuses with the BEV map cached from the previous call
        (``reset_stream`` at sequence boundaries)."""
        bev = self.bev_features(left, right, P2, P3, timer)
        out = {}
        if self.fusion is not None:
            with timer("fusion", bev.device):
                fused, out["shift"] = self.fusion(self._stream_prev, bev)
            self._stream_prev = bev
            bev = fused
        with timer("head", bev.device):
            out.update(self.head(bev))
        return out

    def reset_stream(self) -> None:
        self._stream_prev = None

    def decode(self, out: dict, **overrides) -> list[dict]:
        anchors, acls = self.anchors(out["cls"].device, out["reg"].dtype)
        return decode_predictions(out, anchors, acls, **{**self.decode_kw, **overrides})

    # ------------------------------------------------------------------------------------- losses
    def loss(self, out: dict, batch: dict) -> tuple[torch.Tensor, dict]:
        """Detection loss against ``batch["targets"]`` (boxes of frame t+1) plus, when enabled, the motion
        consistency loss with ``batch["history"]`` (boxes at t, t−1, t−2, matched by track id)."""
        anchors, acls = self.anchors(out["cls"].device, out["reg"].dtype)
        total, parts, matches = head_losses(out, anchors, acls, batch["targets"], self.anchor_spec)
        if self.motion_weight > 0 and "history" in batch:
            flat = anchors.reshape(-1, 7)
            preds, g0, g1, g2 = [], [], [], []
            for i, (pos, gt_idx) in enumerate(matches):
                if pos.numel() == 0:
                    continue
                tgt = batch["targets"][i]
                hist = batch["history"][i]  # list of 3 dicts (t, t−1, t−2) with boxes, track_ids
                ids = tgt["track_ids"][gt_idx]
                rows = []
                for h in hist:
                    if h["track_ids"].numel() == 0:
                        rows.append((torch.zeros_like(ids, dtype=torch.bool), torch.zeros_like(ids)))
                        continue
                    eq = ids[:, None] == h["track_ids"][None, :]
                    rows.append((eq.any(dim=1), eq.float().argmax(dim=1)))
                ok = rows[0][0] & rows[1][0] & rows[2][0]
                if not ok.any():
                    continue
                pred = decode_boxes(out["reg"][i].reshape(-1, 7)[pos[ok]], flat[pos[ok]])
                preds.append(pred)
                g0.append(hist[0]["boxes"][rows[0][1][ok]])
                g1.append(hist[1]["boxes"][rows[1][1][ok]])
                g2.append(hist[2]["boxes"][rows[2][1][ok]])
            if preds:
                lm = motion_consistency_loss(torch.cat(preds), torch.cat(g0), torch.cat(g1), torch.cat(g2))
            else:
                lm = total * 0.0
            total = total + self.motion_weight * lm
            parts["loss_motion"] = float(lm.detach())
        parts["loss"] = float(total.detach())
        return total, parts


__all__ = ["StereoDetector3D", "StageTimer", "CLASS_NAMES"]
