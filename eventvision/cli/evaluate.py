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
    parser.add_argument("--method", choices=("learned", "sgbm", "both"), default="learned",
                        help="stereo only: sgbm = OpenCV semi-global matching on the same windows; both = "
                        "the checkpoint and SGBM, and the checkpoint on the pixels SGBM answers")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"),
                        help="dataset split (default: val)")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the metrics to this JSON")
    parser.add_argument("--batch-size", type=nonneg_int, default=0, help="per process (default: the config's)")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the config's)")
    parser.add_argument("--plots", default=None, metavar="DIR", help="write the evaluator's pictures (e.g. a "
                        "confusion matrix) into DIR")
    parser.parse_args = parser.parse_intermixed_args


def _report(result: dict, metrics: dict, args, evaluator) -> None:
    """Print ``metrics``; with ``evaluator`` also write the JSON (``result``) and the pictures."""
    from eventvision.utils.io import atomic_write_text
    for key, value in metrics.items():
        print(f"{key:<24} {value:.6g}" if isinstance(value, float) else f"{key:<24} {value}")
    if evaluator is None:
        return
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2, sort_keys=True) + "\n")
    if args.plots:
        for path in evaluator.save_pictures(args.plots):
            print(f"picture: {path}")


def _main_events(args) -> int:
    """``--method sgbm`` (SGBM alone) or ``--method both`` (the checkpoint and SGBM on the same windows)."""
    from eventvision.config import load_config
    from eventvision.inference.stereo import LearnedStereo, SGBMMethod, compare_on_events
    from eventvision.tasks import get_task_class

    if args.task != "stereo":
        raise UserError(f"--method {args.method}: only the stereo task has a classical method, "
                        f"not '{args.task}'")
    methods = {}
    if args.method == "both":
        if not args.checkpoint:
            raise UserError("--method both compares a checkpoint with SGBM: pass --checkpoint")
        from eventvision.engine import load_model_from_checkpoint
        overrides = list(args.overrides) + ([f"device={args.device}"] if args.device else [])
        task, model, _ = load_model_from_checkpoint(args.checkpoint, task_name="stereo", overrides=overrides)
        methods["learned"] = LearnedStereo(task, model)
        cfg = task.cfg
    elif args.checkpoint:
        from eventvision.engine.checkpoint import checkpoint_config, load_checkpoint
        # the stored config as every checkpoint reader sees it: keys added since filled in, overrides checked
        cfg = checkpoint_config(load_checkpoint(args.checkpoint, expected_task="stereo"), args.checkpoint,
                                args.overrides)
        task = get_task_class("stereo")(cfg)
    else:
        cls = get_task_class("stereo")
        cfg = load_config(cls.default_config, args.overrides)
        task = cls(cfg)
    methods["sgbm"] = SGBMMethod(max_disparity=float(cfg.data.max_disparity),
                                 window_ms=float(cfg.data.window_ms))
    evaluators = {name: task.build_evaluator() for name in methods}
    results = compare_on_events(task, methods, args.split, evaluators=evaluators,
                                reference="sgbm" if len(methods) > 1 else None)
    first = next(iter(methods))
    result = {"task": "stereo", "method": args.method, "checkpoint": args.checkpoint, "split": args.split,
              "metrics": results[first], **{k: v for k, v in results.items() if k != first}}
    for name, metrics in results.items():
        if len(results) > 1:
            print(f"[{name}]")
        _report(result, metrics, args, evaluators.get(name) if name == first else None)
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
    if args.method in ("sgbm", "both"):
        return _main_events(args)
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
        distributed.finish()
    finally:
        distributed.cleanup()
    return 0
