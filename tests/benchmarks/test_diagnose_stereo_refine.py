"""benchmarks/diagnose_stereo_refine.py: the error split of an SGBM-refine checkpoint with a matching branch."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from diagnose_stereo_refine import main  # noqa: E402


def test_shipped_checkpoint_split_adds_up(capsys):
    assert main(["--scenes", "1"]) == 0
    out = capsys.readouterr().out
    mean, gross_pct, share, rest = map(float, re.search(
        r"mean error ([\d.]+) px; ([\d.]+) % of the px .* make ([\d.]+) % of the error; the rest average ([\d.]+)",
        out).groups())
    # the mean is the gross pixels' share plus the rest's
    assert abs(mean * (1 - share / 100) - rest * (1 - gross_pct / 100)) < 0.01
    within = dict(re.findall(r"within 4 px of the truth: (\w+)\s+([\d.]+) %", out))
    assert abs(float(within["model"]) - (100 - gross_pct)) < 0.05
    assert float(within["sgbm_or_branch"]) >= max(float(within["sgbm_filled"]), float(within["branch_winner"]))


def test_checkpoint_without_matching_branch_refused(capsys):
    assert main(["--checkpoint", str(ROOT / "eventvision/checkpoints/stereo_small.pt"), "--scenes", "1"]) == 2
    assert "matching branch" in capsys.readouterr().err


def test_missing_checkpoint_is_one_line_and_exit_2(tmp_path):
    import subprocess

    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/diagnose_stereo_refine.py"), "--checkpoint",
                           str(tmp_path / "none.pt")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "none.pt" in proc.stderr and "Traceback" not in proc.stderr


def test_trust_table_bins_by_sgbm_answer_and_signs_the_model_error():
    import numpy as np

    from diagnose_stereo_refine import TrustTable

    gt = np.full((2, 4), 30.0, np.float32)
    sgbm = np.array([[30.4, 50.0, np.nan, 30.0], [5.0, 30.0, 30.0, 30.0]], np.float32)   # 50 and 5: wrong matches
    pred = gt - 2.0                                     # the model shades every answer down by 2 px
    valid = np.ones_like(gt, bool)
    valid[1, 3] = False                                 # no GT there: not counted
    table = TrustTable()
    table.add(pred, sgbm, gt, valid)
    lines = {line.split(":")[0]: line for line in table.lines()}
    assert set(lines) == {"SGBM answer  0-10 px", "SGBM answer 20-35 px", "SGBM answer 45-55 px"}
    near = lines["SGBM answer 20-35 px"]
    assert "        4 px," in near and "on   0.0 %" in near and "SGBM  0.10 px" in near
    assert "model  2.00 px (signed -2.00)" in near
    assert "on 100.0 %" in lines["SGBM answer 45-55 px"] and "SGBM 20.00 px" in lines["SGBM answer 45-55 px"]


def test_kitti_trust_table_runs_on_the_real_scene(capsys):
    assert main(["--set", "kitti", "--scenes", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 clips of the real scene" in out and out.count("SGBM answer") >= 3


def test_wrong_large_answers_are_split_into_trails_borders_and_false_matches():
    import numpy as np

    from diagnose_stereo_refine import classify_wrong_answers

    gt = np.full((8, 12), 10.0, np.float32)
    gt[:, 8:] = 50.0                                    # a near surface on the right third at the window's end
    gt[0, 0] = np.nan
    earlier = np.full_like(gt, 10.0)
    earlier[:, 2:4] = 50.0                              # ... which covered columns 2-3 earlier
    sgbm = np.full_like(gt, np.nan)
    sgbm[1, 2] = sgbm[2, 3] = 50.5                      # its trail, matched right: 2 trail px
    sgbm[3, 7] = 49.0                                   # next to its border: 1 border px
    sgbm[4, 5] = 47.0                                   # nothing near at 47 px: a false match
    sgbm[5, 9] = 50.0                                   # right: not wrong
    sgbm[6, 1] = 12.0                                   # wrong by 2 px only, and small: not counted
    sgbm[0, 0] = 55.0                                   # no GT: not counted
    causes = classify_wrong_answers(sgbm, gt, [earlier])
    assert causes == {"wrong": 4, "trail": 2, "border": 1, "false_match": 1}
    assert classify_wrong_answers(sgbm, gt, [])["trail"] == 0
