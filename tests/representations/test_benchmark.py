from __future__ import annotations

import numpy as np

from eventvision.cli.main import main
from eventvision.representations import benchmark


def test_our_kernels_agree_with_tonic():
    """tonic ToVoxelGrid(B) == our voxel_grid(B+1)[:B]; tonic ToFrame == our to_frames(time) minus its dropped tail."""
    ev = benchmark.random_events(5000, width=40, height=30, seed=4)
    benchmark.check_against_tonic(ev, num_bins=5, width=40, height=30)
    tev = benchmark.to_tonic(ev)
    assert set(np.unique(tev["p"])) == {0, 1}


def test_bench_voxel_cli_prints_ratios(capsys):
    assert main(["bench", "voxel", "--sizes", "20000", "--repeats", "1", "--warmup", "0", "--width", "64",
                 "--height", "48"]) == 0
    out = capsys.readouterr().out
    assert "tonic ToVoxelGrid" in out and "x tonic ToVoxelGrid" in out and "x ours 1 thread" in out
    assert "load average" in out


def test_bench_lists_voxel(capsys):
    assert main(["bench"]) == 0
    assert "eventvision bench voxel" in capsys.readouterr().out
    assert main(["bench", "voxel", "--sizes", "x"]) == 2
    assert main(["bench", "voxel", "--warmup", "-1"]) == 2


def test_evlib_baseline_agrees_and_is_reported():
    evlib = benchmark.import_evlib()
    if evlib is None:
        import pytest
        pytest.skip("evlib not installed (pip install -e '.[bench]')")
    import sys
    assert sys.modules.get("torchvision") is None  # blocked, never imported
    ev = benchmark.random_events(3000, width=40, height=30, seed=5)
    benchmark.check_against_evlib(evlib, ev, num_bins=4, width=40, height=30)
    rows, _ = benchmark.run([3000], num_bins=4, width=40, height=30, repeats=1, with_tonic=False, warmup_s=0,
                            evlib=evlib)
    report = benchmark.format_report(rows, [], num_bins=4, width=40, height=30, load_before=(0, 0, 0),
                                     load_after=(0, 0, 0))
    assert "evlib voxel_grid" in report and "x [" in report.split("ours voxel_grid 1 thread")[1].splitlines()[0]
