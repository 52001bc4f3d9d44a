"""Plain numpy files: ``.npy`` structured arrays and ``.npz`` archives, memory-mapped where possible.

Accepted content: a structured array with fields ``x``, ``y``, ``t``, ``p`` (any integer/bool/float
dtypes, any order, e.g. expelliarmus' ``(t, x, y, p)``), or an ``.npz`` with either an ``events``
structured array or separate ``x``, ``y``, ``t``, ``p`` arrays. Optional ``width``/``height``
(and ``t_offset``) entries in an ``.npz`` give the sensor; otherwise it is inferred from the largest
coordinates. ``t`` is taken as µs. ``.npy`` files are memory-mapped, so windows are read lazily.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from eventvision.errors import FileFormatError
from eventvision.events._kernels import pack_events
from eventvision.events.core import MAX_SENSOR_SIDE, EventMeta, file_meta
from eventvision.events.recording import IndexedStream

_FIELDS = ("x", "y", "t", "p")


class NumpyStream(IndexedStream):
    """Events held in numpy columns (memory-mapped for ``.npy``)."""

    def __init__(self, path: Path, columns: dict[str, np.ndarray], meta: EventMeta | None, format: str):
        self.path, self.format, self._cols = Path(path), format, columns
        n = {len(c) for c in columns.values()}
        if len(n) != 1:
            raise FileFormatError(f"{path}: x, y, t, p arrays have different lengths {sorted(n)}; the file "
                                  "is corrupt")
        self._n = n.pop()
        if meta is None:
            self.size_inferred = True
            meta = EventMeta(_side(columns["x"], "x", path), _side(columns["y"], "y", path), 0)
        self.meta = meta

    @property
    def num_events(self) -> int:
        return self._n

    def _read_range(self, i0, i1):
        c = self._cols
        return pack_events(c["x"][i0:i1], c["y"][i0:i1], c["t"][i0:i1], c["p"][i0:i1], source=self.path,
                           first_index=i0)

    def _searchsorted(self, t: int) -> int:
        return int(np.searchsorted(self._cols["t"], t, side="left"))


def _side(col: np.ndarray, name: str, path: Path) -> int:
    """Sensor side inferred from a coordinate column: largest value + 1, refusing NaN and negatives."""
    if len(col) == 0:
        return 0
    with np.errstate(invalid="ignore"):
        lo, hi = col.min(), col.max()
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo and hi < MAX_SENSOR_SIDE):
        raise FileFormatError(f"{path}: '{name}' coordinates range over {lo!r}..{hi!r}; expected integers in "
                              f"0..{MAX_SENSOR_SIDE - 1}; the file is corrupt", path=str(path))
    return int(hi) + 1


def _check_numeric(cols: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    for k, c in cols.items():
        if c.dtype.kind not in "biuf" or c.dtype.names is not None or c.ndim != 1:
            raise FileFormatError(f"{path}: field '{k}' has dtype {c.dtype} and shape {c.shape}; expected "
                                  "a 1-D column of numbers", path=str(path))
    return cols


def _columns_of(arr: np.ndarray, path: Path) -> dict[str, np.ndarray]:
    names = arr.dtype.names or ()
    if arr.ndim != 1 or not set(_FIELDS) <= set(names):
        raise FileFormatError(f"{path}: expected a 1-D structured array with fields x, y, t, p; got dtype "
                              f"{arr.dtype} shape {arr.shape}", path=str(path))
    return _check_numeric({k: arr[k] for k in _FIELDS}, path)


def _npz_member_sizes_fit(z: zipfile.ZipFile, path: Path) -> None:
    """Refuse members whose .npy header declares more bytes than the member holds (before allocating)."""
    for info in z.infolist():
        with z.open(info) as fh:
            try:
                version = np.lib.format.read_magic(fh)
                if version not in ((1, 0), (2, 0)):
                    continue  # np.load checks the rest
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read(fh, max_header_size=1 << 16)
            except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
                raise FileFormatError(f"{path}: member {info.filename} is not a .npy array "
                                      f"({' '.join(str(exc).split())[:80]})", path=str(path)) from None
        need = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if need > info.file_size:
            raise FileFormatError(f"{path}: member {info.filename} declares shape {shape} ({need} bytes) "
                                  f"but holds {info.file_size} bytes; the file is corrupt", path=str(path))


def open_npy(path: Path) -> NumpyStream:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FileFormatError(f"{path}: not a readable .npy file ({' '.join(str(exc).split())[:120]}); "
                              f"the file is truncated or corrupt") from None
    return NumpyStream(path, _columns_of(arr, path), None, "npy")


def open_npz(path: Path) -> NumpyStream:
    try:
        with zipfile.ZipFile(path) as zf:
            _npz_member_sizes_fit(zf, path)
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FileFormatError(f"{path}: not a readable .npz file ({' '.join(str(exc).split())[:120]}); "
                              f"the file is truncated or corrupt") from None
    if "events" in data:
        cols = _columns_of(data["events"], path)
    elif set(_FIELDS) <= set(data):
        cols = _check_numeric({k: np.asarray(data[k]).ravel() for k in _FIELDS}, path)
    else:
        raise FileFormatError(f"{path}: .npz holds {', '.join(sorted(data)) or 'nothing'}; expected "
                              "'events' or 'x', 'y', 't', 'p' arrays")
    meta = None
    if "width" in data and "height" in data:
        meta = file_meta(data["width"], data["height"], data.get("t_offset", 0), source=path)
    return NumpyStream(path, cols, meta, "npz")
