"""``eventvision eval sap``: offline KITTI AP and streaming AP on KITTI Tracking sequences.

    eventvision eval sap --gt KITTI_ROOT --pred DIR --seqs 0001,0006 [--latency-ms L | --emission FILE |
        --latencies FILE] [--strategy copy|kf] [--overlap strict|loose] [--split all|train|val]
        [--image-height PX] [--json OUT] [--plots DIR]

``--pred DIR`` holds ``<seq>.txt`` result files in the KITTI tracking format (with or without score).
Without a latency source only the offline AP is computed. ``--image-height`` is for sequences rendered
at another size than KITTI's 375 px (e.g. 94 for the quarter-size synthetic recipe): the 2D boxes of
ground truth and predictions are rescaled to 375 px so the difficulty levels select the same objects.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from eventvision.cli.args import nonneg_float, positive_int
from eventvision.evaluation.kitti.io import KITTI_IMAGE_SIZE, to_kitti_pixel_scale

HELP = "offline KITTI AP and streaming AP (sAP) of tracking-format results on KITTI Tracking"


def add_arguments(parser) -> None:
    parser.add_argument("--gt", required=True, help="KITTI Tracking root (holding [training/]label_02 and calib)")
    parser.add_argument("--pred", required=True, help="folder of <seq>.txt result files (tracking format)")
    parser.add_argument("--seqs", required=True, help="comma-separated sequences, e.g. 0001,0006")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--latency-ms", type=nonneg_float, default=None,
                     help="fixed latency: frame i emitted at 100 i + L ms")
    src.add_argument("--emission", default=None,
                     help="measured emission times: lines 'seq frame_index emission_time_ms' or JSON {seq: [[f, t], ...]}")
    src.add_argument("--latencies", default=None,
                     help="measured latencies (ms, one per line): single-detector simulation with frame skipping")
    parser.add_argument("--strategy", choices=("copy", "kf"), default="copy", help="streaming strategy")
    parser.add_argument("--overlap", choices=("strict", "loose"), default="strict",
                        help="IoU thresholds: strict 0.7/0.5/0.5, loose 0.5/0.25/0.25 for BEV/3D")
    parser.add_argument("--split", choices=("all", "train", "val"), default="all",
                        help="StreamDSGN 40-frame patches (even train, odd val), each its own clip")
    parser.add_argument("--patch-len", type=positive_int, default=40,
                        help="patch length in frames for --split")
    parser.add_argument("--image-height", type=positive_int, default=375,
                        help="image height in pixels of the sequences (default 375, KITTI's); 2D boxes are rescaled "
                             "to 375 px before evaluation, so difficulty levels hold for down-scaled renders")
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


def collect_clips(gt_root, pred_dir, seqs, *, split="all", patch_len=40, schedule_source=None,
                  strategy="copy", image_height=KITTI_IMAGE_SIZE[1]):
    """Load GT and predictions -> (gt_frames, offline_frames, streamed_frames or None) over all clips,
    2D boxes at KITTI's pixel scale (``image_height``: the sequences' image height in pixels)."""
    from eventvision.errors import UserError
    from eventvision.evaluation import streaming as st
    from eventvision.evaluation.kitti import io

    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise UserError(f"{pred_dir}: prediction folder not found; pass --pred DIR holding <seq>.txt result files")
    gt_all, off_all, stream_all = [], [], []
    for seq in seqs:
        gt = io.read_sequence_labels(gt_root, seq)
        pred_path = pred_dir / f"{seq}.txt"
        if not pred_path.is_file():
            raise UserError(f"{pred_path}: no result file for sequence {seq}; write one (may be empty) or drop it from --seqs")
        pred = io.read_label_file(pred_path)
        if len(pred) and (pred["frame"] < 0).any():
            raise UserError(f"{pred_path}: negative frame index; fix the result file")
        n_gt, n_pred = (int(o["frame"].max()) + 1 if len(o) else 0 for o in (gt, pred))
        if n_pred > n_gt + io.MAX_FRAMES_PAST_LABELS:  # a typo'd frame must not make a million empty frames
            raise io.FileFormatError(f"{pred_path}: frame {n_pred - 1} lies {n_pred - n_gt} frames past the "
                                     f"last labelled frame {n_gt - 1} of sequence {seq}; fix the result file")
        n = max(n_gt, n_pred)
        gt_frames, pred_frames = io.split_frames(gt, n), io.split_frames(pred, n)
        calib = io.read_sequence_calib(gt_root, seq) if strategy == "kf" and schedule_source is not None else None
        for start, stop in st.patch_ranges(n, patch_len=patch_len, split=split):
            m = stop - start
            gt_all += gt_frames[start:stop]
            off_all += pred_frames[start:stop]
            if schedule_source is None:
                continue
            kind, value = schedule_source
            if kind == "latency":
                sched = st.fixed_latency_schedule(m, value)
            elif kind == "latencies":
                sched = st.simulated_schedule(m, value)
            else:
                if seq not in value:
                    raise UserError(f"emission file has no times for sequence {seq}; add its lines or drop it from --seqs")
                sched = st.clip_schedule(value[seq], start, stop)
            stream_all += st.stream_predictions(pred_frames[start:stop], sched, m, strategy=strategy,
                                                P2=None if calib is None else calib.P2)
    gt_all, off_all, stream_all = ([to_kitti_pixel_scale(o, image_height) for o in frames]
                                   for frames in (gt_all, off_all, stream_all))
    return gt_all, off_all, (stream_all if schedule_source is not None else None)


def format_table(results: dict) -> str:
    """Readable table: one block per mode, rows class/metric, columns R40 and R11 easy/mod/hard."""
    lines = []
    for mode, per_class in results.items():
        if mode not in ("offline", "streaming"):
            continue
        lines.append(f"{mode} AP (percent)")
        lines.append(f"  {'class':<11}{'metric':<7}{'R40 easy':>9}{'mod':>7}{'hard':>7}   {'R11 easy':>9}{'mod':>7}{'hard':>7}")
        for cls, per_metric in per_class.items():
            for metric, ap in per_metric.items():
                r40 = "".join(f"{v:7.2f}" for v in ap["R40"])
                r11 = "".join(f"{v:7.2f}" for v in ap["R11"])
                lines.append(f"  {cls:<11}{metric:<7}  {r40}     {r11}")
    return "\n".join(lines)


def plot_pr_curves(results_by_mode: dict, out_dir) -> list[Path]:
    """One PNG per class: precision vs recall (41 interpolated points) for bbox/BEV/3D, 3 difficulties,
    offline solid and streaming dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eventvision.evaluation.kitti.ap import DIFFICULTIES
    from eventvision.utils.io import atomic_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    any_res = next(iter(results_by_mode.values()))
    written = []
    recall_axis = np.linspace(0, 1, 41)
    for cls in any_res.classes:
        fig, axes = plt.subplots(1, len(any_res.metrics), figsize=(4.2 * len(any_res.metrics), 4), squeeze=False)
        for ax, metric in zip(axes[0], any_res.metrics):
            for mode, res in results_by_mode.items():
                prec = res.precision[(cls, metric)]
                for d, name in enumerate(DIFFICULTIES):
                    ax.plot(recall_axis, prec[d], color=f"C{d}", linestyle="-" if mode == "offline" else "--",
                            label=f"{mode} {name}")
            ax.set_title(f"{cls} {metric} (IoU {any_res.min_overlaps[(cls, metric)]})")
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"pr_{cls}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        plt.close(fig)
        written.append(path)
    return written


