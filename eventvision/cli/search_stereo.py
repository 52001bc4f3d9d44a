"""``eventvision search stereo --config C [key=value ...] [--output genotype.yaml]``.

Differentiable hierarchical search (SpikeDHS/LEAStereo) on the stereo task's training set:
weights on one half (even indices), alpha/beta on the other (odd indices), first-order
alternation; writes the derived genotype YAML that ``model.genotype=PATH`` reads.

Overrides: ``search.KEY=V`` set the search (see ``eventvision.models.stereo.search.SearchConfig``;
a ``search:`` section in the config file is read too), every other ``key=value`` goes to the task
config (e.g. ``data.synthetic.num_train=32``, ``model.feature=ann``).
"""

from __future__ import annotations

import argparse
import json

HELP = "differentiable hierarchical architecture search for SpikeDHS stereo; writes a genotype YAML"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="task config overrides, and search.KEY=VALUE for the search (e.g. search.epochs=2)")
    parser.add_argument("--config", "-c", default=None,
                        help="stereo config file or packaged name (default: stereo/small)")
    parser.add_argument("--output", "-o", default="genotype.yaml",
                        help="genotype YAML to write (default: genotype.yaml)")
    parser.parse_args = parser.parse_intermixed_args


def _split_overrides(overrides: list[str]) -> tuple[list[str], dict]:
    from eventvision.config import parse_override

    task, search = [], {}
    for text in overrides:
        keys, value = parse_override(text)
        if keys[0] == "search":
            if len(keys) != 2:
                from eventvision.errors import UserError
                raise UserError(f"override '{text}': search keys are flat (search.KEY=VALUE)")
            search[keys[1]] = value
        else:
            task.append(text)
    return task, search


def main(args: argparse.Namespace) -> int:
    import torch

    from eventvision.cli.train import resolve_task_config
    from eventvision.config import config_input_paths
    from eventvision.models.stereo.genotype import save_genotype
    from eventvision.models.stereo.search import SearchConfig, build_supernet, search_stereo, split_halves
    from eventvision.utils.device import select_device
    from eventvision.utils.io import refuse_overwrite_input

    task_overrides, search_overrides = _split_overrides(list(args.overrides))
    refuse_overwrite_input(args.output, args.config)
    task_cls, cfg = resolve_task_config("stereo", args.config, task_overrides)
    refuse_overwrite_input(args.output, args.config, config_input_paths(cfg))
    search_cfg = dict(cfg.get("search") or {})
    search_cfg.update(search_overrides)
    search = SearchConfig.from_mapping(search_cfg)
    torch.manual_seed(int(cfg.seed))
    task = task_cls.from_config(cfg)
    weight_half, arch_half = split_halves(task.build_dataset("train"))
    loader = lambda ds: torch.utils.data.DataLoader(ds, batch_size=search.batch_size, shuffle=True,  # noqa: E731
                                                    collate_fn=task.collate, num_workers=0, drop_last=False)
    model = build_supernet(cfg.model, search)
    max_disp = float(cfg.data.max_disparity) if "data" in cfg and "max_disparity" in cfg.data else None
    result = search_stereo(model, loader(weight_half), loader(arch_half), search, max_disp=max_disp,
                           device=select_device(cfg.device))
    save_genotype(args.output, result.genotype,
                  extra={"search": {"config": search.__dict__, "history": result.history, "arch": result.arch}})
    print(json.dumps({"genotype": result.genotype.to_dict(), "output": str(args.output),
                      "final": result.history[-1] if result.history else {}}))
    print(f"use it with: eventvision train stereo model.genotype={args.output}")
    return 0
