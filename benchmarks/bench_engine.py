"""Training-engine overhead: the Trainer against a bare PyTorch loop doing the same work.

Same toy model (MLP dim -> hidden -> classes), same data, same AdamW + per-step cosine schedule,
same global batch; the bare loop (the named baseline) is `for x, y in DataLoader(shuffle=True):
forward, cross-entropy, backward, step, scheduler.step()`. The engine adds task dispatch, spiking
state resets, loss checks, CSV logging every `log_every` steps and an atomic `last.pt` per epoch
(validation off for both). Also reported: the time of one atomic checkpoint write.

    python benchmarks/bench_engine.py [--epochs 3] [--hidden 512]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from torch.nn import functional as F

os.environ.setdefault("EVENTVISION_NO_PROGRESS", "1")


def overrides(args, out):
    return ["device=cpu", f"output_dir={out}", "train.tensorboard=false", "train.val_every=0",
            f"train.epochs={args.epochs}", f"train.batch_size={args.batch}", f"model.hidden={args.hidden}",
            f"data.dim={args.dim}", f"data.train_size={args.samples}", "train.log_every=10"]


def bench_bare(cfg) -> tuple[float, float, int]:
    from eventvision.engine.optim import build_optimizer, build_scheduler
    from eventvision.engine.rng import seed_everything
    from eventvision.tasks.toy import ToyTask

    task = ToyTask.from_config(cfg)
    seed_everything(cfg.seed)
    model = task.build_model()
    data = task.build_dataset("train")
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.train.batch_size, shuffle=True)
    opt = build_optimizer(model.parameters(), cfg.train.optimizer)
    sched = build_scheduler(opt, cfg.train.scheduler, steps_per_epoch=len(loader), epochs=cfg.train.epochs)
    steps = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(cfg.train.epochs):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            steps += 1
    return time.perf_counter() - wall, time.process_time() - cpu, steps


def bench_engine(cfg) -> tuple[float, float, int]:
    from eventvision.engine import Trainer

    trainer = Trainer.from_config(cfg, "toy", verbose=False)
    wall, cpu = time.perf_counter(), time.process_time()
    metrics = trainer.fit()
    return time.perf_counter() - wall, time.process_time() - cpu, metrics["step"]


def bench_checkpoint(cfg, out) -> tuple[float, float]:
    from eventvision.engine import Trainer
    trainer = Trainer.from_config(cfg, "toy", verbose=False)
    t = time.perf_counter()
    for _ in range(5):
        trainer.save(os.path.join(out, "bench.pt"))
    return (time.perf_counter() - t) / 5, os.path.getsize(os.path.join(out, "bench.pt")) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4096)
    args = parser.parse_args()
    from eventvision.config import load_config

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config("toy/default", overrides(args, out))
        bench_bare(cfg)  # warm-up (allocator, kernels), not timed
        bare = bench_bare(cfg)
        engine = bench_engine(cfg)
        ckpt_s, ckpt_mb = bench_checkpoint(cfg, out)
    print(f"toy MLP {args.dim}-{args.hidden}-4, batch {args.batch}, {args.samples} samples x {args.epochs} epochs, "
          f"1 thread")
    print(f"{'loop':<28}{'steps':>7}{'wall s':>9}{'cpu s':>9}{'steps/s (cpu)':>15}")
    for name, (wall, cpu, steps) in (("bare PyTorch loop (baseline)", bare), ("eventvision Trainer", engine)):
        print(f"{name:<28}{steps:>7}{wall:>9.2f}{cpu:>9.2f}{steps / cpu:>15.1f}")
    print(f"engine / bare CPU time: {engine[1] / bare[1]:.3f}x  (wall {engine[0] / bare[0]:.3f}x)")
    print(f"atomic checkpoint write: {ckpt_s * 1e3:.1f} ms for {ckpt_mb:.2f} MB")


if __name__ == "__main__":
    main()
