"""KITTI *Object* stereo frames (the 3D object benchmark layout), read exactly::

    ROOT[/training]/image_2/NNNNNN.png      left colour camera
    ROOT[/training]/image_3/NNNNNN.png      right colour camera
    ROOT[/training]/calib/NNNNNN.txt        P0..P3, R0_rect, Tr_velo_to_cam, Tr_imu_to_velo (one per frame)
    ROOT[/training]/velodyne/NNNNNN.bin     LiDAR scan, float32 x, y, z, reflectance per point (optional)
    ROOT[/training]/label_2/NNNNNN.txt      object labels (optional; 15 columns, no frame / track id)

Frames of this layout are independent (each has its own calibration), so each one is a one-frame
:class:`~eventvision.data.detect3d.kitti_tracking.Sequence` named by its number: everything that streams
KITTI Tracking sequences (``run detect3d``, :mod:`eventvision.inference.detect3d`) runs on it unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from eventvision.data.detect3d.kitti_tracking import Sequence
from eventvision.errors import DatasetNotFoundError, FileFormatError
from eventvision.formats.kitti import make_objects, read_calib, read_object_label_file

KITTI_OBJECT_URL = "https://www.cvlibs.net/datasets/kitti/eval_object.php?obj_benchmark=3d"


def is_object_layout(root: str | os.PathLike) -> bool:
    """True when ``root`` or ``root/training`` holds ``image_2`` and ``calib`` (the Object layout)."""
    root = Path(root)
    return any((c / "image_2").is_dir() and (c / "calib").is_dir() for c in (root, root / "training"))


def find_object_dir(root: str | os.PathLike) -> Path:
    """``root`` or ``root/training`` holding image_2/image_3/calib (DatasetNotFoundError otherwise)."""
    root = Path(root)
    for cand in (root, root / "training"):
        if (cand / "image_2").is_dir() and (cand / "calib").is_dir():
            return cand
    raise DatasetNotFoundError(
        f"{root}: no KITTI Object stereo data (expected [training/]image_2/NNNNNN.png, image_3/NNNNNN.png, "
        f"calib/NNNNNN.txt); download 'left color images', 'right color images' and 'camera calibration' "
        f"of the object benchmark from {KITTI_OBJECT_URL}")


def list_frames(training: Path) -> list[str]:
    """Frame numbers (file stems) with a left image, sorted."""
    return sorted(p.stem for p in (training / "image_2").glob("*.png"))


def load_frame(training: Path, name: str) -> Sequence:
    """Frame ``name`` (e.g. '000000') as a one-frame sequence: stereo pair, calibration, labels if present."""
    left, right = training / "image_2" / f"{name}.png", training / "image_3" / f"{name}.png"
    calib_path = training / "calib" / f"{name}.txt"
    for path in (left, right, calib_path):
        if not path.is_file():
            raise DatasetNotFoundError(f"{path}: missing for frame {name}; complete the KITTI Object folder "
                                       f"(from {KITTI_OBJECT_URL})")
    label_path = training / "label_2" / f"{name}.txt"
    objects = read_object_label_file(label_path) if label_path.is_file() else make_objects()[:0]
    return Sequence(name, (left,), (right,), read_calib(calib_path), (objects,))


def read_velodyne(path: str | os.PathLike) -> np.ndarray:
    """A KITTI ``velodyne/NNNNNN.bin`` scan -> float32 [N, 4] (x, y, z metres, LiDAR frame; reflectance)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: LiDAR scan not found; get 'Velodyne point clouds' from "
                                   f"{KITTI_OBJECT_URL}")
    size = path.stat().st_size
    if size % 16:
        raise FileFormatError(f"{path}: {size} bytes is not a whole number of points (16 bytes: 4 float32 "
                              f"x, y, z, reflectance); re-download the scan")
    points = np.fromfile(path, dtype="<f4").reshape(-1, 4)
    if not np.isfinite(points).all():
        raise FileFormatError(f"{path}: non-finite coordinates in the scan; re-download it")
    return points


def velodyne_path(training: Path, name: str, *, seq: str | None = None) -> Path:
    """Where the LiDAR scan of frame ``name`` (file stem, ``NNNNNN``) lives: Object layout
    ``velodyne/NNNNNN.bin``, or with ``seq`` the Tracking layout ``velodyne/<seq>/NNNNNN.bin``."""
    folder = training / "velodyne" if seq is None else training / "velodyne" / seq
    return folder / f"{name}.bin"


def frame_velodyne(training: Path, name: str, *, seq: str | None = None) -> np.ndarray:
    """The LiDAR scan of frame ``name`` (float32 [N, 4]) at :func:`velodyne_path`."""
    return read_velodyne(velodyne_path(training, name, seq=seq))
