"""Streaming perception evaluation (sAP): emission schedules, pairing and copy/Kalman forecasting.

A detector runs on a 10 Hz stream: frame i is captured at ``t_i = i * period_ms`` (ms, clip clock,
frame 0 at 0). Each output has a *source frame* (the frame it was computed on) and an *emission
time* (when it became available). For every ground-truth frame at ``t = i * period_ms`` the evaluator
uses the latest output emitted at or before ``t`` (none -> an empty prediction), optionally forecast
to ``t``; sAP is the KITTI AP over these pairs (:mod:`eventvision.evaluation.kitti.ap`).

Schedules (:class:`Schedule`, arrays ``frame`` [M] and ``time_ms`` [M]):

- :func:`fixed_latency_schedule`: every frame is processed, its output emitted at ``t_i + latency``
  (a pipelined detector with constant latency; latency 0 reproduces offline evaluation).
- :func:`simulated_schedule`: one detector, measured latencies taken in order (cyclically): the run
  started at ``s`` on the latest frame is emitted at ``τ = s + latency``; the next run starts at
  ``max(τ, next frame time)`` on the latest frame captured by then (frames in between are skipped).
- :func:`read_emission_file`: measured emission times, text lines ``seq frame_index emission_time_ms``
  (``#`` comments, blank lines allowed; time on the sequence clock, frame 0 captured at 0 ms) or JSON
  ``{"0001": [[frame_index, emission_time_ms], ...], ...}``.

Strategies: ``copy`` (the paired output as it is) and ``kf``: each tracked box (``track_id`` >= 0) is
moved from its source-frame time to the GT time with the velocity of a constant-velocity Kalman
filter fed by that track's boxes in all outputs emitted so far (position anchored on the detection,
so latency 0 equals offline); the 2D box follows the projected centre (P2) and scales with depth.

StreamDSGN protocol: sequences are cut into 40-frame patches alternately used for training and
validation (:func:`patch_ranges`; even patches train, odd patches val); each patch is a separate clip.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from eventvision.errors import FileFormatError, UserError
from eventvision.evaluation.kitti.boxes import alpha_from_rotation_y, project_points
from eventvision.evaluation.kitti.io import FRAME_PERIOD_MS, MAX_FRAME_INDEX, OBJECT_DTYPE, empty_objects
from eventvision.utils.io import read_text

STRATEGIES = ("copy", "kf")


@dataclass(frozen=True)
class Schedule:
    """Outputs of one clip: source ``frame`` [M] (int64, clip-local) and emission ``time_ms`` [M] (float64)."""

    frame: np.ndarray
    time_ms: np.ndarray

    def __post_init__(self):
        if self.frame.shape != self.time_ms.shape:
            raise ValueError("frame and time_ms must have the same length")


def fixed_latency_schedule(num_frames: int, latency_ms: float, *, period_ms: float = FRAME_PERIOD_MS) -> Schedule:
    """Every frame i emitted at ``i * period_ms + latency_ms``."""
    if latency_ms < 0 or not math.isfinite(latency_ms):
        raise UserError(f"latency {latency_ms} ms is not a finite value >= 0; use a latency >= 0 ms")
    frames = np.arange(num_frames, dtype=np.int64)
    return Schedule(frames, frames * float(period_ms) + float(latency_ms))


def simulated_schedule(num_frames: int, latencies_ms: Sequence[float], *,
                       period_ms: float = FRAME_PERIOD_MS) -> Schedule:
    """Single-detector simulation with frame skipping, latencies used in order (cyclically)."""
    lat = np.asarray(latencies_ms, dtype=np.float64).ravel()
    if lat.size == 0 or (lat < 0).any() or not np.isfinite(lat).all():
        raise UserError("measured latencies must be a non-empty list of finite values >= 0 ms")
    frames, times = [], []
    start, frame, k = 0.0, 0, 0
    while frame < num_frames:
        tau = start + lat[k % lat.size]
        frames.append(frame)
        times.append(tau)
        k += 1
        start = max(tau, (frame + 1) * period_ms)
        # the latest frame captured by `start` (tolerate float round-off at exact frame times)
        frame = int(math.floor(start / period_ms + 1e-9))
    return Schedule(np.asarray(frames, dtype=np.int64), np.asarray(times, dtype=np.float64))


def read_emission_file(path: str | os.PathLike) -> dict[str, Schedule]:
    """Measured emission times per sequence (text ``seq frame_index emission_time_ms`` lines or JSON)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: emission file not found; check the path")
    text = read_text(path)
    rows: dict[str, list[tuple[int, float]]] = {}
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
            for seq, pairs in data.items():
                rows[str(seq)] = [(int(f), float(t)) for f, t in pairs]
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise FileFormatError(f"{path}: not a JSON object "
                                  f"{{seq: [[frame_index, emission_time_ms], ...]}} ({exc}); fix the "
                                  "file") from None
    else:
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            try:
                if len(parts) != 3:
                    raise ValueError(f"{len(parts)} columns")
                rows.setdefault(parts[0], []).append((int(parts[1]), float(parts[2])))
            except ValueError as exc:
                raise UserError(f"{path}:{lineno}: expected 'seq frame_index emission_time_ms' ({exc}); "
                                f"fix the file") from None
    out = {}
    for seq, pairs in rows.items():
        arr = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
        if (arr[:, 0] < 0).any() or (arr[:, 0] >= MAX_FRAME_INDEX).any() or not np.isfinite(arr[:, 1]).all():
            raise FileFormatError(f"{path}: sequence {seq} has a frame index outside "
                                  f"0..{MAX_FRAME_INDEX - 1} or a non-finite time; fix the file")
        bad = arr[:, 1] < arr[:, 0] * FRAME_PERIOD_MS - 1e-6
        if bad.any():
            f = int(arr[bad][0, 0])
            raise UserError(f"{path}: sequence {seq} frame {f} is emitted before it is captured "
                            f"({arr[bad][0, 1]} ms < {f * FRAME_PERIOD_MS} ms); times are ms on the sequence clock")
        out[seq] = Schedule(arr[:, 0].astype(np.int64), arr[:, 1])
    return out


