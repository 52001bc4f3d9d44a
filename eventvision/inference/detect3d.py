"""Streaming 3D detection on KITTI stereo: open a KITTI Tracking or Object folder, stream its frames at 10 Hz
through the detector with measured latency, yield results; write result files, emission times and overlays.

Frames arrive at 10 Hz (frame i at 100·i ms). One detector processes them as they come: a run started at
``s`` on the latest arrived frame is emitted at ``τ = s + latency`` (the measured wall-clock time of that run,
or a fixed latency); the next run starts at ``max(τ, next frame time)`` on the latest frame by then
(:func:`eventvision.evaluation.streaming.next_run`, the rule ``eval sap`` simulates). The model predicts the
*next* frame's boxes (StreamDSGN); its feature fusion uses the BEV map of the previously processed frame.
Before the first timed frame the predictor runs once untimed (:meth:`Detect3DPredictor.warm_up`): lazy
initialisation and kernel compilation would otherwise make the first latency seconds long.

With ``box_alignment`` (``run detect3d --box-alignment``), each car's range is refined against the stereo pair
after the detector and the track association, inside the timed run (:mod:`eventvision.models.detect3d.alignment`).

Images are resized to the scale the checkpoint was trained at (``data.image_scale`` x KITTI's 375 px height),
with the projection matrices scaled alike; results are in the KITTI camera frame with 2D boxes in the
sequence's own pixels.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from eventvision.errors import DatasetNotFoundError, InvalidValueError
from eventvision.evaluation.streaming import check_latencies_ms, next_run
from eventvision.formats.kitti import FRAME_PERIOD_MS, KITTI_IMAGE_SIZE, scaled_projection

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "detect3d_small.pt"


@dataclass(frozen=True)
class Detect3DResult:
    """One run: ``frame`` (source frame), ``emission_ms`` (sequence clock), ``latency_ms``, ``objects``
    (OBJECT_DTYPE, KITTI camera frame, track ids), grid-frame ``boxes`` [K, 7], ``labels`` [K],
    ``scores`` [K]."""

    seq: str
    frame: int
    emission_ms: float
    latency_ms: float
    objects: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray


def associate(prev: np.ndarray, cur_boxes: np.ndarray, cur_labels: np.ndarray, prev_boxes: np.ndarray,
              prev_labels: np.ndarray, next_id: int, *, min_iou: float = 0.1) -> tuple[np.ndarray, int]:
    """Greedy BEV-IoU association: each current box (in score order) takes the unmatched previous box of the
    same class with the highest rotated BEV IoU >= ``min_iou`` and inherits its track id; others get new ids.
    ``prev`` are the previous track ids. Returns (track ids [K], next free id)."""
    from eventvision.models.detect3d.head import rotated_bev_iou

    ids = np.full(len(cur_boxes), -1, dtype=np.int64)
    if len(cur_boxes) and len(prev_boxes):
        iou = rotated_bev_iou(cur_boxes, prev_boxes)
        iou[cur_labels[:, None] != prev_labels[None, :]] = 0.0
        used = np.zeros(len(prev_boxes), dtype=bool)
        for i in range(len(cur_boxes)):
            row = np.where(used, -1.0, iou[i])
            j = int(row.argmax())
            if row[j] >= min_iou:
                ids[i], used[j] = prev[j], True
    for i in np.flatnonzero(ids < 0):
        ids[i], next_id = next_id, next_id + 1
    return ids, next_id


def open_kitti(path: str | os.PathLike, names: list[str] | None = None) -> tuple[str, Path, list[str]]:
    """A KITTI Tracking root, one ``image_02/<seq>`` folder or a KITTI Object root ->
    (layout ``"tracking"|"object"``, training dir, sequence or frame names)."""
    from eventvision.data.detect3d import kitti_object
    from eventvision.data.detect3d.kitti_tracking import find_training_dir, list_sequences

    path = Path(path)
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: input not found; give a KITTI Tracking or Object root or an "
                                   f"image_02/<seq> folder")
    if path.parent.name == "image_02":
        return "tracking", find_training_dir(path.parent.parent), [path.name]
    if kitti_object.is_object_layout(path):
        layout, training = "object", kitti_object.find_object_dir(path)
        found = kitti_object.list_frames(training)
        names = [n.zfill(6) for n in names] if names else found
    else:
        layout, training = "tracking", find_training_dir(path)
        found = list_sequences(training)
        names = [n.zfill(4) for n in names] if names else found
    missing = [n for n in names if n not in found]
    if missing:
        raise DatasetNotFoundError(f"{training}: {', '.join(missing)} not found under "
                                   f"{'image_2' if layout == 'object' else 'image_02'}; check the names")
    return layout, training, names


def load_sequence(layout: str, training: Path, name: str):
    """One sequence of :func:`open_kitti`'s layout (an Object frame is a one-frame sequence)."""
    from eventvision.data.detect3d import kitti_object, kitti_tracking

    if layout == "object":
        return kitti_object.load_frame(training, name)
    return kitti_tracking.load_sequence(training, name, require_labels=False)


