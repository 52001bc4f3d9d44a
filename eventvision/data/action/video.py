"""Clip sampling and multi-view testing for video classification (pure functions + a dataset).

Conventions: a video is uint8 [F, H, W, 3] (RGB); a clip is float32 [T, 3, S, S] normalised with
ImageNet mean/std. Training takes one random clip (T frames, ``stride`` apart) and a random square
crop; testing takes ``num_clips`` evenly spaced clips x ``num_crops`` crops along the long side
(the usual 5 x 3 views), each a sample carrying its ``video_id`` so scores can be summed per video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from eventvision.errors import UserError

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def read_video(path: str | Path, *, max_frames: int | None = None) -> np.ndarray:
    """Decode a video with OpenCV -> uint8 [F, H, W, 3] RGB (UserError if unreadable or empty)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise UserError(f"{path}: cannot open video (missing file or unsupported codec)")
    frames = []
    try:
        while max_frames is None or len(frames) < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise UserError(f"{path}: no frames could be decoded; the file is empty or corrupt")
    return np.stack(frames)


def clip_indices(num_video_frames: int, *, num_frames: int, stride: int, start: int) -> np.ndarray:
    """Frame indices of one clip starting at ``start``; indices past the end wrap to the last frame."""
    return np.minimum(start + stride * np.arange(num_frames), num_video_frames - 1)


def evenly_spaced_starts(num_video_frames: int, *, num_frames: int, stride: int, num_clips: int) -> np.ndarray:
    """``num_clips`` evenly spaced clip starts covering the video (all 0 for a short video)."""
    span = stride * (num_frames - 1) + 1
    last = max(num_video_frames - span, 0)
    if num_clips == 1:
        return np.array([last // 2])
    return np.round(np.linspace(0, last, num_clips)).astype(int)


def resize_short_side(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 [F, H, W, 3] so that min(H, W) == size."""
    h, w = frames.shape[1:3]
    scale = size / min(h, w)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return np.stack([cv2.resize(f, new, interpolation=cv2.INTER_LINEAR) for f in frames])


def crop_offsets(h: int, w: int, size: int, num_crops: int) -> list[tuple[int, int]]:
    """(top, left) of ``num_crops`` square crops spread along the long side (1 crop = centre)."""
    if num_crops == 1:
        return [((h - size) // 2, (w - size) // 2)]
    if w >= h:
        return [((h - size) // 2, int(round(x))) for x in np.linspace(0, w - size, num_crops)]
    return [(int(round(y)), (w - size) // 2) for y in np.linspace(0, h - size, num_crops)]


def normalise(clip: np.ndarray) -> torch.Tensor:
    """uint8 [T, S, S, 3] -> float32 [T, 3, S, S] with ImageNet mean/std."""
    x = (clip.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@dataclass(frozen=True)
class VideoRecord:
    path: Path | None  # None for in-memory synthetic videos
    label: int
    video_id: int


class VideoClipDataset(torch.utils.data.Dataset):
    """Clips of videos: train = 1 random clip/crop per video; test = num_clips x num_crops views per video.

    ``load(record) -> uint8 [F, H, W, 3]`` reads a video (file decoding or synthetic rendering).
    Samples: ``{"video": float32 [T, 3, S, S], "label": int64, "video_id": int64}``.
    """

    def __init__(self, records: list[VideoRecord], load, *, train: bool, num_frames: int = 16, stride: int = 4,
                 image_size: int = 224, num_clips: int = 5, num_crops: int = 3, seed: int = 0):
        self.records, self.load, self.train = records, load, train
        self.num_frames, self.stride, self.image_size = num_frames, stride, image_size
        self.views = 1 if train else num_clips * num_crops
        self.num_clips, self.num_crops = (1, 1) if train else (num_clips, num_crops)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.records) * self.views

    def __getitem__(self, index: int) -> dict:
        record = self.records[index // self.views]
        view = index % self.views
        frames = resize_short_side(self.load(record), self.image_size)
        n, h, w = frames.shape[:3]
        if self.train:
            span = self.stride * (self.num_frames - 1) + 1
            start = int(self.rng.integers(0, max(n - span, 0) + 1))
            top = int(self.rng.integers(0, h - self.image_size + 1))
            left = int(self.rng.integers(0, w - self.image_size + 1))
        else:
            starts = evenly_spaced_starts(n, num_frames=self.num_frames, stride=self.stride, num_clips=self.num_clips)
            start = int(starts[view // self.num_crops])
            top, left = crop_offsets(h, w, self.image_size, self.num_crops)[view % self.num_crops]
        idx = clip_indices(n, num_frames=self.num_frames, stride=self.stride, start=start)
        clip = frames[idx, top:top + self.image_size, left:left + self.image_size]
        return {"video": normalise(clip), "label": torch.tensor(record.label, dtype=torch.int64),
                "video_id": torch.tensor(record.video_id, dtype=torch.int64)}
