"""``eventvision run stereo`` end to end: MVSEC file, DSEC folder, own h5, default synthetic run, bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from eventvision.cli.main import main
from eventvision.config import load_config
from eventvision.data.stereo.export import identity_rectify_map, write_dsec_sequence, write_mvsec_sequence
from eventvision.engine.checkpoint import save_checkpoint
from eventvision.simulate.stereo_scenes import StereoCamera, StereoScene
from eventvision.tasks.stereo import StereoTask

SMALL = ["data.synthetic.width=48", "data.synthetic.height=32"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An (untrained) small stereo checkpoint: output checks here do not depend on accuracy."""
    cfg = load_config("stereo/small", SMALL)
    model = StereoTask(cfg).build_model()
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "stereo.pt", task="stereo", config=cfg, model=model)


def _scene_events(width, height, duration_us, seed=1):
    cam = StereoCamera(width=width, height=height, focal_px=0.8 * width, baseline_m=0.1)
    return StereoScene.random(cam, seed).events(duration_us, frame_dt_us=5000)


@pytest.fixture(scope="module")
def mvsec_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mvsec") / "indoor_flying"
    left, right = _scene_events(346, 260, 120_000)
    t0 = 1_504_645_177_000_000
    for ev in (left, right):
        ev["t"] += t0
    maps = (identity_rectify_map(346, 260), identity_rectify_map(346, 260))
    data, _ = write_mvsec_sequence(folder, "indoor_flying1", left=left, right=right, rectify_maps=maps)
    return data, int(min(left["t"][0], right["t"][0]))


@pytest.fixture(scope="module")
def dsec_folder(tmp_path_factory):
    left, right = _scene_events(640, 480, 60_000)
    t_off = 77_000_000
    for ev in (left, right):
        ev["t"] += t_off
    return write_dsec_sequence(tmp_path_factory.mktemp("dsec") / "zurich_city_00_a", left=left, right=right,
                               t_offset=t_off), t_off


def _check_outputs(out, n_windows, height, width, t_first_end):
    with h5py.File(out / "disparity.h5", "r") as f:
        disp, ts = f["disparity"][:], f["timestamps_us"][:]
    assert disp.shape == (n_windows, height, width) and disp.dtype == np.float32
    assert np.isfinite(disp).all() and disp.min() >= 0 and disp.max() <= 63   # stereo/small: max disparity 63
    assert ts[0] == t_first_end and np.all(np.diff(ts) == 50_000)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["windows"] == n_windows and summary["throughput_hz"] > 0 and summary["mean_latency_ms"] > 0
    assert set(summary["time_split_ms"]) == {"read", "representation", "network", "write"}
    pngs = sorted((out / "png").glob("*.png"))
    assert len(pngs) == n_windows
    assert not list(out.glob(".*tmp*"))                       # no temporary files left behind
    return disp


def test_mvsec_file(mvsec_file, checkpoint, tmp_path, capsys):
    data, t_first = mvsec_file
    before = data.read_bytes()
    out = tmp_path / "out"
    assert main(["run", "stereo", "--input", str(data), "--output", str(out), "--checkpoint", str(checkpoint),
                 "--device", "cpu", "--mp4", "--threads", "1"]) == 0
    _check_outputs(out, 3, 260, 346, t_first + 50_000)   # 120 ms of events: 3 windows from the first event
    assert (out / "disparity.mp4").stat().st_size > 1000
    assert data.read_bytes() == before
    assert "windows/s" in capsys.readouterr().out


def test_dsec_folder(dsec_folder, checkpoint, tmp_path):
    folder, t_off = dsec_folder
    out = tmp_path / "out"
    assert main(["run", "stereo", "--input", str(folder), "--output", str(out), "--checkpoint", str(checkpoint),
                 "--device", "cpu", "--max-windows", "1", "--threads", "1"]) == 0
    rec_start = _first_event_time(folder)
    _check_outputs(out, 1, 480, 640, t_off + rec_start + 50_000)   # label clock = file time + t_offset


def _first_event_time(folder):
    from eventvision.events.readers import open_recording
    with open_recording(folder) as rec:
        return rec.t_start