def main(args) -> int:
    from eventvision.errors import UserError
    from eventvision.evaluation import streaming as st
    from eventvision.evaluation.kitti.ap import evaluate_kitti
    from eventvision.evaluation.kitti.io import tracking_root
    from eventvision.utils.io import atomic_write_text

    from eventvision.utils.io import refuse_overwrite_input

    for out in (args.json, args.plots):
        refuse_overwrite_input(out, args.gt, args.pred, args.emission, args.latencies)
    seqs = _parse_seqs(args.seqs)
    tracking_root(args.gt)
    if args.patch_len <= 0:
        raise UserError(f"--patch-len must be > 0, got {args.patch_len}")
    if args.image_height <= 0:
        raise UserError(f"--image-height must be > 0 pixels, got {args.image_height}")
    source = None
    if args.latency_ms is not None:
        if not np.isfinite(args.latency_ms) or args.latency_ms < 0:
            raise UserError(f"--latency-ms {args.latency_ms}: must be a finite value >= 0")
        source = ("latency", float(args.latency_ms))
    elif args.emission is not None:
        source = ("emission", st.read_emission_file(args.emission))
    elif args.latencies is not None:
        source = ("latencies", st.read_latency_file(args.latencies))

    gt, offline, streamed = collect_clips(args.gt, args.pred, seqs, split=args.split, patch_len=args.patch_len,
                                          schedule_source=source, strategy=args.strategy,
                                          image_height=args.image_height)
    if not gt:
        raise UserError(f"no frames to evaluate in sequences {','.join(seqs)} (split {args.split}); check --seqs/--split")
    results = {"offline": evaluate_kitti(gt, offline, overlap=args.overlap)}
    if streamed is not None:
        results["streaming"] = evaluate_kitti(gt, streamed, overlap=args.overlap)
    payload = {mode: res.to_dict() for mode, res in results.items()}
    payload["settings"] = {
        "seqs": seqs, "frames": len(gt), "overlap": args.overlap, "split": args.split, "patch_len": args.patch_len,
        "image_height": args.image_height,
        "strategy": args.strategy if streamed is not None else None,
        "latency_ms": args.latency_ms, "emission": args.emission, "latencies": args.latencies,
        "min_overlaps": {f"{c}/{m}": v for (c, m), v in results["offline"].min_overlaps.items()},
    }
    print(format_table(payload))
    if args.json:
        atomic_write_text(args.json, json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plots:
        for path in plot_pr_curves(results, args.plots):
            print(f"wrote {path}")
    return 0
