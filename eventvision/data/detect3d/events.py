"""Event-camera input for the stereo 3D detector: events simulated from KITTI-layout frames.

For frame t the left and right cameras each get the events an event camera would have produced between
frames t−1 and t (10 Hz, 100 ms apart; ``eventvision.simulate.emulator`` with per-pixel log-intensity
contrast thresholds and timestamps interpolated between the frames), represented as an E2VID voxel grid of
``num_bins`` time bins -> [num_bins, H, W] per camera, fed to the detector in place of the RGB images
(config ``data.input: events``, ``model.in_channels = data.event_bins``). The emulator is seeded per
(sequence, frame, camera) so a sample is reproducible. At a patch start (no t−1) the grid is empty.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

FRAME_PERIOD_US = 100_000


def _gray(path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return img


def simulate_pair_events(frame0: np.ndarray, frame1: np.ndarray, *, t0_us: int, contrast: float = 0.2,
                         seed: int = 0) -> np.ndarray:
    """Events (EVENT_DTYPE) between two uint8 gray frames [H, W] taken FRAME_PERIOD_US apart."""
    from eventvision.simulate.emulator import EventEmulator

    h, w = frame0.shape
    emu = EventEmulator(w, h, contrast=contrast, seed=seed)
    emu.reset(frame0, t0_us)
    return emu.step(frame1, t0_us + FRAME_PERIOD_US)


def event_voxels(events: np.ndarray, width: int, height: int, num_bins: int) -> np.ndarray:
    from eventvision.representations.functional import voxel_grid

    if len(events) == 0:
        return np.zeros((num_bins, height, width), dtype=np.float32)
    return voxel_grid(events, num_bins=num_bins, width=width, height=height)


def stereo_event_voxels(seq, t: int, start: int, *, num_bins: int = 5, contrast: float = 0.2,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Voxel grids [num_bins, H, W] (float32) of the left and right events that end at frame t of ``seq``."""
    out = []
    for cam, paths in (("left", seq.left), ("right", seq.right)):
        cur = _gray(paths[t])
        h, w = cur.shape
        if t - 1 < start:
            out.append(np.zeros((num_bins, h, w), dtype=np.float32))
            continue
        s = zlib.crc32(f"{seq.name}/{t}/{cam}/{seed}".encode())
        ev = simulate_pair_events(_gray(paths[t - 1]), cur, t0_us=(t - 1) * FRAME_PERIOD_US, contrast=contrast, seed=s)
        out.append(event_voxels(ev, w, h, num_bins))
    return out[0], out[1]
