"""Torch datasets for gesture classification: events -> T frames split by number.

Samples are dicts ``{"frames": float32 [T, 2, R, R] (per-polarity counts, channel 0 = OFF,
1 = ON), "label": int64}`` where R = ``resolution`` (events binned by integer down-sampling of the
128x128 sensor).
"""

from __future__ import annotations

import numpy as np
import torch

from eventvision.data.gesture import dvs128
from eventvision.errors import ConfigError


def downsample_events(events: np.ndarray, factor: int) -> np.ndarray:
    """Integer spatial down-sampling (x//factor, y//factor); returns a new array."""
    if factor == 1:
        return events
    out = events.copy()
    out["x"] //= factor
    out["y"] //= factor
    return out


def events_to_frames(events: np.ndarray, *, num_frames: int, sensor_size: int, resolution: int,
                     split_by: str = "number") -> np.ndarray:
    """[T, 2, R, R] float32 frames (SpikingJelly ``split_by`` semantics) of a square sensor."""
    from eventvision.representations.functional import to_frames

    if sensor_size % resolution:
        raise ConfigError(f"data.resolution: {resolution} must divide the sensor size {sensor_size}; "
                          f"choose a divisor of {sensor_size}")
    events = downsample_events(events, sensor_size // resolution)
    return to_frames(events, num_frames=num_frames, width=resolution, height=resolution, split_by=split_by)


class SyntheticGestureEvents:
    """Indexable source of synthetic gesture events: item i -> (events, label = i % 11)."""

    def __init__(self, num_samples: int, *, seed: int = 0, sensor_size: int = 128, duration_s: float = 1.0,
                 fps: float = 100.0):
        self.num_samples, self.seed, self.sensor_size = num_samples, seed, sensor_size
        self.duration_s, self.fps = duration_s, fps

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        from eventvision.simulate.gesture_scenes import synthetic_gesture_events

        label = index % dvs128.NUM_CLASSES
        events = synthetic_gesture_events(label, size=self.sensor_size, duration_s=self.duration_s, fps=self.fps,
                                          seed=self.seed * 1_000_003 + index)
        return events, label


class DVS128GestureEvents:
    """Indexable source of real DVS128 Gesture samples: item i -> (events, label)."""

    sensor_size = dvs128.SENSOR_SIZE

    def __init__(self, root: str, split: str):
        self.records = dvs128.list_records(root, split)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        record = self.records[index]
        return dvs128.load_record(record), record.label


class GestureFrameDataset(torch.utils.data.Dataset):
    """Frames + label from an event source; frames are computed once per index and cached (float16)."""

    def __init__(self, source, *, num_frames: int = 16, resolution: int = 128, split_by: str = "number",
                 cache: bool = True):
        self.source, self.num_frames, self.resolution, self.split_by = source, num_frames, resolution, split_by
        self.cache: dict[int, tuple[np.ndarray, int]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        if self.cache is not None and index in self.cache:
            frames, label = self.cache[index]
        else:
            events, label = self.source[index]
            frames = events_to_frames(events, num_frames=self.num_frames, sensor_size=self.source.sensor_size,
                                      resolution=self.resolution, split_by=self.split_by).astype(np.float16)
            if self.cache is not None:
                self.cache[index] = (frames, label)
        return {"frames": torch.from_numpy(frames.astype(np.float32)), "label": torch.tensor(label, dtype=torch.int64)}
