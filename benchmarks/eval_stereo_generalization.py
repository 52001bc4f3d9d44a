"""Does a stereo checkpoint generalize? Held-out synthetic scenes of every family, and recordings written
in the MVSEC (346x260) and DSEC (640x480) layouts in raw sensor coordinates with rectification maps,
each compared with SGBM (``eventvision.matching.sgbm``) and the constant training median.

    python benchmarks/eval_stereo_generalization.py --checkpoint eventvision/checkpoints/stereo_refine.pt \
        --scenes 4 --clips 1 --json out.json

* **synthetic**: ``SyntheticStereoDataset(split="test")`` scenes of each family of
  ``eventvision.simulate.stereo_scenes.FAMILIES`` at the checkpoint's training size (or ``--synthetic-size``);
  the model sees the dataset's encoding of the window, SGBM the same window's events.
* **independent**: clips made another way (``benchmarks/stereo_independent.py``: planes textured with real
  photographs, dots or gratings, plain image warping, v2e-mode events with leak and shot noise) at 346x260,
  ``--clips`` per texture, the window [50, 100) ms; model and SGBM in process on the same rectified events.
  **independent_ground**: the same kind of clips with a ground plane below the horizon (the rig translating along
  the baseline), other seeds.
* **kitti**: a real street scene with real depth (``benchmarks/stereo_kitti.py``: the KITTI stereo pair of
  ``../shared/data`` seen by a pitching rig, rendered exactly from the photographs, v2e-mode events, GT from the
  LiDAR scan, sparse like DSEC's and MVSEC's) at 621x174, ``--clips`` clips of different pitch rates, the window
  [50, 100) ms; model and SGBM in process.
* **long**: per family, ``--clips`` scenes streamed as one 1.5 s recording each at 346x260 (MVSEC rig) whose
  surfaces and rig oscillate (periods 1-2 s), so speeds pass through zero and back; every third 50 ms window
  from 100 ms on (10 windows), in process. The other sets see a scene's first 100 ms (motion at its fastest,
  as in training); this one asks whether the answers hold over a long stream. **long_start**: the first two
  windows of the same scenes, for comparison. **long_fresh**: the windows of "long", each emulated from a fresh sensor
  started 10 ms before it (as in training) instead of cut from the stream: is a later window hard because of the
  sensor's history or because of the motion?
* **mvsec / dsec**: per family, ``--clips`` fresh scenes of 100 ms (two 50 ms windows each, seen from
  10 ms after the scene starts like the training samples) at the layout's size, rig of the layout
  (MVSEC: f 226 px, b 0.1 m; DSEC: f 570 px, b 0.6 m; disparities drawn over 0.5..64 px as in training),
  events moved to raw sensor coordinates by a random :class:`RectifyDistortion` per camera and written
  with ``eventvision.data.stereo.export`` plus their rectification maps. The learned model runs through
  ``eventvision run stereo --input FILE`` (the library's streaming path: reading, rectification,
  windowing, SBT, network); SGBM gets the same rectified events of each window. GT is the exact scene
  disparity at each window end. One marker event at t = 0 in each camera makes the run's 50 ms windows
  start with the clips.

Metrics over valid GT pixels (finite, in ``(0, max_disparity)``): EPE of the model and of the constant on
all of them; SGBM's coverage and its EPE on the pixels where it answers, with the model's EPE on those
same pixels; the model's EPE split into the pixels with a left-camera event of the window within 2 px
(``eventvision.evaluation.stereo.event_support_mask``) and the rest, where only context can answer; the
share of pixels off by more than 4 px and the share of the error sum they make (gross errors: a wrong match,
not imprecise refinement). Pixel-weighted totals per set. Energy per inference at 346x260 comes from
``StereoTask.energy``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

LAYOUTS = {
    "mvsec": dict(width=346, height=260, focal_px=226.0, baseline_m=0.1),
    "dsec": dict(width=640, height=480, focal_px=570.0, baseline_m=0.6),
}
CLIP_US = 100_000
#: the sets ``--sets`` can name
SETS = ("synthetic", "mvsec", "dsec", "long", "long_start", "long_fresh", "independent", "independent_ground", "kitti")
#: ``--split val`` shifts every clip and recording seed by this much (disjoint from the test seeds, which step by at
#: most 100 per family and clip) and scores the synthetic set on the dataset's ``val`` split: scenes to choose
#: between checkpoints on, so the test sets stay unseen. The kitti set (one photograph pair) has no val clips.
VAL_SEED_SHIFT = 50_000
#: seed of the kitti set's first clip (clip c: KITTI_SEED + c)
KITTI_SEED = 9_500
#: the "long" set: recording length, first window start and stride between the evaluated windows (µs)
LONG_US, LONG_FIRST_US, LONG_STRIDE_US = 1_500_000, 100_000, 150_000
#: texture families of the "independent" set (benchmarks/stereo_independent.py)
INDEPENDENT_TEXTURES = ("photo", "dots", "sine")
WINDOW_US = 50_000
#: errors above this (px) are "gross": the answer is in another match, not off by sub-pixel refinement
GROSS_PX = 4.0
#: what a checkpoint's training may change about the synthetic scenes themselves (sensor start times, rig rotation,
#: a ground plane in every family, a cap on the rig's speed, dead-leaves textures), reset for every held-out and val
#: scene
HELD_OUT_SCENE_RESETS = {"window_start_ms": (0.0, 0.0), "ego_rotation_px_s": None, "ground_prob": None,
                         "max_ego_image_speed_px_s": None, "leaves_prob": None}
#: the synthetic datasets' seed for held-out and val scenes: a checkpoint's training ``seed`` offsets every scene
#: seed, so following it would score each checkpoint on other scenes
HELD_OUT_SEED = 0


class Tally:
    """Error sums of one set/family: model and constant on all GT pixels, model and SGBM on SGBM's pixels."""

    def __init__(self):
        self.n = self.n_sgbm = self.n_supported = 0
        self.err = self.err_const = self.err_sgbm = self.err_model_on_sgbm = self.err_supported = 0.0
        self.over1 = self.over3 = self.over4 = 0
        self.err_over4 = 0.0

    def add(
        self, pred: np.ndarray, sgbm: np.ndarray, gt: np.ndarray, constant: float, max_disp: float,
        left_events: np.ndarray,
    ) -> None:
        """One window: ``left_events`` are the left camera's rectified events of the window (for the split
        of the error into pixels with an event within 2 px and the rest)."""
        from eventvision.evaluation.stereo import event_support_mask
        from eventvision.utils.disparity import valid_disparity

        valid = valid_disparity(gt, max_disp)
        e = np.abs(pred[valid] - gt[valid])
        supported = event_support_mask(left_events, gt.shape[1], gt.shape[0], radius=2)[valid]
        self.n_supported += int(supported.sum())
        self.err_supported += float(e[supported].sum())
        self.n += int(valid.sum())
        self.err += float(e.sum())
        self.over1 += int((e > 1).sum())
        self.over3 += int((e > 3).sum())
        gross = e > GROSS_PX
        self.over4 += int(gross.sum())
        self.err_over4 += float(e[gross].sum())
        self.err_const += float(np.abs(constant - gt[valid]).sum())
        answered = valid & np.isfinite(sgbm)
        self.n_sgbm += int(answered.sum())
        self.err_sgbm += float(np.abs(sgbm[answered] - gt[answered]).sum())
        self.err_model_on_sgbm += float(np.abs(pred[answered] - gt[answered]).sum())

    def merge(self, other: "Tally") -> None:
        for k, v in vars(other).items():
            setattr(self, k, getattr(self, k) + v)

    def row(self) -> dict:
        n, m = max(self.n, 1), max(self.n_sgbm, 1)
        return {
            "gt_pixels": self.n,
            "model_epe": self.err / n,
            "event_supported_pct": 100 * self.n_supported / n,
            "model_epe_event_supported": self.err_supported / max(self.n_supported, 1),
            "model_epe_no_event": (self.err - self.err_supported) / max(self.n - self.n_supported, 1),
            "model_1pe": 100 * self.over1 / n,
            "model_3pe": 100 * self.over3 / n,
            "model_4pe": 100 * self.over4 / n,
            "gross_error_share_pct": 100 * self.err_over4 / max(self.err, 1e-12),
            "constant_epe": self.err_const / n,
            "sgbm_coverage": 100 * self.n_sgbm / n,
            "sgbm_epe": self.err_sgbm / m,
            "model_epe_on_sgbm_pixels": self.err_model_on_sgbm / m,
        }


