"""AEDAT 4.0 reader on the real tonic (DVXplorer) and aestream (DAVIS346 with frames, IMU, triggers) samples."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.errors import UserError
from eventvision.events import open_recording
from eventvision.events.aedat4 import IMU_DTYPE, TRIGGER_DTYPE, TRIGGER_KINDS


def test_aedat4_sample(shared_data):
    rec = open_recording(shared_data / "events" / "sample.aedat4")
    assert rec.format == "aedat4" and (rec.width, rec.height) == (320, 240) and rec.stream_id == 0
    assert rec.num_events == 111_954
    assert (rec.t_start, rec.t_end) == (1_605_537_493_718_345, 1_605_537_494_308_262)
    ev = rec.read_all()
    assert len(ev) == 111_954 and set(np.unique(ev["p"]).tolist()) == {-1, 1}
    assert int((ev["p"] > 0).sum()) == 55_023
    assert tuple(ev[0].tolist()) == (154, 204, 1_605_537_493_718_345, -1)
    assert np.all(np.diff(ev["t"]) >= 0) and ev["x"].max() < 320 and ev["y"].max() < 240
    t0 = rec.t_start + 100_000
    win = rec.read_window(t0, t0 + 50_000)
    np.testing.assert_array_equal(win, ev[(ev["t"] >= t0) & (ev["t"] < t0 + 50_000)])
    assert len(rec.read_imu()) == 475 and rec.read_frames() == []


def test_davis346_events_frames_imu_triggers(shared_data):
    rec = open_recording(shared_data / "events" / "davis346.aedat4")
    assert (rec.width, rec.height) == (346, 260)
    ev = rec.read_all()
    ref = np.load(shared_data / "events" / "davis346_events.npz")
    assert len(ev) == len(ref["t"]) == 117_667 and int((ev["p"] > 0).sum()) == 72_363
    for key in ("t", "x", "y"):
        np.testing.assert_array_equal(ev[key], ref[key])
    np.testing.assert_array_equal(ev["p"], np.where(ref["p"] == 1, 1, -1))

    assert rec.stream_ids("frames") == [1] and rec.stream_ids("imu") == [2] and rec.stream_ids("triggers") == [3]
    frames = rec.read_frames()
    assert len(frames) == 3
    f = frames[0]
    assert f.pixels.shape == (260, 346) and f.pixels.dtype == np.uint8 and f.format == "L"
    assert f.t == 1_633_953_690_978_904 and f.exposure_begin_t < f.t < f.exposure_end_t
    assert [fr.t for fr in frames] == sorted(fr.t for fr in frames) and f.pixels.std() > 0

    imu = rec.read_imu()
    assert imu.dtype == IMU_DTYPE and len(imu) == 130 and np.all(np.diff(imu["t"]) > 0)
    g = np.linalg.norm(imu["accel_g"], axis=1)
    assert np.allclose(g, 1.0, atol=0.05)  # a camera at rest measures 1 g
    assert 20 < float(imu["temperature_c"].mean()) < 40

    trig = rec.read_triggers()
    assert trig.dtype == TRIGGER_DTYPE and len(trig) == 15
    assert {TRIGGER_KINDS[k] for k in np.unique(trig["kind"]).tolist()} == {
        "aps_frame_start", "aps_frame_end", "aps_exposure_start", "aps_exposure_end"}
    # each frame's exposure interval is bounded by an exposure start / end trigger pair
    starts = trig["t"][trig["kind"] == 8]
    assert f.exposure_begin_t in starts.tolist()

    other = rec.describe()["other_streams"]
    assert {k: v["count"] for k, v in other.items()} == {"frames": 3, "imu": 130, "triggers": 15}
    with pytest.raises(UserError, match="no imu stream with id 7"):
        rec.read_imu(7)


def test_aedat4_truncated(tmp_path, shared_data):
    data = (shared_data / "events" / "sample.aedat4").read_bytes()
    (tmp_path / "cut.aedat4").write_bytes(data[:500_000])
    with pytest.raises(UserError, match="truncated or corrupt"):
        open_recording(tmp_path / "cut.aedat4").read_all()
