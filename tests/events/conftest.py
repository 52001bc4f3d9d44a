"""Fixtures for the event I/O tests."""

from __future__ import annotations

import pytest
from events_testutil import random_events, write_dsec_reference


@pytest.fixture
def dsec_file(tmp_path):
    events = random_events(50_000, t0=123_456_789, duration_us=1_500_000, seed=1)
    path = tmp_path / "events.h5"
    write_dsec_reference(path, events, t_offset=123_000_000)
    return path, events, 123_000_000
