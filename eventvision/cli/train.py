"""``eventvision train <task> [--config C] [key=value ...] [--resume] [--print-config] [--output-dir D]``.

Runs alone or under ``torchrun --nproc_per_node N`` (DistributedDataParallel; see docs/engine.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys

HELP = "train a task's model (one engine for every task; resumable; runs under torchrun)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="task name (stereo, detect3d, action, gesture, toy)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. train.epochs=5 train.optimizer.lr=1e-3")
    parser.add_argument("--config", "-c", default=None,
                        help="config file or packaged name (default: the task's default config)")
    parser.add_argument("--output-dir", "-o", default=None, help="run folder (default: the config's output_dir)")
    parser.add_argument("--resume", action="store_true", help="continue from <output-dir>/last.pt")
    parser.add_argument("--resume-from", default=None, metavar="CKPT", help="continue from this checkpoint")
    parser.add_argument("--auto-resume", action="store_true",
                        help="continue <output-dir>/last.pt if it exists, else start afresh (for elastic restarts)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--quiet", "-q", action="store_true", help="no per-epoch lines")
    # overrides may come before or after the options
    parser.parse_args = parser.parse_intermixed_args


def resolve_task_config(task_name: str, config: str | None, overrides: list[str], output_dir: str | None = None):
    """-> (task class, resolved Config) for ``task_name`` with ``config`` (default: the task's) + overrides."""
    from eventvision.config import load_config
    from eventvision.tasks import get_task_class

    cls = get_task_class(task_name)
    cfg = load_config(config or cls.default_config or f"{task_name}/default", overrides)
    if output_dir is not None:
        cfg["output_dir"] = str(output_dir)
    return cls, cfg


def main(args: argparse.Namespace) -> int:
    from eventvision.config import dump_config

    cls, cfg = resolve_task_config(args.task, args.config, list(args.overrides), args.output_dir)
    if args.print_config:
        sys.stdout.write(dump_config(cfg))
        return 0
    from pathlib import Path

    from eventvision.config import config_input_paths
    from eventvision.engine import Trainer, distributed
    from eventvision.utils.io import refuse_overwrite_input

    out = Path(cfg.get("output_dir", "runs/default"))
    inputs = config_input_paths(cfg)
    refuse_overwrite_input(out, args.config, args.resume_from, inputs)
    if not (args.resume or args.resume_from or args.auto_resume):
        # a fresh run rewrites these files of its folder: none may be an input (e.g. train.init_weights)
        for name in ("config.yaml", "last.pt", "best.pt", "metrics.csv"):
            refuse_overwrite_input(out / name, args.config, inputs)
    try:
        auto = args.auto_resume and (Path(cfg.get("output_dir", "runs/default")) / "last.pt").exists()
        resume = args.resume_from or (True if args.resume or auto else None)
        trainer = Trainer(cls.from_config(cfg), cfg, resume=resume, verbose=not args.quiet)
        metrics = trainer.fit()
        if trainer.dist.is_main:
            shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
            print(json.dumps(shown, indent=None, sort_keys=True))
            print(f"checkpoints: {trainer.output_dir / 'last.pt'}"
                  + (f", {trainer.output_dir / 'best.pt'}" if (trainer.output_dir / "best.pt").exists() else ""))
        # the DDP wrapper's reducer holds the process group and gloo work: free it (the hooks make reference cycles,
        # hence the collection) while the interpreter is whole, then leave the group on every rank together
        del trainer
        gc.collect()
        distributed.finish()
    finally:
        distributed.cleanup()
    return 0
