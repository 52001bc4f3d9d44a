"""Synthetic short videos for action-recognition tests and smoke training.

Each class is a motion of a textured square over a textured background: translation in one of
four directions, clockwise/anticlockwise rotation about the centre, growing, shrinking (8 classes).
Videos are uint8 [F, H, W, 3], deterministic by seed.
"""

from __future__ import annotations

import cv2
import numpy as np

SYNTHETIC_ACTIONS = ("move_right", "move_left", "move_down", "move_up", "rotate_cw", "rotate_ccw", "grow",
                     "shrink")


def render_action_video(label: int, *, num_frames: int = 64, size: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 [num_frames, size, size, 3] video of class ``label``."""
    rng = np.random.default_rng(seed)
    background = (rng.random((size, size, 3)) * 80 + 40).astype(np.uint8)
    colour = tuple(int(c) for c in rng.integers(150, 256, 3))
    half = size * rng.uniform(0.12, 0.18)
    speed = size * rng.uniform(0.005, 0.009)
    cx, cy = size / 2 + rng.uniform(-0.08, 0.08) * size, size / 2 + rng.uniform(-0.08, 0.08) * size
    frames = []
    for i in range(num_frames):
        k = i - num_frames / 2
        x, y, angle, h = cx, cy, 0.0, half
        if label == 0:
            x = cx + speed * k
        elif label == 1:
            x = cx - speed * k
        elif label == 2:
            y = cy + speed * k
        elif label == 3:
            y = cy - speed * k
        elif label in (4, 5):
            angle = (1 if label == 4 else -1) * 4.0 * i
        elif label == 6:
            h = half * (0.6 + 0.8 * i / num_frames)
        elif label == 7:
            h = half * (1.4 - 0.8 * i / num_frames)
        else:
            raise ValueError(f"synthetic action label must be in 0..{len(SYNTHETIC_ACTIONS) - 1}")
        frame = background.copy()
        box = cv2.boxPoints(((x, y), (2 * h, 1.2 * h), angle)).astype(np.int32)
        cv2.fillPoly(frame, [box], colour)
        cv2.circle(frame, tuple(box[0]), max(1, int(h / 4)), (255, 255, 255), -1)  # marks orientation
        frames.append(frame)
    return np.stack(frames)
