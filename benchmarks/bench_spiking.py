"""Spiking-core throughput: forward + backward samples/s, with ratios against named baselines.

1. conv-LIF stack, ours (``SeqToANN(Conv2d, BatchNorm2d)`` + ``eventvision.spiking.neurons.LIFNode``)
   vs the same stack from plain SpikingJelly modules (``layer.Conv2d`` + ``layer.BatchNorm2d`` +
   ``neuron.LIFNode``, ``step_mode='m'``, its default torch path on this device). Same surrogate
   (Sigmoid, alpha 4), same tau, same shapes.
2. PSN vs LIF (ours) at T = 4, 16, 64: the neuron alone on a ``[T, N, C, H, W]`` input, and the
   conv stack with the neuron swapped (LIF is the baseline).

Run: ``python benchmarks/bench_spiking.py [--quick]`` (default < 2 min on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from spikingjelly.activation_based import functional, layer, neuron as sj_neuron, surrogate as sj_surrogate
from torch import nn

from eventvision.spiking.adapters import SeqToANN
from eventvision.spiking.neurons import LIFNode, make_neuron


def conv_stack_ours(channels: int, depth: int, kind: str = "lif", T: int | None = None) -> nn.Module:
    layers, c = [], 2
    for _ in range(depth):
        layers.append(SeqToANN(nn.Conv2d(c, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)))
        layers.append(LIFNode(surrogate=sj_surrogate.Sigmoid()) if kind == "lif" else make_neuron(kind, T=T, k=4))
        c = channels
    return nn.Sequential(*layers)


def conv_stack_sj(channels: int, depth: int) -> nn.Module:
    layers, c = [], 2
    for _ in range(depth):
        layers += [layer.Conv2d(c, channels, 3, padding=1, bias=False, step_mode="m"),
                   layer.BatchNorm2d(channels, step_mode="m"),
                   sj_neuron.LIFNode(tau=2.0, surrogate_function=sj_surrogate.Sigmoid(), step_mode="m")]
        c = channels
    return nn.Sequential(*layers)


def race(models: dict[str, nn.Module], x: torch.Tensor, samples: int, min_time: float) -> dict[str, float]:
    """Median samples/s of forward + backward (+ reset) per model. The models run round-robin,
    so a busy shared machine slows them alike; rounds repeat until ``min_time`` has passed
    (at least 3 rounds after a warm-up)."""

    def once(model):
        t0 = time.perf_counter()
        out = model(x)
        out.sum().backward()
        functional.reset_net(model)
        model.zero_grad(set_to_none=True)
        if x.grad is not None:
            x.grad = None
        return time.perf_counter() - t0

    for m in models.values():
        once(m)  # warm-up
    times = {k: [] for k in models}
    start = time.perf_counter()
    while len(times[next(iter(models))]) < 3 or time.perf_counter() - start < min_time:
        for k, m in models.items():
            times[k].append(once(m))
    return {k: samples / statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter timing windows (smoke run)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: stable figures on a shared machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    min_time = 0.5 if args.quick else 8.0
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu; "
          f"forward+backward, median of round-robin runs")

    T, N, C, depth, hw = 8, 4, 16, 3, 32
    x = (torch.rand(T, N, 2, hw, hw) < 0.3).float()
    r = race({"sj": conv_stack_sj(C, depth), "ours": conv_stack_ours(C, depth)}, x, N, min_time)
    print(f"\n[1] conv-BN-LIF x{depth} stack, C={C}, input [T={T}, N={N}, 2, {hw}, {hw}]")
    print(f"    spikingjelly (layer.Conv2d + neuron.LIFNode, m): {r['sj']:9.1f} samples/s")
    print(f"    eventvision (SeqToANN + LIFNode):                {r['ours']:9.1f} samples/s   "
          f"ratio ours/SJ = {r['ours'] / r['sj']:.2f}")

    print("\n[2] PSN family vs LIF (baseline = our LIFNode), samples/s")
    print(f"    {'T':>3} {'where':<28} {'LIF':>9} {'PSN':>9} {'PSN/LIF':>8} {'slidingPSN':>11} {'sPSN/LIF':>9}")
    for T in (4, 16, 64):
        n_neuron = 8
        xn = torch.randn(T, n_neuron, 16, 16, 16, requires_grad=True)
        rates = race({"lif": LIFNode(), "psn": make_neuron("psn", T=T),
                      "sliding_psn": make_neuron("sliding_psn", k=4)}, xn, n_neuron, min_time / 2)
        print(f"    {T:>3} {'neuron only [T,8,16,16,16]':<28} {rates['lif']:9.1f} {rates['psn']:9.1f} "
              f"{rates['psn'] / rates['lif']:8.2f} {rates['sliding_psn']:11.1f} "
              f"{rates['sliding_psn'] / rates['lif']:9.2f}")
        n_stack = 2
        xs = (torch.rand(T, n_stack, 2, 16, 16) < 0.3).float()
        srates = race({kind: conv_stack_ours(8, 2, kind, T) for kind in ("lif", "psn", "sliding_psn")},
                      xs, n_stack, min_time / 2)
        print(f"    {T:>3} {'conv stack C=8 x2 [T,2,2,16,16]':<28} {srates['lif']:9.1f} {srates['psn']:9.1f} "
              f"{srates['psn'] / srates['lif']:8.2f} {srates['sliding_psn']:11.1f} "
              f"{srates['sliding_psn'] / srates['lif']:9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
