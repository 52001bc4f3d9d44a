"""benchmarks/select_stereo_checkpoint.py: the stereo selection rule (validation sets only, the default's margin)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from select_stereo_checkpoint import SetResult, command, read_result, score  # noqa: E402


def _results(**epes):
    """name -> {set: SetResult} from (v1, v2) all-px EPEs; SGBM's pixels at 0.6x, SGBM itself at 2.0 px."""
    return {name: {s: SetResult(e, 0.6 * e, 2.0) for s, e in zip(("v1", "v2"), pair)} for name, pair in epes.items()}


def test_a_candidate_must_beat_the_default_by_the_margin():
    results = _results(default=(3.0, 3.0), close=(2.98, 2.98), clear=(2.8, 2.9), worse=(3.1, 3.3))
    rows, chosen = score(results, "default", margin=0.01)
    assert [r[1] for r in rows] == ["clear", "close", "default", "worse"]
    assert rows[2][0] == pytest.approx(1.0) and rows[0][0] == pytest.approx((2.8 / 3 + 2.9 / 3) / 2)
    assert chosen == "clear"
    assert score(_results(default=(3.0, 3.0), close=(2.98, 2.98)), "default", margin=0.01)[1] == "default"
    assert score(_results(default=(3.0, 3.0), close=(2.98, 2.98)), "default", margin=0.0)[1] == "close"


def test_a_candidate_that_loses_to_sgbm_on_its_pixels_outside_v1_is_not_chosen():
    results = _results(default=(3.0, 3.0), best=(2.0, 2.0))
    results["best"]["v2"] = SetResult(2.0, 2.5, 2.2)          # on SGBM's pixels worse than SGBM itself
    results["best"]["v1"] = SetResult(2.0, 9.0, 1.0)          # v1 does not count for this
    rows, chosen = score(results, "default", margin=0.01)
    assert rows[0][1] == "best" and rows[0][2] is False and chosen == "default"


def test_commands_and_results_of_each_set(tmp_path):
    v1 = command("v1", Path("c.pt"), tmp_path / "a.json")
    assert v1[1:5] == ["-m", "eventvision", "eval", "stereo"] and "data.synthetic.ground_prob=null" in v1
    assert "seed=0" in v1                       # the val scenes, not those of a checkpoint's training seed
    v3 = command("v3", Path("c.pt"), tmp_path / "b.json")
    assert v3[v3.index("--sets") + 1] == "long" and "rotating" in v3[v3.index("--families") + 1]
    v2g = command("v2g", Path("c.pt"), tmp_path / "c.json")
    assert v2g[v2g.index("--split") + 1] == "val" and v2g[v2g.index("--sets") + 1] == "independent_ground"
    v4 = command("v4", Path("c.pt"), tmp_path / "d.json")     # the DSEC layout's val clips, 640x480
    assert v4[v4.index("--split") + 1] == "val" and v4[v4.index("--sets") + 1] == "dsec"
    assert "ground" not in v4[v4.index("--families") + 1].split(",")
    (tmp_path / "v1.json").write_text(json.dumps({"metrics": {"epe": 3.3}, "learned_on_sgbm_pixels": {"epe": 2.2},
                                                  "sgbm": {"epe": 3.8}}))
    assert read_result("v1", tmp_path / "v1.json") == SetResult(3.3, 2.2, 3.8)
    (tmp_path / "v2.json").write_text(json.dumps({"sets": {"independent": {"all": {
        "model_epe": 3.31, "model_epe_on_sgbm_pixels": 1.98, "sgbm_epe": 3.30}}}}))
    assert read_result("v2", tmp_path / "v2.json") == SetResult(3.31, 1.98, 3.30)
    (tmp_path / "v4.json").write_text(json.dumps({"sets": {"dsec": {"all": {
        "model_epe": 3.8, "model_epe_on_sgbm_pixels": 2.7, "sgbm_epe": 6.5}}}}))
    assert read_result("v4", tmp_path / "v4.json") == SetResult(3.8, 2.7, 6.5)


def test_a_missing_checkpoint_or_unknown_set_is_one_line_and_exit_2(tmp_path):
    script = str(ROOT / "benchmarks/select_stereo_checkpoint.py")
    for args in ([str(tmp_path / "none.pt"), "--out", str(tmp_path)], ["x.pt", "--sets", "v1,v9"]):
        proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "v9" in proc.stderr
