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
