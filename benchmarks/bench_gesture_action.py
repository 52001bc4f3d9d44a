"""Gesture (DVS128) and action (SVFormer) pipelines: training samples/s, inference samples/s and energy.

Baseline measured in the same run: the same PLIF gesture net built from plain SpikingJelly modules
(``layer.Conv2d``/``layer.BatchNorm2d``/``neuron.ParametricLIFNode``, multi-step, torch backend).
Energy (mJ per sample) comes from ``eventvision.spiking.energy.profile_energy`` on the shipped
checkpoint where there is one (untrained models barely fire, so their AC count is a lower bound),
by both counting conventions (Spikformer's; syops-counter's, which SVFormer's 21 mJ used).
Published anchors (theirs, not measured here) are printed for orientation.

    python benchmarks/bench_gesture_action.py [--quick]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from spikingjelly.activation_based import functional, layer, neuron

from eventvision.config import load_config
from eventvision.spiking.energy import CONVENTIONS, profile_energy
from eventvision.tasks import get_task_class

ANCHORS = ("DVS128 Gesture top-1 (published): PLIF 97.57, SEW-ResNet 97.92, Spikformer 98.3, CML 98.6, "
           "QKFormer 98.6, Spike-driven 99.3; SVFormer UCF101 split 1: 84.03 top-1 / 95.59 top-5, 21 mJ/video (syops)")


def spikingjelly_plif_net(channels: int, num_blocks: int, resolution: int, hidden: int, voting: int = 10):
    """The PLIF gesture net written with SpikingJelly's own multi-step modules (the baseline)."""
    mods, cin = [], 2
    for _ in range(num_blocks):
        mods += [layer.Conv2d(cin, channels, 3, padding=1, bias=False, step_mode="m"),
                 layer.BatchNorm2d(channels, step_mode="m"),
                 neuron.ParametricLIFNode(init_tau=2.0, detach_reset=True, step_mode="m"),
                 layer.MaxPool2d(2, 2, step_mode="m")]
        cin = channels
    side = resolution >> num_blocks
    mods += [layer.Flatten(step_mode="m"), layer.Linear(channels * side * side, hidden, step_mode="m"),
             neuron.ParametricLIFNode(init_tau=2.0, detach_reset=True, step_mode="m"),
             layer.Linear(hidden, 11 * voting, step_mode="m"),
             neuron.ParametricLIFNode(init_tau=2.0, detach_reset=True, step_mode="m")]
    return torch.nn.Sequential(*mods)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def train_step_fn(model, forward, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        functional.reset_net(model)
        loss = torch.nn.functional.cross_entropy(forward(model, x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def infer_fn(model, forward, x):
    def run():
        with torch.no_grad():
            functional.reset_net(model)
            forward(model, x)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small configs only, fewer repeats")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    repeats = 2 if args.quick else 3
    rows = []
    gesture_cases = [("gesture small (PLIF, 32x32, T=8)", "gesture/small", [])]
    if not args.quick:
        gesture_cases.append(("gesture full (PLIF, 128x128, T=16)", "gesture/default", []))
    for label, config, overrides in gesture_cases:
        cfg = load_config(config, overrides)
        task = get_task_class("gesture").from_config(cfg)
        model = task.build_model()
        d, m = cfg.data, cfg.model
        x = torch.rand(args.batch, d.num_frames, 2, d.resolution, d.resolution).lt(0.1).float()
        y = torch.randint(0, 11, (args.batch,))
        ours_train = timed(train_step_fn(model, lambda mm, xx: mm(xx), x, y), repeats)
        ours_infer = timed(infer_fn(model, lambda mm, xx: mm(xx), x), repeats)
        base = spikingjelly_plif_net(m.channels, m.num_blocks, d.resolution, m.hidden)
        base_fwd = lambda mm, xx: mm(xx.transpose(0, 1)).mean(0).view(xx.shape[0], 11, 10).mean(2)  # noqa: E731
        base_train = timed(train_step_fn(base, base_fwd, x, y), repeats)
        base_infer = timed(infer_fn(base, base_fwd, x), repeats)
        ckpt = Path(__file__).resolve().parents[1] / "eventvision" / "checkpoints" / "gesture_small.pt"
        energy_model, energy_src = model, "untrained"
        if config == "gesture/small" and ckpt.is_file():
            from eventvision.engine.checkpoint import load_model_from_checkpoint
            task, energy_model, _ = load_model_from_checkpoint(ckpt, task_name="gesture")
            energy_src = "shipped checkpoint"
        batch = task.example_batch(batch_size=4) if energy_src != "untrained" else {"frames": x[:4]}
        mj = [profile_energy(energy_model, lambda mm: task.predict(mm, batch), batch_size=batch["frames"].shape[0],
                             convention=c).energy_mj for c in CONVENTIONS]
        rows.append((label, args.batch / ours_train, args.batch / ours_infer, args.batch / base_train,
                     args.batch / base_infer, mj, energy_src))
    action_cases = [("action small (SVFormer, 64x64, T=8)", "action/small")]
    if not args.quick:
        action_cases.append(("action full (SVFormer, 224x224, T=16)", "action/default"))
    for label, config in action_cases:
        cfg = load_config(config, ["data.dataset=synthetic"] if config == "action/default" else [])
        task = get_task_class("action").from_config(cfg)
        model = task.build_model()
        d = cfg.data
        batch = 2 if config == "action/default" else args.batch
        x = torch.randn(batch, d.num_frames, 3, d.image_size, d.image_size)
        y = torch.randint(0, task.num_classes, (batch,))
        t_train = timed(train_step_fn(model, lambda mm, xx: mm(xx), x, y), 1 if config == "action/default" else repeats)
        t_infer = timed(infer_fn(model, lambda mm, xx: mm(xx), x), 1 if config == "action/default" else repeats)
        mj = [profile_energy(model, x[:1], batch_size=1, convention=c).energy_mj for c in CONVENTIONS]
        rows.append((label, batch / t_train, batch / t_infer, float("nan"), float("nan"), mj, "untrained"))

    print(f"torch threads: {torch.get_num_threads()}  batch: {args.batch}")
    head = f"{'pipeline':<40} {'train/s':>9} {'infer/s':>9} {'SJ train/s':>10} {'SJ infer/s':>10} {'train x':>8} " \
           f"{'infer x':>8} {'mJ spikformer':>13} {'mJ syops':>9}  energy from"
    print(head)
    print("-" * len(head))
    for label, tr, inf, btr, binf, mj, src in rows:
        ratio_t = f"{tr / btr:8.2f}" if btr == btr else f"{'-':>8}"
        ratio_i = f"{inf / binf:8.2f}" if binf == binf else f"{'-':>8}"
        btr_s = f"{btr:10.1f}" if btr == btr else f"{'-':>10}"
        binf_s = f"{binf:10.1f}" if binf == binf else f"{'-':>10}"
        print(f"{label:<40} {tr:9.2f} {inf:9.2f} {btr_s} {binf_s} {ratio_t} {ratio_i} "
              f"{mj[0]:13.4f} {mj[1]:9.4f}  {src}")
    print("samples/s; 'x' = ours / SpikingJelly-built baseline (same net, same input).")
    print(ANCHORS)


if __name__ == "__main__":
    main()