def training_median(task, samples: int) -> float:
    """Median of the valid GT disparities of the first ``samples`` training scenes (the constant baseline)."""
    from eventvision.utils.disparity import valid_disparity

    ds = task.build_reading_dataset("train")     # the first scenes only, not a GPU recipe's whole split
    max_d = float(task.cfg.data.max_disparity)
    values = [ds.window_events(i)[4] for i in range(min(samples, len(ds)))]
    return float(np.median(np.concatenate([v[valid_disparity(v, max_d)] for v in values])))


def predict(task, model, inputs: dict) -> np.ndarray:
    """One window's encoded inputs (a dataset pair encoder's dict) -> disparity [H, W] px."""
    import torch

    with torch.no_grad():
        batch = {k: torch.from_numpy(v)[None] for k, v in inputs.items()}
        return task.predict(model, batch)[0].numpy()


def panel_row(
    left_events: np.ndarray, pred: np.ndarray, sgbm: np.ndarray, gt: np.ndarray, max_disp: float
) -> np.ndarray:
    """One figure row: left events | model | SGBM | GT (RGB; disparity colour-mapped over 0..max_disp,
    NaN black)."""
    from eventvision.utils.viz import colorize, event_image

    h, w = gt.shape
    tiles = [event_image(left_events, w, h)] + [colorize(d, 0.0, max_disp) for d in (pred, sgbm, gt)]
    gap = np.full((h, 4, 3), 255, np.uint8)
    return np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1)


