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

from eventvision.errors import UserError
from eventvision.events._kernels import pack_events
from eventvision.events.core import EventMeta
from eventvision.events.recording import IndexedStream

_FIELDS = ("x", "y", "t", "p")


class NumpyStream(IndexedStream):
    """Events held in numpy columns (memory-mapped for ``.npy``)."""

    def __init__(self, path: Path, columns: dict[str, np.ndarray], meta: EventMeta | None, format: str):
        self.path, self.format, self._cols = Path(path), format, columns
        n = {len(c) for c in columns.values()}
        if len(n) != 1:
            raise UserError(f"{path}: x, y, t, p arrays have different lengths {sorted(n)}; the file is corrupt")
        self._n = n.pop()
        if meta is None:
            self.size_inferred = True
            xmax = int(columns["x"].max()) if self._n else -1
            ymax = int(columns["y"].max()) if self._n else -1
            meta = EventMeta(xmax + 1, ymax + 1, 0)
        self.meta = meta

    @property
    def num_events(self) -> int:
        return self._n

    def _read_range(self, i0, i1):
        c = self._cols
        return pack_events(c["x"][i0:i1], c["y"][i0:i1], c["t"][i0:i1], c["p"][i0:i1])

    def _searchsorted(self, t: int) -> int:
        return int(np.searchsorted(self._cols["t"], t, side="left"))


def _columns_of(arr: np.ndarray, path: Path) -> dict[str, np.ndarray]:
    names = arr.dtype.names or ()
    if arr.ndim != 1 or not set(_FIELDS) <= set(names):
        raise UserError(f"{path}: expected a 1-D structured array with fields x, y, t, p; got dtype {arr.dtype} "
                        f"shape {arr.shape}")
    return {k: arr[k] for k in _FIELDS}


def open_npy(path: Path) -> NumpyStream:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npy file ({' '.join(str(exc).split())[:120]}); "
                        f"the file is truncated or corrupt") from None
    return NumpyStream(path, _columns_of(arr, path), None, "npy")


def open_npz(path: Path) -> NumpyStream:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not a readable .npz file ({' '.join(str(exc).split())[:120]}); "
                        f"the file is truncated or corrupt") from None
    if "events" in data:
        cols = _columns_of(data["events"], path)
    elif set(_FIELDS) <= set(data):
        cols = {k: np.asarray(data[k]).ravel() for k in _FIELDS}
    else:
        raise UserError(f"{path}: .npz holds {', '.join(sorted(data)) or 'nothing'}; expected 'events' or "
                        f"'x', 'y', 't', 'p' arrays")
    meta = None
    if "width" in data and "height" in data:
        meta = EventMeta(int(data["width"]), int(data["height"]), int(data.get("t_offset", 0)))
    return NumpyStream(path, cols, meta, "npz")
