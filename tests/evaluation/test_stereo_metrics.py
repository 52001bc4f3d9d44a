import math

import numpy as np
import pytest
import torch

from eventvision.evaluation.stereo import (
    MVSEC_FOCAL_BASELINE,
    StereoEvaluator,
    depth_errors,
    epe,
    event_support_mask,
    mean_depth_error,
    median_depth_error,
    npe,
    one_pixel_accuracy,
    rmse,
    valid_mask,
)

FB = MVSEC_FOCAL_BASELINE["indoor_flying"]
GT = np.array([[1.0, 2.0, np.nan], [0.0, 5.0, 70.0], [10.0, -3.0, 4.0]])
PRED = np.array([[1.5, 4.5, 3.0], [9.0, 5.0, 1.0], [7.0, 2.0, 2.0]])
# valid (finite, > 0, < 63): 1, 2, 5, 10, 4 -> errors 0.5, 2.5, 0, 3, 2


def test_valid_mask():
    assert valid_mask(GT, 63).tolist() == [[True, True, False], [False, True, False], [True, False, True]]
    assert valid_mask(GT).sum() == 6  # 70 counts without max_disp


def test_disparity_metrics_hand_computed():
    assert epe(PRED, GT, 63) == pytest.approx((0.5 + 2.5 + 0 + 3 + 2) / 5)
    assert npe(PRED, GT, 1, 63) == pytest.approx(60.0)   # 2.5, 3, 2
    assert npe(PRED, GT, 2, 63) == pytest.approx(40.0)   # 2.5, 3 (2 is not > 2)
    assert npe(PRED, GT, 3, 63) == pytest.approx(0.0)
    assert rmse(PRED, GT, 63) == pytest.approx(math.sqrt((0.25 + 6.25 + 0 + 9 + 4) / 5))
    assert one_pixel_accuracy(PRED, GT, 63) == pytest.approx(40.0)   # 0.5, 0
    assert math.isnan(epe(PRED, np.full_like(GT, np.nan), 63))


def test_depth_metrics_hand_computed():
    expected = [abs(FB / 1.5 - FB / 1), abs(FB / 4.5 - FB / 2), 0.0, abs(FB / 7 - FB / 10), abs(FB / 2 - FB / 4)]
    np.testing.assert_allclose(np.sort(depth_errors(PRED, GT, FB, 63)), np.sort(expected))
    assert mean_depth_error(PRED, GT, FB, 63) == pytest.approx(np.mean(expected))
    assert median_depth_error(PRED, GT, FB, 63) == pytest.approx(np.median(expected))
    # a zero prediction gives a large finite error (clamped at 1e-3 px)
    assert np.isfinite(depth_errors(np.zeros_like(PRED), GT, FB, 63)).all()


def test_evaluator_accumulates_like_the_functions():
    rng = np.random.default_rng(0)
    gts = [rng.uniform(0.5, 40, (2, 8, 9)) for _ in range(3)]
    preds = [g + rng.normal(0, 1.5, g.shape) for g in gts]
    gts[0][0, :3] = np.nan
    ev = StereoEvaluator(max_disp=30, focal_baseline=FB)
    for g, p in zip(gts, preds):
        ev.process({"disparity": torch.from_numpy(g)}, torch.from_numpy(p))
    m = ev.evaluate()
    G, P = np.concatenate([g.ravel() for g in gts]), np.concatenate([p.ravel() for p in preds])
    assert m["epe"] == pytest.approx(epe(P, G, 30)) and m["mae"] == m["epe"]
    for n in (1, 2, 3):
        assert m[f"{n}pe"] == pytest.approx(npe(P, G, n, 30))
    assert m["rmse"] == pytest.approx(rmse(P, G, 30))
    assert m["1pa"] == pytest.approx(one_pixel_accuracy(P, G, 30))
    assert m["mean_depth_error_m"] == pytest.approx(mean_depth_error(P, G, FB, 30))
    assert m["median_depth_error_m"] == pytest.approx(median_depth_error(P, G, FB, 30), abs=1e-4)
    assert m["valid_pixels"] == valid_mask(G, 30).sum()

    # reset between recordings restores the fresh state
    ev.reset()
    assert math.isnan(ev.evaluate()["epe"]) and ev.evaluate()["valid_pixels"] == 0
    ev.process({"disparity": gts[1]}, {"disparity": preds[1]})
    fresh = StereoEvaluator(max_disp=30, focal_baseline=FB)
    fresh.process({"disparity": gts[1]}, preds[1])
    assert ev.evaluate() == fresh.evaluate()

    # DDP: per-rank states merged == one evaluator over everything
    ranks = [StereoEvaluator(max_disp=30, focal_baseline=FB) for _ in range(2)]
    for i, (g, p) in enumerate(zip(gts, preds)):
        ranks[i % 2].process({"disparity": g}, p)
    merged = StereoEvaluator(max_disp=30, focal_baseline=FB)
    merged.merge([r.state() for r in ranks])
    assert merged.evaluate() == pytest.approx(m)


def test_evaluator_without_depth_and_from_config():
    ev = StereoEvaluator.from_config({"max_disp": 63, "focal_baseline": "outdoor_day"})
    assert ev.focal_baseline == MVSEC_FOCAL_BASELINE["outdoor_day"] == 19.635287
    plain = StereoEvaluator(max_disp=63)
    plain.process({"disparity": GT[None]}, PRED[None])
    assert "mean_depth_error_m" not in plain.evaluate()
    assert plain.evaluate()["1pe"] == pytest.approx(60.0)
    with pytest.raises(ValueError, match="shape"):
        plain.process({"disparity": GT}, PRED[:2])


def test_nan_prediction_is_no_answer_and_pictures(tmp_path):
    from eventvision.evaluation.stereo import StereoEvaluator
    gt = np.full((1, 4, 5), 10.0, dtype=np.float32)
    gt[0, 0, 0] = np.nan                                       # invalid GT: not counted anywhere
    pred = np.full((1, 4, 5), 11.0, dtype=np.float32)
    pred[0, 1, :] = np.nan                                     # 5 valid pixels without an answer
    ev = StereoEvaluator(max_disp=63, pictures=1)
    ev.process({"disparity": gt}, pred)
    m = ev.evaluate()
    assert m["valid_pixels"] == 14 and m["epe"] == pytest.approx(1.0)
    assert m["answered_pct"] == pytest.approx(100.0 * 14 / 19)
    paths = ev.save_pictures(tmp_path)
    assert [p.name for p in paths] == ["disparity_000.png"] and paths[0].stat().st_size > 100


def test_event_support_mask_marks_pixels_near_an_event():
    from eventvision.events.core import EVENT_DTYPE

    ev = np.zeros(3, dtype=EVENT_DTYPE)
    ev["x"], ev["y"] = [5, 0, 40], [5, 9, 3]          # the last is outside the 20x10 frame: ignored
    mask = event_support_mask(ev, 20, 10, radius=2)
    assert mask.shape == (10, 20)
    assert mask[3:8, 3:8].all() and not mask[5, 8] and not mask[2, 5]   # a 5x5 square around (5, 5)
    assert mask[7:10, 0:3].all() and mask.sum() == 25 + 9
    assert event_support_mask(ev, 20, 10, radius=0).sum() == 2