class Detect3DPredictor:
    """A detect3d model streaming KITTI sequences (see the module text).

    model: :class:`~eventvision.models.detect3d.StereoDetector3D` (eval mode); input_kind: ``image`` or
    ``events`` (simulated from the frames); image_scale: the checkpoint's training scale relative to KITTI's
    1242x375 images (frames of another height are resized to it; None: frames used as they are);
    latency_ms: None measures each run, a number replaces it (a faster or slower device);
    box_alignment: a :class:`~eventvision.models.detect3d.alignment.RangeForecaster` that refines each box's
    range against the stereo pair (image input only; its time counts in the measured latency), None = off.
    """

    def __init__(self, model, device, *, input_kind: str = "image", event_bins: int = 5,
                 event_contrast: float = 0.2, seed: int = 0, image_scale: float | None = None,
                 latency_ms: float | None = None, box_alignment=None):
        if latency_ms is not None:
            latency_ms = float(check_latencies_ms([latency_ms], source="fixed latency")[0])
        if image_scale is not None and not image_scale > 0:
            raise InvalidValueError(f"image_scale {image_scale} must be > 0")
        self.model, self.device = model, device
        self.input_kind, self.event_bins = input_kind, event_bins
        self.event_contrast, self.seed = event_contrast, seed
        self.image_scale, self.latency_ms = image_scale, latency_ms
        if box_alignment is not None and input_kind != "image":
            raise InvalidValueError("box alignment needs image input, and this model reads event voxel grids; use an "
                                    "image checkpoint or leave box alignment off")
        self.box_alignment = box_alignment

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None, device, *, latency_ms: float | None = None,
                        box_alignment=None):
        from eventvision.engine.checkpoint import load_model_from_checkpoint

        path = Path(path) if path else DEFAULT_CHECKPOINT
        if not path.is_file():
            raise DatasetNotFoundError(f"{path}: checkpoint not found; train one with the detect3d task")
        task, model, _ = load_model_from_checkpoint(path, device=device, task_name="detect3d")
        data = task.cfg.data
        try:
            return cls(model, device, input_kind=data.input, event_bins=data.event_bins,
                       event_contrast=data.event_contrast, seed=data.seed,
                       image_scale=float(data.get("image_scale", 1.0)), latency_ms=latency_ms,
                       box_alignment=box_alignment)
        except InvalidValueError as exc:   # say which checkpoint
            raise InvalidValueError(f"{path}: {exc}") from None

    def _resize(self, seq) -> float:
        """Factor from the sequence's pixels to the model's: its height -> scale x 375 px (1 when equal)."""
        if self.image_scale is None:
            return 1.0
        want = round(KITTI_IMAGE_SIZE[1] * self.image_scale)
        height = seq.image_size[1]
        return 1.0 if abs(height - want) <= 1 else want / height

    def _inputs(self, seq, frame: int, factor: float):
        """Left/right model inputs [C, H, W] float32 (RGB or event voxel planes), resized by ``factor``."""
        import cv2

        if self.input_kind == "events":
            from eventvision.data.detect3d.events import stereo_event_voxels
            left, right = stereo_event_voxels(seq, frame, 0, num_bins=self.event_bins,
                                              contrast=self.event_contrast, seed=self.seed)
        else:
            from eventvision.data.detect3d.kitti_tracking import read_image
            left, right = read_image(seq.left[frame]), read_image(seq.right[frame])
        if factor != 1.0:
            size = (round(left.shape[2] * factor), round(left.shape[1] * factor))
            left, right = (cv2.resize(x.transpose(1, 2, 0), size, interpolation=cv2.INTER_AREA)
                           .reshape(size[1], size[0], -1).transpose(2, 0, 1) for x in (left, right))
        return np.ascontiguousarray(left, dtype=np.float32), np.ascontiguousarray(right, dtype=np.float32)

    def _run(self, seq, frame: int, factor: float, P2, P3) -> tuple[dict, np.ndarray, np.ndarray]:
        """Detections of one frame and the model inputs [C, H, W] they were made from."""
        import torch

        left, right = self._inputs(seq, frame, factor)
        out = self.model.stream_step(torch.from_numpy(left)[None].to(self.device),
                                     torch.from_numpy(right)[None].to(self.device), P2, P3)
        det = self.model.decode(out)[0]
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return det, left, right

    def _align(self, boxes, labels, scores, ids, frame: int, left, right, projections) -> np.ndarray:
        """Boxes [K, 7] refined by ``box_alignment`` on the model inputs [C, H, W] of this run and their
        projections (P2, P3) [3, 4]."""
        return self.box_alignment(boxes, labels, scores, ids, frame, np.ascontiguousarray(left.transpose(1, 2, 0)),
                                  np.ascontiguousarray(right.transpose(1, 2, 0)), *projections)

    def _projections(self, seq, factor: float):
        """(P2, P3) scaled to the model's pixels: numpy [3, 4] float64, and torch [1, 3, 4] float32 on the device."""
        import torch

        scaled = tuple(scaled_projection(P, factor) for P in (seq.calib.P2, seq.calib.P3))
        return scaled, tuple(torch.from_numpy(P.astype(np.float32))[None].to(self.device) for P in scaled)

    def warm_up(self, seq) -> None:
        """One untimed run on the sequence's first frame (then the stream state is reset)."""
        from eventvision.models.detect3d.postprocess import detections_to_objects

        factor = self._resize(seq)
        self.model.reset_stream()
        projections, (P2, P3) = self._projections(seq, factor)
        det, left, right = self._run(seq, 0, factor, P2, P3)
        boxes = det["boxes"].cpu().numpy().astype(np.float64)
        labels = det["labels"].cpu().numpy()
        ids, _ = associate(np.arange(len(boxes)), boxes, labels, boxes, labels, len(boxes))
        if self.box_alignment is not None:   # its state is reset when the stream starts
            self._align(boxes, labels, det["scores"].cpu().numpy(), ids, 0, left, right, projections)
        detections_to_objects(boxes, det["scores"].cpu().numpy(), det["labels"].cpu().numpy(), seq.calib.P2,
                              seq.image_size)
        self.model.reset_stream()

    def stream(self, seq) -> Iterator[Detect3DResult]:
        """Simulate the 10 Hz stream of one sequence; one :class:`Detect3DResult` per run."""
        from eventvision.models.detect3d.postprocess import detections_to_objects

        factor = self._resize(seq)
        projections, (P2, P3) = self._projections(seq, factor)
        size = seq.image_size
        self.model.reset_stream()
        prev_ids, prev_labels = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        prev_boxes = np.zeros((0, 7))
        next_id, start_ms, frame = 0, 0.0, 0
        if self.box_alignment is not None:
            self.box_alignment.reset()
        while frame < seq.num_frames:
            t0 = time.perf_counter()
            det, left, right = self._run(seq, frame, factor, P2, P3)
            boxes = det["boxes"].cpu().numpy().astype(np.float64)
            labels, scores = det["labels"].cpu().numpy(), det["scores"].cpu().numpy()
            ids, next_id = associate(prev_ids, boxes, labels, prev_boxes, prev_labels, next_id)
            if self.box_alignment is not None:
                boxes = self._align(boxes, labels, scores, ids, frame, left, right, projections)
            measured = (time.perf_counter() - t0) * 1e3
            lat = measured if self.latency_ms is None else self.latency_ms
            objects = detections_to_objects(boxes, scores, labels, seq.calib.P2, size, frame=frame,
                                            track_ids=ids)
            prev_ids, prev_boxes, prev_labels = ids, boxes, labels
            emission = start_ms + lat
            yield Detect3DResult(seq.name, frame, emission, lat, objects, boxes, labels, scores)
            start_ms, frame = next_run(emission, frame, period_ms=FRAME_PERIOD_MS)