def held_out_scene_config(train_synthetic, family: str, **changes):
    """The held-out scenes of ``family`` with the rig and sizes of a checkpoint's ``data.synthetic``, with
    :data:`HELD_OUT_SCENE_RESETS` applied, so every checkpoint is scored on the same scenes (the dataset's seed is
    :data:`HELD_OUT_SEED`)."""
    from eventvision.data.stereo.synthetic import SyntheticStereoConfig

    return dataclasses.replace(SyntheticStereoConfig.from_config(train_synthetic), family=family,
                               **HELD_OUT_SCENE_RESETS, **changes)


def held_out_scene_overrides() -> tuple[str, ...]:
    """:data:`HELD_OUT_SCENE_RESETS` and :data:`HELD_OUT_SEED` as ``key=value`` overrides of a stereo task config
    (for ``eventvision eval stereo`` and :func:`eventvision.engine.checkpoint.load_model_from_checkpoint`)."""
    resets = [f"data.synthetic.{key}={json.dumps(list(value) if isinstance(value, tuple) else value)}"
              for key, value in HELD_OUT_SCENE_RESETS.items()]
    return (*resets, f"seed={HELD_OUT_SEED}")


def eval_synthetic(
    task, model, family: str, scenes: int, constant: float, panels: list | None = None,
    size: tuple[int, int] | None = None, split: str = "test",
) -> Tally:
    from eventvision.data.stereo.synthetic import SyntheticStereoDataset
    from eventvision.events.core import slice_time
    from eventvision.matching.sgbm import sgbm_from_events

    data = task.cfg.data
    scene = held_out_scene_config(data.synthetic, family)
    if size is not None:
        scene = dataclasses.replace(scene, width=size[0], height=size[1])
    ds = SyntheticStereoDataset(
        split=split,
        num_samples=scenes,
        seed=HELD_OUT_SEED,
        window_us=WINDOW_US,
        num_bins=int(data.num_bins),
        max_disparity=float(data.max_disparity),
        scene=scene,
        encoding=task.encoding,
    )
    tally = Tally()
    for i in range(scenes):
        left, right, t0, t1, gt = ds.window_events(i)
        pred = predict(task, model, ds.encoder(left, right, t0, t1))
        sgbm = sgbm_from_events(
            left,
            right,
            t_start=t0,
            t_end=t1,
            width=scene.width,
            height=scene.height,
            max_disparity=float(data.max_disparity),
        )
        window_left = slice_time(left, t0, t1)
        tally.add(pred, sgbm, gt, constant, float(data.max_disparity), window_left)
        if panels is not None and i == 0:
            panels.append(panel_row(window_left, pred, sgbm, gt, float(data.max_disparity)))
    return tally