def test_own_h5_matches_streaming_windows(checkpoint, tmp_path):
    from eventvision.events.h5 import write_stereo_h5
    left, right = _scene_events(48, 32, 100_000, seed=4)
    path = write_stereo_h5(tmp_path / "rec.h5", left, right, width=48, height=32)
    out = tmp_path / "out"
    assert main(["run", "stereo", "--input", str(path), "--output", str(out), "--checkpoint", str(checkpoint),
                 "--device", "cpu", "--threads", "1"]) == 0
    t_first = int(min(left["t"][0], right["t"][0]))            # windows start at the first event of either camera
    disp = _check_outputs(out, 2, 32, 48, t_first + 50_000)
    # same window through the task directly gives the same map (state reset per window)
    from eventvision.engine.checkpoint import load_model_from_checkpoint
    from eventvision.data.stereo.common import WindowEncoder
    import torch
    task, model, _ = load_model_from_checkpoint(checkpoint, task_name="stereo")
    t0 = t_first + 50_000
    enc = WindowEncoder(width=48, height=32)
    sel = lambda ev: ev[(ev["t"] >= t0) & (ev["t"] < t0 + 50_000)]  # noqa: E731
    batch = {"left": torch.from_numpy(enc(sel(left), t0, t0 + 50_000))[None],
             "right": torch.from_numpy(enc(sel(right), t0, t0 + 50_000))[None]}
    with torch.no_grad():
        direct = task.predict(model, batch)[0].numpy()
    np.testing.assert_allclose(disp[1], direct, atol=1e-5)


def test_default_synthetic_run(tmp_path):
    """No --input: the bundled checkpoint on the built-in synthetic stream (two clips of fresh scenes) beats SGBM on
    the pixels SGBM answers and the constant everywhere."""
    import h5py

    from eventvision.inference.stereo import BUNDLED_CHECKPOINT, synthetic_input
    out, out_sgbm = tmp_path / "demo", tmp_path / "sgbm"
    argv = ["run", "stereo", "--duration-s", "0.5", "--device", "cpu", "--threads", "1"]
    assert main(argv + ["--output", str(out)]) == 0
    assert main(argv + ["--output", str(out_sgbm), "--method", "sgbm"]) == 0
    disp = _check_outputs(out, 10, 160, 256, 50_000)                # default --synthetic-size 256x160
    with h5py.File(out_sgbm / "disparity.h5", "r") as f:
        sgbm = np.asarray(f["disparity"])
    info = json.loads(BUNDLED_CHECKPOINT.with_suffix(".json").read_text())
    constant = info["metrics"]["trivial_baseline"]["median_px"]
    rec = synthetic_input(load_config("stereo/refine"), duration_s=0.5, seed=0, size=(256, 160)).recording
    err, err_const, err_sgbm, err_on_sgbm = [], [], [], []
    for i, t in enumerate(range(50_000, 500_001, 50_000)):
        gt = rec.disparity_at(t)
        valid = np.isfinite(gt) & (gt < 62)
        answered = valid & np.isfinite(sgbm[i])
        err.append(np.abs(disp[i][valid] - gt[valid]).mean())
        err_const.append(np.abs(constant - gt[valid]).mean())
        err_sgbm.append(np.abs(sgbm[i][answered] - gt[answered]).mean())
        err_on_sgbm.append(np.abs(disp[i][answered] - gt[answered]).mean())
    assert np.mean(err_on_sgbm) < np.mean(err_sgbm), (err_on_sgbm, err_sgbm)
    assert np.mean(err) < 0.6 * np.mean(err_const), (err, err_const)


@pytest.mark.parametrize("case", ["missing", "mono", "not_events", "output_is_input", "bad_window", "bad_ckpt",
                                  "incomplete_dsec", "bad_size"])
