"""MVSEC stereo (indoor_flying / outdoor_day): DAVIS events + rectified depth GT -> disparity.

Files (the MVSEC release, https://daniilidis-group.github.io/mvsec/download/)::

    <root>/indoor_flying/indoor_flying1_data.hdf5   davis/left/events, davis/right/events: N x 4 float64
                                                    [x, y, t (s), p (±1)], raw (distorted) sensor coordinates
    <root>/indoor_flying/indoor_flying1_gt.hdf5     davis/left/depth_image_rect (N, 260, 346) metres, NaN invalid;
                                                    davis/left/depth_image_rect_ts (N,) seconds
    <root>/indoor_flying/indoor_flying_calib/indoor_flying_{left,right}_{x,y}_map.txt
                                                    260 x 346 rectification maps: map[y, x] = rectified x (or y)

(The files may also sit directly in ``<root>``.) Disparity = fB / depth with fB = 19.941772 px·m
(indoor_flying) or 19.635287 px·m (outdoor_day), the values used by DDES/StereoSpike/SpikeDHS.

Splits (Tulyakov et al., DDES, ICCV 2019; reused by StereoSpike and SpikeDHS): split ``k`` trains on the
two other indoor_flying sequences and tests on ``indoor_flying{k}``; only frames inside the published
frame filters are used (training filter: indoor_flying1 80..1259, 2 160..1579, 3 125..1814; test
filter after Zhu et al. 2018: 1 140..1200, 2 120..1420, 3 73..1615). Split 1 is the one papers report.
``val`` uses the test sequence (as those papers do: there is no separate validation set).
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np
import torch

from eventvision.data.stereo.common import crop_sample, make_pair_encoder, make_sample, mask_disparity
from eventvision.errors import ConfigError, DatasetNotFoundError, FileFormatError

MVSEC_WIDTH, MVSEC_HEIGHT = 346, 260
MVSEC_URL = "https://daniilidis-group.github.io/mvsec/download/"
FOCAL_BASELINE = {"indoor_flying": 19.941772, "outdoor_day": 19.635287}

#: frame index filters (half-open ranges), DDES / Zhu et al.
TRAIN_FRAMES = {1: (80, 1260), 2: (160, 1580), 3: (125, 1815), 4: (190, 290)}
TEST_FRAMES = {1: (140, 1201), 2: (120, 1421), 3: (73, 1616), 4: (190, 290)}
SPLITS = {1: {"train": (2, 3), "test": (1,)}, 2: {"train": (1, 3), "test": (2,)}, 3: {"train": (1, 2), "test": (3,)}}

log = logging.getLogger(__name__)


def scene_of(name: str) -> str:
    """'indoor_flying1' -> 'indoor_flying'."""
    return name.rstrip("0123456789")


def focal_baseline(name: str) -> float:
    scene = scene_of(name)
    if scene not in FOCAL_BASELINE:
        raise ConfigError(f"MVSEC sequence '{name}': no focal×baseline known for scene '{scene}'; "
                        f"known: {', '.join(FOCAL_BASELINE)}")
    return FOCAL_BASELINE[scene]


def find_sequence_files(root: str | Path, name: str) -> tuple[Path, Path]:
    """(data, gt) hdf5 paths of sequence ``name`` under ``root`` (flat or ``<scene>/`` subfolder)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: MVSEC folder not found; download {name}_data.hdf5 and {name}_gt.hdf5 from "
                                   f"{MVSEC_URL} (see datasets/prepare_mvsec.md)")
    for folder in (root / scene_of(name), root):
        data, gt = folder / f"{name}_data.hdf5", folder / f"{name}_gt.hdf5"
        if data.is_file() or gt.is_file():
            for p in (data, gt):
                if not p.is_file():
                    raise DatasetNotFoundError(f"{p}: missing (MVSEC sequence {name} needs both {data.name} and "
                                               f"{gt.name}); download it from {MVSEC_URL}")
            return data, gt
    raise DatasetNotFoundError(f"{root / scene_of(name) / (name + '_data.hdf5')}: missing; download {name}_data.hdf5 "
                               f"and {name}_gt.hdf5 from {MVSEC_URL} into {root / scene_of(name)}")


def find_rectify_maps(data_path: str | Path) -> dict[str, Path] | None:
    """The four ``<scene>_calib/<scene>_{left,right}_{x,y}_map.txt`` files near a data file, or None."""
    data_path = Path(data_path)
    scene = scene_of(data_path.name.replace("_data.hdf5", "").replace("_gt.hdf5", ""))
    for folder in (data_path.parent / f"{scene}_calib", data_path.parent, data_path.parent.parent / f"{scene}_calib"):
        paths = {f"{cam}_{ax}": folder / f"{scene}_{cam}_{ax}_map.txt" for cam in ("left", "right") for ax in "xy"}
        if all(p.is_file() for p in paths.values()):
            return paths
    return None


