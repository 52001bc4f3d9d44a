"""eventvision.inference: stereo windows and rectification, gesture predictor over a recording, threads."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.events.core import make_events
from eventvision.events.recording import EventWindow


def _events(rng, n, width, height, t_max):
    return make_events(rng.integers(0, width, n), rng.integers(0, height, n),
                       np.sort(rng.integers(0, t_max, n)), rng.integers(0, 2, n))


def test_stereo_predictor_windows_are_half_open_and_rectified(tmp_path):
    from eventvision.data.stereo.export import identity_rectify_map, write_dsec_sequence
    from eventvision.events.recording import window_slice
    from eventvision.inference.stereo import StereoPredictor, open_stereo_input
    from eventvision.representations import rectify
    rng = np.random.default_rng(0)
    left, right = _events(rng, 5000, 40, 30, 120_000), _events(rng, 5000, 40, 30, 120_000)
    left["t"][:3] = [0, 0, 0]
    right["t"][-1] = 119_999
    maps = (identity_rectify_map(40, 30), identity_rectify_map(40, 30))
    maps[0][..., 0] += 1
    on_label_clock = [ev.copy() for ev in (left, right)]
    for ev in on_label_clock:
        ev["t"] += 500
    folder = write_dsec_sequence(tmp_path / "seq", left=on_label_clock[0], right=on_label_clock[1], width=40,
                                 height=30, t_offset=500, rectify_maps=maps)
    seen = []

    class Probe:
        name, max_disparity = "probe", 10.0

        def prepare(self, window):
            seen.append(window)
            return window

        def infer(self, window):
            return np.full((window.height, window.width), 1.0, np.float32)

    source = open_stereo_input(folder)
    results = list(StereoPredictor(Probe(), source, window_us=50_000))
    assert [(w.t0, w.t1) for w in seen] == [(0, 50_000), (50_000, 100_000), (100_000, 150_000)]
    assert [r.t_label_us for r in results] == [50_500, 100_500, 150_500]     # window end + t_offset
    for w in seen:
        np.testing.assert_array_equal(w.events, rectify(window_slice(left, w.t0, w.t1), maps[0]))
        np.testing.assert_array_equal(w.right, rectify(window_slice(right, w.t0, w.t1), maps[1]))
    assert sum(len(w.events) for w in seen) == len(rectify(left, maps[0]))    # each event in one window
    source.close()


def test_sgbm_method_matches_the_pure_function():
    from eventvision.inference.stereo import SGBMMethod
    from eventvision.matching.sgbm import sgbm_from_events
    rng = np.random.default_rng(1)
    left = _events(rng, 8000, 64, 48, 50_000)
    right = left.copy()
    right["x"] = np.maximum(right["x"].astype(int) - 5, 0)
    window = EventWindow(0, 50_000, left, 64, 48, right=right)
    got = SGBMMethod(max_disparity=31)(window)
    ref = sgbm_from_events(left, right, t_start=0, t_end=50_000, width=64, height=48, max_disparity=31)
    np.testing.assert_array_equal(got, ref)


def test_learned_method_and_missing_checkpoint(tmp_path):
    from eventvision.errors import DatasetNotFoundError
    from eventvision.inference.stereo import build_method
    with pytest.raises(DatasetNotFoundError, match="stereo checkpoint not found"):
        build_method("learned", checkpoint=tmp_path / "none.pt")
    method = build_method("learned")                                  # the bundled checkpoint
    rng = np.random.default_rng(2)
    ev = _events(rng, 3000, 48, 32, 50_000)
    disp = method(EventWindow(0, 50_000, ev, 48, 32, right=ev))
    assert disp.shape == (32, 48) and disp.dtype == np.float32 and np.isfinite(disp).all()


def test_gesture_predictor_over_a_recording(tmp_path):
    from eventvision.config import load_config
    from eventvision.engine.checkpoint import save_checkpoint
    from eventvision.events.readers import open_recording
    from eventvision.inference.gesture import GestureClassifier, GesturePredictor
    from eventvision.tasks.gesture import GestureTask
    cfg = load_config("gesture/small", ["model.channels=4", "model.num_blocks=2", "model.hidden=16",
                                        "data.num_frames=4", "data.resolution=32"])
    task = GestureTask.from_config(cfg)
    ckpt = save_checkpoint(tmp_path / "g.pt", task="gesture", config=cfg, model=task.build_model())
    rng = np.random.default_rng(3)
    np.save(tmp_path / "rec.npy", _events(rng, 4000, 128, 128, 2_500_000))
    clf = GestureClassifier.from_checkpoint(ckpt)
    with open_recording(tmp_path / "rec.npy") as rec:
        results = list(GesturePredictor(clf, rec, window_us=1_000_000))
    assert len(results) == 3 and [r.window.t1 - r.window.t0 for r in results] == [1_000_000] * 3
    assert all(r.label in clf.class_names and 0.0 <= r.confidence <= 1.0 for r in results)


def test_thread_policy(monkeypatch):
    import cv2
    import torch

    from eventvision.inference import base
    from eventvision.utils import device
    before, cv_before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        monkeypatch.setattr(device.os, "getloadavg", lambda: (50.0, 50.0, 50.0))
        assert base.free_cores() == 1 and base.configure_threads(0) == 1 and torch.get_num_threads() == 1
        assert cv2.getNumThreads() == 1                     # automatic: OpenCV's pool does not add threads
        assert base.configure_threads(2) == 2 and torch.get_num_threads() == 2 and cv2.getNumThreads() == 2
        with pytest.raises(Exception, match=">= 0"):
            base.configure_threads(-1)
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(cv_before)


def test_network_tuner_leaves_one_core_to_the_worker_threads():
    from eventvision.inference.base import network_tuner
    assert network_tuner(1) is None and network_tuner(2) is None
    assert network_tuner(3).high == 2 and network_tuner(8).high == 7


def test_stream_policy_per_setting_and_network_device():
    import cv2
    import torch

    from eventvision.inference.base import stream_policy
    before, cv_before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        cores, background, tuner = stream_policy(0, 8, "cpu")          # automatic, network on the CPU: tuned
        assert (cores, background, tuner.high) == (8, True, 7)
        assert stream_policy(0, 8, None) == (8, True, None)               # no network (SGBM): nothing to tune
        assert stream_policy(3, 3, "cuda") == (3, False, None)            # --threads N: as asked
        assert stream_policy(0, 8, "cuda") == (2, False, None)            # a GPU network: in order, two threads
        assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 2
        assert stream_policy(0, 1, "cuda") == (1, False, None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(cv_before)


def test_thread_tuner_keeps_the_faster_setting():
    import torch

    from eventvision.inference.base import ThreadTuner
    before = torch.get_num_threads()
    try:
        tuner = ThreadTuner(4, trial=2, period=10)
        used = []
        for i in range(16):
            n = tuner.before()
            used.append(n)
            tuner.after(0.05 if n == 1 else 0.04)          # four threads are faster here (an idle machine)
        assert used[:5] == [1, 1, 1, 4, 4]                  # warm-up, 2 trials with 1, 2 with 4
        assert used[5:15] == [4] * 10 and tuner.chosen == 4 and tuner.period == 10
        assert used[15] == 1                                # the next trial, `period` windows later
    finally:
        torch.set_num_threads(before)


def test_thread_tuner_drops_a_slow_setting_after_one_window_and_retries_it_ever_more_rarely():
    import torch

    from eventvision.inference.base import ThreadTuner
    before = torch.get_num_threads()
    try:
        tuner = ThreadTuner(13, trial=3, period=10, max_period=40)
        used = []
        for i in range(200):
            n = tuner.before()
            used.append(n)
            tuner.after(0.05 if n == 1 else 1.0)           # 13 threads on a busy many-core VM: 20x slower
        slow = [i for i, n in enumerate(used) if n == 13]
        assert slow[:4] == [4, 28, 72, 116] and all(b - a == 44 for a, b in zip(slow[2:], slow[3:]))
        assert tuner.chosen == 1 and tuner.period == 40
    finally:
        torch.set_num_threads(before)


def test_prerendered_input_streams_the_same_windows():
    """The built-in synthetic recording simulated up front yields exactly the live windows (and honours
    max_windows); other window lengths still come from the source."""
    from eventvision.config import load_config
    from eventvision.inference.stereo import prerender, synthetic_input

    def make():
        return synthetic_input(load_config("stereo/refine"), duration_s=0.15, seed=3, size=(64, 48))

    live = list(make().windows(50_000))
    pre = prerender(make(), 50_000, show_progress=False)
    ahead = list(pre.windows(50_000))
    assert len(ahead) == len(live) == 3
    for a, b in zip(ahead, live):
        assert (a.t0, a.t1) == (b.t0, b.t1)
        np.testing.assert_array_equal(a.events, b.events)
        np.testing.assert_array_equal(a.right, b.right)
    assert len(prerender(make(), 50_000, max_windows=2, show_progress=False).recording.windows) == 2
    assert pre.recording.width == 64 and pre.recording.disparity_at(50_000).shape == (48, 64)
    assert len(list(pre.windows(25_000))) == 6