def test_bad_input_one_line_exit_2(case, tmp_path, checkpoint, dsec_folder, capsys):
    args = ["run", "stereo", "--output", str(tmp_path / "o"), "--checkpoint", str(checkpoint), "--device", "cpu"]
    if case == "missing":
        args += ["--input", str(tmp_path / "nope.h5")]
    elif case == "mono":
        from eventvision.events.h5 import write_dsec_events_h5
        left, _ = _scene_events(48, 32, 20_000)
        args += ["--input", str(write_dsec_events_h5(tmp_path / "mono.h5", left, width=48, height=32))]
    elif case == "not_events":
        (tmp_path / "x.h5").write_bytes(b"not an hdf5 file at all")
        args += ["--input", str(tmp_path / "x.h5")]
    elif case == "output_is_input":
        args = ["run", "stereo", "--input", str(dsec_folder[0]), "--output", str(dsec_folder[0]),
                "--checkpoint", str(checkpoint)]
    elif case == "bad_window":
        args += ["--window-ms", "0"]
    elif case == "bad_size":
        args += ["--synthetic-size", "big"]
    elif case == "bad_ckpt":
        (tmp_path / "bad.pt").write_bytes(b"garbage")
        args = ["run", "stereo", "--output", str(tmp_path / "o"), "--checkpoint", str(tmp_path / "bad.pt")]
    elif case == "incomplete_dsec":
        import shutil
        folder = shutil.copytree(dsec_folder[0], tmp_path / "seq")
        (folder / "events" / "right" / "rectify_map.h5").unlink()
        args += ["--input", str(folder)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eventvision: error:") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "o" / "disparity.h5").exists()
    if case == "incomplete_dsec":
        assert "rectify_map.h5" in err


def test_sgbm_method_on_own_h5_close_to_exact_gt(tmp_path):
    """--method sgbm: no checkpoint, same outputs, NaN where it has no answer, error against the exact GT."""
    from eventvision.events.h5 import write_stereo_h5
    cam = StereoCamera(width=160, height=120, focal_px=120.0, baseline_m=0.1)
    scene = StereoScene.random(cam, 3)
    left, right = scene.events(110_000, frame_dt_us=1000)
    left, right = left[left["t"] >= 10_000], right[right["t"] >= 10_000]
    path = write_stereo_h5(tmp_path / "rec.h5", left, right, width=160, height=120)
    out = tmp_path / "out"
    assert main(["run", "stereo", "--method", "sgbm", "--input", str(path), "--output", str(out)]) == 0
    with h5py.File(out / "disparity.h5", "r") as f:
        disp, ts = f["disparity"][:], f["timestamps_us"][:]
        assert f.attrs["method"] == "sgbm"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "sgbm" and summary["checkpoint"] is None and summary["windows"] == len(disp) == 2
    assert len(list((out / "png").glob("*.png"))) == 2
    t_first = int(min(left["t"][0], right["t"][0]))
    errors, answered = [], []
    for d, t in zip(disp, ts):
        assert t - t_first in (50_000, 100_000)
        gt = scene.disparity(int(t))
        valid = np.isfinite(gt)
        ok = valid & np.isfinite(d)
        errors.append(np.abs(d[ok] - gt[ok]))
        answered.append(ok.sum() / valid.sum())
    err = np.concatenate(errors)
    # SGBM's error is a sharp core plus gross outliers near occlusions: bound both
    assert np.median(err) < 0.5 and (err > 3).mean() < 0.10 and err.mean() < 2.5, (err.mean(), np.median(err))
    assert min(answered) > 0.8, answered


@pytest.mark.parametrize("cores", [2, 3])
def test_background_stages_give_the_same_outputs(checkpoint, tmp_path, monkeypatch, cores):
    """Automatic threads on idle cores (reading/writing on worker threads beside the network; with three
    cores its thread count is also tuned while running) writes what --threads 1 writes."""
    from eventvision.events.h5 import write_stereo_h5
    from eventvision.inference import base
    monkeypatch.setattr(base, "free_cores", lambda: cores)
    left, right = _scene_events(48, 32, 160_000, seed=6)
    path = write_stereo_h5(tmp_path / "rec.h5", left, right, width=48, height=32)
    outs = []
    for threads in ("1", "0"):
        out = tmp_path / f"out{threads}"
        assert main(["run", "stereo", "--input", str(path), "--output", str(out), "--checkpoint",
                     str(checkpoint), "--device", "cpu", "--threads", threads]) == 0
        with h5py.File(out / "disparity.h5", "r") as f:
            outs.append((f["disparity"][:], f["timestamps_us"][:]))
        summary = json.loads((out / "summary.json").read_text())
        assert summary["background"] == (threads == "0") and summary["threads"] == (int(threads) or cores)
        assert summary["network_threads"] in ((1, 2) if threads == "0" and cores == 3 else (1,))
        assert len(list((out / "png").glob("*.png"))) == summary["windows"] == 4
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


def test_background_worker_reraises_and_prefetch_propagates_errors():
    from eventvision.inference.base import BackgroundWorker, in_background

    def boom():
        yield 1
        raise ValueError("reader failed")

    got = []
    with pytest.raises(ValueError, match="reader failed"):
        for item in in_background(boom()):
            got.append(item)
    assert got == [1]
    worker = BackgroundWorker()
    worker.submit(lambda: None)
    worker.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        worker.close()
