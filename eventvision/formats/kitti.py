"""KITTI text formats: label_02 / result files and calibration files (read, scaled and written here only).

Label and result files share the tracking columns (one object per line, space separated)::

    frame track_id type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]

- ``frame``: frame index in the sequence (10 Hz), ``track_id``: -1 for DontCare,
- ``truncated``: tracking labels use the integer levels 0/1/2 (read verbatim as a float, exactly as
  the reference tools do), object labels a fraction in [0, 1],
- ``bbox`` (x1, y1, x2, y2) in pixels of the left colour camera (image_02),
- ``dimensions`` h, w, l in metres (file order), ``location`` x, y, z in rectified camera
  coordinates (metres) of the *bottom centre* of the box, ``rotation_y`` in radians around camera Y.

Objects are held in a numpy structured array of :data:`OBJECT_DTYPE` (one row per object, any number
of frames); :func:`split_frames` turns a sequence into one array per frame. A missing score column
reads as score 1.0 (ground truth submitted as predictions).

Calibration files come with two spellings: the KITTI *Object* names (``P0..P3``, ``R0_rect``,
``Tr_velo_to_cam``, ``Tr_imu_to_velo``) and the official *Tracking* names (``R_rect``,
``Tr_velo_cam``, ``Tr_imu_velo``), keys followed by ``:`` or just a space. :func:`read_calib` accepts both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eventvision.errors import DatasetNotFoundError, FileFormatError, InvalidValueError
from eventvision.utils.io import atomic_path, text_lines

#: one object (one text line). bbox: x1, y1, x2, y2 px; dimensions: h, w, l m; location: x, y, z m (camera).
OBJECT_DTYPE = np.dtype([
    ("frame", np.int64),
    ("track_id", np.int64),
    ("type", "U16"),
    ("truncated", np.float64),
    ("occluded", np.int64),
    ("alpha", np.float64),
    ("bbox", np.float64, (4,)),
    ("dimensions", np.float64, (3,)),
    ("location", np.float64, (3,)),
    ("rotation_y", np.float64),
    ("score", np.float64),
])

CLASSES = ("Car", "Pedestrian", "Cyclist")
#: frame indices read from text files lie below this (10 Hz: > 27 hours; KITTI sequences hold < 1200 frames)
MAX_FRAME_INDEX = 1_000_000
#: result frames may run this far past a sequence's last labelled frame (trailing frames without objects)
MAX_FRAMES_PAST_LABELS = 1000
FRAME_PERIOD_MS = 100.0  #: KITTI Tracking is recorded at 10 Hz


def empty_objects(n: int = 0) -> np.ndarray:
    """A zero-filled object array of length ``n`` (score 1.0)."""
    out = np.zeros(n, dtype=OBJECT_DTYPE)
    out["score"] = 1.0
    return out


def make_objects(*, frame=0, track_id=-1, type="Car", truncated=0.0, occluded=0, alpha=-10.0,
                 bbox=(0.0, 0.0, 0.0, 0.0), dimensions=(0.0, 0.0, 0.0), location=(0.0, 0.0, 0.0),
                 rotation_y=0.0, score=1.0) -> np.ndarray:
    """Build an object array from columns (scalars broadcast; bbox [N, 4], dimensions h,w,l [N, 3],
    location [N, 3])."""
    bbox = np.atleast_2d(np.asarray(bbox, dtype=np.float64))
    dims = np.atleast_2d(np.asarray(dimensions, dtype=np.float64))
    loc = np.atleast_2d(np.asarray(location, dtype=np.float64))
    n = max(len(bbox), len(dims), len(loc), *(np.size(v) for v in (frame, track_id, type, truncated,
                                                                     occluded, alpha, rotation_y, score)))
    out = empty_objects(n)
    out["frame"], out["track_id"], out["type"] = frame, track_id, type
    out["truncated"], out["occluded"], out["alpha"] = truncated, occluded, alpha
    out["bbox"], out["dimensions"], out["location"] = bbox, dims, loc
    out["rotation_y"], out["score"] = rotation_y, score
    return out


def _check_object_row(frame: int, track: int, kind: str, nums: list[float], where: str) -> None:
    """Range checks of one label/result line (nums = columns 4..): finite, sizes >= 0, frame bounded."""
    bad = None
    if not 0 <= frame < MAX_FRAME_INDEX:
        bad = f"frame {frame} outside 0..{MAX_FRAME_INDEX - 1}"
    elif track < -1:
        bad = f"track_id {track} < -1"
    elif not all(np.isfinite(nums)):
        names = ("truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y score").split()
        bad = f"{names[next(i for i, v in enumerate(nums) if not np.isfinite(v))]} is not finite"
    elif not -1 <= nums[1] <= 3 or nums[1] != int(nums[1]):
        bad = f"occluded {nums[1]:g} is not one of -1, 0, 1, 2, 3"
    elif kind != "DontCare" and min(nums[7:10]) < 0:  # DontCare rows hold -1 -1 -1 by convention
        bad = f"negative 3D box size (h, w, l = {nums[7]:g}, {nums[8]:g}, {nums[9]:g} m)"
    if bad:
        raise FileFormatError(f"{where}: {bad}; fix or regenerate the file")


def parse_label_lines(lines, *, source: str = "<text>") -> np.ndarray:
    """Parse tracking-format lines (17 columns, or 18 with score) into an :data:`OBJECT_DTYPE` array."""
    rows = []
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (17, 18):
            raise FileFormatError(f"{source}:{lineno}: expected 17 or 18 columns (KITTI tracking format: frame "
                                  "track_id type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y "
                                  f"[score]), "
                                  f"got {len(parts)}; fix or regenerate the file")
        try:
            nums = [float(v) for v in parts[3:]]
            frame, track = int(parts[0]), int(parts[1])
        except ValueError as exc:
            raise FileFormatError(f"{source}:{lineno}: non-numeric value ({exc}); fix the file") from None
        _check_object_row(frame, track, parts[2], nums, f"{source}:{lineno}")
        score = nums[14] if len(nums) == 15 else 1.0
        rows.append((frame, track, parts[2], nums[0], int(nums[1]), nums[2], nums[3:7], nums[7:10],
                     nums[10:13], nums[13], score))
    if not rows:
        return empty_objects(0)
    return np.array(rows, dtype=OBJECT_DTYPE)


def parse_object_label_lines(lines, *, frame: int = 0, source: str = "<text>") -> np.ndarray:
    """Parse KITTI *Object* label lines (15 columns, or 16 with score: type truncated occluded alpha x1 y1 x2 y2
    h w l x y z rotation_y [score]) -> :data:`OBJECT_DTYPE` with ``frame`` and track id -1."""
    rows = []
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (15, 16):
            raise FileFormatError(f"{source}:{lineno}: expected 15 or 16 columns (KITTI object format: type truncated "
                                  f"occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]), got {len(parts)}; "
                                  f"fix or regenerate the file")
        rows.append(f"{frame} -1 " + " ".join(parts))
    return parse_label_lines(rows, source=source)


def read_object_label_file(path: str | os.PathLike, *, frame: int = 0) -> np.ndarray:
    """Read a KITTI Object ``label_2/NNNNNN.txt`` or result file -> :data:`OBJECT_DTYPE` array [N]."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: label/result file not found; check the path")
    return parse_object_label_lines(text_lines(path), frame=frame, source=str(path))


