"""AEDAT 3.1 files (``#!AER-DAT3.1``, cAER/DV/libcaer): polarity events of any DVS/DAVIS source.

Layout (docs.inivation.com, "AEDAT 3.1"): ``#`` header lines (CRLF) ending with ``#!END-HEADER``,
among them ``#Format: RAW`` and ``#Source <id>: <device>``; then packets, little endian, each a
28-byte header (type i16, source i16, event size i32, timestamp offset i32, timestamp overflow i32,
capacity i32, number i32, valid i32) followed by ``capacity * size`` bytes of events. Polarity events
(type 1, 8 bytes): u32 ``data`` (bit 0 valid, bit 1 polarity 1 = ON, bits 2..16 y, bits 17..31 x;
origin upper left) and i32 timestamp; the full timestamp is ``overflow << 31 | timestamp`` (µs).

Every other packet type (special 0, frame 2, IMU6 3, IMU9 4, ...) is skipped and counted by type in
:attr:`Aedat3Stream.skipped` (frames and IMU samples are not read from AEDAT 3.1; AEDAT 4.0 files
expose them, see :mod:`eventvision.events.aedat4`). Events with the valid bit cleared are dropped.
One source is read: ``source_id``, default the first polarity source in the file. The sensor size
comes from the source's device name (DVS128, DAVIS240/346/640, DVXplorer, ...); for other names it is
inferred from the largest coordinates.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np

from eventvision.errors import FileFormatError
from eventvision.events._kernels import fast_check_chunk, pack_events
from eventvision.events.core import EventMeta, empty_events, header_line
from eventvision.events.recording import SequentialStream

PACKET_HEADER = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
                          ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])
POLARITY_EVENT = 1
#: packet type ids of AEDAT 3.1 (libcaer ``caer_default_event_types``)
EVENT_TYPE_NAMES = {0: "special", 1: "polarity", 2: "frame", 3: "imu6", 4: "imu9", 5: "sample", 6: "ear",
                    7: "config", 8: "point1d", 9: "point2d", 10: "point3d", 11: "point4d", 12: "spike",
                    13: "matrix4x4"}
#: device name fragment (lower case, longest first when matched) -> (width, height)
DEVICE_SIZES = {"dvs128": (128, 128), "dvs132s": (132, 128), "davis128": (128, 128), "davis208": (208, 192),
                "davis240": (240, 180), "davis346": (346, 260), "davis640": (640, 480),
                "davisrgb": (640, 480), "davishet640": (640, 480), "dvxplorer lite": (320, 240),
                "dvxplorer mini": (640, 480), "dvxplorer": (640, 480), "dvxp": (640, 480)}
_END = b"#!END-HEADER"


def read_header(path: Path) -> tuple[int, dict[int, str], str]:
    """(byte size of the text header, {source id: device name}, format) of an AEDAT 3.1 file."""
    sources, fmt, pos = {}, "RAW", 0
    with open(path, "rb") as fh:
        if not fh.read(12).startswith(b"#!AER-DAT3"):
            raise FileFormatError(f"{path}: not an AEDAT 3.x file (no '#!AER-DAT3' line)")
        fh.seek(0)
        while True:
            line = header_line(fh, path=path, header_bytes=pos, kind="AEDAT 3.1")
            if not line:
                raise FileFormatError(f"{path}: AEDAT 3.1 header has no '#!END-HEADER' line; the file is "
                                      f"truncated or AEDAT 3.0 (convert it with DV)")
            pos += len(line)
            if line.startswith(_END):
                break
            text = line.decode("latin-1").strip()
            m = re.match(r"#Source (\d+):\s*(.*)", text)
            if m:
                sources[int(m.group(1))] = m.group(2).strip()
            elif text.startswith("#Format:"):
                fmt = text.split(":", 1)[1].strip()
    return pos, sources, fmt


def device_size(name: str) -> tuple[int, int] | None:
    low = name.lower()
    for key in sorted(DEVICE_SIZES, key=len, reverse=True):
        if key in low:
            return DEVICE_SIZES[key]
    return None


def iter_packets(path: Path, start: int) -> Iterator[tuple[np.void, np.ndarray]]:
    """(packet header, raw event bytes as uint8) per packet, read from byte ``start``."""
    with open(path, "rb") as fh:
        fh.seek(start)
        pos = start
        while True:
            head = fh.read(PACKET_HEADER.itemsize)
            if not head:
                return
            if len(head) < PACKET_HEADER.itemsize:
                raise FileFormatError(f"{path}: truncated packet header at byte {pos}; the file is "
                                      f"incomplete")
            header = np.frombuffer(head, PACKET_HEADER)[0]
            size, capacity = int(header["size"]), int(header["capacity"])
            if size <= 0 or capacity < 0 or not 0 <= int(header["number"]) <= capacity:
                raise FileFormatError(f"{path}: corrupt packet header at byte {pos} (event size {size}, "
                                      f"capacity {capacity}, number {int(header['number'])}); the file is "
                                      f"damaged")
            body = fh.read(size * capacity)
            if len(body) < size * capacity:
                raise FileFormatError(f"{path}: truncated event packet at byte {pos}; the file is incomplete")
            pos += PACKET_HEADER.itemsize + size * capacity
            yield header, np.frombuffer(body, np.uint8)


def decode_polarity_packet(header: np.void, body: np.ndarray) -> np.ndarray:
    """EVENT_DTYPE events of one polarity packet (invalid events dropped)."""
    n = int(header["number"])
    words = body[:8 * n].view("<u4").reshape(n, 2)
    data = words[:, 0]
    keep = (data & 1).astype(bool)
    if not keep.all():
        words = words[keep]
        data = words[:, 0]
    t = (words[:, 1] & 0x7FFFFFFF).astype(np.int64) | (np.int64(header["ts_overflow"]) << 31)
    return pack_events((data >> 17) & 0x7FFF, (data >> 2) & 0x7FFF, t, (data >> 1) & 1)


class Aedat3Stream(SequentialStream):
    """The polarity events of one source of an AEDAT 3.1 file (see the module doc)."""

    _check_chunk = fast_check_chunk

    def __init__(self, path: Path, source_id: int | None = None):
        self.path, self.format = Path(path), "aedat3"
        self.header_size, self.sources, fmt = read_header(self.path)
        if fmt.upper() != "RAW":
            raise FileFormatError(f"{path}: AEDAT 3.1 format '{fmt}' (compressed) is not supported, only "
                                  f"RAW; convert the file with DV")
        if source_id is None:
            source_id = self._first_polarity_source()
        self.source_id = source_id
        size = device_size(self.sources.get(source_id, ""))
        self.size_inferred = size is None
        self._size = size
        #: packets of other types (or other sources) skipped by the last full pass: {type name: count};
        #: None until a full pass has run
        self.skipped: dict[str, int] | None = None

    def _first_polarity_source(self) -> int:
        for header, _ in iter_packets(self.path, self.header_size):
            if int(header["type"]) == POLARITY_EVENT:
                return int(header["source"])
        return min(self.sources) if self.sources else 0

    @property
    def meta(self) -> EventMeta:
        """Sensor size from the source's device name, else the largest coordinates + 1 (one full pass)."""
        if self._size is not None:
            return EventMeta(self._size[0], self._size[1], 0)
        _, _, _, xmax, ymax = self._totals
        return EventMeta(xmax + 1, ymax + 1, 0)

    def _decode_chunks(self, chunk_events: int) -> Iterator[np.ndarray]:
        skipped: dict[str, int] = {}
        for header, body in iter_packets(self.path, self.header_size):
            kind, source = int(header["type"]), int(header["source"])
            if kind == POLARITY_EVENT and source == self.source_id:
                if int(header["size"]) != 8:
                    raise FileFormatError(f"{self.path}: polarity packet with {int(header['size'])}-byte "
                                          f"events (AEDAT 3.1 polarity events are 8 bytes); the file is "
                                          f"damaged")
                yield decode_polarity_packet(header, body)
                continue
            name = EVENT_TYPE_NAMES.get(kind, f"type {kind}")
            if kind == POLARITY_EVENT:
                name = f"polarity (source {source})"
            skipped[name] = skipped.get(name, 0) + 1
        self.skipped = skipped

    def describe(self) -> dict:
        info = super().describe()
        if self.skipped is None:
            for _ in self._decode_chunks(1 << 20):
                pass
        return {**info, "source": f"{self.source_id}: {self.sources.get(self.source_id, '?')}",
                "skipped_packets": dict(self.skipped)}


def read_polarity(path: str | Path, source_id: int | None = None) -> np.ndarray:
    """Every valid polarity event of one source, in file order (no time-order check; see
    :class:`Aedat3Stream` for checked streaming)."""
    stream = Aedat3Stream(Path(path), source_id)
    parts = [chunk for chunk in stream._decode_chunks(1 << 20) if len(chunk)]
    return np.concatenate(parts) if parts else empty_events()


__all__ = ["Aedat3Stream", "DEVICE_SIZES", "EVENT_TYPE_NAMES", "PACKET_HEADER", "decode_polarity_packet",
           "device_size", "iter_packets", "read_header", "read_polarity"]
