"""AEDAT 4.0 (iniVation DV) files, decoded packet by packet with the ``aedat`` package.

``aedat.Decoder`` (Rust, LZ4/ZSTD packets) yields one packet at a time, so memory stays bounded by a
packet. Events are the main stream: the first event stream in the file is used unless ``stream_id``
is given; its sensor size comes from the file's stream description. Polarity ``on`` (bool) becomes
+1/-1. The other streams of the file are reachable from the same object:

* :meth:`Aedat4Stream.iter_frames` / :meth:`~Aedat4Stream.read_frames`: APS frames
  (:class:`ApsFrame`, pixels ``[H, W]`` or ``[H, W, C]`` uint8, timestamps in µs);
* :meth:`~Aedat4Stream.read_imu`: IMU samples as :data:`IMU_DTYPE` (accelerometer in g, gyroscope
  in °/s, temperature in °C, magnetometer in µT, as DV stores them);
* :meth:`~Aedat4Stream.read_triggers`: triggers as :data:`TRIGGER_DTYPE` (``kind`` is DV's
  ``TriggerType``, names in :data:`TRIGGER_KINDS`).

:attr:`Aedat4Stream.streams` lists every stream with its id and type.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np

from eventvision.errors import FileFormatError, InvalidValueError
from eventvision.events._kernels import fast_check_chunk, pack_events
from eventvision.events.core import file_meta
from eventvision.events.recording import SequentialStream

IMU_DTYPE = np.dtype([("t", "<i8"), ("accel_g", "<f4", (3,)), ("gyro_dps", "<f4", (3,)),
                      ("temperature_c", "<f4"), ("mag_ut", "<f4", (3,))])
TRIGGER_DTYPE = np.dtype([("t", "<i8"), ("kind", "u1")])
#: DV ``TriggerType`` values (dv-processing, AEDAT 4.0 trigger stream)
TRIGGER_KINDS = {0: "timestamp_reset", 1: "external_signal_rising_edge", 2: "external_signal_falling_edge",
                 3: "external_signal_pulse", 4: "external_generator_rising_edge",
                 5: "external_generator_falling_edge", 6: "aps_frame_start", 7: "aps_frame_end",
                 8: "aps_exposure_start", 9: "aps_exposure_end"}
#: the stream types DV writes and the reader's name for each
STREAM_KINDS = {"events": "events", "frame": "frames", "imus": "imu", "triggers": "triggers"}


@dataclass(frozen=True)
class ApsFrame:
    """One APS frame of an AEDAT 4.0 file. Timestamps in µs (file clock); ``t`` is DV's frame time,
    ``exposure_*`` the exposure interval; ``offset_x/y`` the position of a region of interest."""

    t: int
    exposure_begin_t: int
    exposure_end_t: int
    begin_t: int
    end_t: int
    offset_x: int
    offset_y: int
    format: str
    pixels: np.ndarray


def _decoder(path: Path):
    import aedat

    try:
        return aedat.Decoder(str(path))
    except Exception as exc:  # the Rust decoder raises RuntimeError/OSError with its own text
        raise FileFormatError(f"{path}: not a readable AEDAT 4.0 file ({' '.join(str(exc).split())}); "
                              f"the file is truncated or corrupt") from None


class Aedat4Stream(SequentialStream):
    """One event stream of an AEDAT 4.0 file, plus access to its frame, IMU and trigger streams."""

    _check_chunk = fast_check_chunk

    def __init__(self, path: Path, stream_id: int | None = None):
        self.path, self.format = Path(path), "aedat4"
        self.streams = {int(k): dict(v) for k, v in _decoder(path).id_to_stream().items()}
        events = {k: v for k, v in self.streams.items() if v.get("type") == "events"}
        if not events:
            kinds = ", ".join(v.get("type", "?") for v in self.streams.values()) or "none"
            raise FileFormatError(f"{path}: AEDAT 4.0 file without an event stream (streams: {kinds})")
        if stream_id is None:
            stream_id = min(events)
        if stream_id not in events:
            raise InvalidValueError(f"{path}: no event stream with id {stream_id}; event streams: "
                                    f"{sorted(events)}")
        self.stream_id = stream_id
        desc = events[stream_id]
        self.meta = file_meta(desc.get("width"), desc.get("height"), source=path,
                              prefix=f"stream {stream_id} ")

    def _packets(self, stream_id: int) -> Iterator[dict]:
        packets = iter(_decoder(self.path))
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except Exception as exc:
                why = " ".join(str(exc).split())
                raise FileFormatError(f"{self.path}: AEDAT 4.0 packet cannot be decoded ({why}); the file is "
                                      f"truncated or corrupt") from None
            if packet.get("stream_id") == stream_id:
                yield packet

    def _decode_chunks(self, chunk_events: int) -> Iterator[np.ndarray]:
        for packet in self._packets(self.stream_id):
            if "events" in packet:
                raw = packet["events"]
                yield pack_events(raw["x"], raw["y"], raw["t"].astype(np.int64), raw["on"], source=self.path)

    def stream_ids(self, kind: str) -> list[int]:
        """Ids of the streams of ``kind`` ("events", "frames", "imu", "triggers"), in file order."""
        if kind not in STREAM_KINDS.values():
            raise InvalidValueError(f"AEDAT 4.0 stream kind '{kind}' is unknown; use one of "
                                    f"{', '.join(STREAM_KINDS.values())}")
        return sorted(k for k, v in self.streams.items() if STREAM_KINDS.get(v.get("type")) == kind)

    def _only(self, kind: str, stream_id: int | None) -> int | None:
        ids = self.stream_ids(kind)
        if stream_id is None:
            return ids[0] if ids else None
        if stream_id not in ids:
            raise InvalidValueError(f"{self.path}: no {kind} stream with id {stream_id}; {kind} streams: "
                                    f"{ids}")
        return stream_id

    def iter_frames(self, stream_id: int | None = None) -> Iterator[ApsFrame]:
        """APS frames of the first (or the given) frame stream, in file order; none if the file has none."""
        sid = self._only("frames", stream_id)
        if sid is None:
            return
        for packet in self._packets(sid):
            f = packet.get("frame")
            if f is None:
                continue
            yield ApsFrame(int(f["t"]), int(f["exposure_begin_t"]), int(f["exposure_end_t"]),
                           int(f["begin_t"]), int(f["end_t"]), int(f["offset_x"]), int(f["offset_y"]),
                           str(f["format"]), np.asarray(f["pixels"]))

    def read_frames(self, stream_id: int | None = None) -> list[ApsFrame]:
        """Every APS frame in memory (see :meth:`iter_frames`)."""
        return list(self.iter_frames(stream_id))

    def read_imu(self, stream_id: int | None = None) -> np.ndarray:
        """Every IMU sample of the first (or the given) IMU stream as :data:`IMU_DTYPE` (empty if none)."""
        sid = self._only("imu", stream_id)
        parts = []
        for packet in ([] if sid is None else self._packets(sid)):
            raw = packet.get("imus")
            if raw is None:
                continue
            out = np.empty(len(raw), IMU_DTYPE)
            out["t"] = raw["t"]
            out["temperature_c"] = raw["temperature"]
            for i, axis in enumerate("xyz"):
                out["accel_g"][:, i] = raw[f"accelerometer_{axis}"]
                out["gyro_dps"][:, i] = raw[f"gyroscope_{axis}"]
                out["mag_ut"][:, i] = raw[f"magnetometer_{axis}"]
            parts.append(out)
        return np.concatenate(parts) if parts else np.empty(0, IMU_DTYPE)

    def read_triggers(self, stream_id: int | None = None) -> np.ndarray:
        """Every trigger of the first (or the given) trigger stream as :data:`TRIGGER_DTYPE` (empty if
        none)."""
        sid = self._only("triggers", stream_id)
        parts = []
        for packet in ([] if sid is None else self._packets(sid)):
            raw = packet.get("triggers")
            if raw is None:
                continue
            out = np.empty(len(raw), TRIGGER_DTYPE)
            out["t"] = raw["t"]
            out["kind"] = raw["source"]
            parts.append(out)
        return np.concatenate(parts) if parts else np.empty(0, TRIGGER_DTYPE)

    @cached_property
    def other_streams(self) -> dict[str, dict]:
        """Frames, IMU and trigger streams with their item counts and time ranges (one pass over the file)."""
        out = {}
        for sid, desc in sorted(self.streams.items()):
            kind = STREAM_KINDS.get(desc.get("type"), desc.get("type", "?"))
            if kind == "events":
                continue
            if kind == "frames":
                times = np.array([f.t for f in self.iter_frames(sid)], np.int64)
            elif kind == "imu":
                times = self.read_imu(sid)["t"]
            elif kind == "triggers":
                times = self.read_triggers(sid)["t"]
            else:
                out[f"{kind} {sid}"] = {"stream_id": sid, "count": None}
                continue
            out[f"{kind} {sid}" if len(self.stream_ids(kind)) > 1 else kind] = {
                "stream_id": sid, "count": int(len(times)),
                "t_start_us": int(times.min()) if len(times) else None,
                "t_end_us": int(times.max()) if len(times) else None}
        return out

    def describe(self) -> dict:
        return {**super().describe(), "stream_id": self.stream_id, "other_streams": self.other_streams}
