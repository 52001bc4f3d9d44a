"""``eventvision eval <task> --checkpoint C [--split val] [--json OUT] [--plots DIR] [key=value ...]``.

Rebuilds the task from the config stored in the checkpoint (``key=value`` overrides apply on top,
e.g. a data path or ``device=cpu``), runs the task's evaluator over the split and prints the metrics.
Runs under torchrun too (the split is sharded, the evaluator states merged on rank 0).

``eval stereo --method sgbm`` evaluates OpenCV semi-global matching instead of a network on the same
windows and GT (no checkpoint needed: the task's default config plus overrides, or the checkpoint's
config when one is given); see :func:`eventvision.inference.stereo.evaluate_on_events`.
"""

from __future__ import annotations

import argparse
import json

from eventvision.cli.args import nonneg_int
from eventvision.errors import UserError

HELP = "evaluate a checkpoint on a task's split and print/write the metrics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="task name (stereo, detect3d, action, gesture, toy)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of the stored config")
    parser.add_argument("--checkpoint", "-k", default=None, help="checkpoint file (best.pt / last.pt); "
                        "optional with --method sgbm")
    parser.add_argument("--method", choices=("learned", "sgbm"), default="learned",
                        help="stereo only: sgbm = OpenCV semi-global matching on the same windows "
                        "(default learned)")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"), help="dataset split (default: val)")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the metrics to this JSON file")
    parser.add_argument("--batch-size", type=nonneg_int, default=0,
                        help="per process (default: the config's)")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the config's)")
    parser.add_argument("--plots", default=None, metavar="DIR", help="write the evaluator's pictures (e.g. a "
                        "confusion matrix) into DIR")
    parser.parse_args = parser.parse_intermixed_args


def _report(result: dict, metrics: dict, args, evaluator) -> None:
    from eventvision.utils.io import atomic_write_text
    for key, value in metrics.items():
        print(f"{key:<24} {value:.6g}" if isinstance(value, float) else f"{key:<24} {value}")
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2, sort_keys=True) + "\n")
    if args.plots:
        for path in evaluator.save_pictures(args.plots):
            print(f"picture: {path}")


def _main_sgbm(args) -> int:
    from eventvision.config import load_config
    from eventvision.inference.stereo import SGBMMethod, evaluate_on_events
    from eventvision.tasks import get_task_class

    if args.task != "stereo":
        raise UserError(f"--method sgbm: only the stereo task has a classical method, not '{args.task}'")
    cls = get_task_class("stereo")
    if args.checkpoint:
        from eventvision.config import apply_overrides, config_from_dict
        from eventvision.engine.checkpoint import load_checkpoint
        stored = load_checkpoint(args.checkpoint, expected_task="stereo")["config"]
        cfg = apply_overrides(config_from_dict(stored), args.overrides)
    else:
        cfg = load_config(cls.default_config, args.overrides)
    task = cls(cfg)
    method = SGBMMethod(max_disparity=float(cfg.data.max_disparity), window_ms=float(cfg.data.window_ms))
    evaluator = task.build_evaluator()
    metrics = evaluate_on_events(task, method, args.split, evaluator=evaluator)
    result = {"task": "stereo", "method": "sgbm", "checkpoint": args.checkpoint, "split": args.split,
              "metrics": metrics}
    _report(result, metrics, args, evaluator)
    return 0


def main(args: argparse.Namespace) -> int:
    from eventvision.engine import distributed, evaluate, load_model_from_checkpoint
    from eventvision.utils.device import select_device
    from eventvision.utils.io import refuse_overwrite_input

    from eventvision.config import config_input_paths

    inputs = [p for p in (args.checkpoint,) if p] + [v.split("=", 1)[1] for v in args.overrides if "=" in v]
    for output in (args.json, args.plots):
        if output:
            refuse_overwrite_input(output, *inputs)
    if args.method == "sgbm":
        return _main_sgbm(args)
    if not args.checkpoint:
        raise UserError("eval: --checkpoint is required (a best.pt/last.pt written by 'eventvision train'), "
                        "except for 'eval stereo --method sgbm'")
    overrides = list(args.overrides) + ([f"device={args.device}"] if args.device else [])
    task, model, ckpt = load_model_from_checkpoint(args.checkpoint, task_name=args.task, overrides=overrides)
    for out in (args.json, args.plots):
        refuse_overwrite_input(out, args.checkpoint, config_input_paths(task.cfg))
    env = distributed.env_info()
    device = distributed.resolve_device(select_device(task.cfg.get("device", "auto")), env.local_rank)
    try:
        info = distributed.init(device, backend=str(task.cfg.get("train", {}).get("dist_backend", "auto")))
        model.to(device)
        train = task.cfg.get("train", {})
        batch = args.batch_size or int(train.get("val_batch_size", 0) or 0) or \
            max(1, int(train.get("batch_size", 1)) // info.world_size)
        evaluator = task.build_evaluator()
        metrics = evaluate(task, model, args.split, device, batch_size=batch,
                           num_workers=int(train.get("num_workers", 0)), evaluator=evaluator)
        if info.is_main:
            result = {"task": ckpt["task"], "checkpoint": str(args.checkpoint), "split": args.split,
                      "epoch": ckpt.get("epoch"), "step": ckpt.get("step"), "metrics": metrics}
            _report(result, metrics, args, evaluator)
    finally:
        distributed.cleanup()
    return 0
