"""``eventvision run detect3d``: stream KITTI-layout stereo sequences through the 3D detector.

    eventvision run detect3d --input KITTI_ROOT|SEQ_DIR --output DIR [--checkpoint C] [--seqs 0001,0006]
        [--latency-ms L] [--device auto] [--no-overlays]

Frames arrive at 10 Hz (frame i at 100·i ms). One detector processes them as they come: a run started at
``s`` on the latest arrived frame is emitted at ``τ = s + latency`` (the measured wall-clock time of that
run, or ``--latency-ms``); the next run starts at ``max(τ, next frame time)`` on the latest frame by then,
so frames arriving while busy are skipped. The model predicts the *next* frame's boxes (StreamDSGN); its
feature fusion uses the BEV map of the previously processed frame.

Writes ``DIR/<seq>.txt`` (KITTI tracking columns with score; ``frame`` = the source frame; track ids by greedy
BEV-IoU association so ``--strategy kf`` works), ``DIR/emission.txt`` (``seq frame_index emission_time_ms``,
what ``eventvision eval sap --emission`` reads), ``DIR/summary.json`` and, unless ``--no-overlays``,
``DIR/overlays/<seq>/<frame>_bev.png`` / ``_image.png``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from eventvision.cli.args import finite_float, nonneg_float

HELP = "stream KITTI stereo sequences through the 3D detector: KITTI results + emission times + overlays"

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "detect3d_small.pt"
PERIOD_MS = 100.0


def add_arguments(parser) -> None:
    parser.add_argument("--input", required=True,
                        help="KITTI Tracking root ([training/]image_02, image_03, calib) or one image_02/<seq> folder")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--checkpoint", default=None, help=f"detect3d checkpoint (default: {DEFAULT_CHECKPOINT.name})")
    parser.add_argument("--seqs", default=None, help="comma-separated sequences (default: all)")
    parser.add_argument("--latency-ms", type=nonneg_float, default=None,
                        help="use this latency per run instead of the measured one (simulates a faster device)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--no-overlays", action="store_true", help="skip the BEV/image PNG overlays")
    parser.add_argument("--overlay-score", type=finite_float, default=0.3,
                        help="draw detections with at least this score in the overlays (results keep all)")


# ----------------------------------------------------------------------------------------------- pieces
def resolve_input(path: str | Path, seqs: str | None) -> tuple[Path, list[str]]:
    """``--input`` -> (training dir, sequence names)."""
    from eventvision.data.detect3d.kitti_tracking import find_training_dir, list_sequences
    from eventvision.errors import UserError

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: input not found; pass a KITTI Tracking root or an image_02/<seq> folder")
    if path.parent.name == "image_02":
        training, names = find_training_dir(path.parent.parent), [path.name]
    else:
        training = find_training_dir(path)
        names = list_sequences(training)
    if seqs:
        want = [s.strip().zfill(4) for s in seqs.split(",") if s.strip()]
        missing = [s for s in want if s not in names]
        if missing:
            raise UserError(f"{training}: sequences {', '.join(missing)} not found under image_02; check --seqs")
        names = want
    return training, names


def associate(prev: np.ndarray, cur_boxes: np.ndarray, cur_labels: np.ndarray, prev_boxes: np.ndarray,
              prev_labels: np.ndarray, next_id: int, *, min_iou: float = 0.1) -> tuple[np.ndarray, int]:
    """Greedy BEV-IoU association: each current box (in score order) takes the unmatched previous box of the
    same class with the highest rotated BEV IoU ≥ ``min_iou`` and inherits its track id; others get new ids.
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


