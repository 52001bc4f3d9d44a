"""jAER AEDAT 2.0 reader on files written here in the published layouts (DVS128 and DAVIS346 addresses)."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.errors import FileFormatError
from eventvision.events import detect_format, open_recording
from eventvision.events.aedat2 import Aedat2Stream
from events_testutil import random_events

HEADER = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
          b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
          b"# Timestamps tick is 1 us\r\n")


def dvs128_address(x, y, on):
    """DVS128 class: bit 15 external, 14..8 y, 7..1 x, 0 polarity; jAER mirrors x and counts y from the bottom."""
    return ((127 - y.astype(np.int64)) << 8) | ((127 - x.astype(np.int64)) << 1) | on


def davis_address(x, y, on, width=346, height=260):
    """DAVIS classes: bit 31 APS/IMU, 30..22 y, 21..12 x, 11 polarity, 10 external; x mirrored, y from the bottom."""
    return ((height - 1 - y.astype(np.int64)) << 22) | ((width - 1 - x.astype(np.int64)) << 12) | (on << 11)


def write_aedat2(path, addresses, t, chip_line: bytes | None):
    rec = np.empty(len(addresses), dtype=[("a", ">u4"), ("t", ">u4")])
    rec["a"] = np.asarray(addresses, np.int64) & 0xFFFFFFFF
    rec["t"] = np.asarray(t, np.int64) & 0xFFFFFFFF
    path.write_bytes(HEADER + (chip_line or b"") + rec.tobytes())


def _interleave(ev, address_fn, specials: dict[str, int], seed=0):
    """Event addresses with special records inserted at random places (returned with their timestamps)."""
    rng = np.random.default_rng(seed)
    addr = address_fn(ev["x"], ev["y"], (ev["p"] > 0).astype(np.int64))
    t = ev["t"].copy()
    for word in specials.values():
        at = np.sort(rng.choice(len(addr), 25, replace=False))
        addr = np.insert(addr, at, word)
        t = np.insert(t, at, t[at])
    return addr, t


def test_dvs128_layout_flip_and_external_events(tmp_path):
    ev = random_events(3000, width=128, height=128, seed=1)
    addr, t = _interleave(ev, dvs128_address, {"external": 1 << 15})
    path = tmp_path / "dvs128.aedat"
    write_aedat2(path, addr, t, b"# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n")
    assert detect_format(path) == "aedat2"
    rec = open_recording(path)
    assert (rec.format, rec.chip, rec.width, rec.height) == ("aedat2", "dvs128", 128, 128)
    np.testing.assert_array_equal(rec.read_all(), ev)
    d = rec.describe()
    assert d["count"] == 3000 and d["skipped"] == {"external": 25, "aps": 0, "imu": 0}
    # a corner: jAER address x 127 / y 127 is the image's upper-left pixel
    one = tmp_path / "corner.aedat"
    write_aedat2(one, [(127 << 8) | (127 << 1) | 1], [5], b"# AEChip: DVS128\r\n")
    assert open_recording(one).read_all().tolist() == [(0, 0, 5, 1)]


def test_davis346_layout_skips_aps_imu_external_and_agrees_with_tonic(tmp_path):
    ev = random_events(5000, width=346, height=260, seed=2)
    specials = {"aps": (1 << 31) | (17 << 22) | (5 << 12) | 0x155, "imu": (1 << 31) | (3 << 10) | 7,
                "external": 1 << 10}
    addr, t = _interleave(ev, davis_address, specials)
    path = tmp_path / "davis.aedat"
    write_aedat2(path, addr, t, b"# AEChip: eu.seebetter.ini.chips.davis.Davis346B\r\n")
    rec = open_recording(path)
    assert (rec.chip, rec.width, rec.height) == ("davis346b", 346, 260)
    np.testing.assert_array_equal(rec.read_all(), ev)
    np.testing.assert_array_equal(np.concatenate(list(rec.iter_chunks(chunk_events=77))), ev)
    assert rec.describe()["skipped"] == {"external": 25, "aps": 25, "imu": 25}
    # tonic's DAVIS346 parser (no special-event handling) agrees on a file of DVS events only
    from tonic.io import read_davis_346
    plain = tmp_path / "plain.aedat"
    write_aedat2(plain, davis_address(ev["x"], ev["y"], (ev["p"] > 0).astype(np.int64)), ev["t"],
                 b"# AEChip: eu.seebetter.ini.chips.davis.Davis346B\r\n")
    _, _, other = read_davis_346(str(plain))
    got = open_recording(plain).read_all()
    np.testing.assert_array_equal(got["x"], other["x"])
    np.testing.assert_array_equal(got["y"], other["y"])
    np.testing.assert_array_equal(got["p"] > 0, other["p"] > 0)


def test_timestamp_wrap_and_chip_inference(tmp_path):
    ev = random_events(2000, t0=(1 << 32) - 30_000, duration_us=60_000, width=128, height=128, seed=3)
    path = tmp_path / "wrap.aedat"
    write_aedat2(path, dvs128_address(ev["x"], ev["y"], (ev["p"] > 0).astype(np.int64)), ev["t"], None)
    rec = open_recording(path)  # no AEChip line, 16-bit addresses: DVS128
    got = rec.read_all()
    assert rec.chip == "dvs128" and got["t"][0] < (1 << 32) < got["t"][-1]
    np.testing.assert_array_equal(got, ev)
    davis = tmp_path / "davis_no_chip.aedat"
    write_aedat2(davis, davis_address(ev["x"], ev["y"], (ev["p"] > 0).astype(np.int64)), ev["t"] - ev["t"][0], None)
    with pytest.raises(FileFormatError, match="AEChip"):
        open_recording(davis)
    assert Aedat2Stream(davis, chip="davis346").num_events == 2000
    from eventvision.events.aedat2 import chip_layout
    assert chip_layout("eu.seebetter.ini.chips.davis.Davis346BMono") == ("davis", 346, 260)
    assert chip_layout("DAVIS240C") == ("davis", 240, 180) and chip_layout("DVS128_PAER")[0] == "dvs128"
    unknown = tmp_path / "unknown.aedat"
    write_aedat2(unknown, [0], [0], b"# AEChip: some.lab.MyChip\r\n")
    with pytest.raises(FileFormatError, match="mychip"):
        open_recording(unknown)
    cut = tmp_path / "cut.aedat"
    cut.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(FileFormatError, match="truncated"):
        open_recording(cut)


def test_info_names_chip_and_skipped_records(tmp_path, capsys):
    from eventvision.cli.main import main
    ev = random_events(500, width=346, height=260, seed=8)
    addr, t = _interleave(ev, davis_address, {"aps": 1 << 31, "external": 1 << 10})
    path = tmp_path / "davis.aedat"
    write_aedat2(path, addr, t, b"# AEChip: eu.seebetter.ini.chips.davis.Davis346B\r\n")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "format:       aedat2" in out and "346 x 260" in out and "500" in out
    assert "chip:         davis346b" in out and "skipped:      external 25, aps 25 (records)" in out


def test_first_record_starting_with_hash_is_data(tmp_path):
    """No end-of-header marker: a DAVIS record whose first byte is '#' (y address 140) must not be
    swallowed as a header line."""
    x, y = np.array([10, 11], np.uint16), np.array([260 - 1 - 140, 3], np.uint16)
    addr = davis_address(x, y, np.array([1, 0]))
    assert (int(addr[0]) >> 24) == ord("#")
    path = tmp_path / "hash.aedat"
    write_aedat2(path, addr, [100, 200], b"# AEChip: eu.seebetter.ini.chips.davis.Davis346B\r\n")
    assert open_recording(path).read_all().tolist() == [(10, 119, 100, 1), (11, 3, 200, -1)]
