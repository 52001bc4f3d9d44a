"""Prophesee EVT 3.0 (real sample), EVT 2.0 (encoded here per the published spec) and .dat readers."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.errors import UserError
from eventvision.events import make_events, open_recording, slice_time
from eventvision.events.prophesee import RawStream, read_header
from events_testutil import random_events

EVT3_HEADER_BYTES = 166


def _assert_equals_reference(ev: np.ndarray, ref) -> None:
    """Event for event against an ``*_openeb.npz`` reference (t int64 µs, x, y, p with 1 = ON)."""
    assert len(ev) == len(ref["t"])
    np.testing.assert_array_equal(ev["t"], ref["t"])
    np.testing.assert_array_equal(ev["x"], ref["x"])
    np.testing.assert_array_equal(ev["y"], ref["y"])
    np.testing.assert_array_equal(ev["p"], np.where(ref["p"] == 1, 1, -1))


def test_evt3_sample_event_for_event(shared_data):
    """The reference keeps OpenEB's semantics where TIME_LOW goes back by 11 µs under one TIME_HIGH
    (word 28,315, SOURCES.md): the low bits are simply overwritten (expelliarmus adds 4096 µs there)."""
    raw = shared_data / "events" / "evt3_sample.raw"
    rec = open_recording(raw)
    assert rec.format == "evt3" and (rec.width, rec.height) == (1280, 720)
    assert read_header(raw).size == EVT3_HEADER_BYTES
    ev = rec.read_all()
    assert len(ev) == 219_596 and int((ev["p"] > 0).sum()) == 115_532
    _assert_equals_reference(ev, np.load(shared_data / "events" / "evt3_sample_openeb.npz"))
    np.testing.assert_array_equal(np.concatenate(list(rec.iter_chunks(chunk_events=4097))), ev)
    # expelliarmus agrees on x, y, p (its t carries the +4096 µs quirk)
    other = np.load(shared_data / "events" / "evt3_sample.npy")
    np.testing.assert_array_equal(ev["x"], other["x"])
    np.testing.assert_array_equal(ev["y"], other["y"])


def test_evt3_pedestrians_repeated_time_high_event_for_event(shared_data):
    rec = open_recording(shared_data / "events" / "evt3_pedestrians.raw")
    ev = rec.read_all()
    assert len(ev) == 5000 and (int(ev["t"][0]), int(ev["t"][-1])) == (5_840_504, 5_885_714)
    _assert_equals_reference(ev, np.load(shared_data / "events" / "evt3_pedestrians_openeb.npz"))
    np.testing.assert_array_equal(np.concatenate(list(rec.iter_chunks(chunk_events=7))), ev)


def test_evt3_streaming_is_chunk_invariant(shared_data):
    rec = open_recording(shared_data / "events" / "evt3_sample.raw")
    whole = rec.read_all()
    parts = list(rec.iter_chunks(chunk_events=999))  # odd word counts split vectors and time words
    assert len(parts) > 100
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    # that full pass left a seek index: windows now start decoding near t0, with identical results
    assert rec._seek_index is not None and len(rec._seek_index) > 100
    for t0 in (whole["t"][0], 11_720_000, 11_723_552, 11_727_000, whole["t"][-1]):
        np.testing.assert_array_equal(rec.read_window(t0, t0 + 700), slice_time(whole, t0, t0 + 700))
    wins = list(rec.iter_windows(1000, t_start=11_722_000))
    np.testing.assert_array_equal(np.concatenate([w[2] for w in wins]), whole[whole["t"] >= 11_722_000])


def encode_evt2_spec(events: np.ndarray) -> bytes:
    """EVT 2.0 per docs.prophesee.ai: 32-bit little-endian words, type in bits 31..28.

    CD_OFF 0x0 / CD_ON 0x1: bits 27..22 timestamp LSBs (6), 21..11 x, 10..0 y.
    EVT_TIME_HIGH 0x8: bits 27..0 = timestamp >> 6 (mod 2**28). EXT_TRIGGER 0xA and OTHERS 0xE are mixed in
    to check they are skipped.
    """
    words, last_high = [], None
    for i, (x, y, t, p) in enumerate(events.tolist()):
        high = (t >> 6) & 0x0FFFFFFF
        if high != last_high:
            words.append((0x8 << 28) | high)
            last_high = high
        if i % 97 == 0:
            words.append((0xA << 28) | (int(t) & 0x3F) << 22 | 1)  # trigger edge
            words.append((0xE << 28) | 0x12345)
        words.append(((1 if p > 0 else 0) << 28) | ((t & 0x3F) << 22) | (x << 11) | y)
    return np.asarray(words, dtype="<u4").tobytes()


@pytest.mark.parametrize("t0", [3_000_000, (1 << 34) - 50_000])  # the second crosses the 28-bit TIME_HIGH wrap
def test_evt2_decodes_spec_encoded_file(tmp_path, t0):
    ev = random_events(4000, t0=t0, duration_us=100_000, width=1280, height=720, seed=t0 % 7)
    path = tmp_path / "rec.raw"
    path.write_bytes(b"% evt 2.0\n% format EVT2;height=720;width=1280\n% end\n" + encode_evt2_spec(ev))
    rec = open_recording(path)
    assert rec.format == "evt2" and (rec.width, rec.height) == (1280, 720)
    np.testing.assert_array_equal(rec.read_all(), ev)
    rec.READ_WORDS = 100
    np.testing.assert_array_equal(rec.read_all(), ev)
    np.testing.assert_array_equal(np.concatenate(list(rec.iter_chunks(chunk_events=333))), ev)
    assert rec.num_events == 4000 and rec.t_start == ev["t"][0] and rec.t_end == ev["t"][-1]


def encode_evt21_spec(events: np.ndarray, *, legacy: bool) -> bytes:
    """EVT 2.1 per docs.prophesee.ai: 64-bit words, type in bits 63..60. EVT_NEG 0x0 / EVT_POS 0x1:
    59..54 timestamp LSBs, 53..43 x base (a multiple of 32 here), 42..32 y, 31..0 validity mask (event at
    x base + k for bit k); EVT_TIME_HIGH 0x8: 59..32 = t >> 6; EXT_TRIGGER 0xA and OTHERS 0xE mixed in.
    ``legacy`` (IMX636): the upper 32 bits are written first, each half little-endian; otherwise the
    whole word is little-endian (GenX320)."""
    order = np.lexsort((events["x"], events["p"], events["y"], events["t"]))
    ev = events[order]
    group = np.stack([ev["t"], ev["y"], ev["p"], ev["x"] // 32], axis=1)
    starts = np.nonzero(np.r_[True, np.any(group[1:] != group[:-1], axis=1)])[0]
    words, last_high = [], None
    for i, (a, b) in enumerate(zip(starts, np.r_[starts[1:], len(ev)])):
        t, y, on, base = int(ev["t"][a]), int(ev["y"][a]), int(ev["p"][a] > 0), int(ev["x"][a]) // 32 * 32
        if t >> 6 != last_high:
            last_high = t >> 6
            words.append((0x8 << 60) | ((last_high & 0x0FFFFFFF) << 32))
        if i % 53 == 0:
            words.append((0xA << 60) | ((t & 0x3F) << 54) | 1)
            words.append((0xE << 60) | 0xABC)
        mask = sum(1 << (int(x) - base) for x in ev["x"][a:b])
        words.append((on << 60) | ((t & 0x3F) << 54) | (base << 43) | (y << 32) | mask)
    w = np.asarray(words, dtype=np.uint64)
    if legacy:
        halves = np.stack([(w >> np.uint64(32)).astype("<u4"), (w & np.uint64(0xFFFFFFFF)).astype("<u4")], 1)
        return halves.tobytes()
    return w.astype("<u8").tobytes()


@pytest.mark.parametrize("legacy", [True, False])
@pytest.mark.parametrize("t0", [2_000_000, (1 << 34) - 30_000])  # the second crosses the TIME_HIGH wrap
def test_evt21_decodes_spec_encoded_vectors(tmp_path, legacy, t0):
    rng = np.random.default_rng(7)
    n = 5000
    t = np.sort(t0 + rng.integers(0, 60_000, n // 25)).repeat(25)  # 25 events per timestamp: 32-pixel groups
    x = (rng.integers(0, 1200, n // 25)[:, None] + rng.integers(0, 64, (n // 25, 25))).ravel()
    ev = np.unique(make_events(x, rng.integers(0, 4, n) + 300, t, rng.integers(0, 2, n)))
    ev = ev[np.lexsort((ev["x"], ev["p"], ev["y"], ev["t"]))]
    path = tmp_path / "evt21.raw"
    fmt = b"% format EVT21;height=720;width=1280" + (b";endianness=legacy" if legacy else b"") + b"\n"
    path.write_bytes(b"% evt 2.1\n" + fmt + b"% end\n" + encode_evt21_spec(ev, legacy=legacy))
    rec = open_recording(path)
    assert rec.format == "evt21" and rec.evt21_legacy == legacy and (rec.width, rec.height) == (1280, 720)
    np.testing.assert_array_equal(rec.read_all(), ev)
    rec.READ_WORDS = 33  # many reads, output grown (up to 32 events per word)
    np.testing.assert_array_equal(rec.read_all(), ev)
    np.testing.assert_array_equal(np.concatenate(list(rec.iter_chunks(chunk_events=101))), ev)
    # decoding with the other half order gives garbage, so the order really is exercised
    swapped = tmp_path / "swapped.raw"
    other = b";endianness=legacy" if not legacy else b""
    swapped.write_bytes(b"% evt 2.1\n% format EVT21;height=720;width=1280" + other + b"\n% end\n"
                        + encode_evt21_spec(ev, legacy=legacy))
    with pytest.raises((UserError, AssertionError)):  # out-of-sensor / unsorted garbage, or different events
        np.testing.assert_array_equal(open_recording(swapped).read_all(), ev)
    # old headers without a format line are the IMX636 (legacy) order
    old = tmp_path / "old.raw"
    old.write_bytes(b"% evt 2.1\n% geometry 1280x720\n% end\n" + encode_evt21_spec(ev, legacy=True))
    np.testing.assert_array_equal(open_recording(old).read_all(), ev)


def test_truncated_raw_is_reported(tmp_path, shared_data):
    data = (shared_data / "events" / "evt3_sample.raw").read_bytes()
    (tmp_path / "cut.raw").write_bytes(data[:EVT3_HEADER_BYTES + 1001])
    with pytest.raises(UserError, match="truncated"):
        open_recording(tmp_path / "cut.raw").read_all()


def test_dat_sample_with_header(shared_data):
    path = shared_data / "events" / "sample_ncars.dat"
    head = read_header(path, dat=True)
    assert head.size == 93 and head.fields["version"] == "2" and (head.dat_event_type, head.dat_event_size) == (0, 8)
    rec = open_recording(path)
    ev = rec.read_all()
    assert rec.format == "dat" and len(ev) == (path.stat().st_size - 93) // 8 == 2009
    raw = np.fromfile(path, dtype=[("t", "<u4"), ("d", "<u4")], offset=93)
    np.testing.assert_array_equal(ev["t"], raw["t"])
    np.testing.assert_array_equal(ev["x"], raw["d"] & 0x3FFF)
    np.testing.assert_array_equal(ev["y"], (raw["d"] >> 14) & 0x3FFF)
    assert tuple(ev[0].tolist()) == (25, 8, 0, -1) and rec.t_end == 99_952
    np.testing.assert_array_equal(rec.read_window(40_000, 60_000), slice_time(ev, 40_000, 60_000))  # memmap search
    # an independent decoder agrees
    from expelliarmus import Wizard
    other = Wizard(encoding="dat", fpath=str(path)).read()
    np.testing.assert_array_equal(ev["x"], other["x"])
    np.testing.assert_array_equal(ev["p"], np.where(other["p"] > 0, 1, -1))
    # N-CARS headers carry no geometry: the size is inferred and said so
    d = rec.describe()
    assert d["size_inferred"] and (d["width"], d["height"]) == (int(ev["x"].max()) + 1, int(ev["y"].max()) + 1)


def test_dat_with_geometry_header(tmp_path):
    ev = random_events(500, width=304, height=240)
    rec = np.empty(len(ev), dtype=[("t", "<u4"), ("d", "<u4")])
    rec["t"] = ev["t"]
    rec["d"] = ev["x"].astype(np.uint32) | (ev["y"].astype(np.uint32) << 14) | ((ev["p"] > 0).astype(np.uint32) << 28)
    path = tmp_path / "atis.dat"
    path.write_bytes(b"% Data file containing Event2D events.\n% Version 2\n% Width 304\n% Height 240\n"
                     + bytes([0, 8]) + rec.tobytes())
    r = open_recording(path)
    assert (r.width, r.height, r.size_inferred) == (304, 240, False)
    np.testing.assert_array_equal(r.read_all(), ev)


def encode_evt3_spec(events: np.ndarray) -> bytes:
    """EVT 3.0 per docs.prophesee.ai: 16-bit words, type in bits 15..12. Events sharing (t, y, p) are sent
    as VECT_BASE_X (0x3, pol bit 11, x) + VECT_12 (0x4) / VECT_8 (0x5) masks, single ones as EVT_ADDR_X
    (0x2); EVT_ADDR_Y (0x0), EVT_TIME_LOW (0x6, t & 0xFFF) and EVT_TIME_HIGH (0x8, (t >> 12) & 0xFFF)
    only when they change; OTHERS (0xE) words are mixed in."""
    words, last = [], {"high": None, "low": None, "y": None}
    order = np.lexsort((events["x"], events["p"], events["y"], events["t"]))
    ev = events[order]
    keys = np.stack([ev["t"], ev["y"], ev["p"]], axis=1)
    starts = np.nonzero(np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)])[0]
    for a, b in zip(starts, np.r_[starts[1:], len(ev)]):
        t, y, p = int(ev["t"][a]), int(ev["y"][a]), int(ev["p"][a] > 0)
        if (t >> 12) & 0xFFF != last["high"]:
            last["high"] = (t >> 12) & 0xFFF
            words.append(0x8000 | last["high"])
        if t & 0xFFF != last["low"]:
            last["low"] = t & 0xFFF
            words.append(0x6000 | last["low"])
            words.append(0xE000 | 0x123)
        if y != last["y"]:
            last["y"] = y
            words.append(y)
        xs = ev["x"][a:b].astype(int).tolist()
        if len(xs) == 1:
            words.append(0x2000 | (p << 11) | xs[0])
            continue
        base = xs[0]
        words.append(0x3000 | (p << 11) | base)
        while base <= xs[-1]:
            width = 8 if xs[-1] - base < 8 else 12
            mask = sum(1 << (x - base) for x in xs if base <= x < base + width)
            words.append((0x5000 if width == 8 else 0x4000) | mask)
            base += width
    return np.asarray(words, dtype="<u2").tobytes()


@pytest.mark.parametrize("t0", [1_000_000, (1 << 24) - 20_000])  # the second crosses the 24-bit time base wrap
def test_evt3_decodes_spec_encoded_vectors(tmp_path, t0):
    rng = np.random.default_rng(3)
    n = 6000
    t = np.sort(t0 + rng.integers(0, 40_000, n // 20)).repeat(20)  # 20 events per timestamp: rows -> vectors
    x = (rng.integers(0, 1200, n // 20)[:, None] + rng.integers(0, 40, (n // 20, 20))).ravel()
    ev = make_events(x, rng.integers(0, 3, n) + 100, t, rng.integers(0, 2, n))
    ev = np.unique(ev)  # one event per (x, y, t, p)
    ev = ev[np.lexsort((ev["x"], ev["p"], ev["y"], ev["t"]))]
    path = tmp_path / "vec.raw"
    path.write_bytes(b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n" + encode_evt3_spec(ev))
    words = np.frombuffer(path.read_bytes()[path.read_bytes().index(b"% end\n") + 6:], dtype="<u2")
    assert np.count_nonzero(words >> 12 == 4) > 100  # vectors really are exercised
    rec = open_recording(path)
    got = rec.read_all()
    np.testing.assert_array_equal(got, ev)
    np.testing.assert_array_equal(np.concatenate(list(rec.iter_chunks(chunk_events=101))), ev)
    # read_all through a small read buffer: vectors give more events than words, so its output grows
    rec.READ_WORDS = 50
    np.testing.assert_array_equal(rec.read_all(), ev)


@pytest.mark.parametrize("read_words", [1 << 18, 64])  # one read, or many (checks across read boundaries)
@pytest.mark.parametrize("encode,fmt", [(encode_evt2_spec, b"EVT2"), (encode_evt3_spec, b"EVT3")])
def test_decoder_checks_order_and_bounds(tmp_path, monkeypatch, encode, fmt, read_words):
    """read_all checks inside the decoding kernel; iter_chunks with a separate pass: same verdicts."""
    monkeypatch.setattr(RawStream, "READ_WORDS", read_words)
    ev = random_events(300, t0=1_000_000, duration_us=50_000, width=640, height=480, seed=9)
    header = b"% format " + fmt + b";height=480;width=640\n% end\n"
    wide = ev.copy()
    wide["x"][150] = 700
    back = np.concatenate([ev[:200], ev[100:]])  # time goes back at event 200
    for bad, match in ((wide, "outside"), (back, "not monotonic")):
        path = tmp_path / "bad.raw"
        path.write_bytes(header + (encode(bad) if encode is encode_evt2_spec else b"".join(
            encode_evt3_spec(part) for part in (bad[:200], bad[200:]))))
        with pytest.raises(UserError, match=match):
            open_recording(path).read_all()
        with pytest.raises(UserError, match=match):
            list(open_recording(path).iter_chunks(chunk_events=64))
