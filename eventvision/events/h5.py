"""HDF5 event files: DSEC ``events.h5``, MVSEC ``*_data.hdf5`` and eventvision's stereo ``recording.h5``.

Layouts (see DESIGN.md):

* DSEC (one camera): ``events/x`` u2, ``events/y`` u2, ``events/t`` u4 or i8 (µs relative to ``t_offset``),
  ``events/p`` u1 (0/1), ``ms_to_idx`` u8 with ``t[ms_to_idx[ms]] >= ms*1000 > t[ms_to_idx[ms]-1]``,
  ``t_offset`` i8 scalar. Blosc/ZSTD compressed (needs ``hdf5plugin``). Sensor 640x480 unless root
  attrs ``width``/``height`` say otherwise.
* eventvision stereo: the DSEC layout under ``left/`` and ``right/``; root attrs ``width``, ``height``,
  optional ``baseline_m``, ``focal_px``.
* MVSEC: ``davis/{left,right}/events`` N x 4 float64 ``[x, y, t (s), p (±1)]``; sensor 346x260.

Writers stream (``append`` chunk after chunk), keep memory bounded by one chunk (plus ``ms_to_idx``,
8 bytes per millisecond of recording), compress with Blosc/ZSTD (gzip when hdf5plugin is missing)
and write atomically (temporary sibling, renamed on success).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import h5py
import numpy as np

from eventvision.errors import DatasetNotFoundError, FileFormatError, InvalidValueError
from eventvision.events._kernels import pack_events
from eventvision.events.core import (MAX_ABS_TIME_US, EventMeta, check_events, compute_ms_to_idx, file_float,
                                    file_int, file_meta)
from eventvision.events.recording import IndexedStream, StereoRecording, bisect_left
from eventvision.utils.io import atomic_path, interrupt_count

try:  # registers the Blosc/ZSTD HDF5 filters DSEC files use
    import hdf5plugin
except ImportError:  # pragma: no cover - exercised in a subprocess test
    hdf5plugin = None

DSEC_SIZE = (640, 480)
MVSEC_SIZE = (346, 260)
_COMPRESSIBLE_FILTERS = {32001: "Blosc", 32015: "Zstd", 32004: "LZ4", 307: "bzip2"}


# ------------------------------------------------------------------------------------------------ reading
def open_h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({_short(exc)}); the file is truncated or "
                              "corrupt") from None


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160]


def read_h5(dset: h5py.Dataset, sel, path) -> np.ndarray:
    """``dset[sel]`` with HDF5 filter/corruption errors turned into one-line UserErrors."""
    try:
        return dset[sel]
    except OSError as exc:
        missing = _missing_filter(dset)
        if missing:
            raise FileFormatError(f"{path}: dataset {dset.name} is {missing}-compressed but the HDF5 filter "
                                  "is not available; install it with 'pip install hdf5plugin'") from None
        raise FileFormatError(f"{path}: cannot read {dset.name} ({_short(exc)}); the file is truncated or "
                              "corrupt") from None


def _missing_filter(dset: h5py.Dataset) -> str | None:
    plist = dset.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        fid = plist.get_filter(i)[0]
        if fid in _COMPRESSIBLE_FILTERS and not h5py.h5z.filter_avail(fid):
            return _COMPRESSIBLE_FILTERS[fid]
    return None


def _dataset(group: h5py.Group, name: str, path, *, kinds: str = "biuf") -> h5py.Dataset:
    """``group[name]`` checked to be a numeric dataset (not a group, link to nothing, text or compound)."""
    try:
        obj = group[name]
    except (KeyError, OSError) as exc:
        raise FileFormatError(f"{path}: '{group.name.rstrip('/')}/{name}' cannot be opened "
                              f"({_short(exc)}); the file is malformed", path=str(path)) from None
    if not isinstance(obj, h5py.Dataset):
        raise FileFormatError(f"{path}: '{obj.name}' is a {type(obj).__name__}, not a dataset; the file is "
                              "malformed", path=str(path))
    if obj.dtype.kind not in kinds or obj.dtype.names is not None:
        raise FileFormatError(f"{path}: '{obj.name}' has dtype {obj.dtype}; expected numbers; the file is "
                              "malformed", path=str(path))
    return obj


class DsecStream(IndexedStream):
    """One camera in the DSEC layout, rooted at ``group`` of an open h5 file."""

    def __init__(self, path: Path, group: h5py.Group, *, width: int, height: int, format: str = "dsec",
                 owner: h5py.File | None = None):
        self.path, self.format, self._owner = Path(path), format, owner
        where = f" under '{group.name}'" if group.name != "/" else ""
        missing = [k for k in ("events/x", "events/y", "events/t", "events/p") if k not in group]
        if missing:
            raise FileFormatError(f"{path}: no {', '.join(missing)} dataset{where}; expected the DSEC "
                                  "events.h5 layout (events/x, y, t, p, ms_to_idx, t_offset)")
        self._x, self._y, self._t, self._p = (_dataset(group, f"events/{k}", path) for k in "xytp")
        lengths = {d.shape[0] if d.ndim == 1 else -1 for d in (self._x, self._y, self._t, self._p)}
        if len(lengths) != 1 or -1 in lengths:
            raise FileFormatError(f"{path}: events/x, y, t, p{where} are not 1-D datasets of equal length; "
                                  "file is corrupt")
        self._n = lengths.pop()
        t_offset = 0
        if "t_offset" in group:  # a scalar in DSEC; accept a 1-element array too
            dset = _dataset(group, "t_offset", path)
            if dset.size != 1:
                raise FileFormatError(f"{path}: t_offset{where} holds {dset.size} values; expected one "
                                      "integer (µs)")
            t_offset = read_h5(dset, (), path) if dset.ndim == 0 else read_h5(dset, slice(None), path)
        field = f"{group.name.strip('/')}/t_offset".lstrip("/")
        self.meta = EventMeta(int(width), int(height),
                              file_int(t_offset, source=path, field=field, low=-MAX_ABS_TIME_US,
                                       high=MAX_ABS_TIME_US))
        self._ms_to_idx = None
        if "ms_to_idx" in group:
            dset = _dataset(group, "ms_to_idx", path, kinds="iu")
            t_last = int(np.asarray(read_h5(self._t, slice(self._n - 1, self._n), path)).reshape(-1)[0]) \
                if self._n else 0
            # DSEC: one entry per ms up to the last event (+2); never allocate what the events cannot need
            if dset.ndim != 1 or not 0 < dset.shape[0] <= max(t_last, 0) // 1000 + 4096:
                raise FileFormatError(f"{path}: ms_to_idx{where} has shape {dset.shape} but the events end "
                                      f"at t={t_last} µs; expected one index per millisecond; the file is "
                                      "corrupt")
            idx = np.asarray(read_h5(dset, slice(None), path))
            if not (np.all(idx[1:] >= idx[:-1]) and 0 <= int(idx[0]) and int(idx[-1]) <= self._n):
                raise FileFormatError(f"{path}: ms_to_idx{where} is not a non-decreasing index into the "
                                      "events; the file is corrupt")
            self._ms_to_idx = idx.astype(np.int64)

    @property
    def num_events(self) -> int:
        return self._n

    def _read_range(self, i0, i1):
        s = slice(i0, i1)
        return pack_events(read_h5(self._x, s, self.path), read_h5(self._y, s, self.path),
                           read_h5(self._t, s, self.path), read_h5(self._p, s, self.path), source=self.path,
                           first_index=i0)

    def _searchsorted(self, t: int) -> int:
        get_t = lambda s: read_h5(self._t, s, self.path)  # noqa: E731
        idx = self._ms_to_idx
        if idx is None:
            return bisect_left(get_t, self._n, t)
        ms = t // 1000
        if ms < 0:
            return 0
        if ms >= len(idx):
            return bisect_left(get_t, self._n, t, lo=int(idx[-1]))
        lo = int(idx[ms])
        hi = int(idx[ms + 1]) if ms + 1 < len(idx) else self._n
        return bisect_left(get_t, self._n, t, lo=lo, hi=hi)

    def close(self) -> None:
        if self._owner is not None:
            self._owner.close()


class MvsecStream(IndexedStream):
    """One DAVIS camera of an MVSEC ``*_data.hdf5`` (t converted from seconds to µs, rounded)."""

    def __init__(self, path: Path, dset: h5py.Dataset, *, owner: h5py.File | None = None):
        self.path, self.format, self._dset, self._owner = Path(path), "mvsec", dset, owner
        numeric = isinstance(dset, h5py.Dataset) and dset.dtype.kind in "iuf"
        if not numeric or dset.ndim != 2 or dset.shape[1] != 4:
            shown = f"dtype {dset.dtype} shape {dset.shape}" if isinstance(dset, h5py.Dataset) else "a group"
            raise FileFormatError(f"{path}: {dset.name} is {shown}; expected an N x 4 array of numbers [x, "
                                  "y, t, p] (MVSEC)", path=str(path))
        self.meta = EventMeta(*MVSEC_SIZE, 0)

    @property
    def num_events(self) -> int:
        return int(self._dset.shape[0])

    def _read_range(self, i0, i1):
        raw = read_h5(self._dset, slice(i0, i1), self.path)
        with np.errstate(invalid="ignore", over="ignore"):
            t = np.rint(raw[:, 2] * 1e6)  # NaN/inf stay non-finite and are refused by pack_events
        return pack_events(raw[:, 0], raw[:, 1], t, raw[:, 3], source=self.path, first_index=i0)

    def _searchsorted(self, t: int) -> int:
        return bisect_left(lambda s: np.rint(read_h5(self._dset, (s, 2), self.path) * 1e6), self.num_events, t)

    def close(self) -> None:
        if self._owner is not None:
            self._owner.close()


def _size_attrs(f: h5py.File, default: tuple[int, int] | None, path) -> tuple[int, int]:
    if "width" in f.attrs and "height" in f.attrs:
        meta = file_meta(f.attrs["width"], f.attrs["height"], source=path)
        return meta.width, meta.height
    if default is None:
        raise FileFormatError(f"{path}: root attributes 'width' and 'height' are missing; the eventvision "
                              "stereo layout needs them")
    return default


def open_dsec_events(path: Path) -> DsecStream:
    """A DSEC ``events.h5`` (or a mono file written by eventvision)."""
    f = open_h5(path)
    try:
        return DsecStream(path, f, width=_size_attrs(f, DSEC_SIZE, path)[0],
                          height=_size_attrs(f, DSEC_SIZE, path)[1], owner=f)
    except BaseException:
        f.close()
        raise


def open_own_stereo(path: Path) -> StereoRecording:
    f = open_h5(path)
    try:
        width, height = _size_attrs(f, None, path)
        left = DsecStream(path, _group(f, "left", path), width=width, height=height, format="eventvision-h5")
        right = DsecStream(path, _group(f, "right", path), width=width, height=height, format="eventvision-h5",
                           owner=f)
        attr = lambda k: (file_float(f.attrs[k], source=path, field=k, positive=True)  # noqa: E731
                          if k in f.attrs else None)
        rectified = _flag_attr(f, "rectified", path)
        return StereoRecording(left, right, path=path, format="eventvision-h5", baseline_m=attr("baseline_m"),
                               focal_px=attr("focal_px"), rectified=rectified)
    except BaseException:
        f.close()
        raise


def _flag_attr(f: h5py.File, key: str, path) -> bool | None:
    """A root attribute that holds 0 or 1 -> bool; None when absent; FileFormatError for anything else."""
    if key not in f.attrs:
        return None
    value = np.asarray(f.attrs[key])
    if value.size != 1 or value.dtype.kind not in "biu" or int(value.item()) not in (0, 1):
        raise FileFormatError(f"{path}: root attribute '{key}' must be 0 or 1, got {value.tolist()!r}; the file "
                              f"was edited or written by another tool, convert the recording again")
    return bool(int(value.item()))


def _group(f: h5py.File, name: str, path) -> h5py.Group:
    if name not in f or not isinstance(f[name], h5py.Group):
        raise FileFormatError(f"{path}: group '{name}/' is missing; expected the eventvision stereo layout "
                              "(left/, right/)")
    return f[name]


def open_mvsec(path: Path) -> StereoRecording | MvsecStream:
    f = open_h5(path)
    try:
        cams = [c for c in ("left", "right") if f.get(f"davis/{c}/events") is not None]
        if not cams:
            raise FileFormatError(f"{path}: no davis/left/events or davis/right/events dataset; not an "
                                  "MVSEC *_data.hdf5")
        if len(cams) == 1:
            return MvsecStream(path, f[f"davis/{cams[0]}/events"], owner=f)
        return StereoRecording(MvsecStream(path, f["davis/left/events"]),
                               MvsecStream(path, f["davis/right/events"], owner=f), path=path, format="mvsec")
    except BaseException:
        f.close()
        raise


def open_dsec_sequence(folder: Path) -> StereoRecording:
    """A DSEC sequence folder with ``events/left/events.h5`` and ``events/right/events.h5``."""
    streams = []
    for cam in ("left", "right"):
        p = folder / "events" / cam / "events.h5"
        if not p.is_file():
            raise DatasetNotFoundError(f"{folder}: {p.relative_to(folder)} is missing; a DSEC sequence "
                                       "folder holds events/left/events.h5 and events/right/events.h5")
        try:
            streams.append(open_dsec_events(p))
        except BaseException:
            for s in streams:
                s.close()
            raise
    left, right = streams
    if (left.width, left.height) != (right.width, right.height):
        for s in streams:
            s.close()
        raise FileFormatError(f"{right.path}: right sensor is {right.width}x{right.height} but the left one is "
                              f"{left.width}x{left.height}; both cameras of a stereo pair must have one size",
                              path=str(right.path))
    return StereoRecording(left, right, path=folder, format="dsec-sequence")


def sniff_h5(path: Path) -> str:
    """'eventvision-h5', 'dsec' or 'mvsec' from the datasets present."""
    with open_h5(path) as f:
        if "left" in f and "right" in f and isinstance(f["left"], h5py.Group):
            return "eventvision-h5"
        if "events" in f and isinstance(f["events"], h5py.Group):
            return "dsec"
        if "davis" in f:
            return "mvsec"
        keys = ", ".join(sorted(f.keys())[:8]) or "nothing"
    raise FileFormatError(f"{path}: HDF5 file without event datasets (found {keys}); expected DSEC "
                          "events/x..., MVSEC davis/left/events or eventvision left/ and right/ groups")


# ------------------------------------------------------------------------------------------------ writing
def h5_compression(kind: str = "blosc") -> dict:
    """h5py dataset keyword arguments for ``kind`` in {'blosc', 'gzip', 'none'}.

    'blosc' is Blosc/ZSTD with byte shuffle (what DSEC uses); it falls back to gzip when
    hdf5plugin is not installed.
    """
    if kind == "blosc" and hdf5plugin is not None:
        return dict(hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE))
    if kind in ("blosc", "gzip"):
        return {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    if kind == "none":
        return {}
    raise InvalidValueError(f"unknown compression '{kind}'; use blosc, gzip or none")


class _DsecGroupWriter:
    """Appends time-sorted events to the DSEC layout under ``group`` and maintains ``ms_to_idx``."""

    def __init__(self, group: h5py.Group, *, width: int, height: int, t_offset: int | None, t_dtype: str,
                 compression: dict, chunk: int, name: str):
        self.group, self.width, self.height, self.name = group, width, height, name
        self.t_offset, self.t_dtype = t_offset, np.dtype(t_dtype)
        self.n, self.last_t, self.next_ms = 0, None, 0
        self.ms_parts: list[np.ndarray] = []
        ev = group.create_group("events")
        for k, dt in (("x", "<u2"), ("y", "<u2"), ("t", self.t_dtype), ("p", "u1")):
            ev.create_dataset(k, shape=(0,), maxshape=(None,), dtype=dt, chunks=(chunk,), **compression)

    def append(self, events: np.ndarray, t_offset: int) -> None:
        if len(events) == 0:
            return
        check_events(events, EventMeta(self.width, self.height), source=self.name)
        t = events["t"].astype(np.int64) - t_offset
        if self.last_t is not None and t[0] < self.last_t:
            raise InvalidValueError(f"{self.name}: appended events start at t={int(t[0]) + t_offset} µs, "
                                    "before the previous chunk's last event; append chunks in time order")
        if t[0] < 0:
            raise InvalidValueError(f"{self.name}: event at t={int(t[0]) + t_offset} µs lies before "
                                    f"t_offset {t_offset} µs; pass an explicit t_offset no later than the "
                                    "first event of either camera")
        info = np.iinfo(self.t_dtype)
        if t[0] < info.min or t[-1] > info.max:
            raise FileFormatError(f"{self.name}: timestamps {int(t[0])}..{int(t[-1])} µs (relative to "
                                  "t_offset "
                                  f"{t_offset}) do not fit {self.t_dtype}; pass t_offset or t_dtype='<i8'")
        ms_last = int(t[-1]) // 1000  # every ms <= this has its first event in data seen so far
        if ms_last >= self.next_ms:
            ms = np.arange(self.next_ms, ms_last + 1, dtype=np.int64) * 1000
            self.ms_parts.append((self.n + np.searchsorted(t, ms, side="left")).astype(np.uint64))
            self.next_ms = ms_last + 1
        n1 = self.n + len(events)
        ev = self.group["events"]
        for k, col in (("x", events["x"]), ("y", events["y"]), ("t", t), ("p", events["p"] > 0)):
            ev[k].resize((n1,))
            ev[k][self.n:n1] = col
        self.n, self.last_t = n1, int(t[-1])

    def finish(self, t_offset: int) -> None:
        # compute_ms_to_idx covers ms in [0, t_last // 1000 + 1]; the tail entries point past the end
        n_ms = 1 if self.last_t is None else self.last_t // 1000 + 2
        if self.next_ms < n_ms:
            self.ms_parts.append(np.full(n_ms - self.next_ms, self.n, dtype=np.uint64))
        idx = np.concatenate(self.ms_parts) if self.ms_parts else np.zeros(1, dtype=np.uint64)
        self.group.create_dataset("ms_to_idx", data=idx.astype(np.uint64))
        self.group.create_dataset("t_offset", data=np.int64(t_offset))


class _H5Writer:
    """Shared life cycle: temp file, atomic rename on success, deletion on failure."""

    def __init__(self, path, *, width: int, height: int, cameras: tuple[str, ...], t_offset: int | None,
                 t_dtype: str, compression: str, chunk_events: int, attrs: dict):
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        self._interrupts = interrupt_count()
        try:
            self._file = h5py.File(self._tmp, "w")
            for k, v in {"width": self.width, "height": self.height, **attrs}.items():
                if v is not None:
                    self._file.attrs[k] = v
            comp = h5_compression(compression)
            self._t_offset = None if t_offset is None else int(t_offset)
            self._cams = {c: _DsecGroupWriter(self._file.require_group(c) if c != "/" else self._file,
                                              width=self.width, height=self.height, t_offset=t_offset,
                                              t_dtype=t_dtype, compression=comp, chunk=int(chunk_events),
                                              name=f"{self.path}{'' if c == '/' else ':' + c}")
                          for c in cameras}
        except BaseException:
            self.abort()
            raise
        self._closed = False

    def _append(self, per_cam: dict[str, np.ndarray]) -> None:
        if interrupt_count() != self._interrupts:  # Ctrl-C swallowed by a callback: stop now, not at the end
            self.abort()
            raise KeyboardInterrupt
        if self._t_offset is None:
            firsts = [int(e["t"][0]) for e in per_cam.values() if len(e)]
            if not firsts:
                return
            first = min(firsts)
            # keep the file clock when it fits u4 comfortably, else start the clock at the first event
            self._t_offset = 0 if 0 <= first < 2 ** 31 else first
        try:
            for cam, events in per_cam.items():
                self._cams[cam].append(np.asarray(events), self._t_offset)
        except BaseException:
            self.abort()
            raise

    def close(self) -> None:
        """Finish the index, close the file and move it into place."""
        if self._closed:
            return
        try:
            for w in self._cams.values():
                w.finish(self._t_offset or 0)
            self._file.close()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._stack.close()

    def abort(self) -> None:
        """Drop the temporary file; nothing appears at ``path``."""
        self._closed = True
        with contextlib.suppress(Exception):
            self._file.close()
        self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class StereoH5Writer(_H5Writer):
    """Streaming writer of the eventvision stereo layout (``left/``, ``right/`` in DSEC layout).

    ``append(left, right)`` takes time-sorted EVENT_DTYPE chunks with ``t`` in µs on a clock shared by
    both cameras. Stored ``t`` is relative to ``t_offset`` (both cameras share it): by default 0 when the
    first timestamp lies in [0, 2**31) µs, else the first timestamp. Reading back gives
    ``t - t_offset`` and ``meta.t_offset``.
    """

    def __init__(self, path, width: int, height: int, baseline_m: float | None = None,
                 focal_px: float | None = None, *, t_offset: int | None = None, t_dtype: str = "<i8",
                 compression: str = "blosc", chunk_events: int = 1 << 16, attrs: dict | None = None):
        super().__init__(path, width=width, height=height, cameras=("left", "right"), t_offset=t_offset,
                         t_dtype=t_dtype, compression=compression, chunk_events=chunk_events,
                         attrs={"baseline_m": baseline_m, "focal_px": focal_px, "format": "eventvision-stereo",
                                "version": 1, **(attrs or {})})

    def append(self, left: np.ndarray, right: np.ndarray) -> None:
        self._append({"left": left, "right": right})


class DsecH5Writer(_H5Writer):
    """Streaming writer of a single-camera DSEC ``events.h5`` (root attrs ``width``/``height`` added)."""

    def __init__(self, path, width: int = DSEC_SIZE[0], height: int = DSEC_SIZE[1], *, t_offset: int | None = None,
                 t_dtype: str = "<i8", compression: str = "blosc", chunk_events: int = 1 << 16):
        super().__init__(path, width=width, height=height, cameras=("/",), t_offset=t_offset, t_dtype=t_dtype,
                         compression=compression, chunk_events=chunk_events, attrs={})

    def append(self, events: np.ndarray) -> None:
        self._append({"/": events})


def _chunks_of(events):
    if isinstance(events, np.ndarray):
        yield events
    else:
        yield from events


def write_stereo_h5(path, left, right, *, width: int, height: int, baseline_m: float | None = None,
                    focal_px: float | None = None, **kwargs) -> Path:
    """Write whole left/right arrays (or equal-length iterables of chunks) to the stereo layout."""
    with StereoH5Writer(path, width, height, baseline_m, focal_px, **kwargs) as w:
        if isinstance(left, np.ndarray) and isinstance(right, np.ndarray):
            w.append(left, right)
        else:
            for lc, rc in zip(_chunks_of(left), _chunks_of(right), strict=True):
                w.append(lc, rc)
    return Path(path)


def write_dsec_events_h5(path, events, *, width: int = DSEC_SIZE[0], height: int = DSEC_SIZE[1], **kwargs) -> Path:
    """Write one camera (an array or an iterable of time-ordered chunks) as a DSEC ``events.h5``."""
    with DsecH5Writer(path, width, height, **kwargs) as w:
        for chunk in _chunks_of(events):
            w.append(chunk)
    return Path(path)


__all__ = ["DsecH5Writer", "DsecStream", "MvsecStream", "StereoH5Writer", "compute_ms_to_idx", "h5_compression",
           "open_dsec_events", "open_dsec_sequence", "open_mvsec", "open_own_stereo", "write_dsec_events_h5",
           "write_stereo_h5"]
