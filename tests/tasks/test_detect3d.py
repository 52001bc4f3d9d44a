"""Detect3D task through the shared engine: the small detector learns on a synthetic KITTI scene."""

from __future__ import annotations

import math

import pytest

from eventvision.config import load_config
from eventvision.engine.evaluate import evaluate
from eventvision.engine.trainer import Trainer
from eventvision.engine.checkpoint import load_model_from_checkpoint
from eventvision.engine.logger import read_metrics_csv
from eventvision.tasks import get_task_class
from eventvision.tasks.detect3d import Detect3DTask


pytestmark = pytest.mark.usefixtures("single_thread")


def _cfg(tmp_path, **extra):
    over = [f"data.synthetic_root={tmp_path / 'data'}", "data.synthetic_train_seqs=1", "data.synthetic_val_seqs=0",
            "data.synthetic_frames=6", "data.synthetic_objects=3", "data.synthetic_class_probs=[1.0, 0.0, 0.0]",
            "data.synthetic_z_range=[6.0, 20.0]", "model.score_thresh=0.01",
            f"output_dir={tmp_path / 'run'}", "device=cpu", "train.tensorboard=false", "train.val_every=0",
            "train.batch_size=2", "train.epochs=8", "train.log_every=1", "train.optimizer.lr=5.0e-3",
            "model.fusion=true", "model.motion_weight=0.2"]
    return load_config("detect3d/small", over + [f"{k}={v}" for k, v in extra.items()])


def test_registered():
    assert get_task_class("detect3d") is Detect3DTask


def test_small_detector_learns_a_training_scene(tmp_path):
    # 10 epochs: after 8 the AP below was 0.94 on one CPU and above 1 on others (float arithmetic); after 10, 18 on the
    # machine where 8 gave 0.94
    cfg = _cfg(tmp_path, **{"train.epochs": 10})
    task = Detect3DTask.from_config(cfg)
    trainer = Trainer.from_config(cfg, task)
    before = evaluate(task, trainer.model, "train", "cpu")["Car/bev/R40/easy"]
    trainer.fit()
    rows = read_metrics_csv(tmp_path / "run" / "metrics.csv")

    def curve(tag):
        return [float(r["value"]) for r in rows if r["tag"] == tag]

    losses = curve("train/loss")
    assert len(losses) >= 20 and all(math.isfinite(v) for v in losses)
    # detection terms fall fast; the plane sweep's depth cross-entropy (log 32 at start) falls slowly
    det = [c + i for c, i in zip(curve("train/loss_cls"), curve("train/loss_iou"))]
    assert sum(det[-4:]) < 0.6 * sum(det[:4]), det
    depth = curve("train/loss_depth")
    assert sum(depth[-4:]) < sum(depth[:4]), depth
    metrics = evaluate(task, trainer.model, "train", "cpu")
    # KITTI AP (loose: BEV IoU 0.5) of the next-frame boxes on the scene it trained on, against the same detector
    # before training (0 AP)
    after = metrics["Car/bev/R40/easy"]
    assert after > before + 1.0, (before, {k: v for k, v in metrics.items() if k.startswith("Car")})
    # the checkpoint the engine wrote rebuilds the same detector
    _, model, ckpt = load_model_from_checkpoint(tmp_path / "run" / "last.pt", task_name="detect3d")
    assert ckpt["task"] == "detect3d" and model.fusion is not None


def test_evaluation_renders_only_the_val_sequences(tmp_path):
    cfg = _cfg(tmp_path, **{"data.synthetic_val_seqs": 1, "data.synthetic_frames": 3})
    task = Detect3DTask.from_config(cfg)
    task.build_dataset("val")
    labels = tmp_path / "data" / "training" / "label_02"
    assert sorted(p.name for p in labels.iterdir()) == ["0001.txt"]   # the training sequence 0000 is not needed
    task.build_dataset("train")
    assert sorted(p.name for p in labels.iterdir()) == ["0000.txt", "0001.txt"]