def read_latency_file(path: str | os.PathLike) -> np.ndarray:
    """Measured latencies (ms): one number per line (``#`` comments allowed) or a JSON list."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: latency file not found; check the path")
    text = read_text(path)
    try:
        if text.lstrip().startswith("["):
            values = [float(v) for v in json.loads(text)]
        else:
            values = [float(line.split("#", 1)[0]) for line in text.splitlines() if line.split("#", 1)[0].strip()]
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path}: expected one latency in ms per line or a JSON list ({exc}); fix the file") from None
    if not values:
        raise UserError(f"{path}: no latencies in the file; write one latency in ms per line")
    values = np.asarray(values, dtype=np.float64)
    if not (np.isfinite(values) & (values >= 0)).all():
        bad = values[~(np.isfinite(values) & (values >= 0))][0]
        raise FileFormatError(f"{path}: latency {bad!r} ms is not a finite value >= 0; fix the file")
    return values


def clip_schedule(schedule: Schedule, start: int, stop: int, *, period_ms: float = FRAME_PERIOD_MS) -> Schedule:
    """Restrict a sequence-clock schedule to frames [start, stop), re-based to the clip clock."""
    keep = (schedule.frame >= start) & (schedule.frame < stop)
    return Schedule(schedule.frame[keep] - start, schedule.time_ms[keep] - start * period_ms)


def pair_outputs(schedule: Schedule, num_frames: int, *, period_ms: float = FRAME_PERIOD_MS) -> np.ndarray:
    """For each GT frame i (at ``i * period_ms``) the index into ``schedule`` of the latest output
    emitted at or before that time; -1 where none. Returns int64 [num_frames]."""
    order = np.argsort(schedule.time_ms, kind="stable")
    times = schedule.time_ms[order]
    gt_t = np.arange(num_frames, dtype=np.float64) * period_ms
    pos = np.searchsorted(times, gt_t + 1e-6, side="right") - 1  # 1 ns tolerance for float round-off
    return np.where(pos >= 0, order[np.maximum(pos, 0)], -1).astype(np.int64)


# ------------------------------------------------------------------------------------------ forecasting

@dataclass(frozen=True)
class KalmanParams:
    """Constant-velocity Kalman filter per track on the box's bottom centre (x, y, z, metres).

    accel_std: white-noise acceleration (m/s²); meas_std: position noise (m); init_vel_std: prior
    velocity std (m/s); max_gap_s: a track unseen for longer restarts.
    """

    accel_std: float = 2.0
    meas_std: float = 0.3
    init_vel_std: float = 5.0
    max_gap_s: float = 1.0


class _TrackFilters:
    """Per-track state: x [3] position, v [3] velocity, P [3, 2, 2] (per-axis covariance), t (s)."""

    def __init__(self, params: KalmanParams):
        self.p = params
        self.state: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, float]] = {}

    def update(self, track_id: int, pos: np.ndarray, t_s: float) -> None:
        r = self.p.meas_std ** 2
        prev = self.state.get(track_id)
        if prev is not None and t_s == prev[3]:
            return  # the same observation delivered again
        if prev is None or t_s - prev[3] > self.p.max_gap_s or t_s < prev[3]:
            cov = np.zeros((3, 2, 2))
            cov[:, 0, 0] = r
            cov[:, 1, 1] = self.p.init_vel_std ** 2
            self.state[track_id] = (pos.astype(np.float64).copy(), np.zeros(3), cov, t_s)
            return
        x, v, cov, t0 = prev
        dt = t_s - t0
        x, v, cov = self._predict(x, v, cov, dt)
        # per-axis update with H = [1, 0]
        s = cov[:, 0, 0] + r
        k0, k1 = cov[:, 0, 0] / s, cov[:, 1, 0] / s
        innov = pos - x
        x = x + k0 * innov
        v = v + k1 * innov
        new = cov.copy()
        new[:, 0, 0] = (1 - k0) * cov[:, 0, 0]
        new[:, 0, 1] = (1 - k0) * cov[:, 0, 1]
        new[:, 1, 0] = cov[:, 1, 0] - k1 * cov[:, 0, 0]
        new[:, 1, 1] = cov[:, 1, 1] - k1 * cov[:, 0, 1]
        self.state[track_id] = (x, v, new, t_s)

    def _predict(self, x, v, cov, dt):
        q = self.p.accel_std ** 2
        f = np.array([[1.0, dt], [0.0, 1.0]])
        qm = q * np.array([[dt ** 4 / 4, dt ** 3 / 2], [dt ** 3 / 2, dt ** 2]])
        cov = np.einsum("ij,ajk,lk->ail", f, cov, f) + qm
        return x + v * dt, v, cov

    def velocity(self, track_id: int) -> np.ndarray | None:
        """Filtered velocity (m/s) of a track, None if unknown."""
        st = self.state.get(track_id)
        return None if st is None else st[1]


def _moved(objects: np.ndarray, new_loc: np.ndarray, P2: np.ndarray | None) -> np.ndarray:
    """Objects moved to ``new_loc`` [N, 3]; bbox shifted by the projected centre motion and scaled by
    the depth ratio (needs P2), alpha recomputed from rotation_y."""
    out = objects.copy()
    if P2 is not None:
        h = objects["dimensions"][:, 0]
        c_old = objects["location"] - np.stack([np.zeros_like(h), h / 2, np.zeros_like(h)], axis=1)
        c_new = new_loc - np.stack([np.zeros_like(h), h / 2, np.zeros_like(h)], axis=1)
        uv_old, z_old = project_points(c_old, P2)
        uv_new, z_new = project_points(c_new, P2)
        ok = (z_old > 0.5) & (z_new > 0.5)
        bb = objects["bbox"]
        centre = (bb[:, :2] + bb[:, 2:]) / 2
        half = (bb[:, 2:] - bb[:, :2]) / 2
        scale = np.where(ok, z_old / np.where(ok, z_new, 1.0), 1.0)[:, None]
        shift = np.where(ok[:, None], uv_new - uv_old, 0.0)
        c = centre + shift
        out["bbox"] = np.concatenate([c - half * scale, c + half * scale], axis=1)
    out["location"] = new_loc
    out["alpha"] = alpha_from_rotation_y(objects["rotation_y"], new_loc[:, 0], new_loc[:, 2])
    return out


def stream_predictions(pred_frames: Sequence[np.ndarray], schedule: Schedule, num_frames: int, *,
                       strategy: str = "copy", P2: np.ndarray | None = None,
                       period_ms: float = FRAME_PERIOD_MS, kalman: KalmanParams = KalmanParams()) -> list[np.ndarray]:
    """Streamed predictions of one clip: for each GT frame i the objects seen at ``i * period_ms``.

    pred_frames: offline outputs per source frame (OBJECT_DTYPE arrays, clip-local index); schedule:
    when each was emitted. Returns ``num_frames`` arrays (``frame`` set to the GT frame).
    """
    if strategy not in STRATEGIES:
        raise UserError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    pairs = pair_outputs(schedule, num_frames, period_ms=period_ms)
    order = np.argsort(schedule.time_ms, kind="stable")
    filters = _TrackFilters(kalman) if strategy == "kf" else None
    fed = 0  # outputs (in emission order) already given to the filters
    out = []
    for i in range(num_frames):
        idx = pairs[i]
        if idx < 0 or schedule.frame[idx] >= len(pred_frames):
            out.append(empty_objects(0))
            continue
        src = int(schedule.frame[idx])
        objs = np.asarray(pred_frames[src], dtype=OBJECT_DTYPE).copy()
        if filters is not None:
            t_gt = i * period_ms
            while fed < len(order) and schedule.time_ms[order[fed]] <= t_gt + 1e-6:
                e = order[fed]
                f = int(schedule.frame[e])
                if f < len(pred_frames):
                    for o in pred_frames[f]:
                        if o["track_id"] >= 0:
                            filters.update(int(o["track_id"]), np.asarray(o["location"]), f * period_ms / 1000.0)
                fed += 1
            tracked = np.flatnonzero(objs["track_id"] >= 0)
            dt_s = (t_gt - src * period_ms) / 1000.0
            if len(tracked) and dt_s > 0:
                # anchor on the detection itself, move it with the filtered velocity over the age
                new_loc = objs["location"].copy()
                for k in tracked:
                    v = filters.velocity(int(objs["track_id"][k]))
                    if v is not None:
                        new_loc[k] = new_loc[k] + v * dt_s
                objs = _moved(objs, new_loc, P2)
        objs["frame"] = i
        out.append(objs)
    return out


def patch_ranges(num_frames: int, *, patch_len: int = 40, split: str = "all") -> list[tuple[int, int]]:
    """[start, stop) frame ranges: ``all`` -> the whole sequence; ``train``/``val`` -> the even/odd
    ``patch_len``-frame patches (StreamDSGN's alternating split; a last partial patch is kept)."""
    if split == "all":
        return [(0, num_frames)] if num_frames > 0 else []
    if split not in ("train", "val"):
        raise UserError(f"unknown split {split!r}; use all, train or val")
    if patch_len <= 0:
        raise UserError(f"patch length must be > 0, got {patch_len}")
    first = 0 if split == "train" else 1
    return [(s, min(s + patch_len, num_frames)) for s in range(first * patch_len, num_frames, 2 * patch_len)]
