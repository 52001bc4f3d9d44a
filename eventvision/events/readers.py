"""``open_recording(path)``: one entry point for every supported event file.

Formats are recognised by content (magic bytes / HDF5 datasets), the suffix only breaks ties:

=================  =========================================================  ===========
format             recognised by                                              result
=================  =========================================================  ===========
dsec-sequence      folder with ``events/left/events.h5`` + ``events/right``   stereo
eventvision-h5     HDF5 with ``left/`` and ``right/`` groups                   stereo
mvsec              HDF5 with ``davis/left/events`` (+ right)                   stereo/mono
dsec               HDF5 with ``events/x`` ... (DSEC ``events.h5``)             mono
aedat4             ``#!AER-DAT4.0``                                            mono
aedat3             ``#!AER-DAT3.1`` (polarity packets of one source)           mono
aedat2             ``#!AER-DAT2.0`` (jAER; DVS128 / DAVIS address layouts)      mono
evt2/evt21/evt3    ``%`` header with ``evt 2.0``/``2.1``/``3.0`` (``.raw``)     mono
dat                ``%`` header in a ``.dat`` file (Event2D)                    mono
npy / npz          numpy magic / zip archive                                   mono
=================  =========================================================  ===========

Mono results are :class:`~eventvision.events.recording.EventStream`, stereo ones
:class:`~eventvision.events.recording.StereoRecording`; both are context managers.
"""

from __future__ import annotations

import os
from pathlib import Path

from eventvision.errors import FileFormatError, InvalidValueError
from eventvision.events.recording import EventStream, StereoRecording

Recording = EventStream | StereoRecording

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def detect_format(path: str | os.PathLike) -> str:
    """Name of the format of ``path`` (see the module table); FileFormatError if unknown,
    InvalidValueError if missing."""
    path = Path(path)
    if path.is_dir():
        if (path / "events" / "left" / "events.h5").exists() or (path / "events" / "right" / "events.h5").exists():
            return "dsec-sequence"
        raise InvalidValueError(f"{path}: is a folder but not a DSEC sequence (no events/left/events.h5); "
                                f"pass an event file or a DSEC sequence folder")
    if not path.exists():
        raise InvalidValueError(f"{path}: no such file; check the path")
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head:
        raise FileFormatError(f"{path}: the file is empty")
    if head.startswith(_HDF5_MAGIC):
        from eventvision.events.h5 import sniff_h5
        return sniff_h5(path)
    if head.startswith(b"#!AER-DAT4"):
        return "aedat4"
    if head.startswith(b"#!AER-DAT3.1"):
        return "aedat3"
    if head.startswith(b"#!AER-DAT2"):
        return "aedat2"
    if head.startswith(b"#!AER-DAT"):
        version = head[9:12].decode("latin-1", "replace")
        raise FileFormatError(f"{path}: AEDAT {version} files are not supported; eventvision reads AEDAT "
                              f"2.0, 3.1 and 4.0 (convert with DV)")
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK\x03\x04"):
        return "npz"
    if head.startswith(b"%"):
        if path.suffix.lower() == ".dat":
            return "dat"
        from eventvision.events.prophesee import read_header
        enc = read_header(path).encoding
        if enc in ("evt2", "evt21", "evt3"):
            return enc
        if path.suffix.lower() == ".raw":
            what = enc or "(not stated in the header)"
            raise FileFormatError(f"{path}: Prophesee raw encoding {what} is not supported; eventvision reads "
                                  f"EVT 2.0, EVT 2.1 and EVT 3.0")
        return "dat"
    raise FileFormatError(f"{path}: unknown event file format (not HDF5, AEDAT, Prophesee raw/dat or numpy); "
                          f"supported: DSEC/MVSEC/eventvision .h5, .aedat4, .aedat (2.0/3.1), "
                          f".raw (EVT 2.0/2.1/3.0), .dat, .npy, .npz")


def open_recording(path: str | os.PathLike, *, stream_id: int | None = None) -> Recording:
    """Open any supported event file/folder for streaming reads (see the module table).

    ``stream_id`` picks the event stream of an AEDAT 4.0 file or the polarity source of an AEDAT 3.1
    file (default: the first one).
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "dsec-sequence":
        from eventvision.events.h5 import open_dsec_sequence
        return open_dsec_sequence(path)
    if fmt == "eventvision-h5":
        from eventvision.events.h5 import open_own_stereo
        return open_own_stereo(path)
    if fmt == "dsec":
        from eventvision.events.h5 import open_dsec_events
        return open_dsec_events(path)
    if fmt == "mvsec":
        from eventvision.events.h5 import open_mvsec
        return open_mvsec(path)
    if fmt == "aedat4":
        from eventvision.events.aedat4 import Aedat4Stream
        return Aedat4Stream(path, stream_id)
    if fmt == "aedat3":
        from eventvision.events.aedat3 import Aedat3Stream
        return Aedat3Stream(path, stream_id)
    if fmt == "aedat2":
        from eventvision.events.aedat2 import Aedat2Stream
        return Aedat2Stream(path)
    if fmt in ("evt2", "evt21", "evt3"):
        from eventvision.events.prophesee import RawStream
        return RawStream(path)
    if fmt == "dat":
        from eventvision.events.prophesee import DatStream
        return DatStream(path)
    from eventvision.events.npy import open_npy, open_npz
    return open_npy(path) if fmt == "npy" else open_npz(path)


__all__ = ["Recording", "detect_format", "open_recording"]