def stream_sequence(model, seq, device, *, input_kind: str = "image", event_bins: int = 5,
                    event_contrast: float = 0.2, latency_ms: float | None = None, seed: int = 0):
    """Simulate the 10 Hz stream of one sequence; yields per run ``(frame, emission_ms, latency_ms, objects,
    grid boxes, labels, scores)`` (objects = OBJECT_DTYPE in the KITTI camera frame, ``frame`` = source frame)."""
    import torch

    from eventvision.data.detect3d.kitti_tracking import read_stereo_pair
    from eventvision.models.detect3d.postprocess import detections_to_objects

    model.reset_stream()
    P2 = torch.from_numpy(seq.calib.P2.astype(np.float32))[None].to(device)
    P3 = torch.from_numpy(seq.calib.P3.astype(np.float32))[None].to(device)
    size = seq.image_size
    prev_ids = np.zeros(0, dtype=np.int64)
    prev_boxes, prev_labels = np.zeros((0, 7)), np.zeros(0, dtype=np.int64)
    next_id = 0
    start_ms, frame = 0.0, 0
    while frame < seq.num_frames:
        t0 = time.perf_counter()
        if input_kind == "events":
            from eventvision.data.detect3d.events import stereo_event_voxels
            left, right = stereo_event_voxels(seq, frame, 0, num_bins=event_bins, contrast=event_contrast, seed=seed)
        else:
            left, right = read_stereo_pair(seq.left[frame], seq.right[frame])
        left_t = torch.from_numpy(left)[None].to(device)
        right_t = torch.from_numpy(right)[None].to(device)
        out = model.stream_step(left_t, right_t, P2, P3)
        det = model.decode(out)[0]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        measured = (time.perf_counter() - t0) * 1e3
        lat = measured if latency_ms is None else float(latency_ms)
        boxes = det["boxes"].cpu().numpy().astype(np.float64)
        labels = det["labels"].cpu().numpy()
        scores = det["scores"].cpu().numpy()
        ids, next_id = associate(prev_ids, boxes, labels, prev_boxes, prev_labels, next_id)
        objects = detections_to_objects(boxes, scores, labels, seq.calib.P2, size, frame=frame, track_ids=ids)
        prev_ids, prev_boxes, prev_labels = ids, boxes, labels
        emission = start_ms + lat
        yield frame, emission, lat, objects, boxes, labels, scores
        start_ms = max(emission, (frame + 1) * PERIOD_MS)
        frame = int(math.floor(start_ms / PERIOD_MS + 1e-9))


# ------------------------------------------------------------------------------------------- overlays
def bev_overlay(boxes: np.ndarray, labels: np.ndarray, gt_boxes: np.ndarray | None, grid, *, px_per_m: float = 8.0
                ) -> np.ndarray:
    """Top view (x forward = up, y left = left) of the grid with detections (colour per class) and, if
    given, ground truth (white). uint8 RGB."""
    import cv2

    (x0, x1), (y0, y1) = grid.x_range, grid.y_range
    h, w = int((x1 - x0) * px_per_m), int((y1 - y0) * px_per_m)
    img = np.full((h, w, 3), 24, dtype=np.uint8)
    for xm in range(int(math.ceil(x0 / 10) * 10), int(x1) + 1, 10):
        r = int(h - (xm - x0) * px_per_m)
        cv2.line(img, (0, r), (w - 1, r), (60, 60, 60), 1)
    colours = [(255, 80, 80), (80, 255, 80), (80, 160, 255)]

    def draw(b, col, thick):
        c, s = math.cos(b[6]), math.sin(b[6])
        pts = []
        for dx, dy in ((0.5, 0.5), (0.5, -0.5), (-0.5, -0.5), (-0.5, 0.5)):
            px = b[0] + c * dx * b[3] - s * dy * b[4]
            py = b[1] + s * dx * b[3] + c * dy * b[4]
            pts.append((int((y1 - py) * px_per_m), int(h - (px - x0) * px_per_m)))
        cv2.polylines(img, [np.array(pts, dtype=np.int32)], True, col, thick)
        front = ((pts[0][0] + pts[1][0]) // 2, (pts[0][1] + pts[1][1]) // 2)
        centre = (int((y1 - b[1]) * px_per_m), int(h - (b[0] - x0) * px_per_m))
        cv2.line(img, centre, front, col, 1)

    if gt_boxes is not None:
        for b in gt_boxes:
            draw(b, (255, 255, 255), 1)
    for b, lab in zip(boxes, labels):
        draw(b, colours[int(lab) % 3], 2)
    return img


def image_overlay(image_rgb: np.ndarray, objects: np.ndarray, P2: np.ndarray) -> np.ndarray:
    """Left image with the projected 3D boxes of ``objects`` (KITTI camera frame). uint8 RGB."""
    import cv2

    from eventvision.evaluation.kitti.boxes import boxes3d_from_objects, corners_3d, project_points

    img = np.ascontiguousarray(image_rgb)
    colours = {"Car": (255, 80, 80), "Pedestrian": (80, 255, 80), "Cyclist": (80, 160, 255)}
    if len(objects):
        uv, _ = project_points(corners_3d(boxes3d_from_objects(objects)), P2)
        for o, pts in zip(objects, uv):
            p = pts.astype(np.int32)
            col = colours.get(str(o["type"]), (255, 255, 0))
            for a, b in ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)):
                cv2.line(img, tuple(p[a]), tuple(p[b]), col, 1)
    return img


