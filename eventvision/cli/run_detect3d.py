"""``eventvision run detect3d``: stream KITTI stereo (Tracking or Object layout) through the 3D detector.

    eventvision run detect3d --input KITTI_ROOT|SEQ_DIR --output DIR [--checkpoint C] [--seqs 0001,0006]
        [--latency-ms L] [--device auto] [--no-overlays] [--box-alignment]

The streaming rules (10 Hz arrival, one detector, frame skipping, warm-up) and the writers live in
:mod:`eventvision.inference.detect3d`. Writes ``DIR/<seq>.txt`` (Tracking: tracking columns with score and
track ids by greedy BEV-IoU association, so ``eval sap --strategy kf`` works; Object: ``<frame>.txt`` in
the object columns), ``DIR/emission.txt`` (what ``eval sap --emission`` reads), ``DIR/summary.json`` and,
unless ``--no-overlays``, ``DIR/overlays/<seq>/<frame>_bev.png`` / ``_image.png`` / ``_panel.png`` (both, with the
LiDAR scan when the folder has one). ``--box-alignment`` refines each car's range against the stereo pair
(:mod:`eventvision.models.detect3d.alignment`; not in StreamDSGN, its time counts in the measured latency).
"""

from __future__ import annotations

import json
from pathlib import Path

from eventvision.cli.args import finite_float, nonneg_float

HELP = "stream KITTI stereo sequences through the 3D detector: KITTI results + emission times + overlays"


def add_arguments(parser) -> None:
    parser.add_argument("--input", required=True,
                        help="KITTI Tracking root ([training/]image_02, image_03, calib), one image_02/<seq> "
                             "folder, or a KITTI Object root ([training/]image_2, image_3, calib)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--checkpoint", default=None,
                        help="detect3d checkpoint (default: the bundled detect3d_small)")
    parser.add_argument("--seqs", default=None,
                        help="comma-separated sequences or Object frames (default: all)")
    parser.add_argument("--latency-ms", type=nonneg_float, default=None,
                        help="use this latency per run instead of the measured one (a faster device)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--no-overlays", action="store_true", help="skip the BEV/image PNG overlays")
    parser.add_argument("--box-alignment", action="store_true",
                        help="refine each car's range by dense photometric alignment on the stereo pair and "
                             "forecast it by its track's range rate (image checkpoints; docs/detect3d.md)")
    parser.add_argument("--overlay-score", type=finite_float, default=0.3,
                        help="draw detections with at least this score in the overlays (results keep all)")


def main(args) -> int:
    from eventvision.inference.detect3d import (DEFAULT_CHECKPOINT, Detect3DPredictor, open_kitti,
                                                run_to_folder)
    from eventvision.models.detect3d.alignment import RangeForecaster
    from eventvision.utils.device import select_device
    from eventvision.utils.io import atomic_write_text, refuse_overwrite_input

    names = [s.strip() for s in args.seqs.split(",") if s.strip()] if args.seqs else None
    layout, training, names = open_kitti(args.input, names)
    out_dir = Path(args.output)
    checkpoint = Path(args.checkpoint) if args.checkpoint else DEFAULT_CHECKPOINT
    refuse_overwrite_input(out_dir, args.input, training, checkpoint)
    device = select_device(args.device)
    predictor = Detect3DPredictor.from_checkpoint(checkpoint, device, latency_ms=args.latency_ms,  # checks it
                                                  box_alignment=RangeForecaster() if args.box_alignment else None)
    summary = run_to_folder(predictor, layout, training, names, out_dir, overlays=not args.no_overlays,
                            overlay_score=args.overlay_score)
    summary["checkpoint"] = str(checkpoint)
    summary["box_alignment"] = bool(args.box_alignment)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    print(f"wrote {len(names)} result file(s), emission.txt and summary.json to {out_dir} "
          f"(mean latency {summary['mean_latency_ms']:.1f} ms)")
    return 0
