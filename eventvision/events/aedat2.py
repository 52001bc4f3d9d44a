"""jAER AEDAT 2.0 files (``#!AER-DAT2.0``): DVS128 and DAVIS (240/346/640/...) recordings.

Layout (docs.inivation.com, "AEDAT 2.0"): ``#`` header lines ending in CRLF, then 8-byte records of a
big-endian 32-bit *address* and a big-endian 32-bit timestamp (µs). The address is interpreted by the
jAER chip class named in the ``# AEChip:`` header line:

* **DVS128** (``Tmpdiff128``/``DVS128``): bit 15 external event, bits 14..8 y, bits 7..1 x, bit 0
  polarity (1 = ON);
* **DAVIS**: bit 31 set for APS (frame) and IMU samples, bits 30..22 y, bits 21..12 x, bit 11 polarity
  (1 = ON), bit 10 set for external (special) events.

Coordinates: jAER stores the x address mirrored (its DVS128 class maps ``x = 127 - x_address``, the
DAVIS classes ``x = width - 1 - x_address``) and puts the origin at the *lower* left. eventvision uses
the image convention of AEDAT 3.1/4.0 and libcaer (origin upper left), so both axes are flipped:
``x = width - 1 - x_address``, ``y = height - 1 - y_address`` (as tonic's ``read_davis_346`` does).

External/special events, APS samples and IMU samples are skipped and counted (:attr:`Aedat2Stream.skipped`,
filled by a full pass). Timestamps are read as unsigned and unwrapped when the 32-bit counter wraps
(after ~71.6 min). A file without an ``AEChip`` line is DVS128 when every address fits in 16 bits;
otherwise the chip must be named (``chip=``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numba
import numpy as np

from eventvision.errors import FileFormatError, InvalidValueError
from eventvision.events._kernels import fast_check_chunk
from eventvision.events.core import EVENT_DTYPE, MAX_HEADER_BYTES, MAX_HEADER_LINE_BYTES, EventMeta
from eventvision.events.recording import SequentialStream

#: address layout and size by jAER chip class family; a class name matches by prefix, so the
#: variants (Davis346B, Davis346cBSI, Davis346BMono, DAVIS240C, DavisHet640, DVS128_PAER ...) resolve
CHIPS = {"dvs128": ("dvs128", 128, 128), "tmpdiff128": ("dvs128", 128, 128), "davis128": ("davis", 128, 128),
         "davis208": ("davis", 208, 192), "davis240": ("davis", 240, 180), "davis346": ("davis", 346, 260),
         "davis640": ("davis", 640, 480), "davishet640": ("davis", 640, 480), "davisrgb": ("davis", 640, 480)}


def chip_layout(name: str) -> tuple[str, int, int] | None:
    """(layout, width, height) of a jAER chip class (case-insensitive, package optional), or None."""
    low = name.rsplit(".", 1)[-1].lower()
    for key in sorted(CHIPS, key=len, reverse=True):
        if low.startswith(key):
            return CHIPS[key]
    return None


_RECORD = np.dtype([("address", ">u4"), ("t", ">u4")])
#: counters of skipped records, in the order the kernel returns them
SKIPPED_KINDS = ("external", "aps", "imu")


def read_header(path: Path) -> tuple[int, list[str]]:
    """(byte size of the ``#`` header, its lines without the ``#`` and line ends).

    The header has no end marker, so a line is header only if it is text (printable, CRLF-terminated
    as jAER writes it): a DAVIS record whose first byte happens to be ``#`` (0x23, y address 140-143)
    is data, not a header line."""
    lines, pos = [], 0
    with open(path, "rb") as fh:
        while True:
            first = fh.read(1)
            if first != b"#":
                break
            # bounded: a longer "line" is no header line but data, like one that is not text
            line = fh.readline(MAX_HEADER_LINE_BYTES)
            if not line.endswith(b"\n") or not _TEXT.fullmatch(line.rstrip(b"\r\n")):
                break
            if pos + 1 + len(line) > MAX_HEADER_BYTES:
                raise FileFormatError(f"{path}: '#' header longer than {MAX_HEADER_BYTES} bytes; not an AEDAT 2.0 "
                                      "header (the file is corrupt)", path=str(path))
            pos += 1 + len(line)
            lines.append(line.decode("latin-1").rstrip("\r\n"))
    return pos, lines


_TEXT = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")


def chip_from_header(lines: list[str]) -> str | None:
    """The jAER ``AEChip`` class of the header (lower case, package stripped), or None."""
    for line in lines:
        m = re.match(r"\s*AEChip:\s*(\S+)", line)
        if m:
            return m.group(1).rsplit(".", 1)[-1].lower()
    return None


@numba.njit(cache=True, inline="always")
def _bswap32(v):
    return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | ((v >> 24) & 0xFF)


@numba.njit(cache=True)
def _decode_kernel(words, davis, width, height, state, out):
    """Big-endian (address, t) records, read as native uint32 pairs -> events in ``out``; returns
    (count, skipped[3], new state [last raw t, wraps])."""
    last, wraps = state[0], state[1]
    skipped = np.zeros(3, np.int64)
    k = 0
    for i in range(words.shape[0] // 2):
        a = _bswap32(np.int64(words[2 * i]))
        t = _bswap32(np.int64(words[2 * i + 1]))
        if t < last and last - t > (1 << 31):  # the 32-bit µs counter wrapped
            wraps += 1
        last = t
        if davis:
            if (a >> 31) & 1:
                if ((a >> 10) & 3) == 3:
                    skipped[2] += 1  # IMU sample
                else:
                    skipped[1] += 1  # APS (frame) sample
                continue
            if (a >> 10) & 1:
                skipped[0] += 1
                continue
            x = (a >> 12) & 0x3FF
            y = (a >> 22) & 0x1FF
            on = (a >> 11) & 1
        else:
            if (a >> 15) & 1:
                skipped[0] += 1
                continue
            x = (a >> 1) & 0x7F
            y = (a >> 8) & 0x7F
            on = a & 1
        out[k].x = width - 1 - x
        out[k].y = height - 1 - y
        out[k].t = (wraps << 32) + t
        out[k].p = 1 if on else -1
        k += 1
    new_state = np.empty(2, np.int64)
    new_state[0] = last
    new_state[1] = wraps
    return k, skipped, new_state


def decode_aedat2(records: np.ndarray, *, layout: str, width: int, height: int,
                  state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode AEDAT 2.0 records (big-endian u4 address, u4 t) of a ``layout`` ("dvs128" | "davis")
    sensor; returns (events, skipped counts in :data:`SKIPPED_KINDS` order, state for the next chunk)."""
    if layout not in ("dvs128", "davis"):
        raise InvalidValueError(f"AEDAT 2.0 address layout '{layout}' is unknown; use 'dvs128' or 'davis'")
    words = np.ascontiguousarray(records, dtype=_RECORD).view("<u4")  # numba reads no big-endian fields
    out = np.empty(len(records), dtype=EVENT_DTYPE)
    k, skipped, new_state = _decode_kernel(words, layout == "davis", int(width), int(height),
                                           np.zeros(2, np.int64) if state is None else state, out)
    return out[:k], skipped, new_state


class Aedat2Stream(SequentialStream):
    """A jAER AEDAT 2.0 recording (see the module doc for layouts and the coordinate flip).

    ``chip`` overrides the header's ``AEChip`` (a jAER class name or a key of :data:`CHIPS`, e.g.
    ``"davis346"``).
    """

    _check_chunk = fast_check_chunk

    def __init__(self, path: Path, chip: str | None = None):
        self.path, self.format = Path(path), "aedat2"
        self.header_size, self.header_lines = read_header(self.path)
        size = self.path.stat().st_size - self.header_size
        if size % _RECORD.itemsize:
            raise FileFormatError(f"{path}: {size} data bytes is not a whole number of 8-byte AEDAT 2.0 "
                                  f"records; the file is truncated")
        named = chip.lower() if chip else chip_from_header(self.header_lines)
        if named is None:
            addresses = np.memmap(self.path, dtype=_RECORD, mode="r", offset=self.header_size,
                                  shape=(size // 8,))["address"] if size else np.zeros(0, ">u4")
            if len(addresses) and int(np.max(addresses)) >= 1 << 16:
                raise FileFormatError(f"{path}: AEDAT 2.0 header names no '# AEChip:' and the addresses are "
                                      f"wider than DVS128's 16 bits; name the chip (one of "
                                      f"{', '.join(CHIPS)})")
            named = "dvs128"
        layout = chip_layout(named)
        if layout is None:
            raise FileFormatError(f"{path}: jAER chip class '{named}' has no known address layout; known: "
                                  f"{', '.join(CHIPS)}")
        self.chip = named
        self.layout, width, height = layout
        self.meta = EventMeta(width, height, 0)
        #: records skipped by the last full pass, by kind (:data:`SKIPPED_KINDS`); None before one
        self.skipped: dict[str, int] | None = None

    def _decode_chunks(self, chunk_events: int) -> Iterator[np.ndarray]:
        state, skipped = None, np.zeros(3, np.int64)
        with open(self.path, "rb") as fh:
            fh.seek(self.header_size)
            while True:
                buf = fh.read(chunk_events * _RECORD.itemsize)
                if not buf:
                    break
                events, counts, state = decode_aedat2(np.frombuffer(buf, dtype=_RECORD), layout=self.layout,
                                                      width=self.meta.width, height=self.meta.height,
                                                      state=state)
                skipped += counts
                yield events
        self.skipped = dict(zip(SKIPPED_KINDS, skipped.tolist()))

    def describe(self) -> dict:
        info = super().describe()
        if self.skipped is None:
            for _ in self._decode_chunks(1 << 20):
                pass
        return {**info, "chip": self.chip, "skipped": dict(self.skipped)}


__all__ = ["Aedat2Stream", "CHIPS", "SKIPPED_KINDS", "chip_from_header", "chip_layout", "decode_aedat2",
           "read_header"]
