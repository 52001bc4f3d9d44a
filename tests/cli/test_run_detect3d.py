"""``eventvision run detect3d``: streaming schedule, KITTI results, emission file read by ``eval sap``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from eventvision.cli.main import main
from eventvision.cli.run_detect3d import associate
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


def test_greedy_track_association():
    prev_boxes = np.array([[10.0, 0.0, -0.8, 3.9, 1.6, 1.5, 0.0], [20.0, 5.0, -0.8, 3.9, 1.6, 1.5, 0.0]])
    cur = np.array([[20.4, 5.1, -0.8, 3.9, 1.6, 1.5, 0.0], [40.0, 0.0, -0.8, 3.9, 1.6, 1.5, 0.0],
                    [10.3, 0.0, -0.8, 3.9, 1.6, 1.5, 0.0]])
    ids, nxt = associate(np.array([7, 8]), cur, np.array([0, 0, 0]), prev_boxes, np.array([0, 0]), 9)
    assert ids.tolist() == [8, 9, 7] and nxt == 10


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    rc = main(["run", "detect3d", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing" in err
    (tmp_path / "empty").mkdir()
    rc = main(["run", "detect3d", "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o")])
    assert rc == 2 and "cvlibs" in capsys.readouterr().err
