"""The emulator's v2e mode: one test per effect against v2e's formula (v2ecore/emulator*.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eventvision.errors import InvalidValueError
from eventvision.simulate.emulator import EventEmulator, emulate_frames, lin_log

C = 0.2


def v2e(width=1, height=1, **kw):
    kw.setdefault("contrast", C)
    kw.setdefault("contrast_std", 0.0)
    return EventEmulator(width, height, mode="v2e", **kw)


def pixel(ev, x, y=0):
    return ev[(ev["x"] == x) & (ev["y"] == y)]


def test_events_are_spaced_k_dt_over_n_within_the_interval():
    """n = floor(dlog / C) per pixel; N = the largest n of any pixel; the k-th event at t_a + k dt / N."""
    emu = v2e(3)
    f0 = np.full((1, 3), 0.4)
    emu.reset(f0, 1_000)
    ev = emu.step(f0 * np.exp([[3.5 * C, 1.5 * C, -2.5 * C]]), 2_200)  # n = 3, 1, -2; N = 3, dt = 1200 µs
    assert pixel(ev, 0)["t"].tolist() == [1_400, 1_800, 2_200] and set(pixel(ev, 0)["p"]) == {1}
    assert pixel(ev, 1)["t"].tolist() == [1_400]
    assert pixel(ev, 2)["t"].tolist() == [1_400, 1_800] and set(pixel(ev, 2)["p"]) == {-1}
    assert np.all(np.diff(ev["t"]) >= 0)
    # the ESIM mode puts the same pixel's events at the interpolated crossings instead
    esim = EventEmulator(3, 1, contrast=C, contrast_std=0.0)
    esim.reset(f0, 1_000)
    crossings = pixel(esim.step(f0 * np.exp([[3.5 * C, 1.5 * C, -2.5 * C]]), 2_200), 0)["t"]
    assert crossings.tolist() == [1_000 + round(1200 * k / 3.5) for k in (1, 2, 3)]


def test_refractory_drops_events_but_keeps_the_change():
    """4 crossings at 250-µs steps, refractory 600 µs: 250 and 1000 emitted; the reference moves by 2 C only,
    so a static next frame still emits the 2 C left once the refractory period allows."""
    emu = v2e(refractory_us=600)
    f0 = np.full((1, 1), 0.3)
    f1 = f0 * math.exp(4.5 * C)
    emu.reset(f0, 0)
    assert emu.step(f1, 1_000)["t"].tolist() == [250, 1_000]
    later = emu.step(f1, 2_000)  # n = 2, step 500: 1500 is 500 µs after 1000 (dropped), 2000 passes
    assert later["t"].tolist() == [2_000] and later["p"].tolist() == [1]
    assert emu.step(f1, 3_000)["t"].tolist() == [3_000]  # the last C of the 4
    assert len(emu.step(f1, 4_000)) == 0
    # the ESIM mode moves its reference past a dropped crossing: the change is lost
    esim = EventEmulator(1, 1, contrast=C, contrast_std=0.0, refractory_us=600)
    esim.reset(f0, 0)
    total = sum(len(esim.step(f1, t)) for t in (1_000, 2_000, 3_000, 4_000))
    assert total == 2


def test_refractory_shorter_than_the_step_is_not_applied():
    emu = v2e(refractory_us=200)  # v2e applies it only when it exceeds dt / N (250 µs here)
    f0 = np.full((1, 1), 0.3)
    emu.reset(f0, 0)
    assert emu.step(f0 * math.exp(4.5 * C), 1_000)["t"].tolist() == [250, 500, 750, 1_000]


def test_leak_events_at_the_leak_rate():
    """A static scene: the reference drops by dt * R * C per frame (jitter and spread off), so the k-th ON
    event comes in the first frame with k C <= R t C, i.e. floor(R T) events over T seconds."""
    rate, frames = 0.95, 101  # 10 s at 100 ms
    emu = v2e(4, 3, leak_rate_hz=rate, leak_jitter_fraction=0.0, noise_rate_cov_decades=0.0)
    frame = np.full((3, 4), 0.5)
    ts = np.arange(frames, dtype=np.int64) * 100_000
    keys = ("contrast", "contrast_std", "mode", "leak_rate_hz", "leak_jitter_fraction",
            "noise_rate_cov_decades")
    ev = emulate_frames([frame] * frames, ts, **{k: getattr(emu, k) for k in keys})
    assert len(ev) == 12 * math.floor(rate * 10.0) and np.all(ev["p"] == 1)
    first = pixel(ev, 0)["t"].tolist()
    assert first == [math.ceil(k / rate / 0.1 - 1e-9) * 100_000 for k in range(1, 10)]


def test_leak_spread_is_log_normal_over_pixels():
    emu = v2e(200, 100, leak_rate_hz=1.0, noise_rate_cov_decades=0.1, seed=4)
    logs = np.log10(emu.leak_factor)
    assert abs(logs.mean()) < 0.005 and logs.std() == pytest.approx(0.1, rel=0.03)


@pytest.mark.parametrize("grey", [0, 255])
def test_shot_noise_rate_follows_v2e_per_pixel_probability(grey):
    """P(ON) = P(OFF) = f C / C_pix per pixel and interval, f = (R / 2) dt ((0.25 - 1) (x + 20) / 275 + 1)."""
    rate, dt_us, steps = 5.0, 10_000, 30
    emu = v2e(100, 100, contrast_std=0.03, noise_rate_hz=rate, seed=1)
    frame = np.full((100, 100), grey, np.uint8)
    emu.reset(frame, 0)
    ev = np.concatenate([emu.step(frame, k * dt_us) for k in range(1, steps + 1)])
    f = (rate / 2) * dt_us * 1e-6 * ((0.25 - 1.0) * (grey + 20) / 275 + 1.0)
    for polarity, thresholds in ((1, emu.c_on), (-1, emu.c_off)):
        expected = steps * float((f * C / thresholds).sum())
        count = int((ev["p"] == polarity).sum())
        assert abs(count - expected) < 5 * math.sqrt(expected), (count, expected)
    assert np.all(ev["t"] % dt_us == 0)  # at the end of each interval


def test_shot_noise_is_stronger_in_the_dark_and_on_low_threshold_pixels():
    counts, halves = {}, None
    for grey in (0, 255):
        emu = v2e(120, 100, noise_rate_hz=8.0, seed=2)
        emu.c_on[:, :60], emu.c_on[:, 60:] = C / 2, 2 * C  # ON noise probability x2 and x0.5
        frame = np.full((100, 120), grey, np.uint8)
        emu.reset(frame, 0)
        ev = np.concatenate([emu.step(frame, k * 20_000) for k in range(1, 21)])
        counts[grey] = len(ev)
        if grey == 0:
            on = ev[ev["p"] == 1]
            halves = (int((on["x"] < 60).sum()), int((on["x"] >= 60).sum()))
    # ON and OFF summed: (2 + 0.5) / 2 x the nominal rate on both sides of the ratio
    expected_ratio = (1 - 0.75 * 20 / 275) / (1 - 0.75 * 275 / 275)  # 3.78
    assert counts[0] / counts[255] == pytest.approx(expected_ratio, rel=0.15)
    assert halves[0] / halves[1] == pytest.approx(4.0, rel=0.2)


def test_shot_noise_resets_the_reference():
    """A pending 0.7 C change is wiped by a noise event (reference := photoreceptor); a further 0.7 C then
    stays below threshold, where without noise the 1.4 C total fires."""
    f0 = np.full((1, 1), 0.3)
    outcomes = []
    for noise in (0.0, 1e6):  # a rate so high that every pixel is noisy in the interval
        emu = v2e(noise_rate_hz=noise)
        emu.reset(f0, 0)
        first = emu.step(f0 * math.exp(0.7 * C), 1_000)
        emu.noise_rate_hz = 0.0
        outcomes.append((len(first), len(emu.step(f0 * math.exp(1.4 * C), 2_000))))
    assert outcomes == [(0, 1), (2, 0)]  # noise: an ON and an OFF (same draw u) at 1000, then nothing


def test_lin_log_below_grey_20():
    x = np.array([0.0, 5.0, 10.0, 20.0, 20.5, 100.0, 255.0])
    expected = np.where(x <= 20, x * math.log(20) / 20, np.log(np.maximum(x, 1e-9)))
    np.testing.assert_allclose(lin_log(x), expected, atol=1e-8)
    assert lin_log(np.array([20.0]))[0] == pytest.approx(math.log(20), abs=1e-8)  # continuous at 20
    # a dark pixel from grey 2 to 4: lin-log rises by 2 ln(20) / 20 = 0.30 (1 event at C = 0.2), the pure log
    # of the ESIM mode by ln 2 = 0.69 (3 events)
    f0, f1 = np.full((1, 1), 2, np.uint8), np.full((1, 1), 4, np.uint8)
    for mode, n in (("v2e", 1), ("esim", 3)):
        emu = EventEmulator(1, 1, contrast=C, contrast_std=0.0, mode=mode)
        emu.reset(f0, 0)
        assert len(emu.step(f1, 1_000)) == n


def test_photoreceptor_low_pass():
    """lp += eps (lin_log(x) - lp), eps = min(1, inten01 dt / tau), tau = 1 / (2 pi f_c),
    inten01 = (x + 20) / 275."""
    dt_us, x0, x1 = 1_000, 50, 255
    tau = 2e-3  # eps = 0.5 for a white pixel at dt = 1 ms
    emu = v2e(2, 1, cutoff_hz=1 / (2 * math.pi * tau))
    emu.reset(np.array([[x0, x0]], np.uint8), 0)
    emu.step(np.array([[x1, x0]], np.uint8), dt_us)
    eps = min(1.0, (x1 + 20) / 275 * dt_us * 1e-6 / tau)
    lp = (1 - eps) * math.log(x0) + eps * math.log(x1)
    assert emu._l_prev[0, 0] == pytest.approx(lp, abs=1e-7)
    assert emu._l_prev[0, 1] == pytest.approx(math.log(x0))
    # events follow the filtered signal: floor((lp - ln x0) / C), and keep coming while it settles
    emu2 = v2e(cutoff_hz=1 / (2 * math.pi * tau))
    emu2.reset(np.full((1, 1), x0, np.uint8), 0)
    first = emu2.step(np.full((1, 1), x1, np.uint8), dt_us)
    assert len(first) == math.floor((lp - math.log(x0)) / C)
    settle = sum(len(emu2.step(np.full((1, 1), x1, np.uint8), k * dt_us)) for k in range(2, 40))
    assert len(first) + settle == math.floor((math.log(x1) - math.log(x0)) / C)
    # darker pixels filter more slowly (eps scales with (x + 20) / 275)
    dark = v2e(cutoff_hz=1 / (2 * math.pi * tau))
    dark.reset(np.full((1, 1), 1, np.uint8), 0)
    dark.step(np.full((1, 1), 10, np.uint8), dt_us)
    eps_dark = (10 + 20) / 275 * 0.5
    assert dark._l_prev[0, 0] == pytest.approx(eps_dark * lin_log(np.array([10.0]))[0]
                                               + (1 - eps_dark) * lin_log(np.array([1.0]))[0], abs=1e-7)


def test_v2e_mode_arguments_are_checked():
    with pytest.raises(InvalidValueError, match="mode 'dvs' is not one of esim, v2e"):
        EventEmulator(4, 4, mode="dvs")
    for bad in ({"leak_rate_hz": -1.0}, {"cutoff_hz": float("nan")}, {"leak_jitter_fraction": 2.0}):
        with pytest.raises(InvalidValueError, match="leak_rate_hz >= 0"):
            EventEmulator(4, 4, mode="v2e", **bad)


def test_v2e_precision_float32_reference_and_floor_division():
    """v2e keeps lin-log, reference and thresholds in float32 and moves the reference by n * C in float32
    (bit-exact agreement with v2e's own code is checked by ``benchmarks/bench_emulator.py --v2e``)."""
    emu = v2e()
    emu.reset(np.full((1, 1), 40, np.uint8), 0)
    assert emu._l_ref.dtype == np.float32
    emu.step(np.full((1, 1), 120, np.uint8), 1_000)
    l0, l1 = np.float32(math.log(40)), np.float32(math.log(120))
    n = int((l1 - l0) // np.float32(C))
    assert n == 5 and emu._l_ref[0, 0] == l0 + np.float32(n) * np.float32(C)
