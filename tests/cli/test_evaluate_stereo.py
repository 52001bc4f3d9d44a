"""``eventvision eval stereo``: SGBM without a checkpoint, pictures with --plots, synthetic and MVSEC layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eventvision.cli.main import main
from eventvision.config import load_config
from eventvision.engine.checkpoint import save_checkpoint
from eventvision.tasks.stereo import StereoTask

SMALL = ["data.synthetic.width=96", "data.synthetic.height=64", "data.synthetic.num_val=2", "data.crop=null"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cfg = load_config("stereo/small", SMALL)
    model = StereoTask(cfg).build_model()
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "stereo.pt", task="stereo", config=cfg, model=model
    )


def _pictures(folder):
    return sorted(folder.glob("disparity_*.png"))


def test_sgbm_on_synthetic_without_checkpoint_writes_metrics_and_pictures(tmp_path, capsys):
    out_json, plots = tmp_path / "m.json", tmp_path / "plots"
    assert (
        main(["eval", "stereo", "--method", "sgbm", "--json", str(out_json), "--plots", str(plots), *SMALL])
        == 0
    )
    result = json.loads(out_json.read_text())
    m = result["metrics"]
    assert result["method"] == "sgbm" and result["checkpoint"] is None
    # SGBM's accuracy bounds are tested in tests/models/stereo/test_stereo_sgbm.py
    assert 0.0 < m["answered_pct"] <= 100.0 and np.isfinite(m["epe"]) and m["valid_pixels"] > 0
    pics = _pictures(plots)
    assert len(pics) == 2
    import cv2

    img = cv2.imread(str(pics[0]))
    assert img.shape[1] > 3 * 96 and img.std() > 10  # three panels, not blank
    assert "answered_pct" in capsys.readouterr().out


def test_learned_plots_written(checkpoint, tmp_path):
    plots = tmp_path / "plots"
    assert (
        main(["eval", "stereo", "--checkpoint", str(checkpoint), "--plots", str(plots), "--device", "cpu"])
        == 0
    )
    assert len(_pictures(plots)) == 2


def test_sgbm_on_mvsec_layout(tmp_path, capsys):
    """An MVSEC-layout sequence with depth GT: SGBM runs through the same reader, rectification and GT."""
    from eventvision.data.stereo.export import identity_rectify_map, write_mvsec_sequence
    from eventvision.data.stereo.mvsec import FOCAL_BASELINE
    from eventvision.simulate.stereo_scenes import StereoCamera, StereoScene

    fb = FOCAL_BASELINE["indoor_flying"]
    cam = StereoCamera(width=346, height=260, focal_px=226.0, baseline_m=fb / 226.0)
    scene = StereoScene.random(cam, 2)
    left, right = scene.events(160_000, frame_dt_us=2000)
    ts = [0.06, 0.11, 0.16]
    depths = np.stack([fb / scene.disparity(int(t * 1e6)) for t in ts]).astype(np.float32)
    maps = (identity_rectify_map(346, 260),) * 2
    for k in (1,):
        write_mvsec_sequence(
            tmp_path / "data" / "indoor_flying",
            f"indoor_flying{k}",
            left=left,
            right=right,
            depths=depths,
            depth_ts_s=ts,
            rectify_maps=maps,
        )
    import eventvision.data.stereo.mvsec as mvsec

    overrides = ["data.dataset=mvsec", f"data.root={tmp_path / 'data'}", "data.split=1", "data.crop=null"]
    old = dict(mvsec.TEST_FRAMES)
    mvsec.TEST_FRAMES[1] = (0, 3)
    try:
        assert (
            main(
                [
                    "eval",
                    "stereo",
                    "--method",
                    "sgbm",
                    "--split",
                    "test",
                    "--json",
                    str(tmp_path / "m.json"),
                    *overrides,
                ]
            )
            == 0
        )
    finally:
        mvsec.TEST_FRAMES.update(old)
    m = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert m["valid_pixels"] > 0 and m["epe"] < 3.0 and "mean_depth_error_m" in m


def test_sgbm_on_dsec_layout(tmp_path):
    """A DSEC-layout sequence (events.h5, rectify maps, 16-bit GT PNGs; small sensor to stay quick): SGBM
    through the DSEC reader."""
    from eventvision.data.stereo.export import write_dsec_sequence
    from eventvision.simulate.stereo_scenes import StereoCamera, StereoScene
    cam = StereoCamera(width=160, height=120, focal_px=120.0, baseline_m=0.1)
    scene = StereoScene.random(cam, 4)
    left, right = scene.events(110_000, frame_dt_us=2000)
    t_off = 1_000_000
    for ev in (left, right):
        ev["t"] += t_off
    stamps = [t_off + 10_000, t_off + 60_000, t_off + 110_000]     # the first GT map is skipped, as in DSEC
    gts = [scene.disparity(t - t_off) for t in stamps]
    write_dsec_sequence(tmp_path / "dsec" / "zurich_city_09_a", left=left, right=right, width=160, height=120,
                        t_offset=t_off, disparities=gts, timestamps_us=stamps)
    out = tmp_path / "m.json"
    assert main(["eval", "stereo", "--method", "sgbm", "--json", str(out), "data.dataset=dsec",
                 f"data.root={tmp_path / 'dsec'}"]) == 0
    m = json.loads(out.read_text())["metrics"]
    assert m["valid_pixels"] > 1000 and m["answered_pct"] > 50 and m["epe"] < 3.0, m


def test_both_compares_on_the_pixels_sgbm_answers(checkpoint, tmp_path):
    out = tmp_path / "m.json"
    assert main(["eval", "stereo", "--method", "both", "--checkpoint", str(checkpoint), "--json", str(out),
                 "--device", "cpu", *SMALL]) == 0
    result = json.loads(out.read_text())
    learned, sgbm, paired = result["metrics"], result["sgbm"], result["learned_on_sgbm_pixels"]
    assert learned["answered_pct"] == 100.0 and sgbm["answered_pct"] < 100.0
    assert paired["valid_pixels"] == sgbm["valid_pixels"] < learned["valid_pixels"]


def test_both_on_a_checkpoint_trained_with_prefilled_scenes_gives_the_lazy_figures(checkpoint, tmp_path):
    """A checkpoint of a GPU recipe stores data.synthetic.prefill_workers > 0: the prefill encoded every window
    before the comparison swapped in its raw-events encoder, and SGBM got an empty window [0, 0) (a thirteenth-session
    selection run stopped on it). The comparison makes its windows itself: the figures equal a run without prefill."""
    results = []
    for workers in (0, 2):
        out = tmp_path / f"m{workers}.json"
        assert main(["eval", "stereo", "--method", "both", "--checkpoint", str(checkpoint), "--json", str(out),
                     "--device", "cpu", *SMALL, f"data.synthetic.prefill_workers={workers}"]) == 0
        results.append(json.loads(out.read_text()))
    assert results[1]["metrics"] == results[0]["metrics"] and results[1]["sgbm"] == results[0]["sgbm"]
    assert results[0]["sgbm"]["valid_pixels"] > 0


def test_sgbm_with_an_older_checkpoint_takes_keys_added_since(tmp_path):
    """--method sgbm --checkpoint reads the stored config like every checkpoint reader: a key the suite gained after
    the checkpoint was written (here data.synthetic.ground_prob) can be overridden, a wrong value is one line."""
    cfg = load_config("stereo/small", SMALL)
    del cfg.data.synthetic["ground_prob"]                      # as stored by a checkpoint older than the key
    old = save_checkpoint(tmp_path / "old.pt", task="stereo", config=cfg, model=StereoTask(cfg).build_model())
    out = tmp_path / "m.json"
    assert main(["eval", "stereo", "--method", "sgbm", "--checkpoint", str(old), "--json", str(out),
                 "data.synthetic.ground_prob=1.0"]) == 0
    assert json.loads(out.read_text())["metrics"]["valid_pixels"] > 0
    assert main(["eval", "stereo", "--method", "sgbm", "--checkpoint", str(old), "data.synthetic.ground_prob=2"]) == 2
