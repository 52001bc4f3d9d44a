"""DSEC stereo: event windows + rectification + event-camera disparity GT.

A DSEC sequence folder (train set layout after merging ``train_events`` and ``train_disparity``)::

    <seq>/events/left/events.h5        events/{x,y,t,p}, ms_to_idx, t_offset  (Blosc/ZSTD: hdf5plugin)
    <seq>/events/left/rectify_map.h5   rectify_map float32 (480, 640, 2): distorted (x, y) -> rectified (x', y')
    <seq>/events/right/events.h5, <seq>/events/right/rectify_map.h5
    <seq>/disparity/event/NNNNNN.png   uint16, disparity = value / 256, 0 = invalid (rectified left event camera)
    <seq>/disparity/timestamps.txt     one GT timestamp per line (µs, the clock of events.t + t_offset)

GT maps are paired with timestamps in sorted file order (the PNG names step by 2: GT at 10 Hz, images
at 20 Hz). As in the DSEC reference loader the first GT map is skipped: no events precede it. The window
of GT ``i`` is ``[ts_i - window, ts_i)``; events of both cameras are rectified with their own map.
Download: https://dsec.ifi.uzh.ch/dsec-datasets/download/ (train_events.zip, train_disparity.zip).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np
import torch

from eventvision.data.stereo.common import crop_sample, make_pair_encoder, make_sample, mask_disparity
from eventvision.errors import DatasetNotFoundError, FileFormatError

DSEC_WIDTH, DSEC_HEIGHT = 640, 480
DSEC_URL = "https://dsec.ifi.uzh.ch/dsec-datasets/download/"
#: sequences held out for local validation when no split list is given (DSEC's test GT is not public);
#: our choice, one per city area, not an official split.
DEFAULT_VAL_SEQUENCES = ("zurich_city_09_a", "zurich_city_11_a", "thun_00_a")


def required_files(seq: Path, *, with_gt: bool = True) -> list[Path]:
    files = [seq / "events" / cam / name for cam in ("left", "right") for name in ("events.h5", "rectify_map.h5")]
    if with_gt:
        files += [seq / "disparity" / "timestamps.txt", seq / "disparity" / "event"]
    return files


def check_dsec_sequence(seq: str | Path, *, with_gt: bool = True) -> Path:
    """Raise :class:`DatasetNotFoundError` naming the first missing file of a DSEC sequence folder."""
    seq = Path(seq)
    if not seq.is_dir():
        raise DatasetNotFoundError(f"{seq}: DSEC sequence folder not found; download DSEC from {DSEC_URL} "
                                   "(see datasets/prepare_dsec.md)")
    for path in required_files(seq, with_gt=with_gt):
        if not path.exists():
            what = "disparity GT (train_disparity.zip)" if "disparity" in path.parts else "events (train_events.zip)"
            needed = ", ".join(str(p.relative_to(seq)) for p in required_files(seq, with_gt=with_gt))
            raise DatasetNotFoundError(f"{path}: missing from the DSEC sequence {seq.name}; unpack the {what} from "
                                       f"{DSEC_URL} so that the folder has {needed}")
    return seq


def read_event_calibration(seq: str | Path) -> tuple[float, float] | None:
    """(focal length px, baseline m) of the rectified event cameras, from ``<seq>/calibration/cam_to_cam.yaml``
    (DSEC ``train_calibration.zip``), or None when the file is absent.

    Read from the disparity-to-depth matrix ``disparity_to_depth.cams_03`` (Q of OpenCV's ``stereoRectify``
    for event cameras 0 and 3): focal = ``Q[2][3]``, baseline = ``1 / |Q[3][2]|``.
    """
    import yaml
    path = Path(seq) / "calibration" / "cam_to_cam.yaml"
    if not path.is_file():
        return None
    try:
        q = np.asarray(yaml.safe_load(path.read_text())["disparity_to_depth"]["cams_03"], dtype=np.float64)
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"{path}: no readable disparity_to_depth.cams_03 matrix ({type(exc).__name__}); "
                              f"re-download the DSEC calibration archive") from None
    if q.shape != (4, 4) or q[3, 2] == 0:
        raise FileFormatError(f"{path}: disparity_to_depth.cams_03 is not a 4x4 Q matrix with a baseline term; "
                              f"re-download the DSEC calibration archive")
    return float(q[2, 3]), float(1.0 / abs(q[3, 2]))


def read_disparity_png(path: str | Path) -> np.ndarray:
    """DSEC disparity PNG -> float32 [H, W] px (uint16 / 256), NaN where the file has 0."""
    raw = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH)
    if raw is None:
        raise FileFormatError(f"{path}: not a readable PNG; re-download the DSEC disparity archive")
    if raw.dtype != np.uint16:
        raise FileFormatError(f"{path}: expected a 16-bit disparity PNG, got {raw.dtype}")
    disp = raw.astype(np.float32) / 256.0
    disp[raw == 0] = np.nan
    return disp


def read_gt_index(seq: Path) -> tuple[np.ndarray, list[Path]]:
    """(timestamps µs int64 [N], PNG paths [N]) of a sequence, first map dropped (see module doc)."""
    ts_path = seq / "disparity" / "timestamps.txt"
    try:
        timestamps = np.atleast_1d(np.loadtxt(ts_path, dtype=np.int64))
    except ValueError as exc:
        raise FileFormatError(f"{ts_path}: not a list of integer timestamps ({exc}); "
                              f"re-download train_disparity") from None
    pngs = sorted((seq / "disparity" / "event").glob("*.png"))
    if len(pngs) != len(timestamps):
        raise DatasetNotFoundError(f"{ts_path}: {len(timestamps)} timestamps but {len(pngs)} PNGs in disparity/event; "
                        "the GT folder is incomplete, unpack train_disparity.zip again")
    return timestamps[1:], pngs[1:]


class DSECStereoSequence(torch.utils.data.Dataset):
    """One DSEC sequence: item ``i`` = sample dict of GT map ``i`` (see ``common``)."""

    def __init__(self, root: str | Path, *, window_us: int = 50_000, num_bins: int = 5, max_disparity: float = 192.0,
                 crop: tuple[int, int] | None = None, random_crop: bool = False, seed: int = 0,
                 encoding: Mapping[str, Any] | None = None):
        self.root = check_dsec_sequence(root)
        self.window_us, self.max_disparity = int(window_us), float(max_disparity)
        self.crop, self.random_crop, self.seed = crop, random_crop, seed
        self.timestamps, self.pngs = read_gt_index(self.root)
        self.encoder = make_pair_encoder(encoding, width=DSEC_WIDTH, height=DSEC_HEIGHT, num_bins=num_bins,
                                         max_disparity=max_disparity)
        self._epoch_draws = 0

    def __len__(self) -> int:
        return len(self.timestamps)

    @cached_property
    def recording(self):
        from eventvision.events.readers import open_recording
        rec = open_recording(self.root)
        if not getattr(rec, "is_stereo", False):
            raise FileFormatError(f"{self.root}: expected a stereo DSEC folder (events/left, events/right)")
        return rec

    @cached_property
    def rectify_maps(self) -> tuple[np.ndarray, np.ndarray]:
        from eventvision.representations import load_rectify_map
        return tuple(load_rectify_map(self.root / "events" / cam / "rectify_map.h5") for cam in ("left", "right"))

    def read_events(self, t_end_abs_us: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        """Rectified (left, right) events in ``[t_end - window, t_end)`` on the left file clock, and that window."""
        from eventvision.representations import rectify
        rec = self.recording
        t1 = int(t_end_abs_us) - int(rec.left.meta.t_offset)
        t0 = t1 - self.window_us
        left, right = rec.read_window(t0, t1)
        return rectify(left, self.rectify_maps[0]), rectify(right, self.rectify_maps[1]), t0, t1

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        left, right, t0, t1 = self.read_events(int(self.timestamps[index]))
        disparity = mask_disparity(read_disparity_png(self.pngs[index]), self.max_disparity)
        sample = make_sample(self.encoder(left, right, t0, t1), disparity,
                             t_end_us=int(self.timestamps[index]), sequence=self.root.name, index=index)
        rng = None
        if self.random_crop:
            self._epoch_draws += 1
            rng = np.random.default_rng((self.seed, index, self._epoch_draws))
        return crop_sample(sample, self.crop, rng)


def list_sequences(root: str | Path) -> list[Path]:
    """Sequence folders under a DSEC split root (a folder that is itself a sequence counts as one)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: DSEC folder not found; download DSEC from {DSEC_URL} "
                                   "(see datasets/prepare_dsec.md) and set data.root to the train folder")
    if (root / "events").is_dir():
        return [root]
    seqs = sorted(p for p in root.iterdir() if p.is_dir() and ((p / "events").is_dir() or (p / "disparity").is_dir()))
    if not seqs:
        raise DatasetNotFoundError(f"{root}: no DSEC sequence folders (<seq>/events/left/events.h5) inside; download "
                                   f"train_events.zip and train_disparity.zip from {DSEC_URL} and unpack them here")
    return seqs


def build_dsec_dataset(root: str | Path, split: str, *, val_sequences=DEFAULT_VAL_SEQUENCES, window_us: int = 50_000,
                       num_bins: int = 5, max_disparity: float = 192.0, crop=None, seed: int = 0,
                       encoding: Mapping[str, Any] | None = None) -> torch.utils.data.Dataset:
    """``train``: every sequence except ``val_sequences``; ``val``/``test``: those (or all if none listed match)."""
    seqs = list_sequences(root)
    val = [s for s in seqs if s.name in set(val_sequences)]
    chosen = [s for s in seqs if s not in val] if split == "train" else (val or seqs)
    if not chosen:
        raise DatasetNotFoundError(f"{root}: no DSEC sequences left for split '{split}' (validation sequences: "
                                   f"{', '.join(val_sequences)}); add more sequences or change data.val_sequences")
    parts = [DSECStereoSequence(s, window_us=window_us, num_bins=num_bins, max_disparity=max_disparity,
                                crop=crop if split == "train" else None, random_crop=split == "train", seed=seed,
                                encoding=encoding)
             for s in chosen]
    return parts[0] if len(parts) == 1 else torch.utils.data.ConcatDataset(parts)