def load_rectify_maps(paths: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """MVSEC x/y map text files -> (left, right) float32 [260, 346, 2] maps in the DSEC convention."""
    out = []
    for cam in ("left", "right"):
        mx, my = (np.loadtxt(paths[f"{cam}_{ax}"], dtype=np.float32) for ax in "xy")
        if mx.shape != (MVSEC_HEIGHT, MVSEC_WIDTH) or my.shape != mx.shape:
            raise FileFormatError(f"{paths[cam + '_x']}: rectification map has shape {mx.shape}, expected "
                            f"({MVSEC_HEIGHT}, {MVSEC_WIDTH}); re-download the "
                            f"{scene_of(paths[cam + '_x'].name)} calib zip")
        out.append(np.stack([mx, my], axis=-1))
    return out[0], out[1]


class MVSECStereoSequence(torch.utils.data.Dataset):
    """One MVSEC sequence restricted to ``frames`` (half-open GT index range); item = sample dict."""

    def __init__(self, data_path: str | Path, gt_path: str | Path, *, frames: tuple[int, int] | None = None,
                 window_us: int = 50_000, num_bins: int = 5, max_disparity: float = 63.0,
                 crop: tuple[int, int] | None = None, random_crop: bool = False, seed: int = 0,
                 require_rectify: bool = True, encoding: Mapping[str, Any] | None = None):
        self.data_path, self.gt_path = Path(data_path), Path(gt_path)
        self.name = self.data_path.name.replace("_data.hdf5", "")
        self.fb = focal_baseline(self.name)
        self.window_us, self.max_disparity = int(window_us), float(max_disparity)
        self.crop, self.random_crop, self.seed = crop, random_crop, seed
        self.encoder = make_pair_encoder(encoding, width=MVSEC_WIDTH, height=MVSEC_HEIGHT, num_bins=num_bins,
                                         max_disparity=max_disparity)
        maps = find_rectify_maps(self.data_path)
        if maps is None and require_rectify:
            scene = scene_of(self.name)
            raise DatasetNotFoundError(f"{self.data_path.parent / (scene + '_calib')}: rectification maps "
                                       f"{scene}_{{left,right}}_{{x,y}}_map.txt not found; download {scene}_calib.zip "
                                       f"from {MVSEC_URL} and unpack it next to the hdf5 files")
        self.rectify_paths = maps
        with h5py.File(self.gt_path, "r") as f:
            for key in ("davis/left/depth_image_rect", "davis/left/depth_image_rect_ts"):
                if key not in f:
                    raise FileFormatError(f"{self.gt_path}: no '{key}' dataset; this is not an MVSEC *_gt.hdf5 file")
            ts = np.asarray(f["davis/left/depth_image_rect_ts"], dtype=np.float64)
        n = len(ts)
        lo, hi = (0, n) if frames is None else (max(0, frames[0]), min(n, frames[1]))
        self.indices = np.arange(lo, hi)
        self.timestamps_us = np.round(ts * 1e6).astype(np.int64)
        self._draws = 0

    def __len__(self) -> int:
        return len(self.indices)

    @cached_property
    def recording(self):
        from eventvision.events.readers import open_recording
        rec = open_recording(self.data_path)
        if not getattr(rec, "is_stereo", False):
            raise FileFormatError(f"{self.data_path}: expected davis/left and davis/right events "
                                  f"(an MVSEC *_data.hdf5)")
        return rec

    @cached_property
    def rectify_maps(self):
        return None if self.rectify_paths is None else load_rectify_maps(self.rectify_paths)

    def depth(self, frame: int) -> np.ndarray:
        with h5py.File(self.gt_path, "r") as f:
            return np.asarray(f["davis/left/depth_image_rect"][frame], dtype=np.float32)

    def disparity(self, frame: int) -> np.ndarray:
        """GT disparity float32 [260, 346] px = fB / depth (NaN where depth is NaN/inf/<= 0)."""
        depth = self.depth(frame)
        with np.errstate(divide="ignore", invalid="ignore"):
            disp = self.fb / depth
        disp[~np.isfinite(depth) | (depth <= 0)] = np.nan
        return disp

    def read_events(self, t_end_abs_us: int):
        from eventvision.representations import rectify
        rec = self.recording
        t1 = int(t_end_abs_us) - int(rec.left.meta.t_offset)
        t0 = t1 - self.window_us
        left, right = rec.read_window(t0, t1)
        if self.rectify_maps is not None:
            left, right = rectify(left, self.rectify_maps[0]), rectify(right, self.rectify_maps[1])
        return left, right, t0, t1

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        frame = int(self.indices[index])
        t_end = int(self.timestamps_us[frame])
        left, right, t0, t1 = self.read_events(t_end)
        disparity = mask_disparity(self.disparity(frame), self.max_disparity)
        sample = make_sample(self.encoder(left, right, t0, t1), disparity,
                             t_end_us=t_end, sequence=self.name, index=frame)
        rng = None
        if self.random_crop:
            self._draws += 1
            rng = np.random.default_rng((self.seed, frame, self._draws))
        return crop_sample(sample, self.crop, rng)


def build_mvsec_dataset(root: str | Path, split: str, *, mvsec_split: int = 1, scene: str = "indoor_flying",
                        window_us: int = 50_000, num_bins: int = 5, max_disparity: float = 63.0, crop=None,
                        seed: int = 0, encoding: Mapping[str, Any] | None = None) -> torch.utils.data.Dataset:
    """The DDES split ``mvsec_split`` (1, 2 or 3) of indoor_flying: ``train`` or ``val``/``test``."""
    if int(mvsec_split) not in SPLITS:
        raise ConfigError(f"data.split={mvsec_split}: MVSEC split must be 1, 2 or 3 (split 1 = test on indoor_flying1)")
    part = "train" if split == "train" else "test"
    filters = TRAIN_FRAMES if part == "train" else TEST_FRAMES
    seqs = []
    for k in SPLITS[int(mvsec_split)][part]:
        data, gt = find_sequence_files(root, f"{scene}{k}")
        seqs.append(MVSECStereoSequence(data, gt, frames=filters[k], window_us=window_us, num_bins=num_bins,
                                        max_disparity=max_disparity, crop=crop if part == "train" else None,
                                        random_crop=part == "train", seed=seed, encoding=encoding))
    return seqs[0] if len(seqs) == 1 else torch.utils.data.ConcatDataset(seqs)
