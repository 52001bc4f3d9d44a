"""Prophesee files: EVT 2.0 / 2.1 / 3.0 ``.raw`` and ``.dat`` (Event2D), decoded chunk by chunk.

* ``.raw``: ASCII header lines starting with ``%`` (``% evt 3.0``, ``% format EVT3;height=720;width=1280``,
  ``% geometry 1280x720``), then little-endian words. EVT 2.0: 32-bit words, type in bits 31..28
  (0 CD_OFF, 1 CD_ON with t-low 27..22, x 21..11, y 10..0; 8 EVT_TIME_HIGH with the upper 28 time bits).
  EVT 3.0: 16-bit words, type in bits 15..12 (0 ADDR_Y, 2 ADDR_X with polarity bit 11, 3 VECT_BASE_X,
  4 VECT_12, 5 VECT_8, 6 TIME_LOW, 8 TIME_HIGH; 24-bit time base, wrap-arounds counted).
  EVT 2.1: 64-bit words; the spec's upper half (type 63..60, t-low 59..54, x base 53..43, y 42..32;
  TIME_HIGH: upper 28 time bits in 59..32) and its lower half (32-bit validity mask: one event at
  ``x base + k`` per set bit ``k``). How the halves lie in the file is the ``endianness`` of the format
  line: ``legacy`` (IMX636; OpenEB's ``EVT21;...;endianness=legacy``) stores the upper half first, each
  half a little-endian u32; ``little`` (GenX320) stores the whole word little-endian, lower half first.
  A format line without the key means ``little`` (OpenEB's default); files with only ``% evt 2.1`` and
  no format line predate GenX320 and are read as ``legacy`` (see docs/events.md).
* ``.dat``: ``%`` header, then (version >= 2) two bytes event type/size, then 8-byte events:
  u32 t (µs) and u32 with x bits 0..13, y bits 14..27, polarity bits 28..31.

The decoders are numba kernels that carry their state between chunks, so a file of any size is read
in bounded memory. Sensor size comes from the header; old files without one get it from the plugin /
sensor name where known, else from the largest coordinates seen (``size_inferred``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numba
import numpy as np

from eventvision.errors import FileFormatError, InvalidValueError
from eventvision.events._kernels import fast_check_chunk, scan_events
from eventvision.events.core import EVENT_DTYPE, MAX_SENSOR_SIDE, EventMeta, header_line
from eventvision.events.recording import EventStream, IndexedStream, SequentialStream, _coalesce, bisect_left

#: sensor sizes by plugin/sensor name fragment, for headers without a geometry line
_KNOWN_SENSORS = {"gen41": (1280, 720), "imx636": (1280, 720), "gen4": (1280, 720), "gen31": (640, 480),
                  "gen3": (640, 480), "genx320": (320, 320), "atis": (304, 240), "gen1": (304, 240)}


@dataclass(frozen=True)
class PropheseeHeader:
    """Parsed ``%`` header: byte size, key/value lines, encoding ('evt2'/'evt3'/'dat') and size if stated."""

    size: int
    fields: dict
    encoding: str | None
    width: int | None
    height: int | None
    dat_event_type: int | None = None
    dat_event_size: int | None = None


def read_header(path: Path, *, dat: bool = False) -> PropheseeHeader:
    """Parse the ``%`` lines at the start of a Prophesee file (and the 2 type/size bytes of a v2+ .dat)."""
    fields: dict[str, str] = {}
    pos = 0
    with open(path, "rb") as fh:
        while True:
            first = fh.read(1)
            if first != b"%":
                break
            line = header_line(fh, path=path, header_bytes=pos + 1, kind="Prophesee")
            pos += 1 + len(line)
            text = line.decode("latin-1").strip()
            if text == "end":
                break
            key, _, value = text.partition(" ")
            fields[key.lower()] = value.strip()
        fh.seek(pos)
        extra = fh.read(2) if dat else b""
    encoding, width, height = None, None, None
    fmt = fields.get("format", "")
    if "evt" in fields:
        encoding = {"2.0": "evt2", "3.0": "evt3", "2.1": "evt21"}.get(fields["evt"], fields["evt"])
    if fmt:
        encoding = fmt.split(";")[0].strip().lower().replace(".", "").replace("evt20", "evt2").replace("evt30", "evt3")
        kv = dict(part.split("=", 1) for part in fmt.split(";")[1:] if "=" in part)
        width, height = _int(kv.get("width")), _int(kv.get("height"))
    m = re.match(r"(\d+)\s*x\s*(\d+)", fields.get("geometry", ""))
    if m and width is None:
        width, height = int(m.group(1)), int(m.group(2))
    if width is None and "width" in fields:
        width, height = _int(fields["width"]), _int(fields.get("height"))
    if width is None:
        name = (fields.get("plugin_name", "") + " " + fields.get("sensor_generation", "")).lower()
        for key, size in _KNOWN_SENSORS.items():
            if key in name:
                width, height = size
                break
    for name, side in (("width", width), ("height", height)):
        if side is not None and not 1 <= side <= MAX_SENSOR_SIDE:
            raise FileFormatError(f"{path}: header states sensor {name} {side}; expected "
                                  f"1..{MAX_SENSOR_SIDE} pixels; the header is corrupt", path=str(path))
    if dat:
        version = _int(fields.get("version")) or 0
        if version >= 2:
            if len(extra) < 2:
                raise FileFormatError(f"{path}: .dat header ends before the event type/size bytes; "
                                      "the file is truncated")
            return PropheseeHeader(pos + 2, fields, "dat", width, height, extra[0], extra[1])
        return PropheseeHeader(pos, fields, "dat", width, height, 0, 8)
    return PropheseeHeader(pos, fields, encoding, width, height)


def _int(v) -> int | None:
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------------------- numba kernels
@numba.njit(cache=True, inline="always")
def _time_high_28(new_high, time_high, loops):
    """EVT 2.x TIME_HIGH word: (new upper time bits, loop count, +1 when the 28-bit counter wrapped)."""
    if new_high < time_high and time_high - new_high > (1 << 27):
        loops += 1
    return new_high, loops


@numba.njit(cache=True, inline="always")
def _state2(time_high, loops):
    out_state = np.empty(2, np.int64)
    out_state[0] = time_high
    out_state[1] = loops
    return out_state


@numba.njit(cache=True, inline="always")
def _stats3(bad, xmax, ymax):
    stats = np.empty(3, np.int64)
    stats[0] = bad
    stats[1] = xmax
    stats[2] = ymax
    return stats


@numba.njit(cache=True)
def _decode_evt2_kernel(words, state, out):
    """EVT 2.0 words -> events written to the wrapper's fresh ``out``; returns (count, new state
    [time_high, loops], stats [first index whose t goes back or -1, max x, max y]). Never touches
    ``words`` or ``state``. The stats replace a separate checking pass over the decoded events."""
    time_high = state[0]
    loops = state[1]
    k = 0
    bad, prev_t, xmax, ymax = -1, np.int64(-(1 << 62)), -1, -1
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        kind = w >> 28
        if kind == 0 or kind == 1:
            t = (loops << 34) | (time_high << 6) | ((w >> 22) & 0x3F)
            x = (w >> 11) & 0x7FF
            y = w & 0x7FF
            out[k].t = t
            out[k].x = x
            out[k].y = y
            out[k].p = 1 if kind == 1 else -1
            if t < prev_t and bad < 0:
                bad = k
            prev_t = t
            xmax = max(xmax, x)
            ymax = max(ymax, y)
            k += 1
        elif kind == 8:
            time_high, loops = _time_high_28(w & 0x0FFFFFFF, time_high, loops)
    return k, _state2(time_high, loops), _stats3(bad, xmax, ymax)


@numba.njit(cache=True)
def _count_evt3_kernel(words):
    n = 0
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        kind = w >> 12
        if kind == 2:
            n += 1
        elif kind == 4 or kind == 5:
            m = w & (0xFFF if kind == 4 else 0xFF)
            while m:
                m &= m - 1
                n += 1
    return n


@numba.njit(cache=True)
def _decode_evt3_kernel(words, state, out):
    """EVT 3.0 words -> events written to the wrapper's fresh ``out`` (``_count_evt3_kernel`` + 1 slots);
    returns (count, new state [time_high, time_low, y, base_x, pol, loops], stats as for EVT 2.0)."""
    time_high, time_low, cur_y, base_x, pol, loops = state[0], state[1], state[2], state[3], state[4], state[5]
    k = 0
    ts = (loops << 24) | (time_high << 12) | time_low  # kept current: recomputed only when a time word comes
    bad, prev_t, xmax, ymax = -1, np.int64(-(1 << 62)), -1, -1
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        kind = w >> 12
        if kind <= 2:  # EVT_ADDR_X (one event) or EVT_ADDR_Y: 9 of 10 words of a real recording
            # Without branches: their order is data-dependent, and mispredicting it cost a quarter of
            # the time. An ADDR_Y also writes slot k, which the next event overwrites (hence the one
            # spare slot the wrappers allocate), and advances nothing.
            v = w & 0x7FF
            is_x = kind == 2
            cur_y = cur_y if is_x else v
            out[k].x = v
            out[k].y = cur_y
            out[k].t = ts
            out[k].p = ((w >> 10) & 2) - 1
            if is_x & (ts < prev_t) & (bad < 0):
                bad = k
            prev_t = ts if is_x else prev_t
            xmax = max(xmax, v if is_x else -1)
            ymax = max(ymax, cur_y if is_x else -1)
            k += is_x
        elif kind == 4 or kind == 5:  # VECT_12 / VECT_8
            width = 12 if kind == 4 else 8
            m = w & ((1 << width) - 1)
            p = 1 if pol else -1
            x = base_x
            if m:
                if ts < prev_t and bad < 0:
                    bad = k
                prev_t = ts
                ymax = max(ymax, cur_y)
            while m:  # stops after the highest set bit
                if m & 1:
                    out[k].x = x
                    out[k].y = cur_y
                    out[k].t = ts
                    out[k].p = p
                    xmax = max(xmax, x)
                    k += 1
                m >>= 1
                x += 1
            base_x += width
        elif kind == 3:  # VECT_BASE_X
            base_x = w & 0x7FF
            pol = (w >> 11) & 1
        elif kind == 6:  # EVT_TIME_LOW
            time_low = w & 0xFFF
            ts = (loops << 24) | (time_high << 12) | time_low
        elif kind == 8:  # EVT_TIME_HIGH
            new_high = w & 0xFFF
            if new_high < time_high and time_high - new_high > (1 << 11):  # 24-bit time base wrapped
                loops += 1
            time_high = new_high
            ts = (loops << 24) | (time_high << 12) | time_low
    out_state = np.empty(6, np.int64)
    out_state[0] = time_high
    out_state[1] = time_low
    out_state[2] = cur_y
    out_state[3] = base_x
    out_state[4] = pol
    out_state[5] = loops
    return k, out_state, _stats3(bad, xmax, ymax)


@numba.njit(cache=True)
def _count_evt21_kernel(words, head_first):
    """Events in EVT 2.1 words given as uint32 pairs (popcount of the CD validity masks)."""
    n = 0
    for i in range(words.shape[0] // 2):
        head = words[2 * i] if head_first else words[2 * i + 1]
        if (head >> 28) <= 1:
            m = words[2 * i + 1] if head_first else words[2 * i]
            while m:
                m &= m - np.uint32(1)
                n += 1
    return n


@numba.njit(cache=True)
def _decode_evt21_kernel(words, head_first, state, out):
    """EVT 2.1 uint32 pairs -> events in ``out`` (sized by ``_count_evt21_kernel``); returns (count,
    new state [time_high, loops]). ``head_first``: the type/t/x/y half precedes the mask (legacy)."""
    time_high = state[0]
    loops = state[1]
    k = 0
    for i in range(words.shape[0] // 2):
        head = np.int64(words[2 * i] if head_first else words[2 * i + 1])
        kind = head >> 28
        if kind <= 1:
            m = np.int64(words[2 * i + 1] if head_first else words[2 * i])
            t = (loops << 34) | (time_high << 6) | ((head >> 22) & 0x3F)
            x0 = (head >> 11) & 0x7FF
            y = head & 0x7FF
            p = 1 if kind == 1 else -1
            b = 0
            while m:
                if m & 1:
                    out[k].x = x0 + b
                    out[k].y = y
                    out[k].t = t
                    out[k].p = p
                    k += 1
                m >>= 1
                b += 1
        elif kind == 8:
            time_high, loops = _time_high_28(head & 0x0FFFFFFF, time_high, loops)
    return k, _state2(time_high, loops)


@numba.njit(cache=True)
def _decode_dat_kernel(words, out):
    """.dat Event2D pairs of u32 (t, data) -> events in ``out``."""
    for i in range(out.shape[0]):
        d = words[2 * i + 1]
        out[i].t = words[2 * i]
        out[i].x = d & 0x3FFF
        out[i].y = (d >> 14) & 0x3FFF
        out[i].p = 1 if (d >> 28) & 0xF else -1


def decode_evt2(words: np.ndarray, state: np.ndarray | None = None, *, stats: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Decode little-endian EVT 2.0 uint32 words; returns (events, state to pass with the next chunk).
    ``stats`` (int64[3]), if given, receives (first index whose t goes back or -1, max x, max y)."""
    words = np.ascontiguousarray(words, dtype="<u4")
    out = np.empty(len(words), dtype=EVENT_DTYPE)
    k, new_state, st = _decode_evt2_kernel(words, np.zeros(2, np.int64) if state is None else state, out)
    if stats is not None:
        stats[:] = st
    return out[:k], new_state