#: LiDAR points drawn in the BEV overlay: camera y (down) below this, i.e. ~0.35 m or more above a flat road
BEV_MAX_Y_M = 1.3


def write_overlays(out_dir: Path, seq, result: Detect3DResult, *, grid_ranges, min_score: float,
                   lidar_scan: Path | None = None) -> None:
    """``<frame>_bev.png`` (detections, and the next frame's ground truth in white when labelled),
    ``<frame>_image.png`` (projected 3D boxes on the left image) and ``<frame>_panel.png`` (both side by side,
    with the LiDAR scan ``lidar_scan`` projected under the image when given) for one run."""
    from eventvision.data.detect3d.kitti_object import read_velodyne
    from eventvision.data.detect3d.kitti_tracking import read_image
    from eventvision.evaluation.kitti.plots import bev_overlay, detection_panel, image_overlay, lidar_overlay
    from eventvision.geometry.boxes3d import objects_to_grid_boxes
    from eventvision.geometry.depth import rect_depth_map
    from eventvision.utils.viz import save_png

    f = result.frame
    gt = seq.objects[f + 1] if f + 1 < seq.num_frames else seq.objects[f] if seq.num_frames == 1 else None
    gt_boxes = objects_to_grid_boxes(gt)[0] if gt is not None and len(gt) else None
    shown = result.scores >= min_score
    rgb = (read_image(seq.left[f]).transpose(1, 2, 0) * 255).astype(np.uint8)
    lidar = points = None
    if lidar_scan is not None:
        rect = seq.calib.velo_to_rect(read_velodyne(lidar_scan)[:, :3])
        depth, in_view = rect_depth_map(rect, seq.calib.P2, (rgb.shape[1], rgb.shape[0]))
        lidar = lidar_overlay(rgb, depth)
        # in view, and above the road: KITTI's camera is 1.65 m over it, camera y points down
        keep = in_view & (rect[:, 1] < BEV_MAX_Y_M)
        points = np.stack([rect[keep, 2], -rect[keep, 0]], axis=1)   # camera (x right, z forward) -> grid x, y
    bev = bev_overlay(result.boxes[shown], result.labels[shown], gt_boxes,
                      x_range=grid_ranges[0], y_range=grid_ranges[1], points=points)
    save_png(out_dir / f"{f:06d}_bev.png", bev)
    image = image_overlay(rgb, result.objects[result.objects["score"] >= min_score], seq.calib.P2)
    save_png(out_dir / f"{f:06d}_image.png", image)
    save_png(out_dir / f"{f:06d}_panel.png", detection_panel(image, bev, lidar))


