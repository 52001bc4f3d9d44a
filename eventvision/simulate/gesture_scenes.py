"""Synthetic DVS gestures: class-specific motions of hand-like blobs rendered as frames and turned
into events by the suite's emulator.

The 11 classes follow DVS128 Gesture's label order (see ``GESTURE_CLASSES``). Each class is a
motion pattern of one or two bright Gaussian "hands" in front of a darker static background;
per-sample randomness (position, scale, speed, phase, blob size, sensor noise) makes the task
non-trivial. Everything is deterministic given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GESTURE_CLASSES = (
    "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_cw", "right_arm_ccw",
    "left_arm_cw", "left_arm_ccw", "arm_roll", "air_drums", "air_guitar", "other_gestures",
)


@dataclass(frozen=True)
class GestureSceneParams:
    """Per-sample randomness. Positions are in units of the image size, time in seconds."""

    frequency_hz: float
    phase: float
    scale: float
    offset: tuple[float, float]
    blob_sigma: float  # fraction of the image size


def sample_params(rng: np.random.Generator) -> GestureSceneParams:
    return GestureSceneParams(
        frequency_hz=float(rng.uniform(1.6, 2.6)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        scale=float(rng.uniform(0.8, 1.2)),
        offset=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))),
        blob_sigma=float(rng.uniform(0.035, 0.055)),
    )


def gesture_trajectories(label: int, t_s: np.ndarray, params: GestureSceneParams,
                         rng: np.random.Generator | None = None) -> np.ndarray:
    """Blob centres for class ``label`` at times ``t_s`` [N] -> [N, K, 2] (x, y in image units, y down)."""
    w = 2 * np.pi * params.frequency_hz * t_s + params.phase
    s = params.scale
    ox, oy = params.offset

    def circle(cx, cy, r, direction):  # direction +1: clockwise on screen (y points down)
        return np.stack([cx + r * s * np.cos(direction * w), cy + r * s * np.sin(direction * w)], -1)

    if label == 0:  # clapping: two hands meet and part horizontally
        d = 0.05 + 0.12 * s * (0.5 + 0.5 * np.cos(w))
        hands = [np.stack([0.5 - d, 0.5 + 0 * w], -1), np.stack([0.5 + d, 0.5 + 0 * w], -1)]
    elif label in (1, 2):  # hand wave, right (image right) or left
        cx = 0.7 if label == 1 else 0.3
        hands = [np.stack([cx + 0.1 * s * np.sin(w), 0.35 + 0.02 * np.cos(2 * w)], -1)]
    elif label in (3, 4, 5, 6):  # arm circles
        cx = 0.65 if label in (3, 4) else 0.35
        hands = [circle(cx, 0.5, 0.16, +1 if label in (3, 5) else -1)]
    elif label == 7:  # arm roll: two hands rolling around each other
        a = circle(0.5, 0.55, 0.07, +1)
        hands = [a, 2 * np.array([0.5, 0.55]) - a]
    elif label == 8:  # air drums: alternating vertical strokes
        hands = [np.stack([0.35 + 0 * w, 0.6 + 0.09 * s * np.sin(w)], -1),
                 np.stack([0.65 + 0 * w, 0.6 - 0.09 * s * np.sin(w)], -1)]
    elif label == 9:  # air guitar: fretting hand sways slowly, strumming hand moves fast vertically
        hands = [np.stack([0.32 + 0.02 * np.sin(0.5 * w), 0.42 + 0.02 * np.cos(0.5 * w)], -1),
                 np.stack([0.6 + 0 * w, 0.62 + 0.07 * s * np.sin(2.5 * w)], -1)]
    elif label == 10:  # other: smooth random walk
        rng = rng or np.random.default_rng(0)
        steps = rng.normal(0, 0.02, size=(len(t_s), 2))
        steps = np.cumsum(steps, axis=0)
        hands = [np.clip(0.5 + steps - steps.mean(0), 0.15, 0.85)]
    else:
        raise ValueError(f"gesture label must be in 0..{len(GESTURE_CLASSES) - 1}, got {label}")
    centres = np.stack(hands, axis=1)
    centres[..., 0] += ox
    centres[..., 1] += oy
    return centres


def render_gesture_frames(label: int, *, size: int = 128, duration_s: float = 1.0, fps: float = 200.0,
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Render intensity frames of one synthetic gesture.

    Returns ``frames`` float32 [N, size, size] in (0, 1] and ``timestamps_us`` int64 [N].
    """
    rng = np.random.default_rng(seed)
    params = sample_params(rng)
    n = int(round(duration_s * fps)) + 1
    t_s = np.arange(n) / fps
    centres = gesture_trajectories(label, t_s, params, rng)  # [N, K, 2]
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    background = 0.25 + 0.05 * rng.random((size, size), dtype=np.float32)
    inv2s2 = 1.0 / (2 * params.blob_sigma ** 2)
    frames = np.repeat(background[None], n, axis=0)
    for k in range(centres.shape[1]):
        dx2 = (coords[None, :] - centres[:, k, 0:1]) ** 2  # [N, W]
        dy2 = (coords[None, :] - centres[:, k, 1:2]) ** 2  # [N, H]
        blob = np.exp(-dy2[:, :, None] * inv2s2) * np.exp(-dx2[:, None, :] * inv2s2)
        frames = np.maximum(frames, 0.25 + 0.7 * blob.astype(np.float32))
    timestamps_us = np.round(t_s * 1e6).astype(np.int64)
    return frames.astype(np.float32), timestamps_us


def synthetic_gesture_events(label: int, *, size: int = 128, duration_s: float = 1.0, fps: float = 200.0,
                             seed: int = 0, contrast: float = 0.2, noise_rate_hz: float = 0.05) -> np.ndarray:
    """Events (eventvision EVENT_DTYPE) of one synthetic gesture on a ``size`` x ``size`` sensor."""
    from eventvision.simulate.emulator import emulate_frames

    frames, timestamps_us = render_gesture_frames(label, size=size, duration_s=duration_s, fps=fps, seed=seed)
    return emulate_frames(frames, timestamps_us, contrast=contrast, contrast_std=0.03,
                          noise_rate_hz=noise_rate_hz, seed=seed)
