"""AEDAT 4.0 reader on the real tonic sample."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.errors import UserError
from eventvision.events import open_recording


def test_aedat4_sample(shared_data):
    rec = open_recording(shared_data / "events" / "sample.aedat4")
    assert rec.format == "aedat4" and (rec.width, rec.height) == (320, 240) and rec.stream_id == 0
    assert rec.num_events == 111_954
    assert (rec.t_start, rec.t_end) == (1_605_537_493_718_345, 1_605_537_494_308_262)
    ev = rec.read_all()
    assert len(ev) == 111_954 and set(np.unique(ev["p"]).tolist()) == {-1, 1}
    assert tuple(ev[0].tolist()) == (154, 204, 1_605_537_493_718_345, -1)
    assert np.all(np.diff(ev["t"]) >= 0) and ev["x"].max() < 320 and ev["y"].max() < 240
    t0 = rec.t_start + 100_000
    win = rec.read_window(t0, t0 + 50_000)
    np.testing.assert_array_equal(win, ev[(ev["t"] >= t0) & (ev["t"] < t0 + 50_000)])


def test_aedat4_truncated(tmp_path, shared_data):
    data = (shared_data / "events" / "sample.aedat4").read_bytes()
    (tmp_path / "cut.aedat4").write_bytes(data[:500_000])
    with pytest.raises(UserError, match="truncated or corrupt"):
        open_recording(tmp_path / "cut.aedat4").read_all()
