"""DSEC stereo loader on a sequence folder written in the published layout."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.data.stereo.dsec import (DSECStereoSequence, build_dsec_dataset, read_disparity_png,
                                          read_gt_index)
from eventvision.data.stereo.export import identity_rectify_map, write_dsec_sequence
from eventvision.errors import DatasetNotFoundError, UserError
from eventvision.events.core import make_events

T_OFF = 51_000_000_000  # DSEC-like label-clock offset (µs)
TS = [T_OFF + 100_000, T_OFF + 200_000, T_OFF + 300_000]


def _events(rows):
    x, y, t, p = zip(*rows)
    return make_events(np.array(x), np.array(y), np.array(t, dtype=np.int64), np.array(p))


@pytest.fixture()
def dsec_seq(tmp_path):
    t1 = TS[1]
    left = _events([(5, 5, T_OFF + 10, 1),           # before every window
                    (10, 5, t1 - 45_000, 1),         # bin 0 of GT 1's window
                    (10, 5, t1 - 44_000, 1),
                    (20, 7, t1 - 5_000, 0),          # bin 4, OFF
                    (30, 9, t1, 1)])                 # exactly at the GT time: excluded
    right = _events([(3, 3, T_OFF + 20, 0), (12, 6, t1 - 25_000, 0), (40, 40, T_OFF + 290_000, 1)])
    shift = identity_rectify_map(640, 480)
    shift[..., 0] += 2.0                              # left camera rectification moves x by +2 px
    maps = (shift, identity_rectify_map(640, 480))
    disps = []
    for k in range(3):
        d = np.full((480, 640), 10.0 + k, dtype=np.float32)
        d[:100] = np.nan
        d[200, 300] = 17.25
        disps.append(d)
    return write_dsec_sequence(tmp_path / "zurich_city_00_a", left=left, right=right, t_offset=T_OFF,
                               disparities=disps, timestamps_us=TS, rectify_maps=maps)


def test_layout_and_gt_index(dsec_seq):
    pngs = sorted(p.name for p in (dsec_seq / "disparity" / "event").glob("*.png"))
    assert pngs == ["000000.png", "000002.png", "000004.png"]
    ts, paths = read_gt_index(dsec_seq)
    assert list(ts) == TS[1:] and [p.name for p in paths] == pngs[1:]  # first map skipped (no events before)
    d = read_disparity_png(paths[0])
    assert d.dtype == np.float32 and d.shape == (480, 640)
    assert np.isnan(d[:100]).all() and d[150, 10] == 11.0 and d[200, 300] == 17.25  # value / 256 exactly


def test_sample_windows_rectified_and_sbt(dsec_seq):
    ds = DSECStereoSequence(dsec_seq, max_disparity=192)
    assert len(ds) == 2
    s = ds[0]
    assert s["left"].shape == (5, 1, 480, 640) and s["left"].dtype == np.float32
    assert s["meta"]["t_end_us"] == TS[1]
    left = s["left"][:, 0]
    nz = {tuple(int(v) for v in i): left[tuple(i)] for i in np.argwhere(left != 0)}
    # x 10 -> 12 and 20 -> 22 by the left rectify map; sign of the sum per 10 ms bin
    assert nz == {(0, 5, 12): 1.0, (4, 7, 22): -1.0}
    right = s["right"][:, 0]
    assert {tuple(int(v) for v in i) for i in np.argwhere(right != 0)} == {(2, 6, 12)}
    assert right[2, 6, 12] == -1.0
    assert s["disparity"][150, 10] == 11.0 and np.isnan(s["disparity"][0, 0])


def test_max_disparity_masks_gt(dsec_seq):
    s = DSECStereoSequence(dsec_seq, max_disparity=15.0)[1]
    assert s["disparity"][150, 10] == 12.0 and np.isnan(s["disparity"][200, 300])


def test_split_builder_and_crop(dsec_seq):
    train = build_dsec_dataset(dsec_seq.parent, "train", val_sequences=("other",), crop=(64, 96))
    assert len(train) == 2 and train[0]["left"].shape == (5, 1, 64, 96) and train[0]["disparity"].shape == (64, 96)
    val = build_dsec_dataset(dsec_seq.parent, "val", val_sequences=("zurich_city_00_a",))
    assert len(val) == 2 and val[1]["disparity"].shape == (480, 640)
    with pytest.raises(DatasetNotFoundError, match="no DSEC sequences left"):
        build_dsec_dataset(dsec_seq.parent, "train", val_sequences=("zurich_city_00_a",))


@pytest.mark.parametrize("missing", ["events/right/events.h5", "events/left/rectify_map.h5",
                                     "disparity/timestamps.txt"])
def test_incomplete_folder_names_missing_file(dsec_seq, missing):
    (dsec_seq / missing).unlink()
    with pytest.raises(DatasetNotFoundError, match=missing.split("/")[-1]) as exc:
        DSECStereoSequence(dsec_seq)
    assert "dsec.ifi.uzh.ch" in str(exc.value)


def test_missing_root_and_mismatched_gt(dsec_seq, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="dsec.ifi.uzh.ch"):
        build_dsec_dataset(tmp_path / "nowhere", "train")
    (dsec_seq / "disparity" / "event" / "000004.png").unlink()
    with pytest.raises(UserError, match="3 timestamps but 2 PNGs"):
        DSECStereoSequence(dsec_seq)
