"""StreamDSGN / DSGN-like stereo 3D detector (one code path, fusion and motion loss switched by config).

Pipeline as released (``weiyangdaren/streamDSGN-pytorch``, ``pcdet/models/detectors_stream/stream.py``:
FEATURE_EXTRACTOR -> FUSION_STAGE -> AFTER_FUSION); shapes for a batch of N stereo pairs [N, C_in, H, W]:

1. ``FeatureNet`` on left and right (shared weights) -> stride-4 features [N, F, h, w] each.
2. plane-sweep cost volume over D depth planes -> ``PlaneSweepNet`` -> [N, C3, D, h, w], depth probability and
   logits [N, D, h, w] (the logits are supervised with depth, ``volume.depth_ce_loss``).
3. geometry volume: voxel centres of the grid (lidar-like frame) projected with P2 -> ``grid_sample`` ->
   [N, C3, Z, Y, X] -> height folded into channels: the *spatial features* [N, C3·Z, Y, X].
4. (StreamDSGN) ``FeatureFlowFusion`` of the previous frame's spatial features with the current ones
   (FUSION_IN_SPATIAL_FEATURES, before the BEV backbone; no fusion on a sequence's first frame).
5. ``BEVBackbone`` (the released VAN/LKA backbone) -> [N, C, Y, X] at the voxel resolution.
6. ``AnchorHead`` -> class/box/direction maps; trained on the *next* frame's boxes (the task supplies them),
   plus (StreamDSGN) the motion-consistency loss on tracked objects.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext

import torch
from torch import nn

from eventvision.models.conv import Conv3d
from eventvision.models.detect3d.backbone import BEVBackbone, FeatureNet
from eventvision.models.detect3d.fusion import FeatureFlowFusion, match_to_current, motion_consistency_loss
from eventvision.models.detect3d.geometry import (DepthBins, VoxelGrid, stereo_disparity_numerator,
                                                  voxel_sampling_grid)
from eventvision.models.detect3d.head import (CLASS_NAMES, AnchorHead, AnchorSpec, decode_boxes, decode_predictions,
                                              head_losses, make_anchors)
from eventvision.models.detect3d.volume import (PlaneSweepNet, build_cost_volume, depth_ce_loss, geometry_volume,
                                              warp_right_volume,
                                                stereo_volume_inputs)


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
    its motion-consistency loss. Every deliberate difference from the release is a keyword here (see
    docs/detect3d.md, "Model as released")."""

    def __init__(self, *, in_channels: int = 3, feat_width: int = 32, feat_channels: int = 32,
                 volume: str = "concat", gwc_groups: int = 8, psv_channels: int = 32, psv_convs: int = 2,
                 depth_min: float = 2.0, depth_max: float = 53.2, num_depth_bins: int = 64, geo_convs: int = 0,
                 x_range=(2.0, 53.2), y_range=(-28.8, 28.8), z_range=(-3.0, 1.0), voxel_size=(0.2, 0.2, 0.4),
                 bev_channels: int = 64, bev_embed_dims=(128, 128), bev_depths=(2, 2), bev_mlp_ratios=(2.0, 2.0),
                 bev_kernel: int = 7, bev_up_filters=(128, 64), bev_layer_scale: float = 1e-2,
                 head_convs: int = 2, head_channels: int = 64,
                 fusion: bool = True, fusion_radius: int = 3, fusion_prob_factor: float = 0.8,
                 fusion_interp: str = "bilinear", fusion_gate_init: float | None = None, history_grad: bool = True,
                 motion_weight: float = 0.2, motion_second_order: float = 0.2, camera_height: float = 1.65,
                 anchor_sizes=None, loc_weight: float = 0.5, dir_weight: float = 0.2, iou_weight: float = 1.0,
                 depth_weight: float = 1.0, pos_norm_clamp: float = 10.0,
                 score_thresh: float = 0.1, nms_thresh: float = 0.25, max_dets: int = 50,
                 image_mean: float = 0.45, image_std: float = 0.225):
        super().__init__()
        self.grid = VoxelGrid(tuple(x_range), tuple(y_range), tuple(z_range), tuple(voxel_size))
        self.bins = DepthBins(depth_min, depth_max, num_depth_bins)
        self.volume_kind, self.gwc_groups = volume, gwc_groups
        self.image_mean, self.image_std = image_mean, image_std
        self.features = FeatureNet(in_channels=in_channels, width=feat_width, out_channels=feat_channels)
        cv_in = 2 * feat_channels if volume == "concat" else gwc_groups
        self.psv = PlaneSweepNet(in_channels=cv_in, channels=psv_channels, num_convs=psv_convs)
        # the release's rpn3d convs on the geometry volume (first 1x1x1, then 3x3x3, conv-BN-ReLU): they put the
        # spatial features on the BN scale the fusion block adds its BaseConv outputs to
        layers = []
        for i in range(geo_convs):
            k = 1 if i == 0 else 3
            layers += [Conv3d(psv_channels, psv_channels, k, 1, k // 2, bias=False), nn.BatchNorm3d(psv_channels),
                       nn.ReLU(inplace=True)]
        self.geo_convs = nn.Sequential(*layers)
        spatial = psv_channels * self.grid.shape[0]
        self.fusion = (FeatureFlowFusion(spatial, radius=fusion_radius, prob_factor=fusion_prob_factor,
                                         interp=fusion_interp, gate_init=fusion_gate_init) if fusion else None)
        self.history_grad = bool(history_grad)
        self.bev = BEVBackbone(in_channels=spatial, channels=bev_channels, embed_dims=tuple(bev_embed_dims),
                               depths=tuple(bev_depths), mlp_ratios=tuple(bev_mlp_ratios), k_size=bev_kernel,
                               up_filters=tuple(bev_up_filters), layer_scale=bev_layer_scale)
        self.motion_weight, self.motion_second_order = float(motion_weight), float(motion_second_order)
        sizes = tuple(tuple(s) for s in anchor_sizes) if anchor_sizes else AnchorSpec().sizes
        self.anchor_spec = AnchorSpec(sizes=sizes, ground_z=-camera_height)
        self.head = AnchorHead(self.bev.out_channels, self.anchor_spec, num_convs=head_convs, hidden=head_channels)
        self.loss_kw = dict(loc_weight=loc_weight, dir_weight=dir_weight, iou_weight=iou_weight,
                            pos_norm_clamp=pos_norm_clamp)
        self.depth_weight = float(depth_weight)
        self.decode_kw = dict(score_thresh=score_thresh, nms_thresh=nms_thresh, max_dets=max_dets)
        self._stream_prev: torch.Tensor | None = None
        self._sampling_cache: tuple | None = None

    @classmethod
    def from_config(cls, m) -> "StereoDetector3D":
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(m).items()})

    # ------------------------------------------------------------------------------- forward pieces
    def anchors(self, device, dtype=torch.float32):
        xy = self.grid.bev_centres(1, device=device, dtype=dtype)
        return make_anchors(xy, self.anchor_spec)

    def spatial_features(self, left, right, P2, P3, timer=_no_timer) -> tuple[torch.Tensor, torch.Tensor]:
        """Stereo pair [N, C, H, W] + calibration [N, 3, 4] -> (spatial BEV features [N, C3·Z, Y, X], depth
        logits of the plane sweep [N, D, h, w])."""
        dev = left.device
        with timer("features", dev):
            n = left.shape[0]
            both = self.features((torch.cat([left, right]) - self.image_mean) / self.image_std)
            fl, fr = both[:n], both[n:]
        with timer("volume", dev):
            stride = self.features.stride
            grid = stereo_volume_inputs(fl, self.bins, stereo_disparity_numerator(P2, P3), stride)
            if self.volume_kind == "concat":   # the same as psv(build_cost_volume(...)), without the 2C volume
                psv, prob, logits = self.psv.forward_concat(fl, warp_right_volume(fr, grid))
            else:
                psv, prob, logits = self.psv(build_cost_volume(fl, fr, grid, kind=self.volume_kind,
                                                               groups=self.gwc_groups))
            sampling = self._voxel_sampling(P2, tuple(psv.shape[-2:]), stride)
            geo = self.geo_convs(geometry_volume(psv, prob, self.grid, self.bins, P2, stride,
                                                 sampling_grid=sampling))  # [N, C, Z, Y, X]
            n, c, z, y, x = geo.shape
        return geo.reshape(n, c * z, y, x), logits

    def _voxel_sampling(self, P2: torch.Tensor, feat_hw: tuple[int, int], stride: int) -> torch.Tensor:
        """:func:`voxel_sampling_grid` [N, Z, Y, X, 3], kept while ``P2`` and the feature size stay the same (a
        stream's frames share them; it depends on nothing else)."""
        key = (feat_hw, stride, P2.device, P2.dtype)
        cached = self._sampling_cache
        if cached is not None and cached[0] == key and torch.equal(cached[1], P2):
            return cached[2]
        g, _ = voxel_sampling_grid(self.grid, self.bins, P2, feat_hw, stride)
        self._sampling_cache = (key, P2.detach().clone(), g)
        return g

    def _head(self, spatial: torch.Tensor, out: dict, timer) -> dict:
        with timer("bev", spatial.device):
            bev = self.bev(spatial)
        with timer("head", bev.device):
            out.update(self.head(bev))
        return out

    def forward(self, batch: dict, timer=_no_timer) -> dict:
        """Training/eval forward. ``batch``: left/right [N, C, H, W], P2/P3 [N, 3, 4], optional prev_left/prev_right
        (the previous frame, used when fusion is on) and ``has_prev`` [N] bool. Returns head maps, the depth
        logits ``depth_logits`` and (fused) ``shift``."""
        spatial, logits = self.spatial_features(batch["left"], batch["right"], batch["P2"], batch["P3"], timer)
        out = {"depth_logits": logits}
        if self.fusion is not None:
            prev = None
            if batch.get("prev_left") is not None:
                # WITH_GRAD_WHEN_OBTAINING_HISTORY (the release trains the previous frame's branch too)
                grad = self.history_grad and torch.is_grad_enabled()
                with nullcontext() if grad else torch.no_grad():
                    prev, _ = self.spatial_features(batch["prev_left"], batch["prev_right"], batch["P2"], batch["P3"])
            with timer("fusion", spatial.device):
                spatial, out["shift"] = self.fusion(prev, spatial, batch.get("has_prev"))
        return self._head(spatial, out, timer)

    @torch.no_grad()
    def stream_step(self, left, right, P2, P3, timer=_no_timer) -> dict:
        """Streaming inference on one frame: fuses with the spatial features cached from the previous call
        (none after ``reset_stream``: a sequence's first frame is not fused)."""
        spatial, _ = self.spatial_features(left, right, P2, P3, timer)
        out = {}
        if self.fusion is not None:
            with timer("fusion", spatial.device):
                fused, out["shift"] = self.fusion(self._stream_prev, spatial)
            self._stream_prev = spatial
            spatial = fused
        return self._head(spatial, out, timer)

    def reset_stream(self) -> None:
        """Forget the previous frame (and the fusion's cached maps of it): the next call starts a sequence."""
        self._stream_prev = None
        if self.fusion is not None:
            self.fusion.reset_stream()

    def decode(self, out: dict, **overrides) -> list[dict]:
        anchors, acls = self.anchors(out["cls"].device, out["reg"].dtype)
        return decode_predictions(out, anchors, acls, **{**self.decode_kw, **overrides})

    # ------------------------------------------------------------------------------------- losses
    def motion_loss(self, out: dict, batch: dict, anchors: torch.Tensor, matches) -> torch.Tensor:
        """The released trend loss over the batch (``fusion.motion_consistency_loss``): objects present at t and
        t−1 (and t−2 for the second-order term) by track id, positive anchors matched to them by rotated BEV
        IoU of their next-frame target plus the size check; weights 1 / max(#positives, pos_norm_clamp)."""
        flat = anchors.reshape(-1, 7)
        total = out["reg"].sum() * 0.0
        n = out["reg"].shape[0]
        for i, (pos, gt_idx) in enumerate(matches):
            hist = batch["history"][i]  # dicts for t, t−1, t−2 (boxes, track_ids; empty outside the patch)
            if pos.numel() == 0 or hist[0]["track_ids"].numel() == 0 or hist[1]["track_ids"].numel() == 0:
                continue
            use2 = hist[2]["track_ids"].numel() > 0 and self.motion_second_order > 0
            common = hist[0]["track_ids"]
            for h in hist[1:3 if use2 else 2]:
                common = common[torch.isin(common, h["track_ids"])]
            if common.numel() == 0:
                continue

            def rows(h):
                return torch.stack([torch.nonzero(h["track_ids"] == c).flatten()[0] for c in common])

            cur = hist[0]["boxes"][rows(hist[0])]
            tgt_next = batch["targets"][i]["boxes"][gt_idx]
            j = match_to_current(tgt_next, cur)
            ok = j >= 0
            if not ok.any():
                continue
            pred = decode_boxes(out["reg"][i].reshape(-1, 7)[pos[ok]], flat[pos[ok]])
            w = torch.full((int(ok.sum()),), 1.0 / max(float(pos.numel()), self.loss_kw["pos_norm_clamp"], 1.0),
                           dtype=pred.dtype, device=pred.device)
            g0 = cur[j[ok]]
            g1 = hist[1]["boxes"][rows(hist[1])][j[ok]]
            g2 = hist[2]["boxes"][rows(hist[2])][j[ok]] if use2 else None
            total = total + motion_consistency_loss(pred, g0, g1, g2, w, second_order_weight=self.motion_second_order)
        return total / n

    def loss(self, out: dict, batch: dict) -> tuple[torch.Tensor, dict]:
        """Detection loss against ``batch["targets"]`` (boxes of frame t+1), the depth loss of the plane sweep
        when ``batch["depth"]`` is there, and (``motion_weight`` > 0) the motion-consistency loss with
        ``batch["history"]`` (boxes at t, t−1, t−2 with track ids)."""
        anchors, acls = self.anchors(out["cls"].device, out["reg"].dtype)
        total, parts, matches = head_losses(out, anchors, acls, batch["targets"], self.anchor_spec, **self.loss_kw)
        if self.depth_weight > 0 and batch.get("depth") is not None and "depth_logits" in out:
            ld = depth_ce_loss(out["depth_logits"], batch["depth"].to(out["depth_logits"].device), self.bins)
            total = total + self.depth_weight * ld
            parts["loss_depth"] = float(ld.detach())
        if self.motion_weight > 0 and "history" in batch:
            lm = self.motion_loss(out, batch, anchors, matches)
            total = total + self.motion_weight * lm
            parts["loss_motion"] = float(lm.detach())
        parts["loss"] = float(total.detach())
        return total, parts


__all__ = ["StereoDetector3D", "StageTimer", "CLASS_NAMES"]
