"""``eventvision eval sap``: offline KITTI AP and streaming AP on KITTI Tracking sequences.

    eventvision eval sap --gt KITTI_ROOT --pred DIR --seqs 0001,0006 [--latency-ms L | --emission FILE |
        --latencies FILE [--latency-draw order|random --seed S]] [--strategy copy|kf|kf-streamdsgn]
        [--overlap strict|loose] [--split all|train|val --patch-rule streamdsgn|alternating]
        [--image-height PX] [--json OUT] [--plots DIR]

``--pred DIR`` holds ``<seq>.txt`` result files in the KITTI tracking format (with or without score).
Without a latency source only the offline AP is computed. The protocol lives in
:mod:`eventvision.evaluation.streaming` (``collect_clips`` and the typed latency sources).
"""

from __future__ import annotations

import json

from eventvision.cli.args import nonneg_float, nonneg_int, positive_int
from eventvision.formats.kitti import PATCH_RULES

HELP = "offline KITTI AP and streaming AP (sAP) of tracking-format results on KITTI Tracking"


def add_arguments(parser) -> None:
    parser.add_argument("--gt", required=True,
                        help="KITTI Tracking root (holding [training/]label_02 and calib)")
    parser.add_argument("--pred", required=True, help="folder of <seq>.txt result files (tracking format)")
    parser.add_argument("--seqs", required=True, help="comma-separated sequences, e.g. 0001,0006")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--latency-ms", type=nonneg_float, default=None,
                     help="fixed latency: frame i emitted at 100 i + L ms")
    src.add_argument("--emission", default=None,
                     help="measured emission times: lines 'seq frame_index emission_time_ms' or JSON "
                          "{seq: [[f, t], ...]}")
    src.add_argument("--latencies", default=None,
                     help="measured latencies (ms, one per line): one detector simulated with frame skipping")
    parser.add_argument("--latency-draw", choices=("order", "random"), default="order",
                        help="--latencies taken in order (cyclically) or drawn at random per run as the "
                             "released StreamDSGN does (deterministic by --seed)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --latency-draw random")
    parser.add_argument("--strategy", choices=("copy", "kf", "kf-streamdsgn"), default="copy",
                        help="streaming strategy: copy, kf (per-track velocity), kf-streamdsgn "
                             "(the release's filter)")
    parser.add_argument("--horizon-frames", type=nonneg_int, default=0,
                        help="kf: frames ahead that the results describe (1 for a next-frame forecaster such "
                             "as StreamDSGN / run detect3d; 0 for a detector of its own frame)")
    parser.add_argument("--overlap", choices=("strict", "loose"), default="strict",
                        help="IoU thresholds: strict 0.7/0.5/0.5, loose 0.5/0.25/0.25 for BEV/3D")
    parser.add_argument("--split", choices=("all", "train", "val"), default="all",
                        help="StreamDSGN 40-frame patches (even train, odd val), each its own clip")
    parser.add_argument("--patch-rule", choices=PATCH_RULES, default="streamdsgn",
                        help="streamdsgn: the release's split_patch_in_scene; alternating: every frame kept")
    parser.add_argument("--patch-len", type=positive_int, default=40, help="patch length in frames for --split")
    parser.add_argument("--image-height", type=positive_int, default=None,
                        help="image height in pixels of the sequences (default: read from image_02, "
                             "else 375); 2D boxes are rescaled to 375 px so difficulty levels hold for "
                             "down-scaled renders")
    parser.add_argument("--json", default=None, help="write the results here (JSON)")
    parser.add_argument("--plots", default=None, help="write one PR-curve PNG per class into this folder")


def _parse_seqs(text: str) -> list[str]:
    from eventvision.errors import UserError
    seqs = [s.strip() for s in text.split(",") if s.strip()]
    if not seqs:
        raise UserError("--seqs is empty; pass e.g. --seqs 0001,0006")
    for s in seqs:
        if not s.isdigit():
            raise UserError(f"--seqs: '{s}' is not a sequence number; pass e.g. --seqs 0001,0006")
    return [s.zfill(4) for s in seqs]


def latency_source(args):
    """The typed latency source of the arguments (None: offline only)."""
    from eventvision.evaluation import streaming as st

    if args.latency_ms is not None:
        return st.FixedLatency(float(args.latency_ms))
    if args.emission is not None:
        return st.EmissionTimes(st.read_emission_file(args.emission), source=str(args.emission))
    if args.latencies is not None:
        lat = tuple(float(v) for v in st.read_latency_file(args.latencies))
        if args.latency_draw == "random":
            return st.SampledLatencies(lat, args.seed)
        return st.MeasuredLatencies(lat)
    return None


def main(args) -> int:
    from eventvision.errors import UserError
    from eventvision.evaluation.kitti.ap import evaluate_kitti, format_ap_table
    from eventvision.evaluation.kitti.plots import save_pr_curves
    from eventvision.evaluation.streaming import collect_clips
    from eventvision.formats.kitti import tracking_root
    from eventvision.utils.io import atomic_write_text, refuse_overwrite_input
    seqs = _parse_seqs(args.seqs)
    tracking_root(args.gt)
    for out in (args.json, args.plots):
        if out:
            refuse_overwrite_input(out, args.gt, args.pred, args.emission, args.latencies)
    source = latency_source(args)
    clips = collect_clips(args.gt, args.pred, seqs, split=args.split, patch_len=args.patch_len,
                          patch_rule=args.patch_rule, latency=source, strategy=args.strategy,
                          image_height=args.image_height, horizon_frames=args.horizon_frames)
    if not clips.gt:
        raise UserError(f"no frames to evaluate in sequences {','.join(seqs)} (split {args.split}); "
                        f"check --seqs/--split")
    results = {"offline": evaluate_kitti(clips.gt, clips.offline, overlap=args.overlap)}
    if clips.streamed is not None:
        results["streaming"] = evaluate_kitti(clips.gt, clips.streamed, overlap=args.overlap)
    payload = {mode: res.to_dict() for mode, res in results.items()}
    print(format_ap_table(payload))
    payload["settings"] = {
        "seqs": seqs, "frames": len(clips.gt), "clips": len(clips.clips), "overlap": args.overlap,
        "split": args.split, "patch_rule": args.patch_rule, "patch_len": args.patch_len,
        "image_height": args.image_height, "strategy": args.strategy if source is not None else None,
        "horizon_frames": args.horizon_frames,
        "latency_ms": args.latency_ms, "emission": args.emission, "latencies": args.latencies,
        "latency_draw": args.latency_draw if args.latencies else None, "seed": args.seed,
        "min_overlaps": {f"{c}/{m}": v for (c, m), v in results["offline"].min_overlaps.items()},
    }
    if args.json:
        atomic_write_text(args.json, json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plots:
        for path in save_pr_curves(results, args.plots):
            print(f"wrote {path}")
    return 0