def eval_independent(task, model, texture: str, clips: int, seed: int, constant: float, *, ground: bool = False
                     ) -> Tally:
    """Clips made another way (``benchmarks/stereo_independent.py``: real-photo / dot / grating textures on
    planes, image warping, v2e-mode events) at 346x260, with a ground plane if ``ground``; the window [50, 100) ms
    of each clip."""
    from eventvision.events.core import slice_time
    from eventvision.matching.sgbm import sgbm_from_events
    from stereo_independent import make_clip

    width, height = LAYOUTS["mvsec"]["width"], LAYOUTS["mvsec"]["height"]
    encoder = task.pair_encoder(width=width, height=height)
    max_d = float(task.cfg.data.max_disparity)
    t0, t1 = CLIP_US - WINDOW_US, CLIP_US
    tally = Tally()
    for c in range(clips):
        clip = make_clip(seed + c, width=width, height=height, texture=texture, ground=ground)
        left, right = slice_time(clip.left, t0, t1), slice_time(clip.right, t0, t1)
        pred = predict(task, model, encoder(left, right, t0, t1))
        sgbm = sgbm_from_events(left, right, t_start=t0, t_end=t1, width=width, height=height, max_disparity=max_d)
        tally.add(pred, sgbm, clip.disparity_at(t1), constant, max_d, left)
    return tally


def kitti_windows(task, clips: int, seed: int = KITTI_SEED, root: Path | None = None):
    """The kitti set's windows: ``clips`` clips of real KITTI scenes (``benchmarks/stereo_kitti.py``), cycling through
    the frames of ``root`` (a KITTI object ``training`` folder; default: the one pair in ``../shared/data``), the
    window [50, 100) ms of each -> yields ``(clip, left events, right events, the task's encoded inputs)``."""
    from stereo_kitti import KITTI_TRAINING, kitti_frames, make_kitti_clip

    from eventvision.events.core import slice_time

    t0, t1 = CLIP_US - WINDOW_US, CLIP_US
    root = Path(root or KITTI_TRAINING)
    frames = kitti_frames(root)
    for c in range(clips):
        clip = make_kitti_clip(seed + c, duration_us=CLIP_US, training=root, name=frames[c % len(frames)])
        left, right = slice_time(clip.left, t0, t1), slice_time(clip.right, t0, t1)
        yield clip, left, right, task.pair_encoder(width=clip.width, height=clip.height)(left, right, t0, t1)


def eval_kitti(task, model, clips: int, seed: int, constant: float, panels: list | None = None,
               root: Path | None = None) -> Tally:
    """The kitti set (:func:`kitti_windows`); the first clip's figure row into ``panels`` (the sparse LiDAR GT drawn
    3x3 px per point)."""
    import cv2

    from eventvision.matching.sgbm import sgbm_from_events

    max_d = float(task.cfg.data.max_disparity)
    t0, t1 = CLIP_US - WINDOW_US, CLIP_US
    tally = Tally()
    for c, (clip, left, right, inputs) in enumerate(kitti_windows(task, clips, seed, root)):
        pred = predict(task, model, inputs)
        sgbm = sgbm_from_events(left, right, t_start=t0, t_end=t1, width=clip.width, height=clip.height,
                                max_disparity=max_d)
        gt = clip.disparity_at(t1)
        tally.add(pred, sgbm, gt, constant, max_d, left)
        if panels is not None and c == 0:
            shown = cv2.dilate(np.nan_to_num(gt, nan=0.0), np.ones((3, 3), np.uint8))
            panels.append(panel_row(left, pred, sgbm, np.where(shown > 0, shown, np.nan), max_d))
    return tally


