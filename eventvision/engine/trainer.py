"""The one training loop every task uses (through :class:`eventvision.tasks.base.Task`).

    trainer = Trainer.from_config(cfg, task)          # or Trainer.from_config(cfg, "toy")
    metrics = trainer.fit()                            # {"train/loss": ..., "val/<metric>": ..., ...}

Per optimizer step: ``task.move_batch`` -> ``task.reset(model)`` -> ``task.training_step(model, batch)``
under autocast -> backward (GradScaler for fp16) -> optional grad-norm clipping -> optimizer and
per-step LR schedule -> ``task.reset(model)``. Per epoch: hooks (``task.on_epoch_end(model, epoch)``,
``model.on_epoch_end(epoch)``, callbacks), validation every ``train.val_every`` epochs,
``last.pt`` (and ``best.pt`` when the watched metric improves) written atomically by rank 0.

Exact resumption: checkpoints carry model/optimizer/scheduler/scaler state, every rank's RNG state,
the epoch and the number of batches done in the current epoch; the train order is a pure function
of ``(seed, epoch)`` (see :mod:`eventvision.engine.sampling`), so a resumed run on CPU continues
bit for bit (with ``num_workers=0``; worker processes are seeded per epoch but an interrupted epoch
redistributes samples over workers).

Distributed: under ``torchrun`` the model is wrapped in DistributedDataParallel and
``train.batch_size`` is the GLOBAL batch, split evenly over processes. ``training_step`` receives the
DDP wrapper (call it for the forward so gradients are synchronised; use
:func:`eventvision.engine.unwrap` for attributes); validation and hooks get the bare model.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader

from eventvision.config import Config, dump_config
from eventvision.engine import distributed
from eventvision.engine.checkpoint import load_checkpoint, load_state_into, restore_task_extra, save_checkpoint
from eventvision.engine.evaluate import autocast, evaluate
from eventvision.engine.logger import MetricLogger, NullLogger
from eventvision.engine.optim import build_optimizer, build_scheduler
from eventvision.engine.rng import get_rng_state, seed_everything, seed_worker, set_rng_state
from eventvision.engine.sampling import GlobalBatchSampler, epoch_seed
from eventvision.errors import UserError
from eventvision.utils.device import select_device
from eventvision.utils.io import atomic_path
from eventvision.utils.progress import progress

LOWER_IS_BETTER = ("loss", "error", "err", "epe", "rmse", "mae", "mse", "abs_rel", "outlier", "latency")


def resolve_amp(amp: Any, device: torch.device) -> torch.dtype | None:
    """``train.amp`` -> autocast dtype: auto (fp16 on cuda, off on cpu) | fp16 | bf16 | none."""
    value = str(amp).lower()
    if value in ("none", "off", "false", "no", "0"):
        return None
    if value == "auto":
        return torch.float16 if device.type == "cuda" else None
    if value in ("fp16", "float16", "half", "true"):
        if device.type != "cuda":
            raise UserError(f"train.amp={amp} needs a CUDA device (running on {device}); use train.amp=bf16 or none")
        return torch.float16
    if value in ("bf16", "bfloat16"):
        return torch.bfloat16
    raise UserError(f"train.amp={amp!r} is not one of auto, fp16, bf16, none")


def best_mode_for(name: str) -> str:
    return "min" if any(s in name.lower() for s in LOWER_IS_BETTER) else "max"


class Trainer:
    """Train ``task`` as configured by ``cfg`` (``cfg.train``, ``cfg.seed``, ``cfg.device``, ``cfg.output_dir``).

    ``resume``: None/False = fresh run; True = ``<output_dir>/last.pt``; a path = that checkpoint.
    ``callbacks``: objects with any of ``on_step_end(trainer, scalars)``, ``on_epoch_end(trainer, epoch)``,
    ``on_validation_end(trainer, metrics)``.
    """

    def __init__(self, task: Any, cfg: Config, *, output_dir: str | Path | None = None,
                 resume: bool | str | Path | None = None, callbacks: Iterable[Any] = (), verbose: bool = True):
        self.task = task
        self.cfg = cfg
        if not isinstance(cfg.get("train"), dict):
            raise UserError("the config has no 'train:' section; a task's default.yaml must start with "
                            "'_defaults_: [base]' (see docs/engine.md)")
        tcfg = cfg.train
        self.tcfg = tcfg
        self.callbacks = list(callbacks)
        self.output_dir = Path(output_dir if output_dir is not None else cfg.get("output_dir", "runs/default"))
        env = distributed.env_info()
        self.device = distributed.resolve_device(select_device(cfg.get("device", "auto")), env.local_rank)
        self.dist = distributed.init(self.device, backend=str(tcfg.get("dist_backend", "auto")))
        self.verbose = verbose and self.dist.is_main
        self.amp_dtype = resolve_amp(tcfg.get("amp", "auto"), self.device)
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=self.amp_dtype == torch.float16 and self.device.type == "cuda")
        self.seed = int(cfg.get("seed", 0))

        ckpt = None
        if resume:
            path = self.output_dir / "last.pt" if resume is True else Path(resume)
            if not path.exists() and resume is True:
                raise UserError(f"{path}: nothing to resume (no last.pt in {self.output_dir}); "
                                f"drop --resume or pass the run's --output-dir")
            ckpt = load_checkpoint(path, expected_task=task.name or None)
            restore_task_extra(task, ckpt)
            self.resume_path = path
        else:
            self.resume_path = None

        # same initial weights on every rank (DDP also broadcasts rank 0's at wrap time)
        seed_everything(self.seed)
        model = task.build_model()
        if ckpt is not None:
            load_state_into(model, ckpt["model"], source=self.resume_path)
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
        val_split = str(tcfg.get("val_split", "val"))
        self._val_set = task.build_dataset(val_split) if int(tcfg.get("val_every", 1) or 0) else None
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
            raise UserError(f"the training set has {len(self.train_set)} samples, fewer than one batch of "
                            f"{tcfg.batch_size}; lower train.batch_size or set train.drop_last=false")

        groups = task.param_groups(model) if hasattr(task, "param_groups") else \
            [p for p in model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(groups, tcfg.optimizer)
        self.scheduler = build_scheduler(self.optimizer, tcfg.scheduler, steps_per_epoch=self.steps_per_epoch,
                                         epochs=int(tcfg.epochs))
        self.epoch = 0            # epochs completed
        self.batch_in_epoch = 0   # batches done in epoch ``self.epoch`` (mid-epoch checkpoints)
        self.step = 0             # optimizer steps
        self.best: float | None = None
        self.metrics: dict[str, Any] = {}
        self._rng_to_restore = None
        self._epoch_sum: dict[str, float] = {}  # running sums of this epoch's train scalars (per rank)
        self._epoch_n = 0
        self._window: dict[str, float] = {}  # ... and since the last log line
        self._window_n = 0
        if ckpt is not None:
            self._load_training_state(ckpt)
        self.logger: NullLogger = NullLogger()

    @classmethod
    def from_config(cls, cfg: Config, task: Any = None, **kwargs) -> "Trainer":
        """``task``: a Task instance, a registered task name, or None for ``cfg.task`` if present."""
        if task is None or isinstance(task, str):
            from eventvision.tasks import get_task_class
            name = task or cfg.get("task")
            if not name:
                raise UserError("no task given; pass a task name (e.g. 'eventvision train toy')")
            task = get_task_class(name).from_config(cfg)
        return cls(task, cfg, **kwargs)

    # --- state --------------------------------------------------------------------------------
    def _load_training_state(self, ckpt: dict) -> None:
        saved_cls, cls = ckpt.get("optimizer_class"), type(self.optimizer).__name__
        if ckpt.get("optimizer") is not None and saved_cls not in (None, cls):
            raise UserError(f"{self.resume_path}: optimizer state does not fit: the checkpoint was trained with "
                            f"{saved_cls}, the config builds {cls}; resume with the original train.optimizer.name")
        if ckpt.get("optimizer") is not None:
            try:
                self.optimizer.load_state_dict(ckpt["optimizer"])
            except (ValueError, KeyError) as exc:
                raise UserError(f"{self.resume_path}: optimizer state does not fit ({exc}); the optimizer config "
                                f"changed since the checkpoint, resume with the original config") from None
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
            self._epoch_sum = {str(k): float(v) for k, v in (accum.get("sum") or {}).items()}
            self._epoch_n = int(accum.get("count", 0))
        self._window = {str(k): float(v) for k, v in (accum.get("window_sum") or {}).items()}
        self._window_n = int(accum.get("window_count", 0))
        per_rank = ckpt.get("rng_per_rank") or []
        if len(per_rank) == self.dist.world_size:
            self._rng_to_restore = per_rank[self.dist.rank]
        elif ckpt.get("rng") is not None and self.dist.world_size == 1:
            self._rng_to_restore = ckpt["rng"]

    def state_extras(self) -> dict:
        return {"batch_in_epoch": self.batch_in_epoch, "best": self.best, "world_size": self.dist.world_size,
                "optimizer_class": type(self.optimizer).__name__,
                "epoch_accum": {"sum": dict(self._epoch_sum), "count": self._epoch_n,
                                "window_sum": dict(self._window), "window_count": self._window_n}}

    def save(self, path: str | Path) -> None:
        """Collective: every rank calls it (RNG states are gathered), rank 0 writes ``path`` atomically."""
        rngs = distributed.all_gather_object(get_rng_state())
        if not self.dist.is_main:
            return
        save_checkpoint(path, task=self.task.name, config=self.cfg, model=self.model, optimizer=self.optimizer,
                        scheduler=self.scheduler, scaler=self.scaler if self.scaler.is_enabled() else None,
                        rng=rngs[0], rng_per_rank=rngs, epoch=self.epoch, step=self.step, metrics=self.metrics,
                        extra=self.task.extra_state(self.model), **self.state_extras())

    # --- loops --------------------------------------------------------------------------------
    def _print(self, text: str) -> None:
        if self.verbose:
            print(text, file=sys.stderr, flush=True)

    def _call_hooks(self, name: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, name, None)
            if callable(fn):
                fn(self, *args)

    def fit(self) -> dict[str, Any]:
        """Train until ``train.epochs`` (or ``train.max_steps``); returns the final metrics."""
        epochs = int(self.tcfg.epochs)
        max_steps = int(self.tcfg.get("max_steps", 0) or 0)
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.output_dir / "config.yaml") as tmp:
                tmp.write_text(dump_config(self.cfg))
            if self.resume_path is None and (self.output_dir / "last.pt").exists():
                self._print(f"note: {self.output_dir} holds an earlier run; starting afresh (use --resume to continue it)")
            self.logger = MetricLogger(self.output_dir, tensorboard=bool(self.tcfg.get("tensorboard", True)),
                                       append=self.resume_path is not None)
        if self._rng_to_restore is not None:
            set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None
        if self.resume_path is not None:
            self._print(f"resuming from {self.resume_path} at epoch {self.epoch}, step {self.step}")
        try:
            while self.epoch < epochs:
                if max_steps and self.step >= max_steps:
                    break
                t0 = time.perf_counter()
                train_scalars = self._train_epoch(max_steps)
                if self.batch_in_epoch < self.steps_per_epoch:  # stopped by max_steps inside the epoch
                    self.save(self.output_dir / "last.pt")
                    break
                self.epoch += 1
                self.batch_in_epoch = 0
                self._end_of_epoch(train_scalars, epochs, time.perf_counter() - t0)
        finally:
            self.logger.close()
        return dict(self.metrics, epoch=self.epoch, step=self.step)

    def _end_of_epoch(self, train_scalars: dict[str, float], epochs: int, seconds: float) -> None:
        epoch_index = self.epoch - 1
        hook = getattr(self.task, "on_epoch_end", None)
        if callable(hook):
            hook(self.model, epoch_index)
        hook = getattr(self.model, "on_epoch_end", None)
        if callable(hook):
            hook(epoch_index)
        self._call_hooks("on_epoch_end", epoch_index)
        self.metrics = {f"train/{k}": v for k, v in train_scalars.items()}
        val_every = int(self.tcfg.get("val_every", 1) or 0)
        improved = False
        if val_every and (self.epoch % val_every == 0 or self.epoch == epochs):
            val = self.validate()
            self.metrics.update({f"val/{k}": v for k, v in val.items()})
            self.logger.log({k: v for k, v in val.items() if isinstance(v, float)}, step=self.step,
                            epoch=self.epoch, prefix="val/")
            self._call_hooks("on_validation_end", val)
            improved = self._update_best(val)
        self.logger.log({"epoch_seconds": seconds}, step=self.step, epoch=self.epoch, prefix="time/")
        shown = "  ".join(f"{k} {v:.4g}" for k, v in self.metrics.items() if isinstance(v, float))
        self._print(f"epoch {self.epoch}/{epochs}  step {self.step}  {shown}  ({seconds:.1f} s)")
        self.save(self.output_dir / "last.pt")
        if improved and self.dist.is_main:
            with atomic_path(self.output_dir / "best.pt") as tmp:
                shutil.copyfile(self.output_dir / "last.pt", tmp)

    def _watched(self, val: dict[str, Any]) -> tuple[str, str] | None:
        numeric = [k for k, v in val.items() if isinstance(v, float)]
        name = str(self.tcfg.get("best_metric", "") or getattr(self.task, "best_metric", "") or "")
        if not name:
            if not numeric:
                return None
            name = numeric[0]
        if name not in numeric:
            raise UserError(f"train.best_metric '{name}' is not among the validation metrics "
                            f"({', '.join(numeric)}); set train.best_metric to one of them")
        mode = str(self.tcfg.get("best_mode", "auto"))
        if mode == "auto":
            mode = getattr(self.task, "best_mode", "") or best_mode_for(name)
        if mode not in ("min", "max"):
            raise UserError(f"train.best_mode '{mode}' is not one of max, min, auto")
        return name, mode

    def _update_best(self, val: dict[str, Any]) -> bool:
        watched = self._watched(val)
        if watched is None:
            return False
        name, mode = watched
        value = val[name]
        if math.isnan(value):
            return False
        if self.best is None or (value > self.best if mode == "max" else value < self.best):
            self.best = float(value)
            self.metrics["best/" + name] = self.best
            return True
        self.metrics["best/" + name] = self.best
        return False

    def _train_epoch(self, max_steps: int) -> dict[str, float]:
        tcfg = self.tcfg
        self.sampler.set_epoch(self.epoch, start_batch=self.batch_in_epoch)
        self.loader_generator.manual_seed(epoch_seed(self.seed + 7919 * self.dist.rank, self.epoch))
        self.train_model.train()
        log_every = max(1, int(tcfg.get("log_every", 10) or 1))
        ckpt_every = int(tcfg.get("checkpoint_every", 0) or 0)
        grad_clip = float(tcfg.get("grad_clip", 0.0) or 0.0)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        if self.batch_in_epoch == 0:
            self._epoch_sum, self._epoch_n = {}, 0
        epoch_sum = self._epoch_sum
        bar = progress(self.loader, total=len(self.sampler), desc=f"epoch {self.epoch + 1}/{tcfg.epochs}",
                       unit="batch", disable=None if self.dist.is_main else True, leave=False)
        for batch in bar:
            batch = self.task.move_batch(batch, self.device)
            self.task.reset(self.train_model)
            with autocast(self.device, self.amp_dtype):
                loss, scalars = self.task.training_step(self.train_model, batch)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise UserError(f"training loss became {loss_value} at epoch {self.epoch + 1}, step {self.step + 1}; "
                                f"lower train.optimizer.lr, set train.grad_clip or check the data")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            used_lr = self.optimizer.param_groups[0]["lr"]
            self.scheduler.step()
            self.task.reset(self.train_model)
            self.step += 1
            self.batch_in_epoch += 1

            values = {"loss": loss_value, **{k: float(v) for k, v in (scalars or {}).items() if k != "loss"}}
            for k, v in values.items():
                self._window[k] = self._window.get(k, 0.0) + v
                epoch_sum[k] = epoch_sum.get(k, 0.0) + v
            self._window_n += 1
            self._epoch_n += 1
            if self.step % log_every == 0:
                mean = distributed.mean_scalars({k: v / self._window_n for k, v in self._window.items()}, 1)
                mean["lr"] = used_lr  # the lr of the step just taken
                self.logger.log(mean, step=self.step, epoch=self.epoch, prefix="train/")
                if self.dist.is_main:
                    bar.set_postfix(loss=f"{mean['loss']:.4g}")
                self._call_hooks("on_step_end", mean)
                self._window, self._window_n = {}, 0
            if ckpt_every and self.step % ckpt_every == 0:
                self.save(self.output_dir / "last.pt")
            if max_steps and self.step >= max_steps:
                break
        bar.close()
        if self._epoch_n == 0:
            return {}
        return distributed.mean_scalars({k: v / self._epoch_n for k, v in epoch_sum.items()}, 1)

    def validate(self, split: str | None = None) -> dict[str, Any]:
        """Evaluate the current model on ``split`` (default ``train.val_split``); same dict on every rank."""
        split = split or str(self.tcfg.get("val_split", "val"))
        if split == str(self.tcfg.get("val_split", "val")):
            if self._val_set is None:
                self._val_set = self.task.build_dataset(split)
            dataset = self._val_set
        else:
            dataset = self.task.build_dataset(split)
        batch = int(self.tcfg.get("val_batch_size", 0) or 0) or max(1, int(self.tcfg.batch_size) // self.dist.world_size)
        return evaluate(self.task, self.model, split, self.device, batch_size=batch,
                        num_workers=int(self.tcfg.get("num_workers", 0)), dataset=dataset, amp_dtype=self.amp_dtype,
                        desc=f"val {split}")