def format_object_lines(objects: np.ndarray, *, with_score: bool = True) -> str:
    """Objects -> KITTI *Object* text (the tracking columns without frame and track id)."""
    return "".join(line.split(" ", 2)[2] + "\n" for line in format_objects(objects, with_score=with_score).splitlines())


def read_label_file(path: str | os.PathLike) -> np.ndarray:
    """Read a KITTI Tracking ``label_02/<seq>.txt`` or result file -> :data:`OBJECT_DTYPE` array [N]."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: label/result file not found; check the path")
    return parse_label_lines(text_lines(path), source=str(path))


def format_objects(objects: np.ndarray, *, with_score: bool = True) -> str:
    """Objects -> tracking-format text (one line each, trailing newline)."""
    lines = []
    for o in objects:
        cols = [str(int(o["frame"])), str(int(o["track_id"])), str(o["type"]), f"{o['truncated']:g}",
                str(int(o["occluded"])), f"{o['alpha']:.6f}"]
        cols += [f"{v:.6f}" for v in o["bbox"]] + [f"{v:.6f}" for v in o["dimensions"]]
        cols += [f"{v:.6f}" for v in o["location"]] + [f"{o['rotation_y']:.6f}"]
        if with_score:
            cols.append(f"{o['score']:.6f}")
        lines.append(" ".join(cols))
    return "".join(line + "\n" for line in lines)


def write_result_file(path: str | os.PathLike, objects: np.ndarray, *, with_score: bool = True) -> None:
    """Write objects (any frames) as a tracking result file, sorted by frame (atomic)."""
    objects = np.asarray(objects, dtype=OBJECT_DTYPE)
    objects = objects[np.argsort(objects["frame"], kind="stable")]
    with atomic_path(path) as tmp:
        tmp.write_text(format_objects(objects, with_score=with_score), encoding="utf-8")


def split_frames(objects: np.ndarray, num_frames: int | None = None) -> list[np.ndarray]:
    """Split a sequence's objects by frame -> list of length ``num_frames`` (default: last frame + 1);
    frames without objects get empty arrays; objects at frames >= num_frames are dropped."""
    if num_frames is None:
        num_frames = int(objects["frame"].max()) + 1 if len(objects) else 0
    order = np.argsort(objects["frame"], kind="stable")
    objects = objects[order]
    bounds = np.searchsorted(objects["frame"], np.arange(num_frames + 1), side="left")
    return [objects[bounds[i]:bounds[i + 1]] for i in range(num_frames)]


#: (width, height) of KITTI's colour camera images in pixels; difficulty levels are defined on them
KITTI_IMAGE_SIZE = (1242, 375)


def to_kitti_pixel_scale(objects: np.ndarray, image_height: int) -> np.ndarray:
    """Copy of ``objects`` with 2D boxes rescaled to KITTI's 375-pixel image height.

    KITTI's difficulty levels are defined by the 2D box height in pixels (40/25/25) of 375x1242 images;
    for sequences rendered at another resolution (the small synthetic recipe renders at 1/4) the boxes
    are rescaled before evaluation so "easy/moderate/hard" mean the same objects. 3D boxes are unchanged."""
    out = np.array(objects, copy=True)
    if len(out) and image_height != KITTI_IMAGE_SIZE[1]:
        out["bbox"] = out["bbox"] * (KITTI_IMAGE_SIZE[1] / float(image_height))
    return out


# ----------------------------------------------------------------------------------------- calibration

_ALIASES = {
    "R_rect": "R0_rect", "R0_rect": "R0_rect",
    "Tr_velo_cam": "Tr_velo_to_cam", "Tr_velo_to_cam": "Tr_velo_to_cam",
    "Tr_imu_velo": "Tr_imu_to_velo", "Tr_imu_to_velo": "Tr_imu_to_velo",
    "P0": "P0", "P1": "P1", "P2": "P2", "P3": "P3",
}


@dataclass(frozen=True)
class Calibration:
    """Camera calibration of one KITTI sequence.

    P0..P3: [3, 4] rectified projection matrices (P2 left colour, P3 right colour); R0_rect: [3, 3];
    Tr_velo_to_cam, Tr_imu_to_velo: [3, 4] (None where the file has none).
    """

    P0: np.ndarray
    P1: np.ndarray
    P2: np.ndarray
    P3: np.ndarray
    R0_rect: np.ndarray
    Tr_velo_to_cam: np.ndarray | None = None
    Tr_imu_to_velo: np.ndarray | None = None

    @property
    def focal_px(self) -> float:
        """Focal length of the rectified colour cameras (pixels)."""
        return float(self.P2[0, 0])

    @property
    def baseline_m(self) -> float:
        """Stereo baseline between image_02 and image_03 in metres: (P2[0,3] - P3[0,3]) / f."""
        return float((self.P2[0, 3] - self.P3[0, 3]) / self.P2[0, 0])

    @property
    def R0_rect_4x4(self) -> np.ndarray:
        out = np.eye(4)
        out[:3, :3] = self.R0_rect
        return out

    def velo_to_rect(self, points: np.ndarray) -> np.ndarray:
        """LiDAR points [N, 3] (m) -> rectified camera coordinates [N, 3] (m)."""
        if self.Tr_velo_to_cam is None:
            raise FileFormatError("calibration has no Tr_velo_to_cam/Tr_velo_cam; use a complete calib file")
        pts = np.asarray(points, dtype=np.float64)[:, :3]
        cam = pts @ self.Tr_velo_to_cam[:, :3].T + self.Tr_velo_to_cam[:, 3]
        return cam @ self.R0_rect.T


def parse_calib_lines(lines, *, source: str = "<text>") -> Calibration:
    """Parse calibration lines ``KEY: v v v`` or ``KEY v v v`` (both key spellings) -> :class:`Calibration`."""
    values: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(lines, 1):
        head = line.split(maxsplit=1)
        if not head:
            continue
        key, rest = line.split(":", 1) if ":" in head[0] else (head[0], head[1] if len(head) > 1 else "")
        key = key.strip()
        if key not in _ALIASES:
            continue
        try:
            nums = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            raise FileFormatError(f"{source}:{lineno}: non-numeric value in {key}; fix the calibration "
                                  "file") from None
        if not np.isfinite(nums).all():
            raise FileFormatError(f"{source}:{lineno}: {key} holds a non-finite value; fix the calibration "
                                  "file")
        name = _ALIASES[key]
        want = 9 if name == "R0_rect" else 12
        if nums.size != want:
            raise FileFormatError(f"{source}:{lineno}: {key} has {nums.size} values, expected {want}; "
                                  f"fix the calibration file")
        values[name] = nums.reshape(3, 3) if name == "R0_rect" else nums.reshape(3, 4)
    missing = [k for k in ("P0", "P1", "P2", "P3", "R0_rect") if k not in values]
    if missing:
        raise FileFormatError(f"{source}: calibration lacks {', '.join(missing)} (accepted keys: P0..P3, "
                              f"R0_rect or R_rect, Tr_velo_to_cam or Tr_velo_cam); use a KITTI calib file")
    if not values["P2"][0, 0] > 0 or not values["P3"][0, 0] > 0:
        raise FileFormatError(f"{source}: P2/P3 focal length (first value) must be > 0 pixels; fix the "
                              "calibration file")
    return Calibration(**values)


def read_calib(path: str | os.PathLike) -> Calibration:
    """Read a KITTI calib file (Object or Tracking key spellings, ``KEY:`` or ``KEY``)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: calibration file not found; check the path")
    return parse_calib_lines(text_lines(path), source=str(path))


