"""bench_run_stereo.py --against: this checkout's default command against another checkout's, alternately."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_run_stereo", ROOT / "benchmarks" / "bench_run_stereo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_against_compares_two_checkouts_alternately(capsys):
    rc = _bench().main(["--against", str(ROOT), "--repeats", "1", "--duration-s", "0.2", "--size", "64x48"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "this checkout" in out and "medians of 1 alternating runs" in out
    ratio = float(out.split("->")[-1].split("x")[0])
    assert 0.0 < ratio < 100.0


def test_a_variant_runs_the_code_of_the_checkout_it_names(tmp_path):
    # a stand-in checkout whose 'eventvision run stereo' only writes a marked summary: the bench must run it even
    # though the working folder (this checkout) comes first on python -m's path
    fake = tmp_path / "checkout" / "eventvision"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(
        "import json, pathlib, sys\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--output') + 1]); out.mkdir(parents=True)\n"
        "(out / 'summary.json').write_text(json.dumps({'windows': 1, 'marker': 'stand-in'}))\n")
    summary = _bench().run_variant(tmp_path / "rec.h5", tmp_path / "out", [], root=fake.parent)
    assert summary["marker"] == "stand-in"


def test_against_refuses_a_folder_that_is_no_checkout(tmp_path, capsys):
    assert _bench().main(["--against", str(tmp_path)]) == 2
    assert "not an eventvision checkout" in capsys.readouterr().err
