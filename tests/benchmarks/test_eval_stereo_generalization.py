"""The generalization benchmark's error tally (benchmarks/eval_stereo_generalization.py)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from eval_stereo_generalization import Tally  # noqa: E402


def test_tally_splits_the_error_by_event_support_and_gross_errors():
    gt = np.full((4, 5), 10.0, np.float32)
    gt[0, 0] = np.nan                                   # no GT: not counted
    pred = gt.copy()
    pred[1, :] += 0.5                                   # 5 px off by 0.5
    pred[2, 0] = 20.0                                   # 1 px off by 10 (gross)
    sgbm = np.full_like(gt, np.nan)
    sgbm[3, :] = 11.0                                   # SGBM answers one row, 1 px off
    events = np.zeros(1, dtype=[("x", "<i8"), ("y", "<i8")])
    events["x"], events["y"] = 4, 3                     # one event: supports the 3x3 px within 2 px of (4, 3)
    tally = Tally()
    tally.add(pred, sgbm, gt, constant=12.0, max_disp=63.0, left_events=events)
    row = tally.row()
    assert row["gt_pixels"] == 19
    assert row["model_epe"] == pytest.approx((5 * 0.5 + 10.0) / 19)
    assert row["model_4pe"] == pytest.approx(100 / 19)
    assert row["gross_error_share_pct"] == pytest.approx(100 * 10.0 / 12.5)
    assert row["constant_epe"] == pytest.approx(2.0)
    assert row["sgbm_coverage"] == pytest.approx(100 * 5 / 19) and row["sgbm_epe"] == pytest.approx(1.0)
    assert row["model_epe_on_sgbm_pixels"] == 0.0
    # supported: rows 1-3, columns 2-4 (9 px; row 1's three are off by 0.5)
    assert row["event_supported_pct"] == pytest.approx(100 * 9 / 19)
    assert row["model_epe_event_supported"] == pytest.approx(1.5 / 9)
    assert row["model_epe_no_event"] == pytest.approx(11.0 / 10)


def test_long_sets_take_every_strided_window_after_the_start_start_the_first_two_fresh_from_new_sensors(monkeypatch):
    import eval_stereo_generalization as bench

    from eventvision.engine.checkpoint import load_model_from_checkpoint
    from eventvision.inference.stereo import BUNDLED_CHECKPOINT

    task, model, _ = load_model_from_checkpoint(BUNDLED_CHECKPOINT, device="cpu", task_name="stereo")
    monkeypatch.setattr(bench, "LONG_US", 300_000)          # windows from 100 ms every 150 ms: 100 and 250 ms
    starts = []
    monkeypatch.setattr(bench, "predict", lambda task, model, inputs: starts.append(1) or np.zeros(
        inputs["guide"].shape[-2:], np.float32))
    rest = bench.eval_long(task, model, "plain", 1, 8_000, constant=0.0)
    assert len(starts) == 2
    first = bench.eval_long(task, model, "plain", 1, 8_000, constant=0.0, start=True)
    assert len(starts) == 4                                  # the windows [0, 50) and [50, 100) ms
    fresh = bench.eval_long(task, model, "plain", 1, 8_000, constant=0.0, fresh=True)
    assert len(starts) == 6 and fresh.n == rest.n            # the windows of "long", from fresh sensors
    assert fresh.n_supported != rest.n_supported             # other events: no sensor history
    for tally in (rest, first, fresh):
        row = tally.row()                                    # a zero prediction is off by the GT itself
        assert row["gt_pixels"] > 0 and row["model_epe"] == pytest.approx(row["constant_epe"])


def test_an_unknown_set_is_one_line_and_exit_2():
    import subprocess

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_stereo_generalization.py"
    proc = subprocess.run([sys.executable, str(script), "--sets", "long,bogus"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "bogus" in proc.stderr and "long_start" in proc.stderr


def test_held_out_scenes_do_not_inherit_what_a_checkpoint_trained_on():
    import eval_stereo_generalization as bench

    from eventvision.config import load_config

    cfg = load_config("stereo/refine").data.synthetic
    cfg.window_start_ms = [0, 1000]
    cfg.ego_rotation_px_s = [0, 300]            # a training-time change of the scenes (stage 5)
    cfg.ground_prob = 0.5                       # another (configs/stereo_refine_cpu_ground.yaml)
    scene = bench.held_out_scene_config(cfg, "rotating", width=346, height=260)
    assert scene.family == "rotating" and (scene.width, scene.height) == (346, 260)
    assert scene.window_start_ms == (0.0, 0.0) and scene.ego_rotation_px_s is None and scene.ground_prob is None
    assert scene.params.ego_rotation_px_s == (60.0, 300.0)          # the family's own rotation, not the training's
    assert bench.held_out_scene_config(cfg, "mixed").params.ego_rotation_px_s == (0.0, 0.0)


def test_synthetic_scenes_do_not_follow_the_checkpoint_training_seed(monkeypatch):
    import eval_stereo_generalization as bench

    from eventvision.engine.checkpoint import load_model_from_checkpoint
    from eventvision.inference.stereo import BUNDLED_CHECKPOINT

    task, model, _ = load_model_from_checkpoint(BUNDLED_CHECKPOINT, device="cpu", task_name="stereo")
    monkeypatch.setattr(bench, "predict", lambda task, model, inputs: np.zeros(inputs["guide"].shape[-2:], np.float32))
    tallies = []
    for seed in (0, 7):                          # a checkpoint trained with another seed
        task.cfg.seed = seed
        tallies.append(bench.eval_synthetic(task, model, "fronto", 1, 0.0, None, (64, 48), "val").row())
    assert tallies[0]["gt_pixels"] > 0 and tallies[0] == tallies[1]


def test_a_kitti_root_without_frames_is_one_line_and_exit_2(tmp_path):
    import subprocess

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_stereo_generalization.py"
    proc = subprocess.run([sys.executable, str(script), "--sets", "kitti", "--kitti-root", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "--kitti-root" in proc.stderr


def test_val_split_scores_other_clips_and_refuses_the_kitti_set(monkeypatch):
    import subprocess

    import eval_stereo_generalization as bench

    seeds = []
    monkeypatch.setattr(bench, "eval_independent", lambda task, model, texture, clips, seed, constant, ground=False:
                        seeds.append(seed) or bench.Tally())
    assert bench.main(["--sets", "independent", "--clips", "2", "--median-samples", "1"]) == 0
    test_seeds, seeds[:] = list(seeds), []
    assert bench.main(["--sets", "independent", "--clips", "2", "--split", "val", "--median-samples", "1"]) == 0
    assert len(seeds) == len(test_seeds) == len(bench.INDEPENDENT_TEXTURES)
    # clips c of texture k use seed + c: the val clips share none of the test clips' seeds
    test_clips = {s + c for s in test_seeds for c in range(100)}
    assert not test_clips & {s + c for s in seeds for c in range(2)}

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_stereo_generalization.py"
    proc = subprocess.run([sys.executable, str(script), "--sets", "independent,kitti", "--split", "val"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "kitti" in proc.stderr


def test_independent_ground_set_asks_for_ground_clips_on_their_own_seeds(monkeypatch):
    import eval_stereo_generalization as bench

    calls = []
    monkeypatch.setattr(bench, "eval_independent", lambda task, model, texture, clips, seed, constant, ground=False:
                        calls.append((texture, seed, ground)) or bench.Tally())
    assert bench.main(["--sets", "independent,independent_ground", "--clips", "3", "--median-samples", "1"]) == 0
    plain = [c for c in calls if not c[2]]
    ground = [c for c in calls if c[2]]
    assert [c[0] for c in ground] == list(bench.INDEPENDENT_TEXTURES) and len(plain) == len(ground)
    assert not {s + k for _, s, _ in plain for k in range(3)} & {s + k for _, s, _ in ground for k in range(3)}


def test_val_overrides_and_held_out_scenes_reset_the_same_fields():
    """select_stereo_checkpoint's v1 (config overrides for `eventvision eval`) and this benchmark's held-out scenes
    (a dataclass replace) are built from one definition: a config changed the way trainings change it, once
    overridden, gives the scenes held_out_scene_config gives, and the seed of the held-out datasets."""
    import eval_stereo_generalization as bench

    from eventvision.config import apply_overrides, load_config
    from eventvision.data.stereo.synthetic import SyntheticStereoConfig

    cfg = load_config("stereo/refine")
    trained = apply_overrides(cfg, ["seed=3", "data.synthetic.window_start_ms=[0,1000]",
                                    "data.synthetic.ego_rotation_px_s=[0,300]", "data.synthetic.ground_prob=0.3",
                                    "data.synthetic.max_ego_image_speed_px_s=1500", "data.synthetic.leaves_prob=0.3"])
    overridden = apply_overrides(trained, bench.held_out_scene_overrides())
    family = str(trained.data.synthetic.family)
    assert SyntheticStereoConfig.from_config(overridden.data.synthetic) == bench.held_out_scene_config(
        trained.data.synthetic, family)
    assert SyntheticStereoConfig.from_config(trained.data.synthetic) != bench.held_out_scene_config(
        trained.data.synthetic, family)
    assert overridden.seed == bench.HELD_OUT_SEED


def test_bundled_checkpoint_beats_sgbm_on_the_real_kitti_scene():
    """The real scene (the KITTI pair in ../shared/data, LiDAR GT; benchmarks/stereo_kitti.py), first two test clips:
    the bundled checkpoint is well ahead of SGBM on the pixels SGBM answers (measured 0.66x of SGBM's error with the
    tenth session's weights; the ninth session's were level with SGBM on these clips, 0.99x) and far below the
    constant over all GT pixels."""
    import eval_stereo_generalization as bench

    from eventvision.engine.checkpoint import load_model_from_checkpoint
    from eventvision.inference.stereo import BUNDLED_CHECKPOINT

    task, model, _ = load_model_from_checkpoint(BUNDLED_CHECKPOINT, device="cpu", task_name="stereo")
    info = json.loads(BUNDLED_CHECKPOINT.with_suffix(".json").read_text())
    constant = info["metrics"]["trivial_baseline"]["median_px"]
    row = bench.eval_kitti(task, model, 2, bench.KITTI_SEED, constant).row()
    assert row["gt_pixels"] > 10_000 and row["sgbm_coverage"] > 50
    assert row["model_epe_on_sgbm_pixels"] < 0.8 * row["sgbm_epe"], row
    assert row["model_epe"] < 0.4 * row["constant_epe"], row
