"""bench_detect3d.py score: held-out sequences of several roots scored together, missing ones rendered first."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from eventvision.config import load_config
from eventvision.engine.checkpoint import save_checkpoint
from eventvision.models.detect3d import StereoDetector3D

pytestmark = pytest.mark.usefixtures("single_thread")


def _bench():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_detect3d.py"
    spec = importlib.util.spec_from_file_location("bench_detect3d", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sequence_ranges():
    bench = _bench()
    assert bench._sequence_range("0096-0099") == ["0096", "0097", "0098", "0099"]
    assert bench._sequence_range("0048,0050-0051") == ["0048", "0050", "0051"]


def test_score_renders_missing_sequences_and_scores_all_roots_together(tmp_path):
    bench = _bench()
    cfg = load_config("detect3d/small", ["model.score_thresh=0.0"])
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "d3d.pt", task="detect3d", config=cfg,
                           model=StereoDetector3D.from_config(cfg.model))
    out = tmp_path / "score.json"
    rc = bench.main(["score", "--checkpoint", str(ckpt), "--data", f"{tmp_path / 'a'}:0003",
                     "--data", f"{tmp_path / 'b'}:0007-0008", "--frames", "3", "--objects", "2", "--supersample", "1",
                     "--json", str(out)])
    assert rc == 0
    for root, name in (("a", "0003"), ("b", "0007"), ("b", "0008")):
        assert (tmp_path / root / "training" / "label_02" / f"{name}.txt").is_file()
    result = json.loads(out.read_text())
    assert set(result) >= {"fixed50ms_copy", "measured_copy", "measured_kf"}
    for key in ("fixed50ms_copy", "measured_kf"):
        for overlap in ("loose", "strict"):
            assert all(0.0 <= v <= 100.0 for v in result[key][overlap]["bev"])
    assert result["fixed50ms_copy"]["latency_ms_mean"] == 50.0
