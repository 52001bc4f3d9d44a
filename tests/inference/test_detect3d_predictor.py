"""The detect3d predictor: warm-up before the first timed frame, frame skipping, track association."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import torch

from eventvision.evaluation.streaming import simulated_schedule
from eventvision.inference.detect3d import Detect3DPredictor, associate
from eventvision.simulate.kitti_scenes import SceneConfig, write_sequence


class _SlowFirstCall:
    """A stand-in detector whose first call pays a lazy-initialisation cost (like kernel compilation)."""

    grid = SimpleNamespace(x_range=(2.0, 53.2), y_range=(-28.8, 28.8))

    def __init__(self, first_s: float, then_s: float):
        self.calls, self.first_s, self.then_s = 0, first_s, then_s

    def reset_stream(self):
        pass

    def stream_step(self, left, right, P2, P3):
        time.sleep(self.first_s if self.calls == 0 else self.then_s)
        self.calls += 1
        return {}

    def decode(self, out):
        return [{"boxes": torch.zeros(0, 7), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}]


def test_warm_up_keeps_the_first_frames(tmp_path):
    from eventvision.data.detect3d.kitti_tracking import load_sequence
    write_sequence(tmp_path, "0000", seed=1, cfg=SceneConfig(num_frames=8, num_objects=1, image_scale=0.25,
                                                             supersample=1))
    seq = load_sequence(tmp_path / "training", "0000")
    model = _SlowFirstCall(first_s=0.6, then_s=0.01)
    pred = Detect3DPredictor(model, torch.device("cpu"), image_scale=0.25)
    pred.warm_up(seq)
    frames = [r.frame for r in pred.stream(seq)]
    assert model.calls == 1 + len(frames)
    assert frames == list(range(8))  # without the warm-up the 600 ms first run would skip frames 1-5
    cold = Detect3DPredictor(_SlowFirstCall(first_s=0.6, then_s=0.01), torch.device("cpu"), image_scale=0.25)
    assert [r.frame for r in cold.stream(seq)][:2] == [0, 6]


def test_fixed_latency_follows_the_evaluators_schedule(tmp_path):
    from eventvision.data.detect3d.kitti_tracking import load_sequence
    write_sequence(tmp_path, "0000", seed=2, cfg=SceneConfig(num_frames=10, num_objects=1, image_scale=0.25,
                                                             supersample=1))
    seq = load_sequence(tmp_path / "training", "0000")
    pred = Detect3DPredictor(_SlowFirstCall(0.0, 0.0), torch.device("cpu"), image_scale=0.25, latency_ms=230.0)
    runs = list(pred.stream(seq))
    ref = simulated_schedule(10, [230.0])
    assert [r.frame for r in runs] == ref.frame.tolist()
    np.testing.assert_allclose([r.emission_ms for r in runs], ref.time_ms)


def test_greedy_track_association():
    prev_boxes = np.array([[10.0, 0.0, -0.8, 3.9, 1.6, 1.5, 0.0], [20.0, 5.0, -0.8, 3.9, 1.6, 1.5, 0.0]])
    cur = np.array([[20.4, 5.1, -0.8, 3.9, 1.6, 1.5, 0.0], [40.0, 0.0, -0.8, 3.9, 1.6, 1.5, 0.0],
                    [10.3, 0.0, -0.8, 3.9, 1.6, 1.5, 0.0]])
    ids, nxt = associate(np.array([7, 8]), cur, np.array([0, 0, 0]), prev_boxes, np.array([0, 0]), 9)
    assert ids.tolist() == [8, 9, 7] and nxt == 10


class _ForecastsOffAlongTheRay:
    """A stand-in detector whose forecasts are the next frame's true cars pushed ``offset_m`` along their rays."""

    grid = SimpleNamespace(x_range=(2.0, 53.2), y_range=(-28.8, 28.8))

    def __init__(self, seq, offset_m: float):
        from eventvision.geometry.boxes3d import camera_centre, objects_to_grid_boxes
        from eventvision.models.detect3d.alignment import grid_ranges, scale_grid_range

        centre = camera_centre(seq.calib.P2)
        self.forecasts = []
        for f in range(seq.num_frames):
            boxes, _, _ = objects_to_grid_boxes(seq.objects[min(f + 1, seq.num_frames - 1)])
            r = grid_ranges(boxes, centre)
            self.forecasts.append(scale_grid_range(boxes, centre, (r + offset_m) / r))
        self.calls = 0

    def reset_stream(self):
        self.calls = 0

    def stream_step(self, left, right, P2, P3):
        self.calls += 1
        return {"boxes": self.forecasts[self.calls - 1]}

    def decode(self, out):
        n = len(out["boxes"])
        return [{"boxes": torch.as_tensor(out["boxes"], dtype=torch.float32), "scores": torch.full((n,), 0.9),
                 "labels": torch.zeros(n, dtype=torch.long)}]


def test_box_alignment_pulls_forecasts_onto_the_cars(tmp_path):
    """Forecasts 1 m too far along the ray: from a track's second run on, the aligned range and its rate put the
    emitted box within a few decimetres of the next frame's car."""
    from eventvision.data.detect3d.kitti_tracking import load_sequence
    from eventvision.geometry.boxes3d import objects_to_grid_boxes
    from eventvision.models.detect3d.alignment import RangeForecaster

    write_sequence(tmp_path, "0000", seed=4, cfg=SceneConfig(num_frames=8, num_objects=2, image_scale=0.25,
                                                             class_probs=(1.0, 0.0, 0.0), supersample=4,
                                                             z_range=(8.0, 16.0)))
    seq = load_sequence(tmp_path / "training", "0000")
    pred = Detect3DPredictor(_ForecastsOffAlongTheRay(seq, 1.0), torch.device("cpu"), image_scale=0.25,
                             latency_ms=50.0, box_alignment=RangeForecaster())
    errors = {}
    for r in pred.stream(seq):
        truth, _, _ = objects_to_grid_boxes(seq.objects[min(r.frame + 1, seq.num_frames - 1)])
        for box in r.boxes:
            errors.setdefault(r.frame, []).append(np.hypot(*(truth[:, :2] - box[:2]).T).min())
    assert np.allclose(errors[0], 1.0, atol=1e-3)                 # first sight: the detector's forecast as it is
    later = np.concatenate([errors[f] for f in range(2, seq.num_frames - 1)])
    assert len(later) >= 6 and np.median(later) < 0.3


def test_box_alignment_needs_images():
    import pytest

    from eventvision.errors import InvalidValueError
    from eventvision.models.detect3d.alignment import RangeForecaster

    with pytest.raises(InvalidValueError, match="image input"):
        Detect3DPredictor(_SlowFirstCall(0.0, 0.0), torch.device("cpu"), input_kind="events",
                          box_alignment=RangeForecaster())
