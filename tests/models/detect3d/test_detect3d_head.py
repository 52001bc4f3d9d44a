"""Anchor head: coding, target assignment, decoding + rotated NMS, KITTI conversion, the full model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eventvision.formats.kitti import read_calib
from eventvision.models.detect3d import StereoDetector3D
from eventvision.models.detect3d.head import (AnchorSpec, aligned_iou, assign_targets, decode_boxes, decode_predictions,
                                              direction_targets, encode_boxes, make_anchors, nearest_bev_rects,
                                              rotated_nms)
from eventvision.geometry.boxes3d import objects_to_grid_boxes
from eventvision.models.detect3d.postprocess import detections_to_objects


def test_encode_decode_round_trip():
    anchors = torch.tensor([[10.0, 2.0, -0.87, 3.9, 1.6, 1.56, 0.0], [30.0, -5.0, -0.8, 0.8, 0.6, 1.73, math.pi / 2]])
    gt = torch.tensor([[10.7, 1.6, -0.8, 4.2, 1.7, 1.5, 0.3], [29.5, -5.2, -0.7, 0.9, 0.5, 1.8, 1.2]])
    np.testing.assert_allclose(decode_boxes(encode_boxes(gt, anchors), anchors).numpy(), gt.numpy(), atol=1e-5)


def test_anchor_layout_and_assignment():
    spec = AnchorSpec()
    xy = torch.stack(torch.meshgrid(torch.arange(4.0) * 0.8 + 10.4, torch.arange(5.0) * 0.8 - 1.6, indexing="xy"), -1)
    anchors, acls = make_anchors(xy, spec)  # [H=5, W=4, 6, 7]
    assert anchors.shape == (5, 4, 6, 7) and acls.tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_allclose(anchors[0, 0, 0, :3].numpy(), [10.4, -1.6, -1.65 + 0.78], atol=1e-6)
    flat = anchors.reshape(-1, 7)
    a_cls = acls.repeat(20)
    gt = flat[[25]].clone()  # exactly an anchor (cell 4, anchor 1 = Car at rotation π/2)
    labels, matched = assign_targets(flat, a_cls, gt, torch.tensor([0]), spec)
    assert labels[25] == 1 and matched[25] == 0
    assert (labels[a_cls != 0] == 0).all()  # other classes' anchors are negatives
    assert (labels[(a_cls == 0)] >= 0).sum() >= 1


def test_nearest_bev_iou_and_direction():
    b = torch.tensor([[0.0, 0.0, 0.0, 4.0, 2.0, 1.5, math.pi / 2]])
    r = nearest_bev_rects(b)
    np.testing.assert_allclose(r.numpy(), [[-1.0, -2.0, 1.0, 2.0]], atol=1e-6)
    assert float(aligned_iou(r, r)[0, 0]) == pytest.approx(1.0)
    d = direction_targets(torch.tensor([0.0, math.pi, math.pi / 2, -math.pi / 2]), torch.zeros(4))
    # bins of θ − π/4 wrapped to [0, 2π): 0 -> 7π/4 (1), π -> 3π/4 (0), π/2 -> π/4 (0), −π/2 -> 5π/4 (1)
    assert d.tolist() == [1, 0, 0, 1]


def test_rotated_nms_removes_duplicates_only():
    boxes = torch.tensor([[10.0, 0.0, -0.8, 3.9, 1.6, 1.5, 0.1], [10.1, 0.05, -0.8, 3.9, 1.6, 1.5, 0.12],
                          [20.0, 3.0, -0.8, 3.9, 1.6, 1.5, 0.0]])
    keep = rotated_nms(boxes, torch.tensor([0.5, 0.9, 0.7]), 0.1)
    assert keep.tolist() == [1, 2]


def test_decode_recovers_an_encoded_box_with_direction():
    spec = AnchorSpec()
    xy = torch.stack(torch.meshgrid(torch.arange(6.0) * 0.8 + 10.4, torch.arange(6.0) * 0.8 - 2.4, indexing="xy"), -1)
    anchors, acls = make_anchors(xy, spec)
    flat = anchors.reshape(-1, 7)
    gt = torch.tensor([[12.3, -0.7, -0.85, 4.1, 1.7, 1.5, 2.8]])  # heading beyond π/2: needs the direction bin
    idx = 6 * 15 + 1
    out = {"cls": torch.full((1, 6, 6, 6), -10.0), "reg": torch.zeros(1, 6, 6, 6, 7), "dir": torch.zeros(1, 6, 6, 6, 2)}
    out["cls"].view(-1)[idx] = 5.0
    out["reg"].view(-1, 7)[idx] = encode_boxes(gt, flat[[idx]])[0]
    first = direction_targets(gt[:, 6], None)[0] == 1
    out["dir"].view(-1, 2)[idx] = torch.tensor([0.0, 5.0]) if first else torch.tensor([5.0, 0.0])
    det = decode_predictions(out, anchors, acls, score_thresh=0.5)[0]
    assert det["boxes"].shape == (1, 7) and det["labels"].tolist() == [0]
    np.testing.assert_allclose(det["boxes"][0].numpy(), gt[0].numpy(), atol=1e-4)


def test_kitti_conversion_round_trip(shared_data):
    calib = read_calib(shared_data / "kitti_tracking" / "training" / "calib" / "0000.txt")
    boxes = np.array([[15.0, 2.0, -0.87, 3.9, 1.6, 1.56, 0.3], [25.0, -4.0, -0.8, 0.8, 0.6, 1.73, -2.0]])
    objs = detections_to_objects(boxes, np.array([0.9, 0.4]), np.array([0, 1]), calib.P2, (1242, 375), frame=7)
    assert objs["type"].tolist() == ["Car", "Pedestrian"] and (objs["frame"] == 7).all()
    # bottom centre y = −(z − h/2) = camera height; dimensions stored h, w, l
    np.testing.assert_allclose(objs["location"][0], [-2.0, 0.87 + 0.78, 15.0], atol=1e-6)
    np.testing.assert_allclose(objs["dimensions"][0], [1.56, 1.6, 3.9], atol=1e-6)
    assert (objs["bbox"][:, 2] > objs["bbox"][:, 0]).all() and (objs["bbox"][:, 3] <= 374).all()
    back, labels, _ = objects_to_grid_boxes(objs)
    np.testing.assert_allclose(back, boxes, atol=1e-5)


def test_model_forward_loss_backward_and_decode():
    torch.manual_seed(0)
    m = StereoDetector3D(feat_width=8, feat_channels=16, psv_channels=8, psv_convs=1, num_depth_bins=16,
                         voxel_size=(1.6, 1.6, 1.0), bev_channels=16, bev_embed_dims=(16, 16), bev_depths=(1, 1),
                         bev_up_filters=(16, 16), head_convs=1, head_channels=16)
    P2 = torch.tensor([[180.4, 0, 152.0, 11.2], [0, 180.4, 42.8, 0.05], [0, 0, 1, 0.0027]])[None]
    P3 = P2.clone()
    P3[0, 0, 3] = -84.9
    b = {"left": torch.rand(1, 3, 64, 160), "right": torch.rand(1, 3, 64, 160), "P2": P2, "P3": P3,
         "prev_left": torch.rand(1, 3, 64, 160), "prev_right": torch.rand(1, 3, 64, 160)}
    out = m(b)
    assert out["cls"].shape == (1, 36, 32, 6) and out["reg"].shape == (1, 36, 32, 6, 7)
    tgt = torch.tensor([[20.0, 2.0, -0.87, 3.9, 1.6, 1.56, 0.3]])
    b["targets"] = [{"boxes": tgt, "labels": torch.tensor([0]), "track_ids": torch.tensor([4])}]
    b["history"] = [[{"boxes": tgt - torch.tensor([k * 0.5, 0, 0, 0, 0, 0, 0]), "track_ids": torch.tensor([4])}
                     for k in (1, 2, 3)]]
    loss, parts = m.loss(out, b)
    assert parts["num_pos"] >= 1 and parts["loss_motion"] > 0 and math.isfinite(parts["loss"])
    loss.backward()
    assert m.features.stem[0][0].weight.grad.abs().sum() > 0
    m.eval()
    with torch.no_grad():
        dets = m.decode(m(b), score_thresh=0.0, max_dets=5)
    assert dets[0]["boxes"].shape == (5, 7)


def test_rotated_nms_equals_greedy_nms_on_the_full_iou_matrix():
    """Row-by-row NMS (IoU of each kept box with the survivors only) keeps exactly what greedy NMS over the
    full N x N rotated IoU matrix keeps, on clustered boxes like a detector's candidates."""
    from eventvision.models.detect3d.head import rotated_bev_iou

    rng = np.random.default_rng(0)
    centres = rng.uniform([5, -10, -1], [40, 10, -0.5], size=(8, 3))
    boxes = np.concatenate([np.column_stack([c + rng.normal(0, [0.6, 0.4, 0.05], size=(40, 3)),
                                             rng.normal([3.9, 1.6, 1.5], 0.2, size=(40, 3)),
                                             rng.uniform(-np.pi, np.pi, 40)]) for c in centres])
    scores = rng.random(len(boxes))
    for thresh in (0.1, 0.25, 0.5):
        order = np.argsort(-scores, kind="stable")
        iou = rotated_bev_iou(boxes[order], boxes[order])
        suppressed, expected = np.zeros(len(boxes), bool), []
        for i in range(len(boxes)):
            if not suppressed[i]:
                expected.append(order[i])
                suppressed |= iou[i] > thresh
        kept = rotated_nms(torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores), thresh)
        assert kept.tolist() == expected and len(expected) < len(boxes)
