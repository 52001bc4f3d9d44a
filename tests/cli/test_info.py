"""``eventvision info`` on real samples and written layouts, plus every bad-input case (exit 2, one line)."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from eventvision.cli.main import main
from eventvision.events import write_stereo_h5
from eventvision.events.core import make_events


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_aedat4_json(capsys, shared_data):
    code, out, err = _run(capsys, "info", str(shared_data / "events" / "sample.aedat4"), "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["format"] == "aedat4" and (d["width"], d["height"], d["count"]) == (320, 240, 111_954)
    assert (d["t_start_us"], d["t_end_us"]) == (1_605_537_493_718_345, 1_605_537_494_308_262)
    assert d["event_rate_hz"] == pytest.approx(111_954 / 0.589917)


def test_info_text_evt3(capsys, shared_data):
    code, out, _ = _run(capsys, "info", str(shared_data / "events" / "evt3_sample.raw"))
    assert code == 0
    assert "format:       evt3" in out and "1280 x 720" in out and "219,596" in out


def test_info_stereo_per_stream(capsys, tmp_path):
    rng = np.random.default_rng(0)
    mk = lambda n: make_events(rng.integers(0, 64, n), rng.integers(0, 48, n), np.sort(rng.integers(0, 10**6, n)),  # noqa: E731
                               rng.integers(0, 2, n))
    write_stereo_h5(tmp_path / "rec.h5", mk(300), mk(500), width=64, height=48, baseline_m=0.1, focal_px=50.0)
    code, out, _ = _run(capsys, "info", str(tmp_path / "rec.h5"), "--json")
    d = json.loads(out)
    assert code == 0 and d["stereo"] and d["baseline_m"] == 0.1 and d["focal_px"] == 50.0
    assert d["streams"]["left"]["count"] == 300 and d["streams"]["right"]["count"] == 500
    code, out, _ = _run(capsys, "info", str(tmp_path / "rec.h5"))
    assert "left:" in out and "right:" in out and "(stereo)" in out


def _bad_inputs(tmp_path, shared_data):
    ev = make_events([1, 2, 3], [1, 1, 1], [10, 5, 20], [1, 0, 1])  # t goes back
    np.save(tmp_path / "unsorted.npy", ev)
    np.savez(tmp_path / "outside.npz", events=make_events([1, 99], [1, 1], [1, 2], [1, 1]), width=10, height=10)
    (tmp_path / "unknown.bin").write_bytes(b"\x00\x01garbage" * 10)
    raw = (shared_data / "events" / "evt3_sample.raw").read_bytes()
    (tmp_path / "truncated.raw").write_bytes(raw[:1001])
    (tmp_path / "corrupt.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with h5py.File(tmp_path / "nodata.h5", "w") as f:
        f["something"] = np.zeros(3)
    return {"missing": tmp_path / "does_not_exist.h5", "unknown": tmp_path / "unknown.bin",
            "truncated": tmp_path / "truncated.raw", "corrupt_h5": tmp_path / "corrupt.h5",
            "unsorted": tmp_path / "unsorted.npy", "outside": tmp_path / "outside.npz",
            "h5_without_events": tmp_path / "nodata.h5"}


@pytest.mark.parametrize("case", ["missing", "unknown", "truncated", "corrupt_h5", "unsorted", "outside",
                                  "h5_without_events"])
def test_info_bad_input(capsys, tmp_path, shared_data, case):
    path = _bad_inputs(tmp_path, shared_data)[case]
    before = path.read_bytes() if path.exists() else None
    code, out, err = _run(capsys, "info", "--verify", str(path))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eventvision: error:") and str(path) in lines[0]
    assert "Traceback" not in err
    assert (path.read_bytes() if path.exists() else None) == before


def test_info_starts_without_torch(shared_data):
    code = ("import sys\nfrom eventvision.cli.main import main\n"
            f"rc = main(['info', {str(shared_data / 'events' / 'sample_ncars.dat')!r}])\n"
            "assert 'torch' not in sys.modules, 'info imported torch'\nsys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "inferred from the events" in res.stdout


def test_info_lists_aedat4_frames_imu_triggers(capsys, shared_data):
    code, out, err = _run(capsys, "info", str(shared_data / "events" / "davis346.aedat4"))
    assert code == 0, err
    assert "117,667" in out
    assert "frames:       3 (stream 1" in out and "imu:          130 (stream 2" in out
    assert "triggers:     15 (stream 3" in out
    code, out, _ = _run(capsys, "info", str(shared_data / "events" / "davis346.aedat4"), "--json")
    other = json.loads(out)["other_streams"]
    assert other["frames"]["count"] == 3 and other["triggers"]["t_end_us"] == 1_633_953_691_110_744
