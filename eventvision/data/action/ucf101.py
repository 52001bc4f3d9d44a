"""UCF101 (folder layout + official split files) and NTU RGB+D 60 (RGB video layout).

UCF101: ``<root>/UCF-101/<Class>/v_<Class>_gGG_cCC.avi`` (or the class folders directly in root)
and ``<root>/ucfTrainTestlist/{classInd.txt, trainlist0K.txt, testlist0K.txt}``; classInd lines are
``<index 1..101> <Class>``, trainlist lines ``<Class>/<file>.avi <index>``, testlist lines
``<Class>/<file>.avi``.

NTU RGB+D 60: ``<root>/nturgb+d_rgb/SsssCcccPpppRrrrAaaa_rgb.avi`` (or files in root; a prefix before
the code, e.g. ``ntu_S001C001P001R001A001_rgb.avi``, is allowed); labels are ``A`` 1..60;
cross-subject trains on the 20 published performer ids, cross-view trains on cameras 2, 3.
"""

from __future__ import annotations

import re
from pathlib import Path

from eventvision.data.action.video import VideoRecord
from eventvision.errors import ConfigError, DatasetNotFoundError, FileFormatError

UCF101_HINT = ("get UCF101 (UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip) from "
               "crcv.ucf.edu/data/UCF101.php")
NTU_HINT = "request NTU RGB+D 60 (nturgb+d_rgb) from rose1.ntu.edu.sg/dataset/actionRecognition"

NTU_CROSS_SUBJECT_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU_CROSS_VIEW_TRAIN_CAMERAS = (2, 3)
NTU_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})_rgb\.avi$")


def _ucf_dirs(root: Path) -> tuple[Path, Path]:
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: UCF101 folder does not exist; {UCF101_HINT}")
    lists = root / "ucfTrainTestlist"
    if not (lists / "classInd.txt").is_file():
        raise DatasetNotFoundError(f"{lists / 'classInd.txt'}: UCF101 split files missing; {UCF101_HINT}")
    videos = root / "UCF-101" if (root / "UCF-101").is_dir() else root
    return videos, lists


def ucf101_classes(root: str | Path) -> list[str]:
    _, lists = _ucf_dirs(Path(root))
    path = lists / "classInd.txt"
    classes = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) < 1:
            raise FileFormatError(f"{path}: line {number} is not '<index 1..> <Class>'; use the classInd.txt "
                                  f"of UCF101TrainTestSplits-RecognitionTask.zip")
        classes[int(parts[0]) - 1] = parts[1]
    if sorted(classes) != list(range(len(classes))):
        raise FileFormatError(f"{path}: class indices are not 1..{len(classes)} without gaps")
    return [classes[i] for i in range(len(classes))]


def ucf101_records(root: str | Path, *, split: str, fold: int = 1) -> list[VideoRecord]:
    """Videos of ``split`` ("train" | "test") of official split ``fold`` (1..3)."""
    root = Path(root)
    videos, lists = _ucf_dirs(root)
    if fold not in (1, 2, 3):
        raise ConfigError(f"data.fold: UCF101 split fold must be 1, 2 or 3, got {fold}")
    list_file = lists / f"{'trainlist' if split == 'train' else 'testlist'}0{fold}.txt"
    if not list_file.is_file():
        raise DatasetNotFoundError(f"{list_file}: split list missing; {UCF101_HINT}")
    class_index = {name: i for i, name in enumerate(ucf101_classes(root))}
    records = []
    for line in list_file.read_text().splitlines():
        if not line.strip():
            continue
        rel = line.split()[0]
        cls = rel.split("/")[0]
        if cls not in class_index:
            raise FileFormatError(f"{list_file}: class '{cls}' is not in classInd.txt; use the split files "
                                  f"that came with this classInd.txt")
        path = videos / rel
        if not path.is_file():
            raise DatasetNotFoundError(f"{path}: listed in {list_file.name} but missing; {UCF101_HINT}")
        records.append(VideoRecord(path, class_index[cls], len(records)))
    return records


def ntu_code(name: str) -> dict[str, int] | None:
    """``{"setup", "camera", "performer", "replication", "action"}`` (1-based) from an NTU RGB+D file name
    ending in ``SsssCcccPpppRrrrAaaa_rgb.avi``, or None."""
    match = NTU_NAME.search(name)
    if not match:
        return None
    keys = ("setup", "camera", "performer", "replication", "action")
    return dict(zip(keys, (int(g) for g in match.groups())))


def ntu60_records(root: str | Path, *, split: str, benchmark: str = "xsub") -> list[VideoRecord]:
    """NTU RGB+D 60 videos of ``split`` under ``benchmark`` "xsub" (cross-subject) or "xview" (cross-view)."""
    root = Path(root)
    folder = root / "nturgb+d_rgb" if (root / "nturgb+d_rgb").is_dir() else root
    if not folder.is_dir():
        raise DatasetNotFoundError(f"{root}: NTU RGB+D folder does not exist; {NTU_HINT}")
    if benchmark not in ("xsub", "xview"):
        raise ConfigError(f"data.benchmark: NTU benchmark must be xsub or xview, got '{benchmark}'")
    records = []
    for path in sorted(folder.glob("*_rgb.avi")):
        code = ntu_code(path.name)
        if code is None:
            continue
        camera, performer, action = code["camera"], code["performer"], code["action"]
        if action > 60:
            continue  # NTU-120 extra classes
        is_train = (performer in NTU_CROSS_SUBJECT_TRAIN) if benchmark == "xsub" else \
            (camera in NTU_CROSS_VIEW_TRAIN_CAMERAS)
        if is_train == (split == "train"):
            records.append(VideoRecord(path, action - 1, len(records)))
    if not records:
        raise DatasetNotFoundError(f"{folder}: no NTU RGB+D 60 *_rgb.avi videos for split {split}; "
                                   f"{NTU_HINT}")
    return records
