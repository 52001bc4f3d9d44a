"""The emulator against analytically known event streams."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eventvision.errors import UserError
from eventvision.events.core import EVENT_DTYPE
from eventvision.simulate.emulator import EventEmulator, emulate_frames, iter_emulate

W, H = 8, 5


def ramp_frames(log_start, log_end, n_frames, dt_us, w=W, h=H):
    logs = np.linspace(log_start, log_end, n_frames)
    frames = np.exp(logs)[:, None, None] * np.ones((1, h, w))
    return frames, np.arange(n_frames, dtype=np.int64) * dt_us, logs


@pytest.mark.parametrize("direction", [1, -1])
def test_brightness_ramp_count_and_crossing_times(direction):
    """log I rises linearly (one frame every 10 ms): floor(ΔlogI/C) events per pixel at t = k C / slope."""
    lo, hi = math.log(0.05), math.log(0.95)
    a, b = (lo, hi) if direction > 0 else (hi, lo)
    frames, ts, _ = ramp_frames(a, b, 7, 10_000)
    C = 0.22
    ev = emulate_frames(frames, ts, contrast=C, contrast_std=0.0)
    assert ev.dtype == EVENT_DTYPE
    n_expected = math.floor(abs(b - a) / C)
    slope = (b - a) / (ts[-1] - ts[0])  # per µs
    exp_t = np.array([round(k * C / abs(slope)) for k in range(1, n_expected + 1)])
    for y in range(H):
        for x in range(W):
            mine = ev[(ev["x"] == x) & (ev["y"] == y)]
            assert len(mine) == n_expected
            assert np.all(mine["p"] == direction)
            np.testing.assert_allclose(mine["t"], exp_t, atol=1)
    assert np.all(np.diff(ev["t"]) >= 0)


def test_several_crossings_within_one_frame_interval():
    """A single jump of 0.9 in log intensity across one 1 ms interval: 4 events at C=0.2, evenly interpolated."""
    f0 = np.full((H, W), 0.2)
    f1 = f0 * math.exp(0.9)
    emu = EventEmulator(W, H, contrast=0.2, contrast_std=0.0)
    emu.reset(f0, 1_000)
    ev = emu.step(f1, 2_000)
    assert len(ev) == 4 * W * H
    per_pixel = ev[(ev["x"] == 3) & (ev["y"] == 2)]
    np.testing.assert_array_equal(per_pixel["t"], [1_000 + round(1000 * k * 0.2 / 0.9) for k in range(1, 5)])
    # the remaining 0.1 is remembered: a further +0.1 triggers one more event
    ev2 = emu.step(f1 * math.exp(0.1 + 1e-9), 3_000)
    assert len(ev2) == W * H and np.all(ev2["p"] == 1)


def test_per_pixel_thresholds_are_drawn_from_normal():
    emu = EventEmulator(200, 100, contrast=0.2, contrast_std=0.03, seed=3)
    for c in (emu.c_on, emu.c_off):
        assert abs(c.mean() - 0.2) < 0.002 and abs(c.std() - 0.03) < 0.002
    assert not np.allclose(emu.c_on, emu.c_off)
    same = EventEmulator(200, 100, seed=3)
    np.testing.assert_array_equal(same.c_on, emu.c_on)


def test_uint8_and_bgr_frames():
    g0 = np.full((H, W), 50, np.uint8)
    g1 = np.full((H, W), 200, np.uint8)
    ev = emulate_frames([g0, g1], [0, 1000], contrast=0.2, contrast_std=0.0)
    assert len(ev) == W * H * math.floor(math.log(200 / 50) / 0.2)
    bgr = [np.repeat(g[..., None], 3, axis=2) for g in (g0, g1)]
    ev_bgr = emulate_frames(bgr, [0, 1000], contrast=0.2, contrast_std=0.0)
    np.testing.assert_array_equal(ev_bgr, ev)


def test_refractory_period_drops_crossings_too_close_to_the_last_event():
    frames, ts, _ = ramp_frames(math.log(0.05), math.log(0.95), 4, 10_000, w=1, h=1)
    C, refr = 0.1, 7_000
    all_ev = emulate_frames(frames, ts, contrast=C, contrast_std=0.0)
    ref_ev = emulate_frames(frames, ts, contrast=C, contrast_std=0.0, refractory_us=refr)
    # expected: greedy selection from the unrestricted crossing times
    kept, last = [], None
    for t in all_ev["t"]:
        if last is None or t - last >= refr:
            kept.append(t)
            last = t
    np.testing.assert_array_equal(ref_ev["t"], kept)
    assert len(kept) < len(all_ev)
    assert np.all(np.diff(ref_ev["t"]) >= refr)


def test_refractory_reference_still_advances():
    """After a refractory-suppressed burst, no backlog: the next small change gives no event."""
    emu = EventEmulator(1, 1, contrast=0.2, contrast_std=0.0, refractory_us=10**9)
    emu.reset(np.array([[0.1]]), 0)
    assert len(emu.step(np.array([[0.1 * math.exp(1.05)]]), 1000)) == 1   # 5 crossings, only the first emitted
    assert len(emu.step(np.array([[0.1 * math.exp(1.1)]]), 2000)) == 0    # 0.05 above the moved reference


def test_noise_rate_and_polarity():
    f = np.full((40, 50), 0.5)
    rate, n_frames, dt = 20.0, 11, 50_000
    ev = emulate_frames([f] * n_frames, np.arange(n_frames) * dt, noise_rate_hz=rate, seed=1,
                        width=50, height=40)
    expected = rate * 40 * 50 * (n_frames - 1) * dt * 1e-6  # 2000 events
    assert abs(len(ev) - expected) < 5 * math.sqrt(expected)
    assert abs((ev["p"] > 0).mean() - 0.5) < 0.05
    assert ev["t"].min() > 0 and ev["t"].max() <= (n_frames - 1) * dt
    assert np.all(np.diff(ev["t"]) >= 0)
    assert len(emulate_frames([f] * n_frames, np.arange(n_frames) * dt, width=50, height=40)) == 0


def test_iter_emulate_yields_per_interval_and_state_errors():
    frames, ts, _ = ramp_frames(math.log(0.1), math.log(0.9), 5, 1000)
    chunks = list(iter_emulate(frames, ts, contrast_std=0.0))
    assert len(chunks) == 4
    for i, c in enumerate(chunks):
        assert np.all((c["t"] > ts[i]) & (c["t"] <= ts[i + 1]))
    emu = EventEmulator(W, H)
    assert len(emu.step(frames[0], 0)) == 0  # first call initialises
    with pytest.raises(UserError):
        emu.step(frames[1], 0)
    with pytest.raises(UserError):
        emu.step(np.ones((H + 1, W)), 10)


def test_inputs_not_modified():
    f0 = np.full((H, W), 0.3)
    f1 = np.full((H, W), 0.9)
    c0, c1 = f0.copy(), f1.copy()
    emulate_frames([f0, f1], [0, 100])
    np.testing.assert_array_equal(f0, c0)
    np.testing.assert_array_equal(f1, c1)


def test_long_gap_between_frames_sorts_without_a_huge_table():
    """A 2-hour gap (e.g. a paused camera): events still sorted and interpolated, no µs-sized table."""
    rng = np.random.default_rng(0)
    f0 = rng.uniform(0.1, 0.9, (H, W))
    f1 = rng.uniform(0.1, 0.9, (H, W))
    gap = 7_200 * 10**6
    ev = emulate_frames([f0, f1], [0, gap], contrast_std=0.0)
    assert len(ev) > 0 and np.all(np.diff(ev["t"]) >= 0)
    assert ev["t"].min() > 0 and ev["t"].max() <= gap
    short = emulate_frames([f0, f1], [0, 1000], contrast_std=0.0)
    # same events in the same stable order, times scaled by the gap
    np.testing.assert_array_equal(np.sort(ev[["x", "y", "p"]], order=["y", "x", "p"]),
                                  np.sort(short[["x", "y", "p"]], order=["y", "x", "p"]))