def eval_long(task, model, family: str, clips: int, seed: int, constant: float, *, start: bool = False,
              fresh: bool = False) -> Tally:
    """``clips`` scenes of ``family`` streamed for ``LONG_US`` at 346x260 (one oscillating scene each); the
    windows starting at ``LONG_FIRST_US + k * LONG_STRIDE_US``, or with ``start`` the same scenes' windows before
    ``LONG_FIRST_US`` (the motion at its fastest, as in training); with ``fresh`` each window's events come from a
    fresh sensor started ``WARMUP_US`` before it (``SyntheticStereoRecording.fresh_sensor_window``)."""
    from eventvision.data.stereo.synthetic import SyntheticStereoRecording
    from eventvision.matching.sgbm import sgbm_from_events

    scene = held_out_scene_config(task.cfg.data.synthetic, family, **LAYOUTS["mvsec"])
    encoder = task.pair_encoder(width=scene.width, height=scene.height)
    max_d = float(task.cfg.data.max_disparity)
    tally = Tally()
    for c in range(clips):
        rec = SyntheticStereoRecording(duration_us=LONG_FIRST_US if start else LONG_US, seed=seed + c, scene=scene,
                                       clip_us=0)
        for t0, t1, left, right in rec.iter_windows(WINDOW_US):
            if not start and (t0 < LONG_FIRST_US or (t0 - LONG_FIRST_US) % LONG_STRIDE_US):
                continue
            if fresh:
                left, right = rec.fresh_sensor_window(t0, t1)
            pred = predict(task, model, encoder(left, right, t0, t1))
            sgbm = sgbm_from_events(left, right, t_start=t0, t_end=t1, width=scene.width, height=scene.height,
                                    max_disparity=max_d)
            tally.add(pred, sgbm, rec.disparity_at(t1), constant, max_d, left)
    return tally


def write_recording(folder: Path, layout: str, family: str, clips: int, seed: int, train_synthetic):
    """Write one recording of ``clips`` fresh scenes; returns (path for run stereo, recording, maps)."""
    from eventvision.data.stereo.export import write_dsec_sequence, write_mvsec_sequence
    from eventvision.data.stereo.synthetic import SyntheticStereoRecording
    from eventvision.events.core import EVENT_DTYPE
    from eventvision.simulate.stereo_scenes import RectifyDistortion

    scene = held_out_scene_config(train_synthetic, family, **LAYOUTS[layout])
    rec = SyntheticStereoRecording(duration_us=clips * CLIP_US, seed=seed, scene=scene, clip_us=CLIP_US)
    parts_l, parts_r = [], []
    for _, _, left, right in rec.iter_windows(WINDOW_US):
        parts_l.append(left)
        parts_r.append(right)
    rng = np.random.default_rng(seed)
    dists = [RectifyDistortion.random(scene.width, scene.height, rng) for _ in range(2)]
    marker = np.zeros(1, dtype=EVENT_DTYPE)
    marker["p"] = 1
    left = np.concatenate([marker, dists[0].to_raw(np.concatenate(parts_l))])
    right = np.concatenate([marker, dists[1].to_raw(np.concatenate(parts_r))])
    maps = tuple(d.rectify_map() for d in dists)
    if layout == "mvsec":
        path, _ = write_mvsec_sequence(folder, "indoor_flying9", left=left, right=right, rectify_maps=maps)
    else:
        path = write_dsec_sequence(
            folder / "synthetic_00_a",
            left=left,
            right=right,
            width=scene.width,
            height=scene.height,
            rectify_maps=maps,
        )
    return path, rec, maps, (left, right)


def eval_recording(
    ckpt: Path,
    task,
    layout: str,
    family: str,
    clips: int,
    seed: int,
    constant: float,
    threads: int,
    workdir: Path,
) -> Tally:
    import h5py

    from eventvision.events.core import slice_time
    from eventvision.matching.sgbm import sgbm_from_events
    from eventvision.representations import rectify

    folder = workdir / f"{layout}_{family}"
    path, rec, maps, (raw_l, raw_r) = write_recording(
        folder, layout, family, clips, seed, task.cfg.data.synthetic
    )
    out = workdir / f"out_{layout}_{family}"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(threads))
    cmd = [
        sys.executable,
        "-m",
        "eventvision",
        "run",
        "stereo",
        "--input",
        str(path),
        "--checkpoint",
        str(ckpt),
        "--output",
        str(out),
        "--png-every",
        "0",
        "--threads",
        str(threads),
    ]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    with h5py.File(out / "disparity.h5", "r") as f:
        preds, stamps = np.asarray(f["disparity"]), np.asarray(f["timestamps_us"])
    rect_l, rect_r = rectify(raw_l, maps[0]), rectify(raw_r, maps[1])
    max_d = float(task.cfg.data.max_disparity)
    tally = Tally()
    for pred, t1 in zip(preds, stamps):
        t1 = int(t1)
        sgbm = sgbm_from_events(
            rect_l,
            rect_r,
            t_start=t1 - WINDOW_US,
            t_end=t1,
            width=rec.width,
            height=rec.height,
            max_disparity=max_d,
        )
        window_left = slice_time(rect_l, t1 - WINDOW_US, t1)
        tally.add(np.asarray(pred, dtype=np.float32), sgbm, rec.disparity_at(t1), constant, max_d, window_left)
    return tally


