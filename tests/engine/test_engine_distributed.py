"""Scale-out: the same CLI command under torchrun (2 processes, gloo, CPU) trains the same model as a
single process with the same global batch, and only rank 0 writes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from eventvision.config import load_config
from eventvision.engine import Trainer, load_checkpoint
from eventvision.engine.logger import read_metrics_csv

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with gloo is not available in this torch build")
def test_two_process_gloo_run_equals_single_process(tmp_path, toy_overrides):
    overrides = toy_overrides + ["train.epochs=2", "train.log_every=4", "data.jitter=0.0", "model.dropout=0.0"]
    single = tmp_path / "single"
    Trainer.from_config(load_config("toy/default", overrides + [f"output_dir={single}"]), "toy", verbose=False).fit()

    ddp = tmp_path / "ddp"
    env = {**os.environ, "EVENTVISION_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "eventvision", "train", "toy", *overrides, "--output-dir", str(ddp), "--quiet"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("checkpoints:") == 1  # only rank 0 reports

    a, b = load_checkpoint(single / "last.pt"), load_checkpoint(ddp / "last.pt")
    assert b["world_size"] == 2 and len(b["rng_per_rank"]) == 2 and a["step"] == b["step"] == 16
    for key in a["model"]:
        torch.testing.assert_close(b["model"][key], a["model"][key], rtol=1e-5, atol=1e-6)
    # sharded validation merged on rank 0 sees the whole val set: same metrics
    assert b["metrics"]["val/accuracy"] == pytest.approx(a["metrics"]["val/accuracy"])
    assert b["metrics"]["val/loss"] == pytest.approx(a["metrics"]["val/loss"], rel=1e-5)
    assert b["metrics"]["train/loss"] == pytest.approx(a["metrics"]["train/loss"], rel=1e-5)

    rows_a = [(r["step"], r["tag"]) for r in read_metrics_csv(single / "metrics.csv")]
    rows_b = [(r["step"], r["tag"]) for r in read_metrics_csv(ddp / "metrics.csv")]
    assert rows_b == rows_a  # one writer: no duplicated rows
    assert sorted(p.name for p in ddp.iterdir()) == ["best.pt", "config.yaml", "last.pt", "metrics.csv"]