def scaled_projection(P: np.ndarray, scale: float) -> np.ndarray:
    """P for an image resized by ``scale`` (pixel centres at integer coordinates: u' = (u + 0.5)·s − 0.5)."""
    S = np.array([[scale, 0.0, 0.5 * scale - 0.5], [0.0, scale, 0.5 * scale - 0.5], [0.0, 0.0, 1.0]])
    return S @ P


def scale_calibration(calib: Calibration, scale: float) -> Calibration:
    """The calibration of the images resized by ``scale`` (every P scaled by :func:`scaled_projection`)."""
    return Calibration(P0=scaled_projection(calib.P0, scale), P1=scaled_projection(calib.P1, scale),
                       P2=scaled_projection(calib.P2, scale), P3=scaled_projection(calib.P3, scale),
                       R0_rect=calib.R0_rect, Tr_velo_to_cam=calib.Tr_velo_to_cam, Tr_imu_to_velo=calib.Tr_imu_to_velo)


def format_calibration(calib: Calibration) -> str:
    """Calibration -> KITTI Tracking calib text (Tracking key names R_rect / Tr_velo_cam / Tr_imu_velo)."""
    tr = calib.Tr_velo_to_cam if calib.Tr_velo_to_cam is not None else np.array(
        [[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    imu = calib.Tr_imu_to_velo if calib.Tr_imu_to_velo is not None else np.hstack([np.eye(3), np.zeros((3, 1))])
    rows = [(f"P{i}", getattr(calib, f"P{i}")) for i in range(4)]
    rows += [("R_rect", calib.R0_rect), ("Tr_velo_cam", tr), ("Tr_imu_velo", imu)]
    return "".join(f"{k} " + " ".join(f"{v:.12e}" for v in np.asarray(m).ravel()) + "\n" for k, m in rows)


# ------------------------------------------------------------------------------------ dataset folders

def tracking_root(root: str | os.PathLike) -> Path:
    """Return the folder holding ``label_02``/``calib`` (``root`` or ``root/training``)."""
    root = Path(root)
    for cand in (root, root / "training"):
        if (cand / "label_02").is_dir():
            return cand
    raise DatasetNotFoundError(f"{root}: no label_02 folder (expected KITTI_ROOT[/training]/label_02/<seq>.txt); "
                               f"download the KITTI Tracking labels from https://www.cvlibs.net/datasets/kitti/eval_tracking.php")


def read_sequence_labels(root: str | os.PathLike, seq: str) -> np.ndarray:
    """Ground-truth objects of sequence ``seq`` (e.g. '0001') of a KITTI Tracking root."""
    path = tracking_root(root) / "label_02" / f"{seq}.txt"
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: sequence {seq} has no label file; "
                                   "check the sequence list and the KITTI root")
    return read_label_file(path)


def png_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk (reads 24 bytes)."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise FileFormatError(f"{path}: not a PNG image; re-download or regenerate the sequence")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def sequence_image_size(root: str | os.PathLike, seq: str, *, default: tuple[int, int] | None = None
                        ) -> tuple[int, int] | None:
    """(width, height) of ``image_02/<seq>/000000.png`` beside the labels of a KITTI Tracking root;
    ``default`` when the images are not there."""
    path = tracking_root(root) / "image_02" / seq / "000000.png"
    return png_size(path) if path.is_file() else default


def sequence_num_frames(root: str | os.PathLike, seq: str) -> int:
    """Number of ``image_02/<seq>/*.png`` frames beside the labels of a KITTI Tracking root (0: no images)."""
    folder = tracking_root(root) / "image_02" / seq
    return sum(1 for _ in folder.glob("*.png")) if folder.is_dir() else 0


def read_sequence_calib(root: str | os.PathLike, seq: str) -> Calibration:
    path = tracking_root(root) / "calib" / f"{seq}.txt"
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: sequence {seq} has no calib file; check the KITTI root")
    return read_calib(path)


# ------------------------------------------------------------------- StreamDSGN patches of a tracking sequence

#: how :func:`patch_ranges` cuts a sequence: the release's ``split_patch_in_scene`` or plain alternation
PATCH_RULES = ("streamdsgn", "alternating")


def patch_ranges(num_frames: int, *, patch_len: int = 40, split: str = "all",
                 rule: str = "alternating") -> list[tuple[int, int]]:
    """[start, stop) frame ranges of one sequence: ``all`` -> the whole sequence; ``train``/``val`` -> the
    even/odd patches. ``rule="streamdsgn"``: the release's ``split_patch_in_scene`` (:func:`release_patches`);
    ``rule="alternating"``: consecutive ``patch_len``-frame patches, a last partial one kept."""
    if split == "all":
        return [(0, num_frames)] if num_frames > 0 else []
    if split not in ("train", "val"):
        raise InvalidValueError(f"unknown split {split!r}; use all, train or val")
    if patch_len <= 0:
        raise InvalidValueError(f"patch length must be > 0 frames, got {patch_len}")
    if rule not in PATCH_RULES:
        raise InvalidValueError(f"unknown patch rule {rule!r}; use one of {', '.join(PATCH_RULES)}")
    first = 0 if split == "train" else 1
    if rule == "alternating":
        starts = range(first * patch_len, num_frames, 2 * patch_len)
        return [(s, min(s + patch_len, num_frames)) for s in starts]
    return release_patches(num_frames, patch_len)[first::2]


def release_patches(num_frames: int, patch_len: int = 40) -> list[tuple[int, int]]:
    """All patches of ``split_patch_in_scene`` (tools/gen_split_kitti_tracking.py) as [start, stop) ranges."""
    if num_frames < 2 * patch_len:
        half = num_frames // 2
        return [(0, half), (half, num_frames)]
    n = num_frames // patch_len - 1
    out = [(i * patch_len, (i + 1) * patch_len) for i in range(n)]
    if num_frames % patch_len:
        out.append((n * patch_len, num_frames))
    return out
