"""Windowing, count slicing and validation shared by every reader (exercised through .npy/.npz files)."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.errors import InvalidValueError, UserError
from eventvision.events import merge_events, open_recording, slice_time
from eventvision.events.core import EVENT_DTYPE
from events_testutil import random_events


def test_iter_windows_partitions_every_event(tmp_path):
    ev = random_events(20_000, t0=5_000, duration_us=1_000_000)
    np.save(tmp_path / "ev.npy", ev)
    with open_recording(tmp_path / "ev.npy") as rec:
        wins = list(rec.iter_windows(30_000))
        assert wins[0][0] == ev["t"][0]
        assert all(w[1] - w[0] == 30_000 and nxt[0] == w[1] for w, nxt in zip(wins, wins[1:]))
        assert wins[-1][0] <= ev["t"][-1] < wins[-1][1]
        for t0, t1, w in wins:
            np.testing.assert_array_equal(w, slice_time(ev, t0, t1))
        np.testing.assert_array_equal(np.concatenate([w[2] for w in wins]), ev)
        # bounded explicit range with a gap at the end -> empty windows until t_end
        tail = list(rec.iter_windows(100_000, t_start=900_000, t_end=1_300_000))
        assert [w[0] for w in tail] == [900_000, 1_000_000, 1_100_000, 1_200_000]
        assert len(tail[-1][2]) == 0 and len(tail[-2][2]) == 0
        np.testing.assert_array_equal(rec.read_window(400_000, 410_000), slice_time(ev, 400_000, 410_000))
        np.testing.assert_array_equal(rec.read_range(1234, 100), ev[1234:1334])
        counted = list(rec.iter_count_windows(3000))
        assert [len(c) for c in counted] == [3000] * 6 + [2000]
        np.testing.assert_array_equal(counted[4], ev[12_000:15_000])


def test_windows_independent_of_chunking(shared_data):
    rec = open_recording(shared_data / "events" / "evt3_sample.raw")
    a = [(t0, t1, len(e)) for t0, t1, e in rec.iter_windows(500)]
    from eventvision.events.recording import _windows
    b = [(t0, t1, len(e)) for t0, t1, e in _windows(rec.iter_chunks(chunk_events=777), 500, rec.t_start, None)]
    assert a == b and sum(n for *_, n in a) == 219_596


def test_npz_columns_with_size(tmp_path):
    ev = random_events(1000, width=100, height=50)
    np.savez(tmp_path / "cols.npz", x=ev["x"], y=ev["y"], t=ev["t"], p=(ev["p"] > 0), width=120, height=60)
    rec = open_recording(tmp_path / "cols.npz")
    assert (rec.width, rec.height, rec.size_inferred) == (120, 60, False)
    np.testing.assert_array_equal(rec.read_all(), ev)


def test_non_monotonic_and_out_of_sensor_detected(tmp_path):
    ev = random_events(1000, width=100, height=50)
    bad = ev.copy()
    bad["t"][500] = bad["t"][10]
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(UserError, match="not monotonic"):
        open_recording(tmp_path / "bad.npy").read_all()
    np.savez(tmp_path / "big.npz", events=ev, width=50, height=50)
    with pytest.raises(UserError, match="outside the 50x50 sensor"):
        open_recording(tmp_path / "big.npz").read_all()


def test_merge_events_sorted_and_stable():
    a, b = random_events(500, seed=1), random_events(700, seed=2)
    m = merge_events(a, b)
    assert len(m) == 1200 and np.all(np.diff(m["t"]) >= 0) and m.dtype == EVENT_DTYPE
    assert sorted(map(tuple, m.tolist())) == sorted(map(tuple, np.concatenate([a, b]).tolist()))


def test_window_sizes_must_be_positive(tmp_path):
    np.save(tmp_path / "ev.npy", random_events(100, t0=0, duration_us=1_000))
    with open_recording(tmp_path / "ev.npy") as rec:
        with pytest.raises(InvalidValueError, match="window length must be positive, got 0"):
            rec.iter_windows(0)
        with pytest.raises(InvalidValueError, match="event count per window must be positive, got -3"):
            next(iter(rec.iter_count_windows(-3)))
