"""MVSEC stereo loader on *_data.hdf5 / *_gt.hdf5 / calib maps written in the published layout."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.data.stereo.export import identity_rectify_map, write_mvsec_sequence
from eventvision.data.stereo.mvsec import (FOCAL_BASELINE, MVSECStereoSequence, TEST_FRAMES, build_mvsec_dataset,
                                           find_sequence_files)
from eventvision.errors import DatasetNotFoundError, UserError
from eventvision.events.core import make_events

T0 = 1_504_645_177.0  # ROS-time seconds, like MVSEC


def _write(folder, name, n_frames, *, with_calib=True, events_at=None):
    ts = T0 + 0.05 * np.arange(1, n_frames + 1)          # GT every 50 ms (MVSEC depth is ~20-30 Hz)
    depths = np.full((n_frames, 260, 346), 2.0, dtype=np.float32)
    depths[:, :, :50] = np.nan
    depths[:, 100, 200] = 4.0
    t_us = np.rint(ts * 1e6).astype(np.int64)
    rows = events_at if events_at is not None else [(60, 50, int(t_us[0]) - 30_000, 1)]
    x, y, t, p = map(np.array, zip(*rows))
    left = make_events(x, y, t, p)
    right = make_events(x - 5, y, t, 1 - p)
    shift = identity_rectify_map(346, 260)
    shift[..., 1] += 1.0                                  # left map moves events one row down
    maps = (shift, identity_rectify_map(346, 260)) if with_calib else None
    write_mvsec_sequence(folder, name, left=left, right=right, depths=depths, depth_ts_s=ts, rectify_maps=maps)
    return t_us


def test_disparity_events_and_rectification(tmp_path):
    folder = tmp_path / "indoor_flying"
    t_us = _write(folder, "indoor_flying1", 3)
    data, gt = find_sequence_files(tmp_path, "indoor_flying1")
    seq = MVSECStereoSequence(data, gt, max_disparity=63)
    assert len(seq) == 3
    s = seq[0]
    fb = FOCAL_BASELINE["indoor_flying"]
    assert fb == 19.941772
    np.testing.assert_allclose(s["disparity"][10, 100], fb / 2.0, rtol=1e-6)
    np.testing.assert_allclose(s["disparity"][100, 200], fb / 4.0, rtol=1e-6)
    assert np.isnan(s["disparity"][:, :50]).all()
    assert s["meta"]["t_end_us"] == t_us[0] and s["left"].shape == (5, 1, 260, 346)
    # the event 30 ms before GT 0 falls in bin 2 (of 5 x 10 ms); rectified to row 51 on the left
    assert np.argwhere(s["left"][:, 0] != 0).tolist() == [[2, 51, 60]] and s["left"][2, 0, 51, 60] == 1.0
    assert np.argwhere(s["right"][:, 0] != 0).tolist() == [[2, 50, 55]] and s["right"][2, 0, 50, 55] == -1.0
    assert not s["left"][:, 0].any(axis=(1, 2))[[0, 1, 3, 4]].any()
    assert not seq[1]["left"].any()                      # GT 1's window [t1-50ms, t1) holds no event


def test_outdoor_focal_baseline(tmp_path):
    _write(tmp_path, "outdoor_day1", 1)
    data, gt = find_sequence_files(tmp_path, "outdoor_day1")
    s = MVSECStereoSequence(data, gt, max_disparity=63)[0]
    np.testing.assert_allclose(s["disparity"][10, 100], 19.635287 / 2.0, rtol=1e-6)


def test_split1_uses_published_frames(tmp_path):
    folder = tmp_path / "indoor_flying"
    _write(folder, "indoor_flying1", 205)
    test = build_mvsec_dataset(tmp_path, "test", mvsec_split=1)
    lo, hi = TEST_FRAMES[1]
    assert (lo, hi) == (140, 1201)
    assert len(test) == 205 - lo and test[0]["meta"]["index"] == 140  # frames 140..204 (file ends before 1201)
    with pytest.raises(DatasetNotFoundError, match="indoor_flying2_data.hdf5"):
        build_mvsec_dataset(tmp_path, "train", mvsec_split=1)    # split 1 trains on indoor_flying 2 and 3


def test_missing_pieces(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="mvsec"):
        find_sequence_files(tmp_path / "absent", "indoor_flying1")
    folder = tmp_path / "indoor_flying"
    _write(folder, "indoor_flying1", 2, with_calib=False)
    data, gt = find_sequence_files(tmp_path, "indoor_flying1")
    with pytest.raises(DatasetNotFoundError, match="indoor_flying_calib"):
        MVSECStereoSequence(data, gt)
    gt.unlink()
    with pytest.raises(DatasetNotFoundError, match="indoor_flying1_gt.hdf5"):
        find_sequence_files(tmp_path, "indoor_flying1")
    with pytest.raises(UserError, match="split must be 1, 2 or 3"):
        build_mvsec_dataset(tmp_path, "train", mvsec_split=4)
