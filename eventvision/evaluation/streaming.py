"""Streaming perception evaluation (sAP): schedules, latency sources, pairing, forecasting, patch split.

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
- :func:`sampled_schedule`: the same single-detector simulation with each run's latency drawn at random
  (with replacement) from the measured ones, as the released StreamDSGN does (``Empirical.draw`` in
  pcdet/datasets/stereo_streaming_template.py, used by ``streaming_simulation`` in
  pcdet/datasets/kitti_streaming/stereo_kitti_streaming.py); deterministic by seed.

The latency source of a run is typed (:data:`LatencySource`): :class:`FixedLatency`,
:class:`MeasuredLatencies` (in order), :class:`SampledLatencies` (drawn) or :class:`EmissionTimes`;
:func:`collect_clips` reads a KITTI root + result folder and streams every clip with one of them.

Strategies: ``copy`` (the paired output as it is), ``kf-streamdsgn`` (the release's Kalman filter, see
:class:`StreamDSGNKalman`) and ``kf``: each tracked box (``track_id`` >= 0) is
moved from its source-frame time to the GT time with the velocity of a constant-velocity Kalman
filter fed by that track's boxes in all outputs emitted so far (position anchored on the detection,
so latency 0 equals offline); the 2D box follows the projected centre (P2) and scales with depth. For a
next-frame forecaster (StreamDSGN: the boxes computed on frame f describe f + 1) ``horizon_frames=1``
dates its boxes one period later.

StreamDSGN protocol: sequences are cut into 40-frame patches alternately used for training and
validation (:func:`eventvision.formats.kitti.patch_ranges`; even patches train, odd patches val); each
patch is a separate clip.
``rule="streamdsgn"`` cuts exactly as the release's ``split_patch_in_scene``
(tools/gen_split_kitti_tracking.py): a sequence shorter than two patches is halved; otherwise
``n // 40 - 1`` full patches and the rest (40 + remainder frames) as the last one, except that when the
length divides by 40 the last 40 frames belong to no patch. ``rule="alternating"`` keeps every frame
(a last partial patch is kept as it is).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from eventvision.errors import DatasetNotFoundError, FileFormatError, InvalidValueError
from eventvision.formats.kitti import FRAME_PERIOD_MS, MAX_FRAME_INDEX, OBJECT_DTYPE, empty_objects, patch_ranges
from eventvision.geometry.boxes3d import alpha_from_rotation_y, project_points
from eventvision.utils.io import read_text

STRATEGIES = ("copy", "kf", "kf-streamdsgn")


@dataclass(frozen=True)
class Schedule:
    """Outputs of one clip: source ``frame`` [M] (int64, clip-local) and emission ``time_ms`` [M] (float64)."""

    frame: np.ndarray
    time_ms: np.ndarray

    def __post_init__(self):
        if self.frame.shape != self.time_ms.shape:
            raise ValueError("frame and time_ms must have the same length")


def check_latencies_ms(values, *, source: str = "latency") -> np.ndarray:
    """The one latency check: a non-empty float64 array [K] of finite values >= 0 ms, else
    :class:`InvalidValueError` naming ``source`` (a file, or what the value is)."""
    lat = np.asarray(values, dtype=np.float64).ravel()
    if lat.size == 0:
        raise InvalidValueError(f"{source}: no latencies; give at least one latency in ms")
    bad = ~np.isfinite(lat) | (lat < 0)
    if bad.any():
        raise InvalidValueError(f"{source}: latency {lat[bad][0]} ms is not a finite value >= 0; "
                                f"use latencies >= 0 ms")
    return lat


def fixed_latency_schedule(num_frames: int, latency_ms: float, *, period_ms: float = FRAME_PERIOD_MS) -> Schedule:
    """Every frame i emitted at ``i * period_ms + latency_ms``."""
    latency_ms = float(check_latencies_ms([latency_ms])[0])
    frames = np.arange(num_frames, dtype=np.int64)
    return Schedule(frames, frames * float(period_ms) + float(latency_ms))


def next_run(emission_ms: float, frame: int, *, period_ms: float = FRAME_PERIOD_MS) -> tuple[float, int]:
    """The frame-skip rule of one detector: after the run on ``frame`` emitted at ``emission_ms`` the next run
    starts at ``max(emission, next frame time)`` on the latest frame captured by then -> (start ms, frame)."""
    start = max(emission_ms, (frame + 1) * period_ms)
    # the latest frame captured by `start` (tolerate float round-off at exact frame times)
    return start, int(math.floor(start / period_ms + 1e-9))


def _single_detector(num_frames: int, draw, period_ms: float, *, finish_last: bool = False) -> Schedule:
    """``finish_last``: a run that would start past the clip's last frame runs on the last frame instead, unless
    that frame was the previous run's (the release's simulation loop stops only after the last frame)."""
    frames, times = [], []
    start, frame = 0.0, 0
    while frame < num_frames:
        tau = start + draw()
        frames.append(frame)
        times.append(tau)
        prev = frame
        start, frame = next_run(tau, frame, period_ms=period_ms)
        if finish_last and frame >= num_frames and prev < num_frames - 1:
            frame = num_frames - 1
    return Schedule(np.asarray(frames, dtype=np.int64), np.asarray(times, dtype=np.float64))


def simulated_schedule(num_frames: int, latencies_ms: Sequence[float], *,
                       period_ms: float = FRAME_PERIOD_MS) -> Schedule:
    """Single-detector simulation with frame skipping, latencies used in order (cyclically)."""
    lat = check_latencies_ms(latencies_ms, source="measured latencies")
    k = iter(range(1 << 62))
    return _single_detector(num_frames, lambda: lat[next(k) % lat.size], period_ms)


def sampled_schedule(num_frames: int, latencies_ms: Sequence[float], rng: np.random.Generator, *,
                     period_ms: float = FRAME_PERIOD_MS) -> Schedule:
    """Single-detector simulation with frame skipping, each run's latency drawn uniformly with replacement
    from ``latencies_ms`` (the release's ``Empirical.draw``); ``rng`` advances by one draw per run. As in the
    release's ``streaming_simulation``, the clip's last frame is always processed (a run that would start past
    it runs on it), which only adds an output emitted after the last ground-truth time: it is never paired,
    but it decides which output is the last one for ``kf-streamdsgn`` and consumes a draw."""
    lat = check_latencies_ms(latencies_ms, source="measured latencies")
    return _single_detector(num_frames, lambda: float(lat[rng.integers(lat.size)]), period_ms, finish_last=True)


def read_emission_file(path: str | os.PathLike) -> dict[str, Schedule]:
    """Measured emission times per sequence (text ``seq frame_index emission_time_ms`` lines or JSON)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: emission file not found; check the path")
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
                raise FileFormatError(f"{path}:{lineno}: expected 'seq frame_index emission_time_ms' ({exc}); "
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
            raise FileFormatError(f"{path}: sequence {seq} frame {f} is emitted before it is captured "
                            f"({arr[bad][0, 1]} ms < {f * FRAME_PERIOD_MS} ms); times are ms on the sequence clock")
        out[seq] = Schedule(arr[:, 0].astype(np.int64), arr[:, 1])
    return out


def read_latency_file(path: str | os.PathLike) -> np.ndarray:
    """Measured latencies (ms): one number per line (``#`` comments allowed) or a JSON list."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: latency file not found; check the path")
    text = read_text(path)
    try:
        if text.lstrip().startswith("["):
            values = [float(v) for v in json.loads(text)]
        else:
            values = [float(line.split("#", 1)[0]) for line in text.splitlines() if line.split("#", 1)[0].strip()]
    except (ValueError, TypeError) as exc:
        raise FileFormatError(f"{path}: expected one latency in ms per line or a JSON list ({exc}); "
                              "fix the file") from None
    return check_latencies_ms(values, source=str(path))


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


class StreamDSGNKalman:
    """The released StreamDSGN Kalman forecaster (pcdet/datasets/kitti_streaming/kalman_filter.py, used with
    ``R_fac=40`` by ``kf_interpolation`` of stereo_kitti_streaming.py), rule for rule.

    State per detection ``[x, y, z, cos ry, sin ry]`` (camera location, metres). Each call (once per
    ground-truth frame, with ``dt`` = GT time minus the source frame's time in **milliseconds**, as the release
    passes it): predict the previous states with the release's transition matrix (identity with
    ``F[0, 3] = F[1, 4] = dt``), ``P = F P Fᵀ + Q`` with ``Q = diag(dt², dt², dt², dt, dt)``; match the current
    detections to the predictions by Hungarian assignment on the 3D distance of the first three state entries,
    same class only, kept when < 4 m; matched detections take the Kalman update with ``H = I``, ``R = 40 I``;
    unmatched ones restart with their observation and ``P = 40 I``. The output moves location to the state's
    (x, y, z) and sets ``rotation_y = atan2(sin, cos)``; the 2D box, alpha and dimensions are left as they are
    (as released).
    """

    dist_thresh_m = 4.0

    def __init__(self, r_factor: float = 40.0):
        self.r_factor = float(r_factor)
        self.state = np.zeros((0, 5))
        self.classes = np.zeros(0, dtype="U16")
        self.cov = np.zeros((0, 5, 5))

    def _predict(self, dt: float) -> np.ndarray:
        F = np.eye(5)
        F[[0, 1], [3, 4]] = dt
        Q = np.diag([dt ** 2, dt ** 2, dt ** 2, dt, dt])
        self.cov = F @ self.cov @ F.T + Q
        return self.state @ F.T

    def _match(self, z: np.ndarray, cls: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from scipy.optimize import linear_sum_assignment

        dist = np.linalg.norm(z[:, None, :3] - pred[None, :, :3], axis=2)
        dist[cls[:, None] != self.classes[None, :]] = 1e6
        rows, cols = linear_sum_assignment(dist)
        keep = dist[rows, cols] < self.dist_thresh_m
        return rows[keep], cols[keep]

    def step(self, z: np.ndarray, cls: np.ndarray, dt: float) -> np.ndarray:
        """Observations ``z`` [M, 5] of classes ``cls`` [M] -> filtered states [M, 5]."""
        pred = self._predict(dt) if len(self.state) else np.zeros((0, 5))
        rows, cols = self._match(z, cls, pred)
        new_state = np.array(z, dtype=np.float64, copy=True)
        new_cov = np.repeat(self.r_factor * np.eye(5)[None], len(z), axis=0)
        if len(rows):
            P = self.cov[cols]
            K = P @ np.linalg.inv(P + self.r_factor * np.eye(5))
            new_state[rows] = pred[cols] + np.einsum("nij,nj->ni", K, z[rows] - pred[cols])
            new_cov[rows] = (np.eye(5) - K) @ P
        self.state, self.cov, self.classes = new_state, new_cov, np.asarray(cls).copy()
        return new_state

    def forecast(self, objects: np.ndarray, dt_ms: float) -> np.ndarray:
        """One ground-truth frame: the paired ``objects`` (OBJECT_DTYPE) filtered with age ``dt_ms``."""
        ry = objects["rotation_y"]
        z = np.concatenate([objects["location"], np.cos(ry)[:, None], np.sin(ry)[:, None]], axis=1)
        x = self.step(z, objects["type"], float(dt_ms))
        out = objects.copy()
        out["location"] = x[:, :3]
        out["rotation_y"] = np.arctan2(x[:, 4], x[:, 3])
        return out


def stream_predictions(pred_frames: Sequence[np.ndarray], schedule: Schedule, num_frames: int, *,
                       strategy: str = "copy", P2: np.ndarray | None = None,
                       period_ms: float = FRAME_PERIOD_MS, kalman: KalmanParams = KalmanParams(),
                       horizon_frames: int = 0) -> list[np.ndarray]:
    """Streamed predictions of one clip: for each GT frame i the objects seen at ``i * period_ms``.

    pred_frames: offline outputs per source frame (OBJECT_DTYPE arrays, clip-local index); schedule:
    when each was emitted. Returns ``num_frames`` arrays (``frame`` set to the GT frame).
    horizon_frames (``kf`` only): the boxes computed on frame f describe frame ``f + horizon_frames`` (1 for
    a next-frame forecaster such as StreamDSGN; 0 for a detector of its own frame), so the filter places
    them at that time and moves them only over the remaining age.
    """
    if strategy not in STRATEGIES:
        raise InvalidValueError(f"unknown streaming strategy {strategy!r}; use one of "
                                f"{', '.join(STRATEGIES)}")
    if int(horizon_frames) < 0:
        raise InvalidValueError(f"horizon_frames must be >= 0 (frames ahead the boxes describe), got "
                                f"{horizon_frames}")
    horizon = int(horizon_frames)
    pairs = pair_outputs(schedule, num_frames, period_ms=period_ms)
    order = np.argsort(schedule.time_ms, kind="stable")
    filters = _TrackFilters(kalman) if strategy == "kf" else None
    release_kf = StreamDSGNKalman() if strategy == "kf-streamdsgn" else None
    last_output = order[-1] if len(order) else -1
    fed = 0  # outputs (in emission order) already given to the filters
    out = []
    for i in range(num_frames):
        idx = pairs[i]
        if idx < 0 or schedule.frame[idx] >= len(pred_frames):
            out.append(empty_objects(0))
            continue
        src = int(schedule.frame[idx])
        objs = np.asarray(pred_frames[src], dtype=OBJECT_DTYPE).copy()
        # the release copies the last output without forecast to every frame from its adoption on
        if release_kf is not None and idx != last_output and len(objs):
            objs = release_kf.forecast(objs, i * period_ms - src * period_ms)
        if filters is not None:
            t_gt = i * period_ms
            while fed < len(order) and schedule.time_ms[order[fed]] <= t_gt + 1e-6:
                e = order[fed]
                f = int(schedule.frame[e])
                if f < len(pred_frames):
                    for o in pred_frames[f]:
                        if o["track_id"] >= 0:
                            filters.update(int(o["track_id"]), np.asarray(o["location"]),
                                           (f + horizon) * period_ms / 1000.0)
                fed += 1
            tracked = np.flatnonzero(objs["track_id"] >= 0)
            dt_s = (t_gt - (src + horizon) * period_ms) / 1000.0
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


# ------------------------------------------------------------------------------------- latency sources

@dataclass(frozen=True)
class FixedLatency:
    """Every frame processed, each output emitted ``latency_ms`` after its capture (pipelined detector)."""

    latency_ms: float

    def __post_init__(self):
        check_latencies_ms([self.latency_ms], source="fixed latency")

    def schedule(self, seq: str, start: int, stop: int, rng: np.random.Generator) -> Schedule:
        return fixed_latency_schedule(stop - start, self.latency_ms)


@dataclass(frozen=True)
class MeasuredLatencies:
    """One detector, the measured latencies (ms) taken in order, cyclically, from each clip's start."""

    latencies_ms: tuple[float, ...]

    def __post_init__(self):
        check_latencies_ms(self.latencies_ms, source="measured latencies")

    def schedule(self, seq: str, start: int, stop: int, rng: np.random.Generator) -> Schedule:
        return simulated_schedule(stop - start, self.latencies_ms)


@dataclass(frozen=True)
class SampledLatencies:
    """One detector, each run's latency drawn from the measured ones (the release's protocol); the draws of
    all clips come from one generator seeded by ``seed`` in clip order."""

    latencies_ms: tuple[float, ...]
    seed: int = 0

    def __post_init__(self):
        check_latencies_ms(self.latencies_ms, source="measured latencies")

    def schedule(self, seq: str, start: int, stop: int, rng: np.random.Generator) -> Schedule:
        return sampled_schedule(stop - start, self.latencies_ms, rng)


@dataclass(frozen=True)
class EmissionTimes:
    """Measured emission times per sequence (sequence clock), e.g. ``emission.txt`` of ``run detect3d``."""

    schedules: dict
    source: str = "emission file"

    def schedule(self, seq: str, start: int, stop: int, rng: np.random.Generator) -> Schedule:
        if seq not in self.schedules:
            raise FileFormatError(f"{self.source}: no emission times for sequence {seq}; add its lines or "
                                  f"leave the sequence out")
        return clip_schedule(self.schedules[seq], start, stop)


LatencySource = FixedLatency | MeasuredLatencies | SampledLatencies | EmissionTimes


@dataclass
class StreamingClips:
    """Frames of all clips, in clip order: ``gt``, ``offline`` predictions (each paired with its own frame)
    and ``streamed`` (None without a latency source); 2D boxes at KITTI's 375-px scale."""

    gt: list
    offline: list
    streamed: list | None
    clips: list  # (seq, start, stop)


def collect_clips(gt_root, pred_dir, seqs: Sequence[str], *, split: str = "all", patch_len: int = 40,
                  patch_rule: str = "streamdsgn", latency: LatencySource | None = None,
                  strategy: str = "copy", image_height: int | None = None,
                  kalman: KalmanParams = KalmanParams(), horizon_frames: int = 0) -> StreamingClips:
    """Read the ground truth of ``seqs`` under a KITTI Tracking root and the ``<seq>.txt`` results in
    ``pred_dir``, cut the clips (:func:`patch_ranges`), stream each with ``latency`` and ``strategy``.
    A sequence has as many frames as ``image_02/<seq>`` holds, or, without images (or with fewer), up to
    the last labelled or predicted frame.

    image_height: the sequences' image height in pixels; None reads it from ``image_02/<seq>/000000.png`` when
    present (else KITTI's 375). 2D boxes are rescaled to 375 px so difficulty levels mean the same objects.
    horizon_frames: see :func:`stream_predictions` (``kf``).
    """
    from eventvision.formats import kitti as io

    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise DatasetNotFoundError(f"{pred_dir}: prediction folder not found; give a folder of <seq>.txt "
                                   f"result files")
    rng = np.random.default_rng(latency.seed if isinstance(latency, SampledLatencies) else 0)
    out = StreamingClips([], [], [] if latency is not None else None, [])
    for seq in seqs:
        gt = io.read_sequence_labels(gt_root, seq)
        pred_path = pred_dir / f"{seq}.txt"
        if not pred_path.is_file():
            raise DatasetNotFoundError(f"{pred_path}: no result file for sequence {seq}; write one (may be "
                                       f"empty) or leave the sequence out")
        pred = io.read_label_file(pred_path)
        if len(pred) and (pred["frame"] < 0).any():
            raise FileFormatError(f"{pred_path}: negative frame index; fix the result file")
        n_gt = max(int(gt["frame"].max()) + 1 if len(gt) else 0, io.sequence_num_frames(gt_root, seq))
        n_pred = int(pred["frame"].max()) + 1 if len(pred) else 0
        if n_pred > n_gt + io.MAX_FRAMES_PAST_LABELS:  # a typo'd frame must not make a million empty frames
            raise FileFormatError(f"{pred_path}: frame {n_pred - 1} lies {n_pred - n_gt} frames past the last "
                                  f"labelled frame {n_gt - 1} of sequence {seq}; fix the result file")
        n = max(n_gt, n_pred)
        height = image_height or io.sequence_image_size(gt_root, seq, default=io.KITTI_IMAGE_SIZE)[1]
        gt_frames, pred_frames = io.split_frames(gt, n), io.split_frames(pred, n)
        P2 = io.read_sequence_calib(gt_root, seq).P2 if strategy == "kf" and latency is not None else None

        def scaled(frames):  # after forecasting, which moves 2D boxes with the sequence's own P2
            return [io.to_kitti_pixel_scale(o, height) for o in frames]

        for start, stop in patch_ranges(n, patch_len=patch_len, split=split, rule=patch_rule):
            out.clips.append((seq, start, stop))
            out.gt += scaled(gt_frames[start:stop])
            out.offline += scaled(pred_frames[start:stop])
            if latency is not None:
                sched = latency.schedule(seq, start, stop, rng)
                out.streamed += scaled(stream_predictions(pred_frames[start:stop], sched, stop - start,
                                                          strategy=strategy, P2=P2, kalman=kalman,
                                                          horizon_frames=horizon_frames))
    return out
