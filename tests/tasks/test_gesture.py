"""Gesture pipeline: synthetic gestures through the emulator, training through the shared engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import eventvision
from eventvision.cli.main import main
from eventvision.config import load_config
from eventvision.engine import Trainer
from eventvision.engine.logger import read_metrics_csv
from eventvision.simulate.gesture_scenes import (
    GESTURE_CLASSES,
    render_gesture_frames,
    synthetic_gesture_events,
)
from eventvision.tasks.gesture import GestureTask


def test_synthetic_gestures_are_deterministic_and_class_specific():
    a = synthetic_gesture_events(3, size=64, seed=5)
    b = synthetic_gesture_events(3, size=64, seed=5)
    assert len(a) > 500 and np.array_equal(a, b)
    assert set(np.unique(a["p"]).tolist()) == {-1, 1}
    assert a["x"].max() < 64 and a["y"].max() < 64
    # cw and ccw circles visit the same place in opposite temporal order
    frames_cw, _ = render_gesture_frames(3, size=32, seed=1)
    frames_ccw, _ = render_gesture_frames(4, size=32, seed=1)
    assert not np.allclose(frames_cw[10], frames_ccw[10])
    assert len(GESTURE_CLASSES) == 11


@pytest.mark.parametrize("name", ["plif_net", "spikformer", "svformer"])
def test_every_gesture_model_builds_and_backpropagates(name):
    overrides = [f"model.name={name}", "model.embed_dim=32", "model.num_layers=1", "model.num_heads=4",
                 "model.dims=[8,16,24,32]", "model.depths=[1,1,1,1]", "model.loss=ce"]
    task = GestureTask.from_config(load_config("gesture/small", overrides))
    model = task.build_model()
    frames = torch.rand(2, 8, 2, 32, 32)
    scores = task.predict(model, {"frames": frames})
    assert scores.shape == (2, 11)
    loss, _ = task.training_step(model, {"frames": frames, "label": torch.tensor([0, 5])})
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_training_on_synthetic_gestures_beats_chance(tmp_path):
    cfg = load_config("gesture/small", ["data.synthetic_train=132", "data.synthetic_val=44", "train.epochs=4",
                                        "train.tensorboard=false", f"output_dir={tmp_path}", "device=cpu"])
    torch.manual_seed(0)
    trainer = Trainer.from_config(cfg, "gesture", verbose=False)
    metrics = trainer.fit()
    losses = [row["value"] for row in read_metrics_csv(tmp_path / "metrics.csv") if row["tag"].endswith("loss")
              and row["tag"].startswith("train")]
    chance = 100.0 / 11
    assert metrics["val/top1"] > 2.5 * chance, metrics  # measured: 36.4 % (chance 9.1 %)
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()
    assert len(losses) >= 2 and losses[-1] < losses[0]
    # the eval CLI on the checkpoint: metrics JSON and the confusion-matrix picture
    rc = main(["eval", "gesture", "--checkpoint", str(tmp_path / "best.pt"), "--plots", str(tmp_path / "plots"),
               "--json", str(tmp_path / "eval.json"), "data.synthetic_val=22"])
    assert rc == 0
    assert (tmp_path / "plots" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "eval.json").read_text())["metrics"]["top1"] >= 0


def test_eval_split_test_evaluates_the_test_split_and_an_unknown_split_is_one_line(tmp_path, capsys):
    from eventvision.engine.checkpoint import load_model_from_checkpoint
    from eventvision.errors import ConfigError

    checkpoint = str(Path(eventvision.__file__).parent / "checkpoints" / "gesture_small.pt")
    task, _, _ = load_model_from_checkpoint(checkpoint, task_name="gesture", overrides=["data.synthetic_val=11"])
    val, test = task.build_dataset("val"), task.build_dataset("test")
    assert len(val) == len(test) == 11
    assert not torch.equal(val[0]["frames"], test[0]["frames"])  # another seed stream: other scenes
    with pytest.raises(ConfigError, match="gesture: unknown split 'foo'; choose one of train, val, test"):
        task.build_dataset("foo")

    results = {}
    for split in ("val", "test"):
        out = tmp_path / f"{split}.json"
        assert main(["eval", "gesture", "--checkpoint", checkpoint, "--split", split, "data.synthetic_val=11",
                     "--json", str(out)]) == 0
        results[split] = json.loads(out.read_text())
    capsys.readouterr()
    assert results["test"]["split"] == "test" and results["val"]["split"] == "val"
    assert main(["eval", "gesture", "--checkpoint", checkpoint, "--split", "foo"]) == 2
    err = capsys.readouterr().err
    assert "'foo'" in err and "test" in err and err.count("\n") == 1  # refused, the splits named
