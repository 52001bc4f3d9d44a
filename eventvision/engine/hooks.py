"""The trainer's hooks: everything around the optimisation loop (detectron2's ``HookBase`` split).

The loop (:class:`eventvision.engine.trainer.Trainer`) runs steps and epochs and calls, in registration
order, ``before_train`` / ``before_epoch`` / ``before_step`` / ``after_step`` / ``after_epoch`` /
``after_train`` on each hook. Hooks read and write the trainer's public state (``step``, ``epoch``,
``batch_in_epoch``, ``step_scalars``, ``metrics``, ``best``, ``logger``); they keep none of their own,
so a checkpoint written by the trainer holds everything a resumed run needs.

Default order (:func:`default_hooks`): run folder + logging, the task's epoch hook, validation,
the user's hooks, the epoch summary, checkpointing. ``after_train`` runs in a ``finally``: it also
runs when the loop raised.
"""

from __future__ import annotations

import math
import shutil
import time
from typing import TYPE_CHECKING, Any

from eventvision.config import dump_config
from eventvision.engine import distributed
from eventvision.engine.logger import MetricLogger, NullLogger
from eventvision.errors import ConfigError
from eventvision.utils.io import atomic_path

if TYPE_CHECKING:
    from eventvision.engine.trainer import Trainer

LOWER_IS_BETTER = ("loss", "error", "err", "epe", "rmse", "mae", "mse", "abs_rel", "outlier", "latency")


def best_mode_for(name: str) -> str:
    """``"min"`` for metric names that read as an error (loss, epe, rmse, ...), else ``"max"``."""
    return "min" if any(s in name.lower() for s in LOWER_IS_BETTER) else "max"


class HookBase:
    """Override any of the six methods; ``self.trainer`` is set when the trainer registers the hook."""

    trainer: "Trainer"

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_epoch(self) -> None:
        pass

    def after_epoch(self) -> None:
        """Called with ``trainer.epoch`` already counting the finished epoch (1 after the first)."""

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        """Called with ``trainer.step`` counting the step just taken, ``trainer.step_scalars`` its values."""


class RunLogger(HookBase):
    """The run folder (``config.yaml``), ``metrics.csv`` + TensorBoard (rank 0), the per-step log window.

    Every ``train.log_every`` steps it logs the mean of the window's scalars (averaged over ranks) plus
    the learning rate of the step just taken. On resume the CSV is cut back to the rows the checkpoint
    had seen (``log_rows``) and TensorBoard hides events after the resumed step, so rows logged between
    the checkpoint and a kill are not repeated.
    """

    def __init__(self, log_every: int, tensorboard: bool):
        self.log_every = max(1, int(log_every))
        self.tensorboard = tensorboard

    def before_train(self) -> None:
        t = self.trainer
        if not t.dist.is_main:
            return
        t.output_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(t.output_dir / "config.yaml") as tmp:
            tmp.write_text(dump_config(t.cfg))
        if t.resume_path is None and (t.output_dir / "last.pt").exists():
            t.print(f"note: {t.output_dir} holds an earlier run; starting afresh (resume to continue it)")
        same_run = t.resume_path is not None and t.resume_path.resolve().parent == t.output_dir.resolve()
        t.logger = MetricLogger(t.output_dir, tensorboard=self.tensorboard, append=t.resume_path is not None,
                                keep_rows=t.resumed_log_rows if same_run else None,
                                purge_step=t.step + 1 if t.resume_path is not None else None)

    def after_step(self) -> None:
        t = self.trainer
        if t.step % self.log_every:
            return
        mean = distributed.mean_scalars({k: v / t.window_count for k, v in t.window_sum.items()}, 1)
        mean["lr"] = t.step_lr
        t.logger.log(mean, step=t.step, epoch=t.epoch, prefix="train/")
        t.set_postfix(loss=f"{mean['loss']:.4g}")
        t.window_sum, t.window_count = {}, 0

    def after_train(self) -> None:
        self.trainer.logger.close()
        self.trainer.logger = NullLogger()


class TaskEpochHook(HookBase):
    """``task.on_epoch_end(model, epoch)``, 0-based index of the finished epoch (before validation)."""

    def after_epoch(self) -> None:
        t = self.trainer
        t.task.on_epoch_end(t.model, t.epoch - 1)


