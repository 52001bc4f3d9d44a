"""KITTI Tracking stereo sequences for streaming 3D detection (StreamDSGN protocol).

Layout read (exactly KITTI's)::

    ROOT[/training]/image_02/<seq>/<frame:06d>.png   left colour camera
    ROOT[/training]/image_03/<seq>/<frame:06d>.png   right colour camera
    ROOT[/training]/calib/<seq>.txt                  P0..P3, R_rect|R0_rect, Tr_velo_cam|Tr_velo_to_cam
    ROOT[/training]/label_02/<seq>.txt               tracking labels (frame, track_id, type, ...)
    ROOT[/training]/depth_02/<seq>/<frame:06d>.png   optional left depth (uint16 metres·256, 0 = none): the
                                                     depth target of the plane sweep (synthetic renders)
    ROOT[/training]/velodyne/<seq>/<frame:06d>.bin   optional LiDAR scan (KITTI Tracking's velodyne download):
                                                     projected with the calibration, the depth target where
                                                     no depth_02 map exists (as DSGN/StreamDSGN train)

A sample is frame *t* of a sequence: the stereo pair at t (and t−1 for feature fusion), the boxes of frame
**t+1** (the detector predicts the next moment, as in StreamDSGN) and the boxes at t, t−1, t−2 with track ids
(motion-consistency loss). Splits follow StreamDSGN: every sequence is cut into 40-frame patches, even patches
train, odd patches validate; a sample and all frames it uses lie in one patch. ``split_mode="sequence"``
instead takes whole sequences listed per split (used for held-out synthetic sequences).

Boxes handed to the model are in the grid frame (see ``eventvision.models.detect3d.geometry``); the raw KITTI
objects of t+1 go along for evaluation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from eventvision.errors import ConfigError, DatasetNotFoundError, FileFormatError
from eventvision.formats.kitti import (Calibration, make_objects, patch_ranges, read_calib, read_label_file,
                                      split_frames)
from eventvision.geometry.boxes3d import objects_to_grid_boxes

KITTI_TRACKING_URL = "https://www.cvlibs.net/datasets/kitti/eval_tracking.php"


def find_training_dir(root: str | os.PathLike) -> Path:
    """``root`` or ``root/training`` holding image_02/image_03/calib (DatasetNotFoundError otherwise)."""
    root = Path(root)
    for cand in (root, root / "training"):
        if (cand / "image_02").is_dir() and (cand / "calib").is_dir():
            return cand
    raise DatasetNotFoundError(
        f"{root}: no KITTI Tracking stereo data (expected [training/]image_02/<seq>/*.png, image_03/<seq>/*.png, "
        f"calib/<seq>.txt, label_02/<seq>.txt); download 'left color images', 'right color images', 'camera "
        f"calibration' and 'training labels' of the tracking benchmark from {KITTI_TRACKING_URL}, or write a "
        f"synthetic set with eventvision.simulate.kitti_scenes.write_dataset")


def read_depth_png(path: Path) -> np.ndarray:
    """KITTI-convention depth PNG (uint16, metres·256, 0 = no value) -> float32 [H, W] metres."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.dtype != np.uint16 or img.ndim != 2:
        raise FileFormatError(f"{path}: not a 16-bit single-channel depth PNG (metres·256); regenerate the "
                              "sequence's depth_02 maps")
    return img.astype(np.float32) / 256.0


def frame_depth(training: Path, seq: "Sequence", t: int, image_size: tuple[int, int]) -> np.ndarray | None:
    """Depth target float32 [H, W] metres (0 = none) of the left image of frame ``t``: the ``depth_02`` map, else
    the ``velodyne`` scan projected with the sequence's calibration
    (:func:`eventvision.geometry.depth.lidar_depth_map`); None when neither exists.
    ``image_size``: (width, height) of the image the depth must match."""
    name = seq.left[t].name
    source = training / "depth_02" / seq.name / name
    if source.is_file():
        depth = read_depth_png(source)
    else:
        from eventvision.data.detect3d.kitti_object import read_velodyne, velodyne_path
        from eventvision.geometry.depth import lidar_depth_map

        source = velodyne_path(training, seq.left[t].stem, seq=seq.name)
        if not source.is_file():
            return None
        depth = lidar_depth_map(read_velodyne(source), seq.calib, image_size)
    if depth.shape != (image_size[1], image_size[0]):
        raise FileFormatError(f"{source}: depth is {depth.shape[1]}x{depth.shape[0]} px but the image "
                              f"{name} is {image_size[0]}x{image_size[1]} px; regenerate the depth map")
    return depth


