"""DSEC / MVSEC / eventvision h5 readers on files written in the published layouts, and the writers."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

from eventvision.errors import UserError
from eventvision.events import (StereoH5Writer, compute_ms_to_idx, open_recording, slice_time,
                                write_dsec_events_h5, write_stereo_h5)
from eventvision.events.h5 import DsecH5Writer
from events_testutil import random_events, write_dsec_reference


def _relative(ev, offset):
    out = ev.copy()
    out["t"] -= offset
    return out


def test_dsec_events_h5_published_layout(dsec_file):
    path, ev, off = dsec_file
    with h5py.File(path) as f:  # the fixture really is Blosc-compressed with the published dtypes
        assert f["events/t"].dtype == np.dtype("<u4") and f["events/p"].dtype == np.dtype("u1")
        assert "32001" in f["events/x"]._filters
    rec = open_recording(path)
    assert rec.format == "dsec" and not rec.is_stereo
    assert (rec.width, rec.height, rec.meta.t_offset) == (640, 480, off)
    assert rec.num_events == len(ev)
    rel = _relative(ev, off)
    assert (rec.t_start, rec.t_end) == (rel["t"][0], rel["t"][-1])
    np.testing.assert_array_equal(rec.read_all(), rel)
    for t0, t1 in [(456_789, 457_789), (1_000_000, 1_000_001), (0, 600_000), (1_955_000, 3_000_000)]:
        np.testing.assert_array_equal(rec.read_window(t0, t1), slice_time(rel, t0, t1))
    wins = list(rec.iter_windows(50_000))
    np.testing.assert_array_equal(np.concatenate([w[2] for w in wins]), rel)


def test_dsec_sequence_folder_aligns_right_clock(tmp_path):
    left = random_events(20_000, t0=10_000_000, seed=3)
    right = random_events(25_000, t0=10_000_000, seed=4)
    for cam, ev, off in (("left", left, 9_000_000), ("right", right, 9_500_000)):
        (tmp_path / "seq" / "events" / cam).mkdir(parents=True)
        write_dsec_reference(tmp_path / "seq" / "events" / cam / "events.h5", ev, off)
    rec = open_recording(tmp_path / "seq")
    assert rec.is_stereo and rec.format == "dsec-sequence" and rec.right_shift == 500_000
    ev_l, ev_r = rec.read_window(1_200_000, 1_700_000)  # left clock = absolute - 9.0 s
    np.testing.assert_array_equal(ev_l, slice_time(_relative(left, 9_000_000), 1_200_000, 1_700_000))
    np.testing.assert_array_equal(ev_r, slice_time(_relative(right, 9_000_000), 1_200_000, 1_700_000))
    wins = list(rec.iter_windows(100_000))
    assert sum(len(w[2]) for w in wins) == len(left) and sum(len(w[3]) for w in wins) == len(right)
    for t0, t1, wl, wr in wins[::5]:
        np.testing.assert_array_equal(wr, slice_time(_relative(right, 9_000_000), t0, t1))


def test_mvsec_layout_seconds_to_us(tmp_path):
    cams = {c: random_events(10_000, t0=1_504_645_177_000_000, duration_us=3_000_000, width=346, height=260,
                             seed=i) for i, c in enumerate(("left", "right"))}
    with h5py.File(tmp_path / "indoor_flying1_data.hdf5", "w") as f:
        for c, ev in cams.items():
            data = np.stack([ev["x"], ev["y"], ev["t"] / 1e6, ev["p"]], axis=1).astype(np.float64)
            f.create_dataset(f"davis/{c}/events", data=data, chunks=(4096, 4), compression="gzip")
    rec = open_recording(tmp_path / "indoor_flying1_data.hdf5")
    assert rec.is_stereo and rec.format == "mvsec" and (rec.left.width, rec.left.height) == (346, 260)
    l, r = rec.read_all()
    np.testing.assert_array_equal(l, cams["left"])
    np.testing.assert_array_equal(r, cams["right"])
    t0 = int(cams["left"]["t"][0]) + 1_000_000
    np.testing.assert_array_equal(rec.left.read_window(t0, t0 + 20_000), slice_time(cams["left"], t0, t0 + 20_000))


def test_stereo_writer_streaming_round_trip_and_index(tmp_path):
    left, right = random_events(30_000, seed=5), random_events(40_000, seed=6)
    path = tmp_path / "rec.h5"
    with StereoH5Writer(path, 640, 480, baseline_m=0.6, focal_px=580.5, t_offset=0) as w:
        bounds = np.arange(0, 2_000_001, 137_000).tolist() + [2_000_001]
        for a, b in zip(bounds, bounds[1:]):  # uneven chunks, some empty on one side
            w.append(slice_time(left, a, b), slice_time(right, a, b))
        assert not path.exists()  # nothing visible before close
    rec = open_recording(path)
    assert rec.format == "eventvision-h5" and (rec.baseline_m, rec.focal_px) == (0.6, 580.5)
    l, r = rec.read_all()
    np.testing.assert_array_equal(l, left)
    np.testing.assert_array_equal(r, right)
    with h5py.File(path) as f:
        assert (f.attrs["width"], f.attrs["height"]) == (640, 480)
        for cam, ev in (("left", left), ("right", right)):
            np.testing.assert_array_equal(f[f"{cam}/ms_to_idx"][:], compute_ms_to_idx(ev["t"]))
            assert f[f"{cam}/t_offset"][()] == 0 and f[f"{cam}/events/p"].dtype == np.uint8


def test_writer_rebases_absolute_clock_and_dsec_single_camera(tmp_path):
    ev = random_events(5_000, t0=1_605_537_493_718_345, duration_us=300_000, width=320, height=240)
    path = write_dsec_events_h5(tmp_path / "events.h5", ev, width=320, height=240)
    rec = open_recording(path)
    assert rec.format == "dsec" and rec.meta.t_offset == ev["t"][0] and rec.t_start == 0
    back = rec.read_all()
    back["t"] += rec.meta.t_offset
    np.testing.assert_array_equal(back, ev)
    with h5py.File(path) as f:
        assert len(f["ms_to_idx"]) == (ev["t"][-1] - ev["t"][0]) // 1000 + 2


def test_writer_is_atomic_and_rejects_bad_chunks(tmp_path):
    path = tmp_path / "out.h5"
    left = random_events(1000, seed=7)
    with pytest.raises(UserError, match="before the previous"):
        with StereoH5Writer(path, 640, 480) as w:
            w.append(left[500:], left[:0])
            w.append(left[:500], left[:0])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="before t_offset"):
        with StereoH5Writer(path, 640, 480, t_offset=int(left["t"][500])) as w:
            w.append(left[500:], left[:500])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="outside the 100x100 sensor"):
        write_stereo_h5(path, left, left, width=100, height=100)
    assert list(tmp_path.iterdir()) == []


def test_gzip_fallback_reads_back(tmp_path):
    ev = random_events(3000)
    with DsecH5Writer(tmp_path / "g.h5", compression="gzip", t_offset=0) as w:
        w.append(ev)
    with h5py.File(tmp_path / "g.h5") as f:
        assert f["events/x"].compression == "gzip"
    np.testing.assert_array_equal(open_recording(tmp_path / "g.h5").read_all(), ev)


def test_h5_without_expected_datasets(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["images"] = np.zeros(3)
    with pytest.raises(UserError, match="without event datasets"):
        open_recording(tmp_path / "other.h5")
    with h5py.File(tmp_path / "partial.h5", "w") as f:
        f["events/x"] = np.zeros(3, np.uint16)
    with pytest.raises(UserError, match=r"no events/y, events/t, events/p dataset"):
        open_recording(tmp_path / "partial.h5")


def test_blosc_without_hdf5plugin_is_one_clear_error(dsec_file):
    path = dsec_file[0]
    code = ("import sys; sys.modules['hdf5plugin'] = None\n"
            "from eventvision.cli.main import main\n"
            f"sys.exit(main(['info', '--verify', {str(path)!r}]))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Blosc-compressed" in lines[0] and "pip install hdf5plugin" in lines[0]


def test_windowed_reading_memory_is_bounded(tmp_path):
    """Reading a 3 M-event file window by window allocates a small fraction of the whole array."""
    import tracemalloc

    path = tmp_path / "big.h5"
    with DsecH5Writer(path, t_offset=0) as w:
        for k in range(6):
            w.append(random_events(500_000, t0=k * 1_000_000, duration_us=1_000_000, seed=k))
    rec = open_recording(path)
    whole_bytes = rec.num_events * 16
    tracemalloc.start()
    n = 0
    for _, _, ev in rec.iter_windows(20_000, chunk_events=100_000):
        n += len(ev)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 3_000_000
    assert peak < whole_bytes / 8, (peak, whole_bytes)
