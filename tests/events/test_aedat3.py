"""AEDAT 3.1 reader: polarity packets of any DVS/DAVIS source, files written here in the published layout."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from eventvision.errors import FileFormatError
from eventvision.events import detect_format, open_recording
from eventvision.events.aedat3 import read_polarity
from events_testutil import random_events

# 28-byte packet header per docs.inivation.com "AEDAT 3.1", little endian
HEADER_DTYPE = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
                         ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])


def packet(kind, source, size, n, overflow=0, payload=None) -> bytes:
    head = np.array([(kind, source, size, 4 if kind == 1 else 0, overflow, n, n, n)], HEADER_DTYPE).tobytes()
    return head + (payload if payload is not None else bytes(size * n))


def polarity_packets(ev, source, per_packet, valid=None) -> list[bytes]:
    """Polarity events (type 1, 8 bytes): data u32 (bit 0 valid, 1 polarity, 2..16 y, 17..31 x), i32 timestamp."""
    valid = np.ones(len(ev), bool) if valid is None else valid
    out = []
    for a in range(0, len(ev), per_packet):
        e, v = ev[a:a + per_packet], valid[a:a + per_packet]
        overflow = int(e["t"][0] >> 31)
        assert np.all(e["t"] >> 31 == overflow)
        data = (e["x"].astype(np.uint32) << 17) | (e["y"].astype(np.uint32) << 2) | \
               ((e["p"] > 0).astype(np.uint32) << 1) | v.astype(np.uint32)
        words = np.stack([data, (e["t"] & 0x7FFFFFFF).astype(np.uint32)], 1).astype("<u4")
        out.append(packet(1, source, 8, len(e), overflow, words.tobytes()))
    return out


def write_aedat31(path, packets, sources=("DAVIS346B",)):
    head = b"#!AER-DAT3.1\r\n#Format: RAW\r\n" + b"".join(
        f"#Source {i + 1}: {name}\r\n".encode() for i, name in enumerate(sources)) + \
        b"#Start-Time: 2016-05-01 10:00:00 (TZ+0200)\r\n#!END-HEADER\r\n"
    path.write_bytes(head + b"".join(packets))


def test_davis346_polarity_with_frames_imu_and_special_packets(tmp_path):
    ev = random_events(4000, t0=(1 << 31) - 1_000_000, duration_us=2_000_000, width=346, height=260, seed=4)
    ev = np.concatenate([ev[ev["t"] < 1 << 31], ev[ev["t"] >= 1 << 31]])
    cut = int(np.searchsorted(ev["t"], 1 << 31))  # packets never straddle a timestamp overflow
    valid = np.random.default_rng(0).random(len(ev)) > 0.1
    pol = polarity_packets(ev[:cut], 1, 500, valid[:cut]) + polarity_packets(ev[cut:], 1, 500, valid[cut:])
    frame = packet(2, 1, 36 + 346 * 260 * 2, 1)       # frame event: 36-byte header + u16 pixels
    imu = packet(3, 1, 36, 10)                        # IMU6 events, 36 bytes
    special = packet(0, 1, 8, 3)
    packets = [special] + [p for i, pk in enumerate(pol) for p in ((pk, frame, imu) if i % 3 == 0 else (pk,))]
    path = tmp_path / "davis.aedat"
    write_aedat31(path, packets)
    assert detect_format(path) == "aedat3"
    rec = open_recording(path)
    assert (rec.format, rec.width, rec.height, rec.size_inferred, rec.source_id) == ("aedat3", 346, 260, False, 1)
    np.testing.assert_array_equal(rec.read_all(), ev[valid])
    np.testing.assert_array_equal(np.concatenate(list(rec.iter_chunks(chunk_events=333))), ev[valid])
    d = rec.describe()
    assert d["count"] == int(valid.sum()) and d["source"] == "1: DAVIS346B"
    n_with = len(range(0, len(pol), 3))
    assert d["skipped_packets"] == {"special": 1, "frame": n_with, "imu6": n_with}


def test_two_sources_and_unknown_device(tmp_path):
    a = random_events(600, width=240, height=180, seed=5)
    b = random_events(400, width=128, height=128, seed=6)
    pk = [x for pair in itertools.zip_longest(polarity_packets(a, 1, 100), polarity_packets(b, 2, 100))
          for x in pair if x is not None]
    path = tmp_path / "two.aedat"
    write_aedat31(path, pk, sources=("DAVIS240C", "DVS128"))
    np.testing.assert_array_equal(open_recording(path).read_all(), a)
    second = open_recording(path, stream_id=2)
    assert (second.width, second.height) == (128, 128)
    np.testing.assert_array_equal(second.read_all(), b)
    assert second.describe()["skipped_packets"] == {"polarity (source 1)": 6}
    odd = tmp_path / "odd.aedat"
    write_aedat31(odd, polarity_packets(a, 1, 100), sources=("Some future camera",))
    rec = open_recording(odd)
    assert rec.size_inferred and (rec.width, rec.height) == (a["x"].max() + 1, a["y"].max() + 1)
    np.testing.assert_array_equal(read_polarity(odd), a)


def test_bad_files(tmp_path):
    good = tmp_path / "good.aedat"
    write_aedat31(good, polarity_packets(random_events(50, width=128, height=128), 1, 20))
    data = good.read_bytes()
    (tmp_path / "cut.aedat").write_bytes(data[:-3])
    with pytest.raises(FileFormatError, match="truncated"):
        open_recording(tmp_path / "cut.aedat").read_all()
    (tmp_path / "noend.aedat").write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n")
    with pytest.raises(FileFormatError, match="END-HEADER"):
        open_recording(tmp_path / "noend.aedat")
    (tmp_path / "comp.aedat").write_bytes(data.replace(b"#Format: RAW", b"#Format: SerializedTS"))
    with pytest.raises(FileFormatError, match="SerializedTS"):
        open_recording(tmp_path / "comp.aedat")


def test_info_lists_source_and_skipped_packets(tmp_path, capsys):
    from eventvision.cli.main import main
    ev = random_events(300, width=346, height=260, seed=11)
    path = tmp_path / "davis.aedat"
    write_aedat31(path, [packet(2, 1, 36 + 16, 1)] + polarity_packets(ev, 1, 100) + [packet(3, 1, 36, 4)])
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "format:       aedat3" in out and "346 x 260" in out and "events:       300" in out
    assert "source:       1: DAVIS346B" in out and "skipped:      frame 1, imu6 1 (packets)" in out
