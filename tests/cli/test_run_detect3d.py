"""``eventvision run detect3d``: streaming schedule, KITTI results, emission file read by ``eval sap``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from eventvision.cli.main import main
from eventvision.config import load_config
from eventvision.engine.checkpoint import save_checkpoint
from eventvision.formats.kitti import read_label_file
from eventvision.evaluation.streaming import read_emission_file, simulated_schedule
from eventvision.models.detect3d import StereoDetector3D
from eventvision.simulate.kitti_scenes import SceneConfig, write_sequence


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("d3d_cli")
    write_sequence(root / "kitti", "0004", seed=5, cfg=SceneConfig(num_frames=6, num_objects=3, image_scale=0.25,
                                                                   supersample=1))
    cfg = load_config("detect3d/small", ["model.score_thresh=0.0", "model.max_dets=100"])
    torch.manual_seed(0)
    model = StereoDetector3D.from_config(cfg.model)
    ckpt = save_checkpoint(root / "d3d.pt", task="detect3d", config=cfg, model=model)
    return root, ckpt


def test_streams_with_frame_skipping_and_writes_kitti_results(setup, capsys):
    root, ckpt = setup
    out = root / "out"
    rc = main(["run", "detect3d", "--input", str(root / "kitti"), "--output", str(out), "--checkpoint", str(ckpt),
               "--latency-ms", "150", "--device", "cpu"])
    assert rc == 0
    sched = read_emission_file(out / "emission.txt")["0004"]
    # 150 ms per run at 10 Hz: run on frame 0 at 0 -> 150 ms; then on frame 1 (latest at 150) -> 300;
    # frame 3 -> 450; frame 4 -> 600; frames 2 and 5 arrive while busy and are skipped
    assert sched.frame.tolist() == [0, 1, 3, 4]
    np.testing.assert_allclose(sched.time_ms, [150.0, 300.0, 450.0, 600.0])
    ref = simulated_schedule(6, [150.0])  # the sAP evaluator's own single-detector simulation agrees
    assert ref.frame.tolist() == sched.frame.tolist() and np.allclose(ref.time_ms, sched.time_ms)
    res = read_label_file(out / "0004.txt")
    assert set(res["frame"].tolist()) <= {0, 1, 3, 4} and len(res) > 0
    assert (res["score"] >= 0).all() and (res["track_id"] >= 0).all()
    assert set(res["type"]) <= {"Car", "Pedestrian", "Cyclist"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sequences"]["0004"] == {"frames": 6, "processed": 4, "skipped": 2, "mean_latency_ms": 150.0}
    assert (out / "overlays" / "0004" / "000003_bev.png").is_file()
    assert (out / "overlays" / "0004" / "000003_image.png").is_file()
    # the results and emission times are what `eval sap` reads
    rc = main(["eval", "sap", "--gt", str(root / "kitti"), "--pred", str(out), "--seqs", "0004",
               "--emission", str(out / "emission.txt"), "--json", str(root / "sap.json")])
    assert rc == 0
    sap = json.loads((root / "sap.json").read_text())
    assert "streaming" in sap and "offline" in sap


def test_measured_latency_and_single_sequence_folder(setup):
    root, ckpt = setup
    out = root / "out2"
    rc = main(["run", "detect3d", "--input", str(root / "kitti" / "training" / "image_02" / "0004"),
               "--output", str(out), "--checkpoint", str(ckpt), "--device", "cpu", "--no-overlays"])
    assert rc == 0
    sched = read_emission_file(out / "emission.txt")["0004"]
    assert sched.frame[0] == 0 and (np.diff(sched.frame) >= 1).all()
    # a run never starts before its frame arrives, and emission = start + a positive latency
    assert (sched.time_ms > sched.frame * 100.0).all()
    assert not (out / "overlays").exists()


def test_box_alignment_flag(setup):
    root, ckpt = setup
    plain, aligned = root / "plain", root / "aligned"
    for out, extra in ((plain, []), (aligned, ["--box-alignment"])):
        rc = main(["run", "detect3d", "--input", str(root / "kitti"), "--output", str(out), "--checkpoint",
                   str(ckpt), "--latency-ms", "50", "--device", "cpu", "--no-overlays", *extra])
        assert rc == 0
        assert json.loads((out / "summary.json").read_text())["box_alignment"] == bool(extra)
    a, b = read_label_file(plain / "0004.txt"), read_label_file(aligned / "0004.txt")
    assert len(a) == len(b) and np.array_equal(a["score"], b["score"])   # boxes moved, none added or dropped
    np.testing.assert_allclose(a["location"][:, 1], b["location"][:, 1])  # ranges change, heights do not


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    rc = main(["run", "detect3d", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing" in err
    (tmp_path / "empty").mkdir()
    rc = main(["run", "detect3d", "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o")])
    assert rc == 2 and "cvlibs" in capsys.readouterr().err


def test_kitti_object_layout_real_pair(shared_data, setup, tmp_path):
    """The real KITTI Object pair (1242x375) streams through a checkpoint trained at 1/4 scale: object-format
    results, emission times, overlays at full resolution."""
    import cv2

    from eventvision.formats.kitti import read_object_label_file
    _, ckpt = setup
    out = tmp_path / "obj"
    rc = main(["run", "detect3d", "--input", str(shared_data / "kitti_object"), "--output", str(out),
               "--checkpoint", str(ckpt), "--device", "cpu", "--latency-ms", "80"])
    assert rc == 0
    res = read_object_label_file(out / "000000.txt")
    assert len(res) > 0 and set(res["type"]) <= {"Car", "Pedestrian", "Cyclist"}
    assert read_emission_file(out / "emission.txt")["000000"].frame.tolist() == [0]
    img = cv2.imread(str(out / "overlays" / "000000" / "000000_image.png"))
    assert img.shape == (375, 1242, 3)
    panel = cv2.imread(str(out / "overlays" / "000000" / "000000_panel.png"))
    assert panel.shape[0] == 2 * 375 and panel.shape[1] > 1242   # image over the LiDAR scan, BEV beside
    assert json.loads((out / "summary.json").read_text())["layout"] == "object"


def test_output_inside_input_is_refused(shared_data, setup, tmp_path, capsys):
    _, ckpt = setup
    rc = main(["run", "detect3d", "--input", str(shared_data / "kitti_object"), "--output",
               str(shared_data / "kitti_object" / "training" / "out"), "--checkpoint", str(ckpt)])
    assert rc == 2 and "inside the input" in capsys.readouterr().err


def test_eval_detect3d_plots_draws_pr_curves_and_bev(setup, tmp_path, capsys):
    _, ckpt = setup
    over = [f"data.synthetic_root={tmp_path / 'syn'}", "data.synthetic_train_seqs=1", "data.synthetic_val_seqs=1",
            "data.synthetic_frames=4", "data.synthetic_objects=2", "data.synthetic_supersample=1"]
    rc = main(["eval", "detect3d", "--checkpoint", str(ckpt), "--device", "cpu", "--plots", str(tmp_path / "pl")]
              + over)
    assert rc == 0
    names = sorted(p.name for p in (tmp_path / "pl").iterdir())
    assert "pr_Car.png" in names and any(n.startswith("bev_") for n in names)
    capsys.readouterr()


def test_box_alignment_refuses_an_event_checkpoint(setup, tmp_path, capsys):
    root, _ = setup
    cfg = load_config("detect3d/small", ["data.input=events", "model.in_channels=5"])
    ckpt = save_checkpoint(tmp_path / "events.pt", task="detect3d", config=cfg,
                           model=StereoDetector3D.from_config(cfg.model))
    rc = main(["run", "detect3d", "--input", str(root / "kitti"), "--output", str(tmp_path / "o"), "--checkpoint",
               str(ckpt), "--device", "cpu", "--box-alignment"])
    err = capsys.readouterr().err
    assert rc == 2 and "events.pt" in err and "box alignment" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
