"""``eventvision run stereo``: stream a stereo event recording through a disparity method.

    eventvision run stereo --input REC --output DIR [--method learned|sgbm] [--checkpoint C] [--window-ms 50]

REC is a DSEC sequence folder (``events/{left,right}/events.h5`` + ``rectify_map.h5``), an MVSEC
``*_data.hdf5`` (rectified with ``<scene>_calib/*_map.txt`` when those lie beside it) or an eventvision
stereo ``.h5``. Without ``--input`` a seeded synthetic recording (0.25 s clips of fresh random scenes,
rig and scene statistics of the checkpoint's training data, ``--synthetic-size``) is generated on the
fly. ``--method sgbm`` runs OpenCV semi-global matching instead of a network (no checkpoint).

Outputs in DIR: ``disparity.h5`` (``disparity`` [N, H, W] float32 px, NaN where unknown; ``timestamps_us``
[N] int64 = window ends on the recording's label clock), one colour PNG per window under ``png/``,
optionally ``disparity.mp4`` and ``summary.json``. The work is done by :mod:`eventvision.inference.stereo`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from eventvision.cli.args import nonneg_int, positive_float
from eventvision.errors import UserError

HELP = "stream a stereo recording through the SpikeDHS network or SGBM (disparity.h5, PNGs, summary.json)"
OUTPUT_FILES = ("disparity.h5", "summary.json", "disparity.mp4")


def add_arguments(parser) -> None:
    parser.add_argument("--input", default=None, help="DSEC sequence folder, MVSEC *_data.hdf5 or eventvision"
                        " stereo .h5 (default: a built-in synthetic recording)")
    parser.add_argument("--output", required=True, help="output folder (created)")
    parser.add_argument("--method", choices=("learned", "sgbm"), default="learned",
                        help="learned = the checkpoint's network (default); sgbm = OpenCV semi-global "
                        "matching")
    parser.add_argument("--checkpoint", default=None, help="stereo checkpoint (default: the bundled one)")
    parser.add_argument("--max-disparity", type=positive_float, default=63.0, help="SGBM search range px (default 63)")
    parser.add_argument("--window-ms", type=positive_float, default=50.0, help="window length in ms (default 50)")
    parser.add_argument("--mp4", action="store_true", help="also write disparity.mp4 (events, disparity)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--max-windows", type=nonneg_int, default=0, help="stop after this many windows (0 = all)")
    parser.add_argument("--png-every", type=nonneg_int, default=1, help="write a PNG every N windows (0 = none)")
    parser.add_argument("--duration-s", type=positive_float, default=2.0, help="synthetic recording length, s")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic recording (no --input)")
    parser.add_argument("--synthetic-size", default="256x160", help="WxH of the synthetic recording")
    parser.add_argument("--threads", type=nonneg_int, default=0,
                        help="torch threads, stages in sequence (0 = auto: on idle cores reading/writing run "
                        "beside the network, whose threads are chosen by timing; 1 on a busy machine)")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise UserError(f"--synthetic-size {text!r}: expected WIDTHxHEIGHT, e.g. 144x96") from None
    if not (8 <= w <= 4096 and 8 <= h <= 4096):
        raise UserError(f"--synthetic-size {text!r}: width and height must lie in 8..4096")
    return w, h


def check_output(output: Path, inputs: list[Path]) -> None:
    """Refuse an output folder that is (or lies inside) an input folder, and output files that are inputs."""
    from eventvision.utils.io import refuse_overwrite_input

    if output.exists() and not output.is_dir():
        raise UserError(f"{output}: exists and is not a folder; --output names a folder to create")
    refuse_overwrite_input(output, *inputs)
    for name in OUTPUT_FILES:
        refuse_overwrite_input(output / name, *inputs)


def main(args) -> int:
    from eventvision.inference import stereo
    from eventvision.inference.base import configure_threads, stream_policy
    from eventvision.utils.device import select_device

    output = Path(args.output)
    input_path = Path(args.input) if args.input else None
    ckpt_path = Path(args.checkpoint) if args.checkpoint else stereo.BUNDLED_CHECKPOINT
    check_output(output, [p for p in (input_path, ckpt_path if args.method == "learned" else None) if p])
    size = parse_size(args.synthetic_size) if input_path is None else None
    threads = configure_threads(args.threads)
    window_us = int(round(args.window_ms * 1000))
    device = select_device(args.device)
    source = stereo.open_stereo_input(input_path) if input_path else None  # fail before torch loads
    try:
        method = stereo.build_method(args.method, checkpoint=ckpt_path, device=device,
                                     max_disparity=args.max_disparity)
        if source is None:
            from eventvision.config import load_config
            cfg = method.task.cfg if args.method == "learned" else load_config("stereo/refine")
            # simulated up front: live, the simulator (not the method) would set the windows/s
            source = stereo.prerender(stereo.synthetic_input(cfg, duration_s=args.duration_s, seed=args.seed,
                                                             size=size), window_us, max_windows=args.max_windows)
        # automatic: reading/encoding and writing run on worker threads, the threads of a network on the CPU are
        # tuned when at least three cores are idle, a network on a GPU runs without worker threads (inference/base.py)
        threads, background, tuner = stream_policy(args.threads, threads,
                                                   device.type if args.method == "learned" else None)
        predictor = stereo.StereoPredictor(method, source, window_us=window_us,
                                           max_windows=args.max_windows, background=background, tuner=tuner)
        summary = stereo.run_stereo(predictor, output, mp4=args.mp4, png_every=args.png_every, extra_summary={
            "input": str(input_path) if input_path else f"synthetic(seed={args.seed})",
            "input_kind": source.kind,
            "checkpoint": str(ckpt_path) if args.method == "learned" else None, "threads": threads,
            "network_threads": tuner.chosen if tuner is not None else (1 if background else threads)})
    finally:
        if source is not None:
            source.close()
    for note in source.notes:  # after the run: a failure stays one line on stderr
        print(f"eventvision: note: {note}", file=sys.stderr)
    print(f"run stereo ({args.method}): {summary['windows']} windows, "
          f"{summary['throughput_hz']:.1f} windows/s, "
          f"mean latency {summary['mean_latency_ms']:.1f} ms -> {output}")
    return 0