# ----------------------------------------------------------------------------------------------- main
def load_detector(checkpoint: str | None, device):
    from eventvision.engine.checkpoint import load_model_from_checkpoint
    from eventvision.errors import UserError

    path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found; pass --checkpoint from 'eventvision train detect3d'")
    task, model, ckpt = load_model_from_checkpoint(path, device=device, task_name="detect3d")
    return task, model


def main(args) -> int:
    from eventvision.data.detect3d.kitti_tracking import load_sequence, read_image
    from eventvision.errors import UserError
    from eventvision.evaluation.kitti.io import write_result_file
    from eventvision.models.detect3d.postprocess import objects_to_grid_boxes
    from eventvision.utils.device import select_device
    from eventvision.utils.io import atomic_write_text, refuse_overwrite_input
    from eventvision.utils.progress import progress
    from eventvision.utils.viz import save_png

    if args.latency_ms is not None and not (args.latency_ms >= 0 and math.isfinite(args.latency_ms)):
        raise UserError(f"--latency-ms {args.latency_ms}: must be a finite value >= 0")
    training, names = resolve_input(args.input, args.seqs)
    out_dir = Path(args.output)
    for out in (out_dir, out_dir / "emission.txt", out_dir / "summary.json", out_dir / "overlays"):
        refuse_overwrite_input(out, args.input, args.checkpoint)
    inside = [training / d for d in ("image_02", "image_03", "label_02", "calib")] + [training]
    if any(out_dir.resolve() == p.resolve() or p.resolve() in out_dir.resolve().parents for p in inside[:4]) \
            or out_dir.resolve() == training.resolve():
        raise UserError(f"{out_dir}: output lies inside the input dataset; choose another --output")
    device = select_device(args.device)
    task, model = load_detector(args.checkpoint, device)
    data_cfg = task.cfg.data
    emissions, summary = [], {"sequences": {}, "checkpoint": str(args.checkpoint or DEFAULT_CHECKPOINT)}
    all_lat = []
    for name in names:
        seq = load_sequence(training, name, require_labels=False)
        results, lats = [], []
        bar = progress(total=seq.num_frames, desc=f"detect3d {name}", unit="frame")
        last = 0
        for frame, emission, lat, objects, boxes, labels, scores in stream_sequence(
                model, seq, device, input_kind=data_cfg.input, event_bins=data_cfg.event_bins,
                event_contrast=data_cfg.event_contrast, latency_ms=args.latency_ms, seed=data_cfg.seed):
            results.append(objects)
            lats.append(lat)
            emissions.append(f"{name} {frame} {emission:.3f}")
            bar.update(frame + 1 - last)
            last = frame + 1
            if not args.no_overlays:
                gt_boxes = None
                if frame + 1 < seq.num_frames and len(seq.objects[frame + 1]):
                    gt_boxes = objects_to_grid_boxes(seq.objects[frame + 1])[0]
                ov = out_dir / "overlays" / name
                shown = scores >= args.overlay_score
                save_png(ov / f"{frame:06d}_bev.png", bev_overlay(boxes[shown], labels[shown], gt_boxes, model.grid))
                rgb = (read_image(seq.left[frame]).transpose(1, 2, 0) * 255).astype(np.uint8)
                save_png(ov / f"{frame:06d}_image.png",
                         image_overlay(rgb, objects[objects["score"] >= args.overlay_score], seq.calib.P2))
        bar.update(seq.num_frames - last)
        bar.close()
        from eventvision.evaluation.kitti.io import make_objects
        objs = np.concatenate(results) if results else make_objects()[:0]
        write_result_file(out_dir / f"{name}.txt", objs)
        all_lat += lats
        summary["sequences"][name] = {"frames": seq.num_frames, "processed": len(lats),
                                      "skipped": seq.num_frames - len(lats),
                                      "mean_latency_ms": float(np.mean(lats)) if lats else 0.0}
    atomic_write_text(out_dir / "emission.txt", "# seq frame_index emission_time_ms\n" + "\n".join(emissions) + "\n")
    summary["mean_latency_ms"] = float(np.mean(all_lat)) if all_lat else 0.0
    summary["latency_source"] = "fixed" if args.latency_ms is not None else "measured"
    summary["device"] = str(device)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    print(f"wrote {len(names)} result file(s), emission.txt and summary.json to {out_dir} "
          f"(mean latency {summary['mean_latency_ms']:.1f} ms)")
    return 0