def lidar_scan_path(layout: str, training: Path, seq, frame: int) -> Path | None:
    """The LiDAR scan of ``seq``'s frame ``frame`` if the folder has one: Object ``velodyne/<name>.bin``,
    Tracking ``velodyne/<seq>/<frame>.bin``; None otherwise."""
    from eventvision.data.detect3d.kitti_object import velodyne_path

    path = velodyne_path(training, seq.left[frame].stem, seq=None if layout == "object" else seq.name)
    return path if path.is_file() else None


def run_to_folder(predictor: Detect3DPredictor, layout: str, training: Path, names: list[str],
                  out_dir: Path, *, overlays: bool = True, overlay_score: float = 0.3) -> dict:
    """Stream every sequence (or Object frame) and write, under ``out_dir``: results (Tracking: ``<seq>.txt``
    tracking columns with score, ``frame`` = source frame; Object: ``<frame>.txt`` object columns),
    ``emission.txt`` (``seq frame_index emission_time_ms``, what ``eval sap`` reads), ``summary.json`` and
    the overlays ``overlays/<seq>/<frame>_{bev,image,panel}.png``. Returns the summary."""
    from eventvision.formats.kitti import format_object_lines, make_objects, write_result_file
    from eventvision.utils.io import atomic_write_text
    from eventvision.utils.progress import progress

    grid = predictor.model.grid
    grid_ranges = (tuple(grid.x_range), tuple(grid.y_range))
    emissions, all_lat = [], []
    summary: dict = {"layout": layout, "sequences": {}}
    warmed = False
    bar = progress(total=len(names), desc=f"detect3d {layout}", unit="seq")
    for name in names:
        seq = load_sequence(layout, training, name)
        if not warmed:
            predictor.warm_up(seq)
            warmed = True
        results = []
        for res in predictor.stream(seq):
            results.append(res)
            emissions.append(f"{name} {res.frame} {res.emission_ms:.3f}")
            if overlays:
                write_overlays(out_dir / "overlays" / name, seq, res, grid_ranges=grid_ranges,
                               min_score=overlay_score,
                               lidar_scan=lidar_scan_path(layout, training, seq, res.frame))
        objs = np.concatenate([r.objects for r in results]) if results else make_objects()[:0]
        if layout == "object":
            atomic_write_text(out_dir / f"{name}.txt", format_object_lines(objs))
        else:
            write_result_file(out_dir / f"{name}.txt", objs)
        lats = [r.latency_ms for r in results]
        all_lat += lats
        summary["sequences"][name] = {"frames": seq.num_frames, "processed": len(lats),
                                      "skipped": seq.num_frames - len(lats),
                                      "mean_latency_ms": float(np.mean(lats)) if lats else 0.0}
        bar.update(1)
    bar.close()
    atomic_write_text(out_dir / "emission.txt",
                      "# seq frame_index emission_time_ms\n" + "\n".join(emissions) + "\n")
    summary["mean_latency_ms"] = float(np.mean(all_lat)) if all_lat else 0.0
    summary["latency_source"] = "fixed" if predictor.latency_ms is not None else "measured"
    summary["warm_up"] = "one untimed run before the first timed frame"
    summary["device"] = str(predictor.device)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary
