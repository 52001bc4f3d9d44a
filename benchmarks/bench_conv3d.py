"""Single-sample 3-D convolution on the CPU: ``eventvision.models.conv.Conv3d`` vs ``torch.nn.Conv3d``.

PyTorch's backend heuristic runs small batch-1 3-D convolutions on its reference kernel
(``slow_conv3d``); ours routes them to oneDNN. Shapes are those of the stereo matching net (small
config, 346x260 -> 1/3 resolution, 8 disparity levels) and of the detect3d geometry volume.

    python benchmarks/bench_conv3d.py
"""

from __future__ import annotations

import time

import torch
from torch import nn

from eventvision.models.conv import Conv3d

CASES = [("stereo matching, 16 ch, 8x87x116", 16, (8, 87, 116)),
         ("stereo matching, 32 ch, 4x44x58", 32, (4, 44, 58)),
         ("detect3d volume, 16 ch, 10x72x64", 16, (10, 72, 64))]


def best_ms(fn, repeats: int = 5) -> float:
    with torch.inference_mode():
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch 1, 3x3x3 kernels, best of 5")
    print(f"{'case':<36} {'nn.Conv3d ms':>13} {'ours ms':>9} {'speed-up':>9} {'max |diff|':>11}")
    for label, channels, dhw in CASES:
        ref = nn.Conv3d(channels, channels, 3, padding=1).eval()
        ours = Conv3d(channels, channels, 3, padding=1).eval()
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(1, channels, *dhw)
        t_ref, t_ours = best_ms(lambda: ref(x)), best_ms(lambda: ours(x))
        with torch.inference_mode():
            diff = float((ref(x) - ours(x)).abs().max())
        print(f"{label:<36} {t_ref:13.2f} {t_ours:9.2f} {t_ref / t_ours:8.1f}x {diff:11.2e}")


if __name__ == "__main__":
    main()
