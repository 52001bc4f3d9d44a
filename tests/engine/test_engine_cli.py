"""``eventvision train``: a run, --resume continuing it, and one-line errors."""

from __future__ import annotations

import json

import torch

from eventvision.cli.main import main
from eventvision.engine import load_checkpoint


def test_train_then_resume_via_cli(tmp_path, capsys, toy_overrides):
    out = tmp_path / "run"
    args = ["train", "toy", *toy_overrides, "--output-dir", str(out), "-q"]
    assert main([*args, "train.epochs=2", "train.max_steps=5"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["step"] == 5 and load_checkpoint(out / "last.pt")["batch_in_epoch"] == 5

    assert main([*args, "train.epochs=2", "--resume"]) == 0
    resumed = json.loads(capsys.readouterr().out.splitlines()[0])
    assert resumed["step"] == 16 and resumed["epoch"] == 2 and resumed["val/accuracy"] > 0.5

    assert main([*args, "train.epochs=2", "--output-dir", str(tmp_path / "whole")]) == 0
    capsys.readouterr()
    a, b = load_checkpoint(out / "last.pt")["model"], load_checkpoint(tmp_path / "whole" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    assert main(["train", "toy", *toy_overrides, "--output-dir", str(tmp_path / "fresh"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "nothing to resume" in err and err.count("\n") == 1
    assert main(["train", "toy", *toy_overrides, "train.epochs=1", "--output-dir", str(tmp_path / "auto"),
                 "--auto-resume"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[0])["step"] == 8 and "resuming" not in captured.err  # fresh
    assert main(["train", "toy", *toy_overrides, "train.epochs=2", "--output-dir", str(tmp_path / "auto"),
                 "--auto-resume"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[0])["step"] == 16
    assert "resuming from" in captured.err and "at epoch 1, step 8" in captured.err
    assert main(["train", "nosuchtask"]) == 2
    assert "unknown task 'nosuchtask'; tasks:" in capsys.readouterr().err


def test_a_fresh_run_in_a_used_folder_starts_a_new_log(toy_config, tmp_path):
    from eventvision.engine import Trainer
    from eventvision.engine.logger import read_metrics_csv

    for _ in range(2):
        Trainer.from_config(toy_config("train.epochs=1"), "toy", verbose=False).fit()
    rows = read_metrics_csv(tmp_path / "run" / "metrics.csv")
    assert [r["step"] for r in rows if r["tag"] == "train/loss"] == [4, 8]


def test_fine_tuning_never_overwrites_its_initial_weights(tmp_path, capsys, toy_overrides):
    """train.init_weights inside the output folder of a fresh run would be overwritten by the run's own
    best.pt: refused in one line, the file untouched; another output folder works."""
    first = tmp_path / "a"
    assert main(["train", "toy", *toy_overrides, "train.epochs=1", "--output-dir", str(first), "-q"]) == 0
    capsys.readouterr()
    before = (first / "best.pt").read_bytes()
    args = ["train", "toy", *toy_overrides, "train.epochs=1", f"train.init_weights={first / 'best.pt'}", "-q"]
    assert main([*args, "--output-dir", str(first)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "would destroy the input" in err
    assert (first / "best.pt").read_bytes() == before
    assert main([*args, "--output-dir", str(tmp_path / "b")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["step"] == 8
