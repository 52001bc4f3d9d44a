"""Write stereo events (+ GT) in the published DSEC and MVSEC layouts.

Used to turn synthetic scenes into files the real-data loaders and ``eventvision run stereo`` read
(tests, benchmarks, demos), byte-level faithful to the layouts documented in
:mod:`eventvision.data.stereo.dsec` and :mod:`eventvision.data.stereo.mvsec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import h5py
import numpy as np

from eventvision.data.stereo.mvsec import MVSEC_HEIGHT, MVSEC_WIDTH, scene_of
from eventvision.errors import InvalidValueError
from eventvision.utils.io import atomic_path, atomic_write_bytes, atomic_write_text


def identity_rectify_map(width: int, height: int) -> np.ndarray:
    """float32 [H, W, 2] map sending every pixel to itself."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.stack([xs, ys], axis=-1)


def encode_disparity_png(disparity: np.ndarray) -> bytes:
    """float px (NaN invalid) -> DSEC 16-bit PNG bytes (round(d·256), 0 = invalid)."""
    d = np.asarray(disparity, dtype=np.float64)
    raw = np.where(np.isfinite(d) & (d > 0), np.clip(np.rint(d * 256.0), 1, 65535), 0).astype(np.uint16)
    ok, buf = cv2.imencode(".png", raw)
    if not ok:
        raise InvalidValueError("cannot encode a 16-bit PNG with OpenCV; pass a 2-D float disparity array")
    return buf.tobytes()


def write_dsec_sequence(folder: str | Path, *, left: np.ndarray, right: np.ndarray, width: int = 640,
                        height: int = 480, t_offset: int = 0, disparities: Sequence[np.ndarray] = (),
                        timestamps_us: Sequence[int] = (), rectify_maps: tuple[np.ndarray, np.ndarray] | None = None,
                        t_dtype: str = "<u4") -> Path:
    """A DSEC sequence folder: ``events/{left,right}/{events.h5,rectify_map.h5}`` and, with GT,
    ``disparity/event/NNNNNN.png`` (named 000000, 000002, ... as DSEC does) + ``disparity/timestamps.txt``.

    Event ``t`` is on the label clock (µs); files store ``t - t_offset`` and the ``t_offset`` dataset.
    """
    from eventvision.events.h5 import write_dsec_events_h5

    folder = Path(folder)
    maps = rectify_maps or (identity_rectify_map(width, height),) * 2
    for cam, events, rmap in (("left", left, maps[0]), ("right", right, maps[1])):
        d = folder / "events" / cam
        d.mkdir(parents=True, exist_ok=True)
        write_dsec_events_h5(d / "events.h5", events, width=width, height=height, t_offset=int(t_offset),
                             t_dtype=t_dtype)
        with atomic_path(d / "rectify_map.h5") as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("rectify_map", data=np.asarray(rmap, dtype=np.float32))
    if len(disparities) != len(timestamps_us):
        raise InvalidValueError(f"{folder}: {len(disparities)} disparity maps but {len(timestamps_us)} timestamps")
    if len(disparities):
        gt = folder / "disparity" / "event"
        gt.mkdir(parents=True, exist_ok=True)
        for i, disp in enumerate(disparities):
            atomic_write_bytes(gt / f"{2 * i:06d}.png", encode_disparity_png(disp))
        atomic_write_text(folder / "disparity" / "timestamps.txt", "".join(f"{int(t)}\n" for t in timestamps_us))
    return folder


def mvsec_event_matrix(events: np.ndarray) -> np.ndarray:
    """EVENT_DTYPE -> MVSEC N x 4 float64 ``[x, y, t (s), p (±1)]``."""
    out = np.empty((len(events), 4), dtype=np.float64)
    out[:, 0], out[:, 1] = events["x"], events["y"]
    out[:, 2] = events["t"] / 1e6
    out[:, 3] = np.where(events["p"] > 0, 1.0, -1.0)
    return out


def write_mvsec_sequence(folder: str | Path, name: str, *, left: np.ndarray, right: np.ndarray,
                         depths: np.ndarray | None = None, depth_ts_s: Sequence[float] = (),
                         rectify_maps: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[Path, Path | None]:
    """``<folder>/<name>_data.hdf5`` (+ ``<name>_gt.hdf5`` with depths [N, 260, 346] m and their times in s,
    + ``<scene>_calib/<scene>_{left,right}_{x,y}_map.txt`` when ``rectify_maps`` are given). Event ``t`` in µs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data_path = folder / f"{name}_data.hdf5"
    with atomic_path(data_path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("davis/left/events", data=mvsec_event_matrix(left), chunks=True)
        f.create_dataset("davis/right/events", data=mvsec_event_matrix(right), chunks=True)
    gt_path = None
    if depths is not None:
        depths = np.asarray(depths, dtype=np.float32)
        if depths.ndim != 3 or depths.shape[1:] != (MVSEC_HEIGHT, MVSEC_WIDTH) or len(depths) != len(depth_ts_s):
            raise InvalidValueError(f"{name}: depths must be [N, {MVSEC_HEIGHT}, {MVSEC_WIDTH}] with N timestamps, got "
                            f"{depths.shape} and {len(depth_ts_s)}")
        gt_path = folder / f"{name}_gt.hdf5"
        with atomic_path(gt_path) as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("davis/left/depth_image_rect", data=depths, chunks=(1, MVSEC_HEIGHT, MVSEC_WIDTH),
                             compression="gzip", compression_opts=1)
            f.create_dataset("davis/left/depth_image_rect_ts", data=np.asarray(depth_ts_s, dtype=np.float64))
    if rectify_maps is not None:
        scene = scene_of(name)
        calib = folder / f"{scene}_calib"
        calib.mkdir(exist_ok=True)
        for cam, rmap in zip(("left", "right"), rectify_maps):
            for k, ax in enumerate("xy"):
                with atomic_path(calib / f"{scene}_{cam}_{ax}_map.txt") as tmp:
                    np.savetxt(tmp, np.asarray(rmap)[..., k], fmt="%.4f")
    return data_path, gt_path