class EvalHook(HookBase):
    """Validation every ``val_every`` epochs (and after the last); best watched value in ``trainer.best``.

    The watched metric is ``train.best_metric``, else the task's ``best_metric``, else the first numeric
    metric; its mode ``train.best_mode`` (auto: the task's ``best_mode``, else by name).
    Sets ``trainer.improved`` for the checkpoint hook.
    """

    def __init__(self, val_every: int, epochs: int, best_metric: str, best_mode: str):
        self.val_every, self.epochs = int(val_every), int(epochs)
        self.best_metric, self.best_mode = best_metric, best_mode

    def after_epoch(self) -> None:
        t = self.trainer
        t.improved = False
        if not self.val_every or (t.epoch % self.val_every and t.epoch != self.epochs):
            return
        val = t.validate()
        t.metrics.update({f"val/{k}": v for k, v in val.items()})
        t.logger.log({k: v for k, v in val.items() if isinstance(v, float)}, step=t.step, epoch=t.epoch,
                     prefix="val/")
        t.improved = self.update_best(val)

    def watched(self, val: dict[str, Any]) -> tuple[str, str] | None:
        numeric = [k for k, v in val.items() if isinstance(v, float)]
        name = self.best_metric or self.trainer.task.best_metric
        if not name:
            if not numeric:
                return None
            name = numeric[0]
        if name not in numeric:
            raise ConfigError(f"train.best_metric '{name}' is not among the validation metrics "
                              f"({', '.join(numeric)}); set train.best_metric to one of them")
        mode = self.best_mode
        if mode == "auto":
            mode = self.trainer.task.best_mode or best_mode_for(name)
        if mode not in ("min", "max"):
            raise ConfigError(f"train.best_mode '{mode}' is not one of max, min, auto")
        return name, mode

    def update_best(self, val: dict[str, Any]) -> bool:
        t = self.trainer
        watched = self.watched(val)
        if watched is None:
            return False
        name, mode = watched
        value = val[name]
        improved = not math.isnan(value) and (
            t.best is None or (value > t.best if mode == "max" else value < t.best))
        if improved:
            t.best = float(value)
        if t.best is not None:
            t.metrics["best/" + name] = t.best
        return improved


class EpochSummary(HookBase):
    """The ``time/epoch_seconds`` row and the per-epoch line on stderr."""

    def before_epoch(self) -> None:
        self.t0 = time.perf_counter()

    def after_epoch(self) -> None:
        t = self.trainer
        seconds = time.perf_counter() - self.t0
        t.logger.log({"epoch_seconds": seconds}, step=t.step, epoch=t.epoch, prefix="time/")
        shown = "  ".join(f"{k} {v:.4g}" for k, v in t.metrics.items() if isinstance(v, float))
        t.print(f"epoch {t.epoch}/{t.epochs}  step {t.step}  {shown}  ({seconds:.1f} s)")


class Checkpointer(HookBase):
    """``last.pt`` every ``checkpoint_every`` steps, when ``max_steps`` stops inside an epoch, and at every
    epoch end; ``best.pt`` (a copy of that ``last.pt``) when the watched metric improved."""

    def __init__(self, checkpoint_every: int):
        self.every = int(checkpoint_every)

    def after_step(self) -> None:
        t = self.trainer
        stopped_inside = t.max_steps_reached() and t.batch_in_epoch < t.steps_per_epoch
        if (self.every and t.step % self.every == 0) or stopped_inside:
            t.save(t.output_dir / "last.pt")

    def after_epoch(self) -> None:
        t = self.trainer
        t.save(t.output_dir / "last.pt")
        if t.improved and t.dist.is_main:
            with atomic_path(t.output_dir / "best.pt") as tmp:
                shutil.copyfile(t.output_dir / "last.pt", tmp)


def default_hooks(tcfg: Any, user_hooks: list[HookBase] = ()) -> list[HookBase]:
    """The trainer's hooks from the ``train:`` config, with ``user_hooks`` after validation."""
    return [RunLogger(int(tcfg.get("log_every", 10) or 1), bool(tcfg.get("tensorboard", True))),
            TaskEpochHook(),
            EvalHook(int(tcfg.get("val_every", 1) or 0), int(tcfg.epochs),
                     str(tcfg.get("best_metric", "") or ""), str(tcfg.get("best_mode", "auto"))),
            *user_hooks,
            EpochSummary(),
            Checkpointer(int(tcfg.get("checkpoint_every", 0) or 0))]