def decode_evt3(words: np.ndarray, state: np.ndarray | None = None, *, stats: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Decode little-endian EVT 3.0 uint16 words; returns (events, state to pass with the next chunk);
    ``stats`` as for :func:`decode_evt2`."""
    words = np.ascontiguousarray(words, dtype="<u2")
    out = np.empty(_count_evt3_kernel(words) + 1, dtype=EVENT_DTYPE)
    k, new_state, st = _decode_evt3_kernel(words, np.zeros(6, np.int64) if state is None else state, out)
    if stats is not None:
        stats[:] = st
    return out[:k], new_state


def decode_evt21(words: np.ndarray, state: np.ndarray | None = None, *, legacy: bool = True,
                 stats: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode EVT 2.1 data given as little-endian uint32 (two per 64-bit word); ``legacy``: the
    type/t/x/y half comes first (IMX636), else the mask half (GenX320). Returns (events, state);
    ``stats`` as for :func:`decode_evt2`."""
    words = np.ascontiguousarray(words, dtype="<u4")
    if len(words) % 2:
        raise InvalidValueError(f"EVT 2.1 data: {len(words)} 32-bit halves is not a whole number of "
                                f"64-bit words; pass whole words")
    out = np.empty(_count_evt21_kernel(words, legacy), dtype=EVENT_DTYPE)
    k, new_state = _decode_evt21_kernel(words, legacy, np.zeros(2, np.int64) if state is None else state, out)
    if stats is not None:
        stats[:] = scan_events(out[:k])
    return out[:k], new_state


def decode_dat(records: np.ndarray) -> np.ndarray:
    """Decode .dat Event2D records (little-endian u32 pairs: t, data) to EVENT_DTYPE."""
    words = np.ascontiguousarray(np.asarray(records)).view("<u4")
    out = np.empty(len(words) // 2, dtype=EVENT_DTYPE)
    _decode_dat_kernel(words, out)
    return out


# ------------------------------------------------------------------------------------------- streams
class _PropheseeStream(SequentialStream):
    _check_chunk = fast_check_chunk

    def __init__(self, path: Path, header: PropheseeHeader, format: str):
        self.path, self.format, self.header = Path(path), format, header
        self.size_inferred = not (header.width and header.height)

    @property
    def meta(self) -> EventMeta:
        """Sensor size from the header; for headers without one, inferred by one full pass (cached)."""
        if not self.size_inferred:
            return EventMeta(int(self.header.width), int(self.header.height), 0)
        _, _, _, xmax, ymax = self._totals
        return EventMeta(xmax + 1, ymax + 1, 0)


def evt21_head_first(header: PropheseeHeader, path: Path | None = None) -> bool:
    """Whether an EVT 2.1 file stores the type/t/x/y half of each word first (``legacy``, see module doc)."""
    fmt = header.fields.get("format", "")
    if not fmt:
        return True
    kv = dict(part.split("=", 1) for part in fmt.split(";")[1:] if "=" in part)
    endianness = kv.get("endianness", "little").strip().lower()
    if endianness not in ("legacy", "little"):
        raise FileFormatError(f"EVT 2.1 endianness '{endianness}' in the format line is unknown; expected "
                              f"'legacy' or 'little'", path=None if path is None else str(path))
    return endianness == "legacy"


class RawStream(_PropheseeStream):
    """EVT 2.0 / 2.1 / 3.0 ``.raw`` file.

    The first complete pass (e.g. ``num_events`` or a full ``iter_windows``) also records a seek index
    (byte offset + decoder state + first timestamp per decoded chunk), so later ``read_window`` /
    ``iter_windows(t_start=...)`` calls start decoding near ``t_start`` instead of at the file start.
    :meth:`read_all` decodes the whole file in one call into one array (no chunk joins).
    """

    def __init__(self, path: Path):
        header = read_header(path)
        if header.encoding not in ("evt2", "evt21", "evt3"):
            what = header.encoding or "no '% evt' or '% format' line"
            raise FileFormatError(f"{path}: unsupported Prophesee raw encoding ({what}); eventvision reads "
                                  f"EVT 2.0, EVT 2.1 and EVT 3.0 (convert others with "
                                  f"metavision_file_to_hdf5)")
        super().__init__(path, header, header.encoding)
        if header.encoding == "evt2":
            self._word, self._decode = np.dtype("<u4"), decode_evt2
        elif header.encoding == "evt3":
            self._word, self._decode = np.dtype("<u2"), decode_evt3
        else:
            legacy = evt21_head_first(header, path)
            #: EVT 2.1 only: the type/t/x/y half of each 64-bit word comes first (``legacy``)
            self.evt21_legacy = legacy
            self._word = np.dtype("<u8")
            self._decode = lambda words, state, stats=None: decode_evt21(words.view("<u4"), state,
                                                                         legacy=legacy, stats=stats)
        self._seek_index: list[tuple[int, int, np.ndarray | None]] | None = None

    def _data_size(self) -> int:
        size = self.path.stat().st_size - self.header.size
        if size % self._word.itemsize:
            raise FileFormatError(f"{self.path}: {size} data bytes is not a whole number of "
                                  f"{self._word.itemsize}-byte {self.format} words; the file is truncated")
        return size

    #: words per read of :meth:`read_all`: one reused buffer small enough to stay in cache (a fresh
    #: buffer for the whole file costs a page fault per 4 kB, about 1/5 of the decoding time)
    READ_WORDS = 1 << 18

    def _max_events(self, words: np.ndarray) -> int:
        if self.format == "evt2":
            return len(words)
        if self.format == "evt3":
            return _count_evt3_kernel(words)
        return _count_evt21_kernel(words.view("<u4"), self.evt21_legacy)

    def _decode_into(self, words: np.ndarray, state: np.ndarray, out: np.ndarray):
        """(events written to ``out``, new state, stats [first t going back or -1, max x, max y])."""
        if self.format == "evt2":
            return _decode_evt2_kernel(words, state, out)
        if self.format == "evt3":
            return _decode_evt3_kernel(words, state, out)
        k, new_state = _decode_evt21_kernel(words.view("<u4"), self.evt21_legacy, state, out)
        return k, new_state, np.array(scan_events(out[:k]), np.int64)

    def read_all(self) -> np.ndarray:
        """Every event in one array: the file is read through one cache-resident buffer and decoded
        straight into the output, whose time order and bounds the kernels check on the way."""
        n_words = self._data_size() // self._word.itemsize
        out = np.empty(n_words + 1, dtype=EVENT_DTYPE)  # EVT 2.0: <= 1 event per word (+1 spare); others grow
        buf = np.empty(max(1, min(n_words, self.READ_WORDS)), dtype=self._word)
        state = np.zeros(6 if self.format == "evt3" else 2, np.int64)
        k, bad, xmax, ymax = 0, -1, -1, -1
        with open(self.path, "rb") as fh:
            fh.seek(self.header.size)
            while True:
                got = fh.readinto(memoryview(buf).cast("B")) // self._word.itemsize
                if not got:
                    break
                words = buf[:got]
                need = self._max_events(words) if self.format != "evt2" else got
                if k + need + 1 > len(out):
                    grown = np.empty(max(2 * len(out), k + need + 1), dtype=EVENT_DTYPE)
                    grown[:k] = out[:k]
                    out = grown
                n, state, st = self._decode_into(words, state, out[k:])
                if n:
                    if bad < 0 and st[0] >= 0:
                        bad = k + int(st[0])
                    if bad < 0 and k and out[k]["t"] < out[k - 1]["t"]:
                        bad = k
                    xmax, ymax = max(xmax, int(st[1])), max(ymax, int(st[2]))
                k += n
        events = out[:k]
        outside = not self.size_inferred and (xmax >= self.meta.width or ymax >= self.meta.height)
        if k and (bad >= 0 or outside):
            EventStream._check_chunk(self, events, None)  # raises the shared message
        return events

    def _decode_chunks(self, chunk_events: int, start: tuple[int, np.ndarray | None] | None = None
                       ) -> Iterator[np.ndarray]:
        self._data_size()
        offset, state = (self.header.size, None) if start is None else start
        index: list[tuple[int, int, np.ndarray | None]] = []
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            while True:
                buf = fh.read(chunk_events * self._word.itemsize)
                if not buf:
                    break
                events, new_state = self._decode(np.frombuffer(buf, dtype=self._word), state)
                if len(events):
                    index.append((int(events["t"][0]), offset, state))
                offset += len(buf)
                state = new_state
                yield events
        if start is None:
            self._seek_index = index

    def _chunks(self, t_start, chunk_events):
        if t_start is None or not self._seek_index:
            yield from super()._chunks(t_start, chunk_events)
            return
        # restart at the last chunk whose first event is strictly earlier (equal timestamps may straddle)
        firsts = [entry[0] for entry in self._seek_index]
        k = int(np.searchsorted(firsts, int(t_start), side="left")) - 1
        if k < 0:
            yield from super()._chunks(t_start, chunk_events)
            return
        _, offset, state = self._seek_index[k]
        chunks = self._decode_chunks(chunk_events, start=(offset, state))
        for chunk in _coalesce(chunks, chunk_events):
            if chunk["t"][-1] < t_start:
                continue
            yield chunk[np.searchsorted(chunk["t"], t_start, side="left"):] if chunk["t"][0] < t_start else chunk


_DAT_RECORD = np.dtype([("t", "<u4"), ("data", "<u4")])


class DatStream(IndexedStream):
    """Prophesee/ATIS ``.dat`` file of Event2D (CD) events: fixed 8-byte records, memory-mapped, so
    windows are found by binary search on the timestamps (random access, no decoding pass)."""

    def __init__(self, path: Path):
        header = read_header(path, dat=True)
        if header.dat_event_size != 8 or header.dat_event_type not in (0, 12):
            raise FileFormatError(f"{path}: .dat event type {header.dat_event_type} of size "
                                  f"{header.dat_event_size} bytes is not Event2D/CD (type 0 or 12, 8 bytes); "
                                  f"cannot read it")
        self.path, self.format, self.header = Path(path), "dat", header
        size = self.path.stat().st_size - header.size
        if size % 8:
            raise FileFormatError(f"{path}: {size} data bytes is not a whole number of 8-byte events; "
                                  f"the file is truncated")
        self._rec = (np.memmap(self.path, dtype=_DAT_RECORD, mode="r", offset=header.size, shape=(size // 8,))
                     if size else np.empty(0, dtype=_DAT_RECORD))
        self.size_inferred = not (header.width and header.height)

    @cached_property
    def meta(self) -> EventMeta:
        """Sensor size from the header; N-CARS-style headers have none: largest coordinates + 1 (one pass)."""
        if not self.size_inferred:
            return EventMeta(int(self.header.width), int(self.header.height), 0)
        xmax = ymax = -1
        for i in range(0, len(self._rec), 1 << 20):
            data = np.asarray(self._rec["data"][i:i + (1 << 20)])
            xmax, ymax = max(xmax, int((data & 0x3FFF).max())), max(ymax, int(((data >> 14) & 0x3FFF).max()))
        return EventMeta(xmax + 1, ymax + 1, 0)

    @property
    def num_events(self) -> int:
        return len(self._rec)

    def _read_range(self, i0, i1):
        return decode_dat(self._rec[i0:i1])

    def _searchsorted(self, t: int) -> int:
        return bisect_left(lambda s: self._rec["t"][s], len(self._rec), t)


__all__ = ["DatStream", "PropheseeHeader", "RawStream", "decode_dat", "decode_evt2", "decode_evt21",
           "decode_evt3", "evt21_head_first", "read_header"]

