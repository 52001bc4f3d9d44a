"""KITTI AP: hand-built cases with AP computed by hand on the 41-point rule, reference rules, real labels."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.evaluation.kitti import ap
from eventvision.formats import kitti as io

SEQS = ["0001", "0006", "0008", "0010", "0012", "0013", "0014", "0015", "0016", "0018", "0019"]


def car(frame=0, x=0.0, *, type="Car", score=1.0, height_px=50.0, occluded=0, truncated=0.0, bbox_x=100.0,
        y=1.6, ry=0.0):
    """A car 20 m ahead at lateral x, 2D box of the given height at image column bbox_x."""
    return io.make_objects(frame=frame, type=type, score=score, occluded=occluded, truncated=truncated, alpha=0.0,
                           bbox=[bbox_x, 150.0, bbox_x + 60.0, 150.0 + height_px], dimensions=[1.5, 1.6, 3.9],
                           location=[x, y, 20.0], rotation_y=ry)


def frames_of(objs, n):
    objs = np.concatenate(objs) if objs else io.empty_objects(0)
    return io.split_frames(objs, n)


def test_get_thresholds_sampling():
    # 80 GT: point 0 <- 1st TP, point k <- recall k/40 (2k-th TP) -> 41 thresholds
    scores = 1.0 - np.arange(80) / 100.0
    th = ap.get_thresholds(scores, 80)
    assert len(th) == 41
    assert th[0] == scores[0] and th[1] == scores[1] and th[2] == scores[3] and th[-1] == scores[-1]
    # few GT: every TP gets its own point (the reference's known small-sample behaviour)
    np.testing.assert_array_equal(ap.get_thresholds(np.array([0.5, 0.9, 0.7]), 4), [0.9, 0.7, 0.5])


def test_ap_by_hand_interleaved_false_positives():
    """80 GT cars (one per frame), 80 exact detections with scores 1 - i/100, 10 false positives scoring
    between the 40th and 41st TP. Points k <= 20 hold precision 1; points 21..40 the max over higher
    recall of 2k/(2k+10) = 80/90.  R40 = (20 + 20*8/9)/40, R11 = (6 + 5*8/9)/11."""
    gts, dets = [], []
    for i in range(80):
        gts.append(car(i, x=0.0))
        dets.append(car(i, x=0.0, score=1.0 - i / 100.0))
    for k in range(10):  # false positives in frames 80..89 (no GT there)
        dets.append(car(80 + k, x=0.0, score=0.605))
    res = ap.kitti_eval(frames_of(gts, 90), frames_of(dets, 90))
    r40 = (20 + 20 * 8 / 9) / 40 * 100
    r11 = (6 + 5 * 8 / 9) / 11 * 100
    for metric in ("bbox", "bev", "3d", "aos"):
        assert res["Car"][metric]["R40"] == pytest.approx([r40] * 3)
        assert res["Car"][metric]["R11"] == pytest.approx([r11] * 3)
    assert res["Pedestrian"]["3d"]["R40"] == [0.0, 0.0, 0.0]  # no valid GT -> 0, as the reference


def test_ap_by_hand_few_gt():
    """4 GT, TPs at 0.9/0.7/0.5 and a FP at 0.8: thresholds [0.9, 0.7, 0.5] fill points 0..2 with
    precision 1, 2/3, 3/4 -> interpolated 1, 3/4, 3/4 -> R40 = 1.5/40, R11 = 1/11."""
    gts = [car(0, x=-9.0, bbox_x=0), car(0, x=-3.0, bbox_x=200), car(0, x=3.0, bbox_x=400), car(0, x=9.0, bbox_x=600)]
    dets = [car(0, x=-9.0, bbox_x=0, score=0.9), car(0, x=-3.0, bbox_x=200, score=0.7),
            car(0, x=3.0, bbox_x=400, score=0.5), car(0, x=20.0, bbox_x=900, score=0.8)]
    res = ap.evaluate_kitti(frames_of(gts, 1), frames_of(dets, 1), classes=["Car"])
    np.testing.assert_allclose(res.precision[("Car", "3d")][:, :4], [[1, 0.75, 0.75, 0]] * 3)
    d = res.to_dict()
    assert d["Car"]["3d"]["R40"] == pytest.approx([1.5 / 40 * 100] * 3)
    assert d["Car"]["bbox"]["R11"] == pytest.approx([100 / 11] * 3)


def _single_gt_case(extra_gt, extra_det, metric="bbox"):
    """40 valid GT cars matched exactly (scores 0.5..0.9) + extra objects; returns interpolated precision."""
    gts = [car(i, x=0.0) for i in range(40)] + extra_gt
    dets = [car(i, x=0.0, score=0.9 - i / 100.0) for i in range(40)] + extra_det
    res = ap.evaluate_kitti(frames_of(gts, 41), frames_of(dets, 41), classes=["Car"], metrics=(metric,))
    return res.precision[("Car", metric)]


def test_ignore_rules():
    fp = [car(40, x=0.0, score=0.95)]  # a high-scoring FP in an empty frame
    counted = 40 / 41  # the FP counts at every threshold; interpolated precision = max = 40/41
    assert _single_gt_case([], fp)[0, 0] == pytest.approx(counted)
    # the same detection on a Van (ignored for Car) -> neither TP nor FP
    assert _single_gt_case([car(40, x=0.0, type="Van")], fp)[0, 0] == 1.0
    # on a Pedestrian GT (another class) -> a FP
    assert _single_gt_case([car(40, x=0.0, type="Pedestrian")], fp)[0, 0] == pytest.approx(counted)
    # on a heavily occluded car: ignored GT for easy/moderate (not a FP), a valid TP for hard
    p = _single_gt_case([car(40, x=0.0, occluded=2)], fp)
    assert p[0, 0] == 1.0 and p[1, 0] == 1.0 and p[2, 0] == 1.0
    # tracking truncation level 1, read verbatim, exceeds every max (0.15/0.3/0.5): ignored GT everywhere
    p = _single_gt_case([car(40, x=0.0, truncated=1.0)], fp)
    assert (p[:, 0] == 1.0).all()
    # object-style truncation 0.2: ignored for easy (> 0.15) only
    p = _single_gt_case([car(40, x=0.0, truncated=0.2)], fp)
    assert (p[:, 0] == 1.0).all()
    res = ap.evaluate_kitti(frames_of([car(0, truncated=0.2)], 1), frames_of([car(0)], 1), classes=["Car"])
    assert res.num_valid_gt[("Car", "easy")] == 0
    # a 35 px tall car: ignored for easy (<= 40 px), valid for moderate
    p = _single_gt_case([car(40, x=0.0, height_px=35.0)], [car(40, x=0.0, score=0.95, height_px=35.0)])
    assert p[0, 0] == 1.0 and p[1, 0] == 1.0
    # a 20 px tall detection is ignored (< 25 px) everywhere: not a FP
    assert (_single_gt_case([], [car(40, x=0.0, score=0.95, height_px=20.0)])[:, 0] == 1.0).all()
    # DontCare: the unmatched detection inside it is no FP for bbox, but is for BEV/3D
    dc = io.make_objects(frame=40, type="DontCare", bbox=[90.0, 140.0, 170.0, 210.0], dimensions=[-1, -1, -1],
                         location=[-1000, -1000, -1000], rotation_y=-10)
    assert _single_gt_case([dc], fp, "bbox")[0, 0] == 1.0
    assert _single_gt_case([dc], fp, "bev")[0, 0] == pytest.approx(counted)
    assert _single_gt_case([dc], fp, "3d")[0, 0] == pytest.approx(counted)


def test_iou_threshold_strict_and_loose():
    """A detection shifted 0.8 m sideways: 3D IoU = (1.6-0.8)/(1.6+0.8) = 1/3 -> a miss at 0.7 and 0.5,
    a hit at the loose 0.25 threshold; bbox unaffected."""
    gts = [car(i, x=0.0) for i in range(40)]
    dets = [car(i, x=0.8, score=0.9 - i / 100.0) for i in range(40)]
    strict = ap.kitti_eval(frames_of(gts, 40), frames_of(dets, 40), classes=["Car"])
    loose = ap.kitti_eval(frames_of(gts, 40), frames_of(dets, 40), classes=["Car"], overlap="loose")
    assert strict["Car"]["3d"]["R40"] == [0.0] * 3 and strict["Car"]["bev"]["R40"] == [0.0] * 3
    assert loose["Car"]["3d"]["R40"] == pytest.approx([97.5] * 3)  # 40 GT -> 40 of 41 points (reference)
    assert strict["Car"]["bbox"]["R40"] == pytest.approx([97.5] * 3)


def _load(shared_data, seqs):
    gt_frames = []
    for s in seqs:
        objs = io.read_sequence_labels(shared_data / "kitti_tracking", s)
        gt_frames += io.split_frames(objs, int(objs["frame"].max()) + 1)
    return gt_frames


def test_gt_as_predictions_real_labels(shared_data):
    gt = _load(shared_data, SEQS)
    assert len(gt) == 3908
    dets = [f[f["type"] != "DontCare"] for f in gt]  # every labelled object, score 1
    res = ap.evaluate_kitti(gt, dets)
    for cls in ("Car", "Pedestrian", "Cyclist"):
        assert all(res.num_valid_gt[(cls, d)] > 0 for d in ap.DIFFICULTIES)
    d = res.to_dict()
    for cls in ("Car", "Pedestrian", "Cyclist"):
        for metric in ("bbox", "bev", "3d", "aos"):
            assert d[cls][metric]["R40"] == pytest.approx([100.0] * 3), (cls, metric)
            assert d[cls][metric]["R11"] == pytest.approx([100.0] * 3), (cls, metric)


def test_no_valid_gt_gives_zero(shared_data):
    # sequence 0001 has no cyclist: the reference leaves AP at 0 even for perfect detections
    gt = _load(shared_data, ["0001"])
    dets = [f[f["type"] != "DontCare"] for f in gt]
    res = ap.evaluate_kitti(gt, dets)
    assert res.num_valid_gt[("Cyclist", "hard")] == 0
    d = res.to_dict()
    assert d["Cyclist"]["3d"]["R40"] == [0.0] * 3
    assert d["Car"]["3d"]["R40"] == pytest.approx([100.0] * 3)


def test_evaluator_interface(shared_data):
    gt = _load(shared_data, ["0006"])
    dets = [f[f["type"] != "DontCare"] for f in gt]
    ev = ap.KittiAPEvaluator(classes=["Car"], metrics=("3d",))
    ev.process(gt[:100], dets[:100])
    ev.process(gt[100:], dets[100:])
    out = ev.evaluate()
    assert out["Car/3d/R40/moderate"] == pytest.approx(100.0)
    ev.reset()
    ev.process(gt, [d[:0] for d in dets])
    assert ev.evaluate()["Car/3d/R40/moderate"] == 0.0
