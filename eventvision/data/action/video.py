"""Clip sampling and multi-view testing for video classification (pure functions + a dataset).

Conventions: a video is uint8 [F, H, W, 3] (RGB); a clip is float32 [T, 3, S, S] normalised with
ImageNet mean/std. The sampling is the released SVFormer's (its SlowFast data path with
``DECODING_BACKEND: decord`` and ``USE_OFFSET_SAMPLING: True`` in
``exp/svformer_ucf101_scratch/config.yaml``; ``slowfast/datasets/decoder.py:get_start_end_idx`` and
``decode``, ``transform.py:random_short_side_scale_jitter`` and ``uniform_crop``):

* a clip covers ``stride * T`` frames; its T indices are ``linspace(start, start + stride*T - 1, T)``
  (float32) truncated to integers and clamped to the video, so 16 x 4 takes every 4.2th frame;
* training draws ``start`` uniformly in ``[0, F - stride*T]`` and a random square crop; testing takes
  ``num_clips`` clips with ``start = i * floor((F - stride*T) / (num_clips - 1))`` (the centre one for a
  single clip) x ``num_crops`` crops (left/centre/right along the long side, centre at
  ``ceil((W - S) / 2)``), each a sample carrying its ``video_id`` so scores can be summed per video;
* frames are resized so the short side is S, the long side ``floor(long * S / short)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from eventvision.errors import ConfigError, FileFormatError

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def read_video(path: str | Path, *, max_frames: int | None = None,
               short_side: int | None = None) -> np.ndarray:
    """Decode a video with OpenCV -> uint8 [F, H, W, 3] RGB; with ``short_side`` every frame is resized
    while decoding (:func:`resize_short_side`), so a 1080p video never sits in memory at full size."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FileFormatError(f"{path}: cannot open video (missing file or unsupported codec)")
    frames = []
    try:
        while max_frames is None or len(frames) < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            frames.append(frame if short_side is None else resize_short_side(frame[None], short_side)[0])
    finally:
        cap.release()
    if not frames:
        raise FileFormatError(f"{path}: no frames could be decoded; the file is empty or corrupt")
    return np.stack(frames)


def clip_indices(num_video_frames: int, *, num_frames: int, stride: int, start: float) -> np.ndarray:
    """Frame indices of the clip starting at ``start``: ``linspace(start, start + stride*T - 1, T)`` in
    float32, truncated, clamped to ``[0, F - 1]``."""
    end = start + stride * num_frames - 1
    index = torch.linspace(float(start), float(end), num_frames)
    return torch.clamp(index, 0, num_video_frames - 1).long().numpy()


def clip_start(num_video_frames: int, *, num_frames: int, stride: int, clip: int, num_clips: int) -> int:
    """Start of test clip ``clip`` of ``num_clips``: ``clip * floor(delta / (num_clips - 1))`` with
    ``delta = max(F - stride*T, 0)`` (the centre ``floor(delta / 2)`` for one clip)."""
    delta = max(num_video_frames - stride * num_frames, 0)
    if num_clips == 1:
        return delta // 2
    return clip * (delta // (num_clips - 1))


def resize_short_side(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 [F, H, W, 3] (bilinear) so that min(H, W) == size and the long side is
    ``floor(long * size / short)``; unchanged when the short side already is ``size``."""
    h, w = frames.shape[1:3]
    if min(h, w) == size:
        return frames
    if w < h:
        new = (size, int(math.floor(h / w * size)))
    else:
        new = (int(math.floor(w / h * size)), size)
    return np.stack([cv2.resize(f, new, interpolation=cv2.INTER_LINEAR) for f in frames])


def crop_offsets(h: int, w: int, size: int, num_crops: int) -> list[tuple[int, int]]:
    """(top, left) of ``num_crops`` square crops: 1 = the centre; 3 = start, centre, end of the long side
    (centre offset ``ceil((L - size) / 2)``)."""
    top, left = math.ceil((h - size) / 2), math.ceil((w - size) / 2)
    if num_crops == 1:
        return [(top, left)]
    if num_crops != 3:
        raise ConfigError(f"num_crops={num_crops}: test crops are 1 (centre) or 3 (along the long side)")
    if w >= h:
        return [(top, 0), (top, left), (top, w - size)]
    return [(0, left), (top, left), (h - size, left)]


def multiview_samples(num_video_frames: int, h: int, w: int, *, num_frames: int, stride: int, image_size: int,
               num_clips: int, num_crops: int) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """The ``num_clips * num_crops`` test views of a video whose frames are already resized
    (view ``v`` = clip ``v // num_crops``, crop ``v % num_crops``): (frame indices [T], (top, left))."""
    crops = crop_offsets(h, w, image_size, num_crops)
    views = []
    for clip in range(num_clips):
        start = clip_start(num_video_frames, num_frames=num_frames, stride=stride, clip=clip,
                           num_clips=num_clips)
        idx = clip_indices(num_video_frames, num_frames=num_frames, stride=stride, start=start)
        views += [(idx, crop) for crop in crops]
    return views


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

    def __init__(self, records: list[VideoRecord], load, *, train: bool, num_frames: int = 16,
                 stride: int = 4, image_size: int = 224, num_clips: int = 5, num_crops: int = 3,
                 seed: int = 0):
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
            delta = max(n - self.stride * self.num_frames, 0)
            idx = clip_indices(n, num_frames=self.num_frames, stride=self.stride,
                               start=float(self.rng.uniform(0, delta)))
            top = int(self.rng.integers(0, h - self.image_size + 1))
            left = int(self.rng.integers(0, w - self.image_size + 1))
        else:
            idx, (top, left) = multiview_samples(n, h, w, num_frames=self.num_frames, stride=self.stride,
                                          image_size=self.image_size, num_clips=self.num_clips,
                                          num_crops=self.num_crops)[view]
        clip = frames[idx, top:top + self.image_size, left:left + self.image_size]
        return {"video": normalise(clip), "label": torch.tensor(record.label, dtype=torch.int64),
                "video_id": torch.tensor(record.video_id, dtype=torch.int64)}
