"""``eventvision profile <task>``: operation counts and energy estimate of a task's model.

Builds the task from its config (packaged default unless ``--config``; ``key=value`` overrides),
or from a checkpoint (``--checkpoint``, trained weights: firing rates depend on them), runs one
inference forward on ``task.example_batch(batch_size)`` with the hooks of
``eventvision.spiking.energy.profile_energy`` and prints the per-layer table (MACs for layers fed
by non-spike input, firing-rate-scaled ACs for spike-fed layers, attention products, firing
rates) and the energy in mJ per sample (E = 4.6 pJ/MAC + 0.9 pJ/AC unless overridden).
``--convention syops`` counts as syops-counter does (biases, BN, pooling, activations, neuron
updates; no attention products) -- see ``eventvision.spiking.energy``.
"""

from __future__ import annotations

import contextlib
import json
import tempfile

from eventvision.cli.args import nonneg_float, positive_int

HELP = "count MACs/ACs per layer and estimate the energy (mJ per sample) of a task's model"


def add_arguments(parser) -> None:
    parser.add_argument("task", help="task name (stereo, detect3d, action, gesture, toy)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. model.T=8")
    parser.add_argument("--config", default=None, help="config file or packaged name (default: the task's default)")
    parser.add_argument("--checkpoint", default=None, help="profile the model of this checkpoint (trained weights)")
    parser.add_argument("--batch-size", type=positive_int, default=1,
                        help="samples in the profiled batch (default 1)")
    parser.add_argument("--e-mac", type=nonneg_float, default=None, help="energy per MAC in pJ (default 4.6)")
    parser.add_argument("--e-ac", type=nonneg_float, default=None, help="energy per AC in pJ (default 0.9)")
    parser.add_argument("--convention", default="spikformer", choices=("spikformer", "syops"),
                        help="what is counted: spikformer (conv, linear, attention products; default) "
                             "or syops (as syops-counter: also biases, BN, pooling, activations, neuron "
                             "updates)")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the report as JSON to OUT")


def build(task_name: str, config: str | None, overrides: list[str], checkpoint: str | None):
    """(task, model) in eval mode on the CPU, from a config or a checkpoint."""
    from eventvision.errors import ConfigError

    if checkpoint is not None:
        if config is not None:
            raise ConfigError("--config and --checkpoint both given; a checkpoint carries its own config")
        from eventvision.engine.checkpoint import load_model_from_checkpoint

        task, model, _ = load_model_from_checkpoint(checkpoint, device="cpu", task_name=task_name,
                                                    overrides=overrides)
        return task, model
    from eventvision.config import load_config
    from eventvision.tasks import get_task_class

    import torch

    cls = get_task_class(task_name)
    cfg = load_config(config or cls.default_config, overrides)
    torch.manual_seed(int(cfg.get("seed", 0) or 0))  # untrained weights: same numbers on every run
    task = cls.from_config(cfg)
    model = task.build_model()
    model.eval()
    return task, model


@contextlib.contextmanager
def example_data(task_name: str, batch_size: int):
    """Overrides that make the task's example batch come from a minimal dataset rendered in a temporary
    folder removed on exit (detect3d's synthetic set would otherwise render 10s of MB into ./runs for the
    one sample profiling needs); no overrides for tasks that render nothing to disk."""
    if task_name != "detect3d":
        yield []
        return
    with tempfile.TemporaryDirectory(prefix="eventvision-profile-") as tmp:
        yield [f"data.synthetic_root={tmp}", "data.synthetic_train_seqs=1", "data.synthetic_val_seqs=1",
               f"data.synthetic_frames={batch_size + 1}"]  # a sample needs its next frame


def main(args) -> int:
    from eventvision.spiking.energy import E_AC_PJ, E_MAC_PJ, _fmt, profile_energy
    from eventvision.utils.io import atomic_write_text, refuse_overwrite_input

    refuse_overwrite_input(args.json, args.checkpoint, args.config)
    with example_data(args.task, args.batch_size) as data_overrides:
        task, model = build(args.task, args.config, list(args.overrides) + data_overrides, args.checkpoint)
        batch = task.example_batch(args.batch_size)
    report = profile_energy(model, lambda m: task.predict(m, batch), batch_size=args.batch_size,
                            e_mac_pj=E_MAC_PJ if args.e_mac is None else args.e_mac,
                            e_ac_pj=E_AC_PJ if args.e_ac is None else args.e_ac, convention=args.convention)
    print(f"eventvision profile {args.task}: {type(model).__name__}, "
          f"{_fmt(sum(p.numel() for p in model.parameters()))} parameters, "
          f"{'trained weights from ' + args.checkpoint if args.checkpoint else 'untrained (seeded) weights'}")
    print(report.table())
    if args.json:
        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2))
    return 0
