"""DVS128 Gesture readers.

Two on-disk layouts are read:

* **original** (IBM release, ``DvsGesture/``): ``userNN_<lighting>.aedat`` (AEDAT 3.1),
  ``userNN_<lighting>_labels.csv`` (``class,startTime_usec,endTime_usec``; class 1..11) and the
  split lists ``trials_to_train.txt`` / ``trials_to_test.txt``. Every labelled interval is a sample
  (1176 train / 288 test, the SpikingJelly split).
* **tonic** (``ibmGestureTrain/`` / ``ibmGestureTest/``, optionally under ``DVSGesture/``):
  ``userNN_<lighting>/<label>.npy`` with columns ``[x, y, p, t_ms]`` (1077 / 264 samples).

Events come back as :data:`eventvision.events.core.EVENT_DTYPE` (t in µs, p in {-1, +1}).
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eventvision.errors import DatasetNotFoundError, FileFormatError, InvalidValueError
from eventvision.events.aedat3 import PACKET_HEADER as AEDAT3_PACKET_HEADER  # noqa: F401  (tests write files with it)
from eventvision.events.aedat3 import read_polarity
from eventvision.events.core import make_events

SENSOR_SIZE = 128
NUM_CLASSES = 11
DOWNLOAD_HINT = ("get DVS128 Gesture from IBM (research.ibm.com/dvsgesture, DvsGesture.tar.gz) or tonic's "
                 "preprocessed ibmGestureTrain/ibmGestureTest archives and pass its folder as data.root")

def read_aedat31_polarity(path: str | Path) -> np.ndarray:
    """All valid polarity events of an AEDAT 3.1 file (DVS128: 128x128), sorted by time; the generic
    reader :func:`eventvision.events.aedat3.read_polarity` documents the packet layout."""
    events = read_polarity(path)
    return events[np.argsort(events["t"], kind="stable")]


def read_labels_csv(path: str | Path) -> list[tuple[int, int, int]]:
    """``[(label 0..10, start_us, end_us), ...]`` from a ``*_labels.csv``, in file order.

    Format of the IBM release: a header ``class,startTime_usec,endTime_usec`` then one row per performed
    gesture, class 1-based. A class may repeat within a trial and rows need not be in class order
    (``user01_natural``: class 8 twice, 5 before 4); every row is a sample, as in SpikingJelly's
    ``DVS128Gesture`` conversion.
    """
    from eventvision.utils.io import text_lines

    rows = []
    for number, row in enumerate(csv.reader(text_lines(path)), 1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and not row[0].strip().isdigit():
            continue  # header
        try:
            cls, start, end = (int(v) for v in row[:3])
        except ValueError:
            raise FileFormatError(f"{path}: line {number} is not 'class,startTime_usec,endTime_usec' "
                                  f"integers; is this a DVS128 Gesture label file?") from None
        if not 1 <= cls <= NUM_CLASSES:
            raise FileFormatError(f"{path}: line {number}: class {cls} outside 1..{NUM_CLASSES}; is this "
                                  f"a DVS128 Gesture label file?")
        if not 0 <= start < end:
            raise FileFormatError(f"{path}: line {number}: interval [{start}, {end}) us is empty or "
                                  f"negative; fix or drop the row")
        rows.append((cls - 1, start, end))
    return rows


@dataclass(frozen=True)
class GestureRecord:
    """One sample: a file plus (for the original layout) the labelled interval in µs."""

    path: Path
    label: int
    start_us: int = -1
    end_us: int = -1


def detect_layout(root: Path) -> tuple[str, Path]:
    """Return ("original" | "tonic", folder) for a DVS128 Gesture root, or raise DatasetNotFoundError."""
    for folder in (root, root / "DvsGesture", root / "DVSGesture", root / "DVS128Gesture"):
        if (folder / "trials_to_train.txt").is_file():
            return "original", folder
        if (folder / "ibmGestureTrain").is_dir() or (folder / "ibmGestureTest").is_dir():
            return "tonic", folder
    raise DatasetNotFoundError(f"{root}: no DVS128 Gesture data found (looked for trials_to_train.txt or "
                               f"ibmGestureTrain/); {DOWNLOAD_HINT}")


def list_records(root: str | Path, split: str) -> list[GestureRecord]:
    """All samples of ``split`` ("train" | "test") under ``root``, in a deterministic order."""
    root = Path(root)
    if not root.exists():
        raise DatasetNotFoundError(f"{root}: DVS128 Gesture folder does not exist; {DOWNLOAD_HINT}")
    if split not in ("train", "test", "val"):
        raise InvalidValueError(f"DVS128 Gesture split must be train, val or test, got '{split}'")
    split = "test" if split == "val" else split
    layout, folder = detect_layout(root)
    records: list[GestureRecord] = []
    if layout == "original":
        trials = folder / f"trials_to_{split}.txt"
        if not trials.is_file():
            raise DatasetNotFoundError(f"{trials}: split list missing; {DOWNLOAD_HINT}")
        for name in trials.read_text().split():
            aedat = folder / name
            labels = folder / (aedat.stem + "_labels.csv")
            for p in (aedat, labels):
                if not p.is_file():
                    raise DatasetNotFoundError(f"{p}: listed in {trials.name} but missing; {DOWNLOAD_HINT}")
            records += [GestureRecord(aedat, lab, s, e) for lab, s, e in read_labels_csv(labels)]
    else:
        sub = folder / ("ibmGestureTrain" if split == "train" else "ibmGestureTest")
        if not sub.is_dir():
            raise DatasetNotFoundError(f"{sub}: missing; {DOWNLOAD_HINT}")
        for user_dir in sorted(p for p in sub.iterdir() if p.is_dir()):
            for npy in sorted(user_dir.glob("*.npy"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1):
                if not npy.stem.isdigit() or not 0 <= int(npy.stem) < NUM_CLASSES:
                    raise FileFormatError(f"{npy}: tonic DVSGesture files are named <label 0..10>.npy; "
                                          "rename the file or re-export the dataset with tonic")
                records.append(GestureRecord(npy, int(npy.stem)))
    if not records:
        raise DatasetNotFoundError(f"{folder}: no {split} samples found; {DOWNLOAD_HINT}")
    return records


@functools.lru_cache(maxsize=2)
def _cached_aedat(path: Path) -> np.ndarray:
    return read_aedat31_polarity(path)


def load_record(record: GestureRecord) -> np.ndarray:
    """Events of one sample (EVENT_DTYPE, µs, sorted)."""
    if record.start_us >= 0:
        events = _cached_aedat(record.path)
        t = events["t"]
        i0, i1 = np.searchsorted(t, [record.start_us, record.end_us], side="left")
        return events[i0:i1]
    arr = np.load(record.path)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise FileFormatError(f"{record.path}: expected an [N, 4] array of (x, y, p, t_ms), got shape {arr.shape}; "
                              "re-export the dataset with tonic")
    events = make_events(arr[:, 0], arr[:, 1], np.round(arr[:, 3] * 1000).astype(np.int64), arr[:, 2])
    return events[np.argsort(events["t"], kind="stable")]
