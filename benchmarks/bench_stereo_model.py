"""SpikeDHS stereo model: CPU forward latency and energy per inference.

For the small (CPU, filter multiplier 2, max disparity 24) and full (published retrain size,
filter multiplier 8, max disparity 63) configs, at 346x260 (MVSEC) and 640x480 (DSEC):

* latency of one inference forward (batch 1, eval, no_grad, median of ``--repeats`` after a
  warm-up) of the SpikeDHS model (spiking feature + spiking matching net) against the named
  baseline **the same network with all-ANN stages** (``feature=ann matching=ann``, ReLU instead of
  neurons, identical convs), printing the ratio spiking / ANN;
* energy per inference (mJ, 45 nm: 4.6 pJ/MAC, 0.9 pJ/AC) from
  ``eventvision.spiking.energy.profile_energy`` at 346x260 for both variants, with the ratio.

Inputs are sign-SBT-like tensors (5 bins, 10 % of pixels +-1). BatchNorm running statistics are
calibrated first by a few train-mode forwards on such inputs (otherwise the untrained spiking net
barely fires and its energy would be unrealistically low).

    python benchmarks/bench_stereo_model.py [--repeats 3] [--threads 1] [--skip-full-640]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from eventvision.models.stereo import FULL_CONFIG, SMALL_CONFIG, build_stereo_model
from eventvision.spiking.energy import profile_energy

RESOLUTIONS = {"346x260": (260, 346), "640x480": (480, 640)}


def sbt_like(h: int, w: int, seed: int = 0, density: float = 0.1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    active = torch.rand(1, 5, 1, h, w, generator=g) < density
    sign = torch.where(torch.rand(1, 5, 1, h, w, generator=g) < 0.5, -1.0, 1.0)
    return active * sign


def calibrate_bn(model: torch.nn.Module, h: int, w: int, steps: int = 3) -> None:
    """Running BN statistics = the cumulative average over ``steps`` train-mode forwards."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(steps):
            model(sbt_like(h, w, seed=10 + 2 * i), sbt_like(h, w, seed=11 + 2 * i))
    model.eval()


def latency_ms(model: torch.nn.Module, h: int, w: int, repeats: int) -> float:
    left, right = sbt_like(h, w, 1), sbt_like(h, w, 2)
    model.eval()
    times = []
    with torch.no_grad():
        model(left, right)  # warm-up
        for _ in range(repeats):
            t = time.perf_counter()
            model(left, right)
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--skip-full-640", action="store_true", help="skip the slowest case (full config at 640x480)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch 1, median of {args.repeats}")
    print(f"{'config':<6} {'input':<8} {'spiking ms':>11} {'ANN ms':>9} {'ratio':>6}")
    for name, cfg in (("small", SMALL_CONFIG), ("full", FULL_CONFIG)):
        snn = build_stereo_model(**cfg)
        ann = build_stereo_model(**dict(cfg, feature="ann", matching="ann"))
        for res, (h, w) in RESOLUTIONS.items():
            if name == "full" and res == "640x480" and args.skip_full_640:
                continue
            reps = args.repeats if name == "small" else max(1, args.repeats // 3)
            t_snn, t_ann = latency_ms(snn, h, w, reps), latency_ms(ann, h, w, reps)
            print(f"{name:<6} {res:<8} {t_snn:>11.1f} {t_ann:>9.1f} {t_snn / t_ann:>6.2f}", flush=True)
    print()
    print(f"{'config':<6} {'input':<8} {'spiking mJ':>11} {'ANN mJ':>9} {'ratio':>6} {'SNN MACs':>10} {'SNN ACs':>10}")
    h, w = RESOLUTIONS["346x260"]
    for name, cfg in (("small", SMALL_CONFIG), ("full", FULL_CONFIG)):
        snn = build_stereo_model(**cfg)
        ann = build_stereo_model(**dict(cfg, feature="ann", matching="ann"))
        calibrate_bn(snn, h, w)
        calibrate_bn(ann, h, w)
        inputs = (sbt_like(h, w, 3), sbt_like(h, w, 4))
        e_snn, e_ann = profile_energy(snn, inputs), profile_energy(ann, inputs)
        print(f"{name:<6} 346x260  {e_snn.energy_mj:>11.3f} {e_ann.energy_mj:>9.3f} "
              f"{e_snn.energy_mj / e_ann.energy_mj:>6.2f} {e_snn.total_macs / 1e9:>9.2f}G "
              f"{e_snn.total_acs / 1e9:>9.2f}G",
              flush=True)


if __name__ == "__main__":
    main()
