"""``eventvision demo gesture|stereo``: the live demo (see eventvision.demo)."""

from __future__ import annotations

from eventvision.cli.args import nonneg_float, nonneg_int, pixels, positive_float, positive_int

HELP = "live demo: camera/video/recording/synthetic -> events -> model -> window (or --headless --record)"


def add_arguments(parser) -> None:
    parser.add_argument("--source", default="synthetic",
                        help="camera index (0), video file, event recording (any supported format), 'inivation' "
                             "(needs the extra) or 'synthetic' (default)")
    parser.add_argument("--checkpoint", default=None, help="model checkpoint (default: the packaged one)")
    parser.add_argument("--model", choices=("auto", "none", "sgbm"), default="auto",
                        help="'none' shows events only (no model); 'sgbm' (stereo): OpenCV semi-global matching")
    parser.add_argument("--headless", action="store_true", help="no window; use with --record")
    parser.add_argument("--record", default=None, metavar="OUT.mp4", help="write the shown frames to a video")
    parser.add_argument("--window-ms", type=positive_float, default=None,
                        help="sliding window length (default: the model's training window; 100 ms without a model)")
    parser.add_argument("--contrast", type=positive_float, default=0.2,
                        help="emulator contrast threshold (default 0.2)")
    parser.add_argument("--refractory-us", type=nonneg_int, default=0, help="emulator refractory period (µs)")
    parser.add_argument("--noise-rate-hz", type=nonneg_float, default=0.0,
                        help="emulator shot-noise rate per pixel")
    parser.add_argument("--width", type=pixels, default=640, help="frame width for camera/video/synthetic")
    parser.add_argument("--height", type=pixels, default=480, help="frame height for camera/video/synthetic")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="stop after N input frames/chunks")
    parser.add_argument("--fast", action="store_true", help="do not pace files/synthetic to real time")
    parser.add_argument("--device", default="cpu", help="torch device for the model (cpu, cuda, auto)")


def main(args) -> int:
    import json

    from eventvision.utils.io import refuse_overwrite_input

    refuse_overwrite_input(args.record, args.source, args.checkpoint)
    from eventvision.demo.app import run_demo
    from eventvision.errors import UserError
    from eventvision.utils.io import refuse_overwrite_input

    if args.headless and not args.record:
        raise UserError("--headless needs --record OUT.mp4 (there is no window to show frames in)")
    if args.record:
        refuse_overwrite_input(args.record, *(p for p in (args.source, args.checkpoint) if p))
    summary = run_demo(args.task, args.source, headless=args.headless, record=args.record, model=args.model,
                       checkpoint=args.checkpoint, window_ms=args.window_ms, contrast=args.contrast,
                       refractory_us=args.refractory_us, noise_rate_hz=args.noise_rate_hz, width=args.width,
                       height=args.height, max_steps=args.max_steps, realtime=not args.fast, device=args.device)
    print(json.dumps(summary, indent=2))
    return 0