def read_image(path: Path) -> np.ndarray:
    """PNG -> float32 RGB [3, H, W] in [0, 1]."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileFormatError(f"{path}: not a readable image; re-download or regenerate the sequence")
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB).transpose(2, 0, 1), dtype=np.float32) / 255.0


def read_stereo_pair(left: Path, right: Path) -> tuple[np.ndarray, np.ndarray]:
    """Left and right PNGs -> two float32 RGB [3, H, W]; a right image of another size is refused."""
    a, b = read_image(left), read_image(right)
    if a.shape != b.shape:
        from eventvision.errors import FileFormatError
        raise FileFormatError(f"{right}: right image is {b.shape[2]}x{b.shape[1]} px but the left image "
                              f"{left.name} is {a.shape[2]}x{a.shape[1]} px; both cameras must have one size",
                              path=str(right))
    return a, b


@dataclass(frozen=True)
class Sequence:
    """One KITTI Tracking sequence: frame paths, calibration, per-frame objects."""

    name: str
    left: tuple[Path, ...]
    right: tuple[Path, ...]
    calib: Calibration
    objects: tuple[np.ndarray, ...]  # per frame, OBJECT_DTYPE

    @property
    def num_frames(self) -> int:
        return len(self.left)

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the first frame."""
        h, w = cv2.imread(str(self.left[0]), cv2.IMREAD_GRAYSCALE).shape
        return w, h


def load_sequence(training: Path, name: str, *, require_labels: bool = True) -> Sequence:
    left_dir, right_dir = training / "image_02" / name, training / "image_03" / name
    if not left_dir.is_dir() or not right_dir.is_dir():
        raise DatasetNotFoundError(f"{training}: sequence {name} lacks image_02/{name} or image_03/{name}; "
                                   f"get the KITTI Tracking stereo images from {KITTI_TRACKING_URL}")
    left = tuple(sorted(left_dir.glob("*.png")))
    right = tuple(right_dir / p.name for p in left)
    missing = [p for p in right if not p.is_file()]
    if not left or missing:
        what = "no frames" if not left else f"{len(missing)} right frames missing"
        raise DatasetNotFoundError(f"{left_dir}: {what}; "
                                   f"complete the sequence (KITTI Tracking from {KITTI_TRACKING_URL})")
    for i, p in enumerate(left):
        if p.stem != f"{i:06d}":
            raise FileFormatError(f"{p}: frames must be numbered 000000, 000001, ... without gaps; rename the files")
    calib = read_calib(training / "calib" / f"{name}.txt")
    label_path = training / "label_02" / f"{name}.txt"
    if label_path.is_file():
        objects = tuple(split_frames(read_label_file(label_path), len(left)))
    elif require_labels:
        raise DatasetNotFoundError(f"{label_path}: no labels for sequence {name}; get the KITTI Tracking "
                                   f"training labels from {KITTI_TRACKING_URL}")
    else:
        objects = tuple(make_objects()[:0] for _ in left)
    return Sequence(name, left, right, calib, objects)


def list_sequences(training: Path) -> list[str]:
    return sorted(p.name for p in (training / "image_02").iterdir() if p.is_dir())


def patch_split(num_frames: int, patch_len: int, split: str) -> list[tuple[int, int]]:
    """StreamDSGN split: [start, end) frame ranges of the 40-frame patches of ``split`` (even patches train,
    odd patches val; ``all``/``test``: the whole sequence) — ``eventvision.formats.kitti.patch_ranges``."""
    return patch_ranges(num_frames, patch_len=patch_len, split="all" if split == "test" else split)


def _box_dict(objects: np.ndarray, grid_ranges) -> dict:
    boxes, labels, ids = objects_to_grid_boxes(objects)
    (x0, x1), (y0, y1) = grid_ranges
    keep = (boxes[:, 0] >= x0) & (boxes[:, 0] < x1) & (boxes[:, 1] >= y0) & (boxes[:, 1] < y1)
    return {"boxes": torch.from_numpy(boxes[keep]), "labels": torch.from_numpy(labels[keep]),
            "track_ids": torch.from_numpy(ids[keep])}