def main(argv=None) -> int:
    from eventvision.inference.stereo import BUNDLED_CHECKPOINT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(BUNDLED_CHECKPOINT),
                        help="default: the bundled default of run stereo")
    parser.add_argument("--scenes", type=int, default=4, help="held-out synthetic scenes per family")
    parser.add_argument("--clips", type=int, default=1, help="100 ms scenes per family and recording layout")
    parser.add_argument("--families", default="all", help="comma-separated families (default: all)")
    parser.add_argument("--sets", default="synthetic,mvsec,dsec,independent",
                        help="synthetic, mvsec, dsec, long, long_start, long_fresh (training generator), "
                             "independent and independent_ground (made another way) and kitti (a real scene with "
                             "LiDAR GT)")
    parser.add_argument("--synthetic-size", default="", metavar="WxH",
                        help="size of the held-out synthetic scenes (default: the checkpoint's training size)")
    parser.add_argument("--median-samples", type=int, default=64, help="training scenes for the constant")
    parser.add_argument("--kitti-root", default="",
                        help="kitti set: a KITTI object training folder (image_2, image_3, calib, velodyne); "
                             "default: the pair in ../shared/data")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="val: other scenes and clips of every set but kitti (seeds shifted by "
                             f"{VAL_SEED_SHIFT}, the synthetic dataset's val split), to choose between checkpoints")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default="", help="also write the table as JSON here")
    parser.add_argument("--energy", action="store_true", help="also report energy per inference at 346x260")
    parser.add_argument(
        "--figure",
        default="",
        help="PNG: left events | model | SGBM | GT of the first held-out synthetic scene per family (and of the "
             "first kitti clip)",
    )
    parser.add_argument("--figure-scale", type=int, default=2, help="pixel repeat of the figure (1: as rendered)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sets.split(",")) - set(SETS))
    if unknown:
        from eventvision.errors import InvalidValueError

        raise InvalidValueError(f"--sets: unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    if args.split == "val" and "kitti" in args.sets.split(","):
        from eventvision.errors import InvalidValueError

        raise InvalidValueError("--split val: the kitti set has no validation clips (one photograph pair, kept for "
                                "testing); leave it out of --sets")
    shift = VAL_SEED_SHIFT if args.split == "val" else 0
    if "kitti" in args.sets.split(",") and args.kitti_root:
        from stereo_kitti import kitti_frames

        kitti_frames(Path(args.kitti_root))    # a folder without frames: one line before any work

    import torch

    from eventvision.cli.run_stereo import parse_size
    from eventvision.engine.checkpoint import load_model_from_checkpoint
    from eventvision.simulate.stereo_scenes import FAMILIES

    torch.set_num_threads(args.threads)
    ckpt = Path(args.checkpoint).resolve()
    task, model, _ = load_model_from_checkpoint(ckpt, device="cpu", task_name="stereo")
    model.eval()
    families = list(FAMILIES) if args.families == "all" else args.families.split(",")
    t_start = time.time()
    size = parse_size(args.synthetic_size) if args.synthetic_size else None
    constant = training_median(task, args.median_samples)
    print(f"constant = median training disparity {constant:.2f} px ({args.median_samples} training scenes)")
    results: dict = {"checkpoint": str(ckpt), "split": args.split, "constant_px": constant, "sets": {}}
    if args.energy:
        from eventvision.data.stereo.synthetic import SyntheticStereoDataset

        scene = held_out_scene_config(task.cfg.data.synthetic, str(task.cfg.data.synthetic.family), **LAYOUTS["mvsec"])
        ds = SyntheticStereoDataset(
            split="test",
            num_samples=1,
            window_us=WINDOW_US,
            scene=scene,
            num_bins=int(task.cfg.data.num_bins),
            max_disparity=float(task.cfg.data.max_disparity),
            encoding=task.encoding,
        )
        with torch.no_grad():
            results["energy_346x260"] = task.energy(model, task.collate([ds[0]]))
        print(f"energy per inference at 346x260: {results['energy_346x260']}")
    panels: list | None = [] if args.figure else None
    with tempfile.TemporaryDirectory() as tmp:
        for set_name in args.sets.split(","):
            total = Tally()
            rows = {}
            set_families = {"independent": INDEPENDENT_TEXTURES, "independent_ground": INDEPENDENT_TEXTURES,
                            "kitti": ("pitch",)}.get(set_name, families)
            for k, family in enumerate(set_families):
                if set_name == "kitti":
                    tally = eval_kitti(task, model, args.clips, KITTI_SEED, constant, panels,
                                       root=Path(args.kitti_root) if args.kitti_root else None)
                elif set_name in ("independent", "independent_ground"):
                    ground = set_name == "independent_ground"
                    tally = eval_independent(task, model, family, args.clips, shift + (9_600 if ground else 9_000)
                                             + 100 * k, constant, ground=ground)
                elif set_name in ("long", "long_start", "long_fresh"):
                    tally = eval_long(task, model, family, args.clips, shift + 8_000 + 100 * k, constant,
                                      start=set_name == "long_start", fresh=set_name == "long_fresh")
                elif set_name == "synthetic":
                    tally = eval_synthetic(task, model, family, args.scenes, constant, panels, size, args.split)
                else:
                    tally = eval_recording(
                        ckpt,
                        task,
                        set_name,
                        family,
                        args.clips,
                        shift + 7_000 + 10 * k,
                        constant,
                        args.threads,
                        Path(tmp),
                    )
                rows[family] = tally.row()
                total.merge(tally)
                r = rows[family]
                print(
                    f"{set_name:9s} {family:12s} model {r['model_epe']:.2f} px "
                    f"(1PE {r['model_1pe']:.1f} %) | constant {r['constant_epe']:.2f} | "
                    f"SGBM {r['sgbm_epe']:.2f} on {r['sgbm_coverage']:.0f} % "
                    f"(model there {r['model_epe_on_sgbm_pixels']:.2f}) | event within 2 px on "
                    f"{r['event_supported_pct']:.0f} %: model {r['model_epe_event_supported']:.2f} there, "
                    f"{r['model_epe_no_event']:.2f} elsewhere | {r['model_4pe']:.1f} % off by > 4 px make "
                    f"{r['gross_error_share_pct']:.0f} % of the error  [{time.time() - t_start:.0f} s]",
                    flush=True,
                )
            rows["all"] = total.row()
            results["sets"][set_name] = rows
    print(
        "\n| set | family | GT px | model EPE | model 1PE % | constant EPE | SGBM coverage % | SGBM EPE | "
        "model EPE on SGBM px | event within 2 px % | model EPE there | model EPE elsewhere | model 4PE % | "
        "error share of 4PE px % |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for set_name, rows in results["sets"].items():
        for family, r in rows.items():
            print(
                f"| {set_name} | {family} | {r['gt_pixels']} | {r['model_epe']:.2f} | {r['model_1pe']:.1f} | "
                f"{r['constant_epe']:.2f} | {r['sgbm_coverage']:.0f} | {r['sgbm_epe']:.2f} | "
                f"{r['model_epe_on_sgbm_pixels']:.2f} | {r['event_supported_pct']:.0f} | "
                f"{r['model_epe_event_supported']:.2f} | {r['model_epe_no_event']:.2f} | {r['model_4pe']:.1f} | "
                f"{r['gross_error_share_pct']:.0f} |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if panels:
        from eventvision.utils.viz import save_png

        width = max(p.shape[1] for p in panels)     # sets of other sizes: rows padded white on the right
        panels = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in panels]
        gap = np.full((4, width, 3), 255, np.uint8)
        figure = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=0)
        k = max(1, args.figure_scale)
        save_png(args.figure, np.repeat(np.repeat(figure, k, axis=0), k, axis=1))
    return 0


if __name__ == "__main__":
    from eventvision.errors import exit_with

    exit_with(main)   # a missing or unsuitable checkpoint: one line, exit 2, like the CLI
