"""The one training loop every task uses (through :class:`eventvision.tasks.base.Task`).

    trainer = Trainer.from_config(cfg, task)          # or Trainer.from_config(cfg, "toy")
    metrics = trainer.fit()                            # {"train/loss": ..., "val/<metric>": ..., ...}

The trainer is a loop plus hooks (:mod:`eventvision.engine.hooks`, the split of detectron2's
``HookBase``): the loop runs optimizer steps and counts epochs; logging, the task's epoch hook,
validation and best-metric tracking, the epoch summary and checkpointing are hooks called at
``before_train`` / ``before_epoch`` / ``before_step`` / ``after_step`` / ``after_epoch`` / ``after_train``.

Per optimizer step (:meth:`Trainer.run_step`): ``task.move_batch`` -> ``task.reset(model)`` ->
``task.training_step(model, batch)`` under autocast -> backward (GradScaler for fp16) -> optional
grad-norm clipping -> optimizer and per-step LR schedule.

Exact resumption: checkpoints carry model/optimizer/scheduler/scaler state, every rank's RNG state,
the epoch and the number of batches done in the current epoch, the running log sums and the number of
``metrics.csv`` rows written; the train order is a pure function of ``(seed, epoch)`` (see
:mod:`eventvision.engine.sampling`), so a resumed run on CPU continues bit for bit (with
``num_workers=0``; worker processes are seeded per epoch but an interrupted epoch redistributes samples
over workers) and its log continues without repeated rows.

Distributed: under ``torchrun`` the model is wrapped in DistributedDataParallel and
``train.batch_size`` is the GLOBAL batch, split evenly over processes. ``training_step`` receives the
DDP wrapper (call it for the forward so gradients are synchronised; use
:func:`eventvision.engine.unwrap` for attributes); validation and hooks get the bare model.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader

from eventvision.config import Config
from eventvision.engine import distributed
from eventvision.engine.checkpoint import (load_checkpoint, load_state_into, restore_task_extra,
                                           save_checkpoint)
from eventvision.engine.evaluate import autocast, evaluate
from eventvision.engine.hooks import HookBase, best_mode_for, default_hooks
from eventvision.engine.logger import NullLogger
from eventvision.engine.optim import build_optimizer, build_scheduler
from eventvision.engine.rng import get_rng_state, seed_everything, seed_worker, set_rng_state
from eventvision.engine.sampling import GlobalBatchSampler, epoch_seed
from eventvision.errors import CheckpointError, ConfigError, InvalidValueError
from eventvision.tasks.base import Task
from eventvision.utils.device import free_cores, select_device, training_threads
from eventvision.utils.progress import progress

__all__ = ["Trainer", "resolve_amp", "best_mode_for"]


def resolve_amp(amp: Any, device: torch.device) -> torch.dtype | None:
    """``train.amp`` -> autocast dtype: auto (fp16 on cuda, off on cpu) | fp16 | bf16 | none."""
    value = str(amp).lower()
    if value in ("none", "off", "false", "no", "0"):
        return None
    if value == "auto":
        return torch.float16 if device.type == "cuda" else None
    if value in ("fp16", "float16", "half", "true"):
        if device.type != "cuda":
            raise ConfigError(f"train.amp={amp} needs a CUDA device (running on {device}); "
                              f"use train.amp=bf16 or none")
        return torch.float16
    if value in ("bf16", "bfloat16"):
        return torch.bfloat16
    raise ConfigError(f"train.amp={amp!r} is not one of auto, fp16, bf16, none")


class Trainer:
    """Train ``task`` as configured by ``cfg`` (``train``, ``seed``, ``device``, ``output_dir``).

    ``resume``: None/False = fresh run; True = ``<output_dir>/last.pt``; a path = that checkpoint.
    ``hooks``: :class:`eventvision.engine.hooks.HookBase` objects, called after validation and before the
    epoch summary and checkpointing (they see ``trainer.metrics`` with the epoch's validation metrics).
    """

    def __init__(self, task: Task, cfg: Config, *, output_dir: str | Path | None = None,
                 resume: bool | str | Path | None = None, hooks: Iterable[HookBase] = (),
                 verbose: bool = True):
        self.task = task
        self.cfg = cfg
        if not isinstance(cfg.get("train"), dict):
            raise ConfigError("the config has no 'train:' section; a task's default.yaml must start with "
                              "'_defaults_: [base]' (see docs/engine.md)")
        tcfg = cfg.train
        self.tcfg = tcfg
        threads = training_threads(int(tcfg.get("threads", 0) or 0), free=free_cores(),
                                   current=torch.get_num_threads(),
                                   processes=int(os.environ.get("LOCAL_WORLD_SIZE", 1)),
                                   omp_env=os.environ.get("OMP_NUM_THREADS"))
        if threads:
            torch.set_num_threads(threads)    # this process's, for the whole run (scene making, loading, the model)
        self.output_dir = Path(output_dir if output_dir is not None
                               else cfg.get("output_dir", "runs/default"))
        env = distributed.env_info()
        self.device = distributed.resolve_device(select_device(cfg.get("device", "auto")), env.local_rank)
        self.dist = distributed.init(self.device, backend=str(tcfg.get("dist_backend", "auto")))
        self.verbose = verbose and self.dist.is_main
        self.amp_dtype = resolve_amp(tcfg.get("amp", "auto"), self.device)
        fp16_cuda = self.amp_dtype == torch.float16 and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16_cuda)
        self.seed = int(cfg.get("seed", 0))
        self.epochs = int(tcfg.epochs)
        self.max_steps = int(tcfg.get("max_steps", 0) or 0)
        self.grad_clip = float(tcfg.get("grad_clip", 0.0) or 0.0)
        self.val_split = str(tcfg.get("val_split", "val"))

        ckpt = None
        if resume:
            path = self.output_dir / "last.pt" if resume is True else Path(resume)
            if not path.exists() and resume is True:
                raise CheckpointError(f"{path}: nothing to resume (no last.pt in {self.output_dir}); start a "
                                      f"fresh run or point at the run's output folder")
            ckpt = load_checkpoint(path, expected_task=task.name or None)
            restore_task_extra(task, ckpt)
            self.resume_path: Path | None = path
        else:
            self.resume_path = None
        # train.init_weights: start from a checkpoint's model weights (and its task extra, e.g. a genotype);
        # optimizer, schedule, step and epoch start fresh. A resumed run ignores it (its own weights win).
        init_path = Path(str(tcfg.init_weights)) if tcfg.get("init_weights") else None
        init = None
        if ckpt is None and init_path is not None:
            init = load_checkpoint(init_path, expected_task=task.name or None)
            restore_task_extra(task, init)

        # same initial weights on every rank (DDP also broadcasts rank 0's at wrap time)
        seed_everything(self.seed)
        model = task.build_model()
        if ckpt is not None:
            load_state_into(model, ckpt["model"], source=self.resume_path)
        elif init is not None:    # fine-tuning start (train.init_weights): weights only
            # modules the checkpoint lacks (a branch added for the fine-tune) keep their initialisation
            fresh = load_state_into(model, init["model"], source=init_path, allow_missing=True)
            if fresh:
                modules = sorted({k.split(".")[0] for k in fresh})
                self.print(f"train.init_weights: {len(fresh)} tensors not in {init_path} start from their "
                           f"initialisation ({', '.join(modules[:6])}{', ...' if len(modules) > 6 else ''})")
        if self.dist.enabled and tcfg.get("sync_batchnorm", False):
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(self.device)
        self.model = model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model: nn.Module = nn.parallel.DistributedDataParallel(
                model, device_ids=ids, output_device=ids[0] if ids else None,
                find_unused_parameters=bool(tcfg.get("find_unused_parameters", False)))
        else:
            self.train_model = model
        # datasets are built under the common seed too, so synthetic/randomly split data match across ranks
        self.train_set = task.build_dataset("train")
        self._val_set = task.build_dataset(self.val_split) if int(tcfg.get("val_every", 1) or 0) else None
        seed_everything(self.seed + self.dist.rank)  # per-rank stream for augmentation
        self.sampler = GlobalBatchSampler(len(self.train_set), batch_size=int(tcfg.batch_size),
                                          shuffle=bool(tcfg.get("shuffle", True)), seed=self.seed,
                                          drop_last=bool(tcfg.get("drop_last", False)), rank=self.dist.rank,
                                          world_size=self.dist.world_size)
        self.loader_generator = torch.Generator()
        self.loader = DataLoader(self.train_set, batch_sampler=self.sampler, collate_fn=task.collate,
                                 num_workers=int(tcfg.get("num_workers", 0)), worker_init_fn=seed_worker,
                                 generator=self.loader_generator, pin_memory=self.device.type == "cuda")
        self.steps_per_epoch = self.sampler.num_batches()
        if self.steps_per_epoch == 0:
            raise ConfigError(f"the training set has {len(self.train_set)} samples, fewer than one batch of "
                              f"{tcfg.batch_size}; lower train.batch_size or set train.drop_last=false")

        self.optimizer = build_optimizer(task.param_groups(model), tcfg.optimizer)
        self._params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.scheduler = build_scheduler(self.optimizer, tcfg.scheduler, steps_per_epoch=self.steps_per_epoch,
                                         epochs=self.epochs)
        # loop state (all of it goes into the checkpoint)
        self.epoch = 0            # epochs completed
        self.batch_in_epoch = 0   # batches done in epoch ``self.epoch`` (mid-epoch checkpoints)
        self.step = 0             # optimizer steps
        self.best: float | None = None
        self.metrics: dict[str, Any] = {}
        self.epoch_sum: dict[str, float] = {}  # running sums of this epoch's train scalars (per rank)
        self.epoch_count = 0
        self.window_sum: dict[str, float] = {}  # ... and since the last log line
        self.window_count = 0
        # per-step / per-epoch values the hooks read
        self.step_scalars: dict[str, float] = {}
        self.step_lr = 0.0
        self.improved = False
        self.resumed_log_rows: int | None = None
        self.logger: NullLogger = NullLogger()
        self._rng_to_restore = None
        self._bar = None
        if ckpt is not None:
            self._load_training_state(ckpt)
        self.hooks = default_hooks(tcfg, list(hooks))
        for hook in self.hooks:
            hook.trainer = self

    @classmethod
    def from_config(cls, cfg: Config, task: Any = None, **kwargs) -> "Trainer":
        """``task``: a Task instance, a registered task name, or None for ``cfg.task`` if present."""
        if task is None or isinstance(task, str):
            from eventvision.tasks import get_task_class
            name = task or cfg.get("task")
            if not name:
                raise ConfigError("no task given; name a task (e.g. 'toy') or set the config's 'task' key")
            task = get_task_class(name).from_config(cfg)
        return cls(task, cfg, **kwargs)

    # --- state --------------------------------------------------------------------------------
    def _load_training_state(self, ckpt: dict) -> None:
        saved_cls, cls = ckpt.get("optimizer_class"), type(self.optimizer).__name__
        if ckpt.get("optimizer") is not None and saved_cls not in (None, cls):
            raise CheckpointError(f"{self.resume_path}: optimizer state does not fit: the checkpoint was "
                                  f"trained with {saved_cls}, the config builds {cls}; resume with the "
                                  f"original train.optimizer.name")
        if ckpt.get("optimizer") is not None:
            try:
                self.optimizer.load_state_dict(ckpt["optimizer"])
            except (ValueError, KeyError) as exc:
                raise CheckpointError(f"{self.resume_path}: optimizer state does not fit ({exc}); the "
                                      f"optimizer config changed since the checkpoint, resume with the "
                                      f"original config") from None
        if ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler") is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch = int(ckpt.get("epoch", 0))
        self.batch_in_epoch = int(ckpt.get("batch_in_epoch", 0))
        self.step = int(ckpt.get("step", 0))
        self.best = ckpt.get("best")
        self.metrics = dict(ckpt.get("metrics") or {})
        accum = ckpt.get("epoch_accum") or {}
        if self.batch_in_epoch:
            self.epoch_sum = {str(k): float(v) for k, v in (accum.get("sum") or {}).items()}
            self.epoch_count = int(accum.get("count", 0))
        self.window_sum = {str(k): float(v) for k, v in (accum.get("window_sum") or {}).items()}
        self.window_count = int(accum.get("window_count", 0))
        rows = ckpt.get("log_rows")
        self.resumed_log_rows = int(rows) if rows is not None else None
        per_rank = ckpt.get("rng_per_rank") or []
        if len(per_rank) == self.dist.world_size:
            self._rng_to_restore = per_rank[self.dist.rank]
        elif ckpt.get("rng") is not None and self.dist.world_size == 1:
            self._rng_to_restore = ckpt["rng"]

    def state_extras(self) -> dict:
        return {"batch_in_epoch": self.batch_in_epoch, "best": self.best, "world_size": self.dist.world_size,
                "optimizer_class": type(self.optimizer).__name__, "log_rows": self.logger.rows,
                "epoch_accum": {"sum": dict(self.epoch_sum), "count": self.epoch_count,
                                "window_sum": dict(self.window_sum), "window_count": self.window_count}}

    def save(self, path: str | Path) -> None:
        """Collective: every rank calls it (RNG states are gathered), rank 0 writes ``path`` atomically."""
        rngs = distributed.all_gather_object(get_rng_state())
        if not self.dist.is_main:
            return
        save_checkpoint(path, task=self.task.name, config=self.cfg, model=self.model,
                        optimizer=self.optimizer, scheduler=self.scheduler,
                        scaler=self.scaler if self.scaler.is_enabled() else None, rng=rngs[0],
                        rng_per_rank=rngs, epoch=self.epoch, step=self.step, metrics=self.metrics,
                        extra=self.task.extra_state(self.model), **self.state_extras())

    # --- loop -------------------------------------------------------------------------------
    def print(self, text: str) -> None:
        """A line on stderr (rank 0, unless quiet)."""
        if self.verbose:
            print(text, file=sys.stderr, flush=True)

    def set_postfix(self, **values: str) -> None:
        """Show ``values`` beside the epoch's progress bar (rank 0)."""
        if self._bar is not None and self.dist.is_main:
            self._bar.set_postfix(**values)

    def max_steps_reached(self) -> bool:
        return bool(self.max_steps) and self.step >= self.max_steps

    def fit(self) -> dict[str, Any]:
        """Train until ``train.epochs`` (or ``train.max_steps``); returns the final metrics."""
        for hook in self.hooks:
            hook.before_train()
        if self._rng_to_restore is not None:
            set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None
        if self.resume_path is not None:
            self.print(f"resuming from {self.resume_path} at epoch {self.epoch}, step {self.step}")
        try:
            while self.epoch < self.epochs and not self.max_steps_reached():
                for hook in self.hooks:
                    hook.before_epoch()
                train_scalars = self.run_epoch()
                if self.batch_in_epoch < self.steps_per_epoch:  # stopped by max_steps inside the epoch
                    break
                self.epoch += 1
                self.batch_in_epoch = 0
                self.metrics = {f"train/{k}": v for k, v in train_scalars.items()}
                for hook in self.hooks:
                    hook.after_epoch()
        finally:
            for hook in self.hooks:
                hook.after_train()
        return dict(self.metrics, epoch=self.epoch, step=self.step)

    def run_epoch(self) -> dict[str, float]:
        """Steps of epoch ``epoch`` from batch ``batch_in_epoch`` on -> the epoch's mean train scalars."""
        self.sampler.set_epoch(self.epoch, start_batch=self.batch_in_epoch)
        self.loader_generator.manual_seed(epoch_seed(self.seed + 7919 * self.dist.rank, self.epoch))
        self.train_model.train()
        if self.batch_in_epoch == 0:
            self.epoch_sum, self.epoch_count = {}, 0
        self._bar = progress(self.loader, total=len(self.sampler), unit="batch", leave=False,
                             desc=f"epoch {self.epoch + 1}/{self.epochs}",
                             disable=None if self.dist.is_main else True)
        try:
            for batch in self._bar:
                for hook in self.hooks:
                    hook.before_step()
                self.run_step(batch)
                for hook in self.hooks:
                    hook.after_step()
                if self.max_steps_reached():
                    break
        finally:
            self._bar.close()
            self._bar = None
        if self.epoch_count == 0:
            return {}
        return distributed.mean_scalars({k: v / self.epoch_count for k, v in self.epoch_sum.items()}, 1)

    def run_step(self, batch: Any) -> None:
        """One optimizer step; its scalars go to ``step_scalars`` and into the running sums.

        The spiking state is reset once, before the forward, through ``task.reset`` (the engine's only reset
        on this path)."""
        batch = self.task.move_batch(batch, self.device)
        self.task.reset(self.train_model)
        with autocast(self.device, self.amp_dtype):
            loss, scalars = self.task.training_step(self.train_model, batch)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise InvalidValueError(f"training loss became {loss_value} at epoch {self.epoch + 1}, step "
                                    f"{self.step + 1}; lower train.optimizer.lr, set train.grad_clip or "
                                    f"check the data")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self._params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step_lr = self.optimizer.param_groups[0]["lr"]  # the lr of the step just taken
        self.scheduler.step()
        self.step += 1
        self.batch_in_epoch += 1

        self.step_scalars = {"loss": loss_value,
                             **{k: float(v) for k, v in (scalars or {}).items() if k != "loss"}}
        for k, v in self.step_scalars.items():
            self.window_sum[k] = self.window_sum.get(k, 0.0) + v
            self.epoch_sum[k] = self.epoch_sum.get(k, 0.0) + v
        self.window_count += 1
        self.epoch_count += 1

    def validate(self, split: str | None = None) -> dict[str, Any]:
        """Evaluate the current model on ``split`` (default ``train.val_split``); same dict on every rank."""
        split = split or self.val_split
        if split == self.val_split:
            if self._val_set is None:
                self._val_set = self.task.build_dataset(split)
            dataset = self._val_set
        else:
            dataset = self.task.build_dataset(split)
        batch = int(self.tcfg.get("val_batch_size", 0) or 0) or max(
            1, int(self.tcfg.batch_size) // self.dist.world_size)
        return evaluate(self.task, self.model, split, self.device, batch_size=batch,
                        num_workers=int(self.tcfg.get("num_workers", 0)), dataset=dataset,
                        amp_dtype=self.amp_dtype, desc=f"val {split}")
