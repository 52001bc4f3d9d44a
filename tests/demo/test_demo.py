"""Headless demo runs (synthetic frames, a real AEDAT4 recording), the predictor protocol, keys, queues."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from eventvision.cli.main import main
from eventvision.demo.app import run_demo
from eventvision.demo.display import handle_key
from eventvision.demo.pipeline import Controls, DropOldestQueue
from eventvision.demo.predictors import GesturePredictor, Window
from eventvision.errors import UserError
from eventvision.events.core import make_events
from eventvision.representations.functional import to_frames


def read_video(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f[..., ::-1])  # RGB
    return frames


def coloured_pixels(rgb, bar_h=56):
    body = rgb[:-bar_h].astype(int)
    red = (body[..., 0] > 150) & (body[..., 1] < 110) & (body[..., 2] < 110)
    blue = (body[..., 2] > 150) & (body[..., 0] < 110) & (body[..., 1] < 110)
    return int(red.sum()), int(blue.sum())


@pytest.fixture(scope="module")
def tiny_gesture_checkpoint(tmp_path_factory):
    from eventvision.config import load_config
    from eventvision.engine.checkpoint import save_checkpoint
    from eventvision.tasks.gesture import GestureTask
    cfg = load_config("gesture/small", ["model.channels=4", "model.num_blocks=2", "model.hidden=16",
                                        "data.num_frames=4", "data.resolution=32"])
    task = GestureTask.from_config(cfg)
    path = tmp_path_factory.mktemp("ckpt") / "gesture_tiny.pt"
    save_checkpoint(path, task="gesture", config=cfg, model=task.build_model())
    return path


def test_headless_synthetic_events_only(tmp_path):
    out = tmp_path / "demo.mp4"
    summary = run_demo("gesture", "synthetic", headless=True, record=str(out), model="none", max_steps=20,
                       realtime=False)
    frames = read_video(out)
    assert summary["recorded_frames"] == len(frames) == 20  # lossless offline run: one frame per input step
    assert frames[0].shape == (480 + 56, 640, 3)
    red, blue = coloured_pixels(frames[-1])
    assert red > 300 and blue > 100  # moving blobs give both polarities
    assert coloured_pixels(frames[0]) == (0, 0)  # first frame only sets the emulator's reference


def test_headless_with_gesture_model(tmp_path, tiny_gesture_checkpoint):
    out = tmp_path / "demo.mp4"
    shown = []
    summary = run_demo("gesture", "synthetic", headless=True, record=str(out), checkpoint=str(tiny_gesture_checkpoint),
                       max_steps=8, realtime=False, window_ms=200, on_frame=lambda rgb, r: shown.append(r.prediction))
    assert summary["predictor"] == "gesture" and summary["recorded_frames"] == 8
    from eventvision.simulate.gesture_scenes import GESTURE_CLASSES
    for p in shown:
        assert p.text in GESTURE_CLASSES and 0.0 <= p.confidence <= 1.0
    assert len(read_video(out)) == 8


def test_gesture_predictor_input_is_cropped_scaled_frames(tiny_gesture_checkpoint):
    pred = GesturePredictor.from_checkpoint(tiny_gesture_checkpoint)
    rng = np.random.default_rng(0)
    n = 3000
    ev = make_events(rng.integers(0, 640, n), rng.integers(0, 480, n), np.sort(rng.integers(0, 10**5, n)),
                     rng.integers(0, 2, n))
    got = pred.frames(Window(0, 10**5, ev, 640, 480))
    keep = (ev["x"] >= 80) & (ev["x"] < 560)
    ref_ev = ev[keep].copy()
    ref_ev["x"] = (ref_ev["x"].astype(int) - 80) * 32 // 480
    ref_ev["y"] = ref_ev["y"].astype(int) * 32 // 480
    np.testing.assert_array_equal(got, to_frames(ref_ev, num_frames=4, width=32, height=32, split_by="number"))


def test_headless_real_aedat4_recording(tmp_path, shared_data):
    out = tmp_path / "aedat.mp4"
    summary = run_demo("gesture", str(shared_data / "events" / "sample.aedat4"), headless=True, record=str(out),
                       model="none", realtime=False, window_ms=50)
    frames = read_video(out)
    # 0.59 s of events in 33.3 ms chunks
    assert len(frames) == summary["recorded_frames"] >= 17
    assert frames[0].shape == (240 * 2 + 56, 320 * 2, 3)  # a 320x240 sensor is shown 2x
    assert sum(sum(coloured_pixels(f)) > 200 for f in frames) >= len(frames) - 2


def test_stereo_synthetic_events_only(tmp_path):
    out = tmp_path / "stereo.mp4"
    summary = run_demo("stereo", "synthetic", headless=True, record=str(out), model="none", max_steps=2,
                       realtime=False)
    assert summary["recorded_frames"] == 2
    assert sum(coloured_pixels(read_video(out)[-1])) > 100


def test_missing_checkpoint_names_file_and_training_command(monkeypatch, tmp_path, capsys):
    from eventvision.inference import gesture
    monkeypatch.setattr(gesture, "CHECKPOINT_DIR", tmp_path)
    with pytest.raises(UserError, match="eventvision train gesture"):
        run_demo("gesture", "synthetic", headless=True, record=str(tmp_path / "x.mp4"), max_steps=2)
    assert main(["demo", "stereo", "--source", "synthetic", "--headless", "--record", str(tmp_path / "y.mp4")]) == 2
    err = capsys.readouterr().err
    assert "stereo_refine.pt" in err and "eventvision train stereo" in err
    assert not (tmp_path / "y.mp4").exists()


def test_bad_sources_and_options(tmp_path):
    with pytest.raises(UserError, match="record into"):
        run_demo("gesture", "synthetic", headless=True, model="none")
    with pytest.raises(UserError, match="no such file"):
        run_demo("gesture", str(tmp_path / "missing.bin"), headless=True, record=str(tmp_path / "o.mp4"), model="none")


def test_inivation_without_extra_names_the_extra(tmp_path):
    try:
        import dv_processing  # noqa: F401
        pytest.skip("dv-processing is installed here")
    except ImportError:
        pass
    with pytest.raises(UserError, match="eventvision\\[inivation\\]"):
        run_demo("gesture", "inivation", headless=True, record=str(tmp_path / "o.mp4"), model="none")


def test_keys_change_controls():
    c = Controls(window_us=100_000, contrast=0.2)
    handle_key(ord("w"), c)
    assert c.window_us == 150_000
    handle_key(ord("s"), c)
    handle_key(ord("s"), c)
    assert c.window_us == 66_666
    handle_key(ord("d"), c)
    assert c.contrast == pytest.approx(0.25)
    handle_key(ord("a"), c)
    handle_key(ord("a"), c)
    assert c.contrast == pytest.approx(0.15)
    handle_key(ord(" "), c)
    assert c.paused
    handle_key(ord("q"), c)
    assert c.quit


def test_drop_oldest_queue():
    q = DropOldestQueue(2)
    for i in range(5):
        q.put(i)
    assert q.get_all() == [3, 4] and q.dropped == 3
    assert q.get(timeout=0.01) is None


def test_window_display_under_xvfb(tmp_path):
    from eventvision.demo.display import gui_available
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed on this machine (apt-get install xvfb to run the window test)")
    if not gui_available():
        pytest.skip("this OpenCV build (opencv-python-headless) has no GUI; install opencv-python for the window test")
    import os
    import subprocess
    import sys
    display = ":97"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1024x768x24"])
    try:
        env = dict(os.environ, DISPLAY=display)
        res = subprocess.run([sys.executable, "-m", "eventvision", "demo", "gesture", "--source", "synthetic",
                              "--model", "none", "--max-steps", "10", "--fast"], env=env, capture_output=True,
                             text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert '"frames_shown": 10' in res.stdout
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)


@pytest.mark.parametrize("config", ["stereo/small", "stereo/refine"])
def test_headless_stereo_with_model_shows_disparity(tmp_path, config):
    from eventvision.config import load_config
    from eventvision.engine.checkpoint import save_checkpoint
    from eventvision.tasks.stereo import StereoTask
    cfg = load_config(config)
    task = StereoTask.from_config(cfg)
    ckpt = save_checkpoint(tmp_path / "stereo_small.pt", task="stereo", config=cfg, model=task.build_model())
    out = tmp_path / "stereo.mp4"
    shown = []
    summary = run_demo("stereo", "synthetic", headless=True, record=str(out), checkpoint=str(ckpt), max_steps=2,
                       realtime=False, window_ms=50, on_frame=lambda rgb, r: shown.append((rgb, r.prediction)))
    assert summary["predictor"] == "stereo" and summary["recorded_frames"] == 2
    rgb, pred = shown[-1]
    w, h = int(cfg.data.synthetic.width), int(cfg.data.synthetic.height)  # the rig the model was made for
    assert pred.overlay is not None and pred.overlay.shape == (h, w, 3)
    assert pred.text.startswith("disparity mean")
    f = -(-480 // (2 * w))  # small sensors are scaled up so the status text fits
    assert rgb.shape == (f * h + 56, f * 2 * w, 3)  # events | disparity side by side
    left_half = rgb[:-56, : rgb.shape[1] // 2]
    right_half = rgb[:-56, rgb.shape[1] // 2:]
    assert sum(coloured_pixels(np.concatenate([left_half, np.zeros((56, left_half.shape[1], 3), np.uint8)]))) > 50
    assert not np.array_equal(right_half, np.full_like(right_half, 255))  # the colour map, not white background


def test_video_file_source_through_cli(tmp_path, capsys):
    """An mp4 of a moving bright bar -> emulator -> recorded demo video (CLI entry point)."""
    src = tmp_path / "bar.mp4"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (160, 120))
    for k in range(12):
        img = np.full((120, 160, 3), 40, np.uint8)
        img[:, 10 + 8 * k: 30 + 8 * k] = 220
        writer.write(img)
    writer.release()
    out = tmp_path / "demo.mp4"
    rc = main(["demo", "gesture", "--source", str(src), "--headless", "--record", str(out), "--model", "none",
               "--fast", "--width", "160", "--height", "120", "--window-ms", "40"])
    assert rc == 0
    assert '"recorded_frames": 12' in capsys.readouterr().out
    frames = read_video(out)
    assert len(frames) == 12
    red, blue = coloured_pixels(frames[6])
    assert red > 200 and blue > 200  # leading edge brightens (ON), trailing edge darkens (OFF)


def test_window_mode_without_gui_says_what_to_do(monkeypatch, tmp_path):
    from eventvision.demo import display
    monkeypatch.setattr(display, "gui_available", lambda: False)
    with pytest.raises(UserError, match="headless, recording to a video"):
        run_demo("gesture", "synthetic", model="none", max_steps=2)


def test_sliding_window_is_half_open():
    from eventvision.demo.pipeline import SlidingWindow
    sw = SlidingWindow()
    ev = make_events([0, 1, 2, 3], [0, 0, 0, 0], [100, 150, 199, 200], [1, 1, -1, 1])
    sw.add(200, ev[:3], None, 0.0)      # chunk [.., 200): events before 200
    sw.add(250, ev[3:], None, 0.0)      # chunk [200, 250)
    win, _ = sw.window(150, 8, 1)
    assert (win.t0, win.t1) == (100, 250)
    np.testing.assert_array_equal(win.events["t"], [100, 150, 199, 200])   # t0 in, t1 out
    win, _ = sw.window(100, 8, 1)
    np.testing.assert_array_equal(win.events["t"], [150, 199, 200])


def test_stereo_demo_rectifies_like_run_stereo(tmp_path):
    """A DSEC folder whose raw coordinates need their rectify maps: the demo's windows hold exactly the
    rectified events of [t0, t1) that ``run stereo`` feeds its methods, and SGBM runs on them."""
    from eventvision.data.stereo.export import identity_rectify_map, write_dsec_sequence
    from eventvision.events.recording import window_slice
    from eventvision.representations import rectify
    rng = np.random.default_rng(3)
    n = 20000
    mk = lambda: make_events(rng.integers(0, 64, n), rng.integers(0, 48, n),  # noqa: E731
                             np.sort(rng.integers(0, 200_000, n)), rng.integers(0, 2, n))
    left, right = mk(), mk()
    maps = [identity_rectify_map(64, 48), identity_rectify_map(64, 48)]
    maps[0][..., 0] += 2
    maps[1][..., 1] -= 1
    folder = write_dsec_sequence(tmp_path / "seq", left=left, right=right, width=64, height=48, rectify_maps=maps)
    shown = []
    summary = run_demo("stereo", str(folder), headless=True, record=str(tmp_path / "s.mp4"), model="sgbm",
                       realtime=False, window_ms=50, max_steps=4, on_frame=lambda rgb, r: shown.append(r))
    assert summary["predictor"] == "stereo" and len(shown) == 4
    for r in shown[1:]:
        w = r.window
        assert w.t1 - w.t0 == 50_000
        np.testing.assert_array_equal(w.events, rectify(window_slice(left, w.t0, w.t1), maps[0]))
        np.testing.assert_array_equal(w.right, rectify(window_slice(right, w.t0, w.t1), maps[1]))
        assert r.prediction.overlay.shape == (48, 64, 3) and "sgbm" in r.prediction.text


def test_record_onto_the_input_is_refused(tmp_path, capsys):
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"not really a video")
    before = src.read_bytes()
    assert main(["demo", "gesture", "--source", str(src), "--headless", "--record", str(src), "--model", "none"]) == 2
    assert "is the input file" in capsys.readouterr().err and src.read_bytes() == before
    assert main(["demo", "gesture", "--source", "synthetic", "--headless", "--model", "none"]) == 2
    assert "--record" in capsys.readouterr().err