class KittiTrackingStereo(torch.utils.data.Dataset):
    """Samples for next-frame 3D detection from KITTI Tracking stereo sequences.

    Item (dict): ``left``/``right`` [C, H, W] float32 (RGB in [0, 1], or an event representation, see
    ``eventvision.data.detect3d.events``), ``prev_left``/``prev_right`` (frame t−1; frame t again at a patch
    start, with ``has_prev`` False), ``P2``/``P3`` [3, 4] float32, ``targets`` (boxes [M, 7] grid frame, labels,
    track_ids of frame t+1), ``history`` (three such dicts for t, t−1, t−2; empty where outside the patch),
    ``gt_objects`` (KITTI objects of t+1), ``seq``, ``frame`` (t), ``image_size`` (width, height), and
    ``depth`` [H, W] metres of frame t (0 = none) when ``depth_02`` or ``velodyne`` holds it
    (:func:`frame_depth`).
    """

    def __init__(self, root: str | os.PathLike, *, split: str = "train", sequences: list[str] | None = None,
                 split_mode: str = "patch", patch_len: int = 40, grid_x=(2.0, 53.2), grid_y=(-28.8, 28.8),
                 input_kind: str = "image", event_bins: int = 5, event_contrast: float = 0.2, seed: int = 0):
        self.training = find_training_dir(root)
        names = list(sequences) if sequences else list_sequences(self.training)
        if not names:
            raise DatasetNotFoundError(f"{self.training}: no sequences under image_02/; get KITTI Tracking from "
                                       f"{KITTI_TRACKING_URL}")
        self.sequences = [load_sequence(self.training, n) for n in names]
        self.grid_ranges = (tuple(grid_x), tuple(grid_y))
        self.input_kind = input_kind
        self.event_bins, self.event_contrast, self.seed = event_bins, event_contrast, seed
        if split_mode not in ("patch", "sequence"):
            raise ConfigError(f"data.split_mode '{split_mode}' unknown; use patch or sequence")
        self.items: list[tuple[int, int, int]] = []  # (sequence index, frame t, patch start)
        for si, seq in enumerate(self.sequences):
            ranges = patch_split(seq.num_frames, patch_len, split) if split_mode == "patch" else [(0, seq.num_frames)]
            for start, end in ranges:
                self.items += [(si, t, start) for t in range(start, end - 1)]

    def __len__(self) -> int:
        return len(self.items)

    def _inputs(self, seq: Sequence, t: int, start: int) -> tuple[np.ndarray, np.ndarray]:
        if self.input_kind == "image":
            return read_stereo_pair(seq.left[t], seq.right[t])
        if self.input_kind == "events":
            from eventvision.data.detect3d.events import stereo_event_voxels
            return stereo_event_voxels(seq, t, start, num_bins=self.event_bins, contrast=self.event_contrast,
                                       seed=self.seed)
        raise ConfigError(f"data.input '{self.input_kind}' unknown; use image or events")

    def __getitem__(self, index: int) -> dict:
        si, t, start = self.items[index]
        seq = self.sequences[si]
        left, right = self._inputs(seq, t, start)
        has_prev = t - 1 >= start
        prev_left, prev_right = self._inputs(seq, t - 1, start) if has_prev else (left, right)
        history = [_box_dict(seq.objects[t - k] if t - k >= start else make_objects()[:0], self.grid_ranges)
                   for k in range(3)]
        w, h = left.shape[-1], left.shape[-2]
        depth = frame_depth(self.training, seq, t, (w, h))
        extra = {"depth": torch.from_numpy(depth)} if depth is not None else {}
        return {**extra, "left": torch.from_numpy(left), "right": torch.from_numpy(right),
                "prev_left": torch.from_numpy(prev_left), "prev_right": torch.from_numpy(prev_right),
                "has_prev": has_prev,
                "P2": torch.from_numpy(seq.calib.P2.astype(np.float32)),
                "P3": torch.from_numpy(seq.calib.P3.astype(np.float32)),
                "targets": _box_dict(seq.objects[t + 1], self.grid_ranges), "history": history,
                "gt_objects": seq.objects[t + 1], "seq": seq.name, "frame": t, "image_size": (w, h)}


TENSOR_KEYS = ("left", "right", "prev_left", "prev_right", "P2", "P3")


def collate_detect3d(samples: list[dict]) -> dict:
    """Stack image/calibration tensors; keep per-sample boxes, history and metadata as lists."""
    out = {k: torch.stack([s[k] for s in samples]) for k in TENSOR_KEYS}
    out["has_prev"] = torch.tensor([bool(s["has_prev"]) for s in samples])
    if all("depth" in s for s in samples):
        out["depth"] = torch.stack([s["depth"] for s in samples])
    for k in ("targets", "history", "gt_objects", "seq", "frame", "image_size"):
        out[k] = [s[k] for s in samples]
    return out
