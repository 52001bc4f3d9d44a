"""AEDAT 4.0 (iniVation DV) files, decoded packet by packet with the ``aedat`` package.

``aedat.Decoder`` (Rust, LZ4/ZSTD packets) yields one packet at a time, so memory stays bounded by a
packet. The first event stream in the file is used unless ``stream_id`` is given; its sensor size
comes from the file's stream description. Polarity ``on`` (bool) becomes +1/-1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from eventvision.errors import UserError
from eventvision.events._kernels import pack_events
from eventvision.events.core import file_meta
from eventvision.events.recording import SequentialStream


def _decoder(path: Path):
    import aedat

    try:
        return aedat.Decoder(str(path))
    except Exception as exc:  # the Rust decoder raises RuntimeError/OSError with its own text
        raise UserError(f"{path}: not a readable AEDAT 4.0 file ({' '.join(str(exc).split())}); "
                        f"the file is truncated or corrupt") from None


class Aedat4Stream(SequentialStream):
    """One event stream of an AEDAT 4.0 file."""

    def __init__(self, path: Path, stream_id: int | None = None):
        self.path, self.format = Path(path), "aedat4"
        streams = {int(k): v for k, v in _decoder(path).id_to_stream().items()}
        events = {k: v for k, v in streams.items() if v.get("type") == "events"}
        if not events:
            raise UserError(f"{path}: AEDAT 4.0 file without an event stream (streams: "
                            f"{', '.join(v.get('type', '?') for v in streams.values()) or 'none'})")
        if stream_id is None:
            stream_id = min(events)
        if stream_id not in events:
            raise UserError(f"{path}: no event stream with id {stream_id}; event streams: {sorted(events)}")
        self.stream_id = stream_id
        desc = events[stream_id]
        self.meta = file_meta(desc.get("width"), desc.get("height"), source=path, prefix=f"stream {stream_id} ")

    def _decode_chunks(self, chunk_events: int) -> Iterator[np.ndarray]:
        decoder = _decoder(self.path)
        packets = iter(decoder)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except Exception as exc:
                raise UserError(f"{self.path}: AEDAT 4.0 packet cannot be decoded ({' '.join(str(exc).split())}); "
                                f"the file is truncated or corrupt") from None
            if packet.get("stream_id") != self.stream_id or "events" not in packet:
                continue
            raw = packet["events"]
            yield pack_events(raw["x"], raw["y"], raw["t"].astype(np.int64), raw["on"], source=self.path)
