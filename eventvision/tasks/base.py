"""The task interface: what a pipeline gives the shared engine and CLI.

A task turns a config into a model, datasets, a loss and an evaluator, and knows how to
pre/post-process for streaming inference. The trainer (``eventvision.engine``) only talks to
this interface, so stereo, detect3d, action and gesture share one training loop. Every method the
engine calls is declared here with its default; a task overrides what it needs.

Spiking state: the engine calls :meth:`Task.reset` once before every forward it runs (each training
step, each validation batch); ``training_step``/``predict`` do not reset on their own. A caller that runs
``predict`` itself on a new sample calls ``task.reset(model)`` first.

Shapes/units are the task's own and documented in its module.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from eventvision.config import Config
from eventvision.errors import ConfigError
from eventvision.evaluation.base import Evaluator

SPLITS = ("train", "val", "test")


def check_split(task: str, split: str) -> str:
    """``split`` if it is one of :data:`SPLITS`, else a ConfigError naming the task."""
    if split not in SPLITS:
        raise ConfigError(f"{task}: unknown split '{split}'; choose one of {', '.join(SPLITS)}")
    return split


class Task:
    #: registry name, e.g. "stereo"
    name: ClassVar[str] = ""
    #: packaged config used when the user gives none, e.g. "stereo/small"
    default_config: ClassVar[str] = ""
    #: validation metric deciding ``best.pt`` unless ``train.best_metric`` names one ("" = the first metric)
    best_metric: ClassVar[str] = ""
    #: "min" | "max" for ``best_metric`` under ``train.best_mode=auto`` ("" = by its name, min for loss...)
    best_mode: ClassVar[str] = ""

    def __init__(self, cfg: Config):
        self.cfg = cfg

    @classmethod
    def from_config(cls, cfg: Config) -> "Task":
        return cls(cfg)

    # --- building ---------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        """``split`` in {"train", "val", "test"} (anything else: :func:`check_split`'s ConfigError)."""
        raise NotImplementedError

    def build_reading_dataset(self, split: str) -> torch.utils.data.Dataset:
        """The split's dataset for readers of a few samples or of raw inputs (example batches, profiles, baselines):
        :meth:`build_dataset` unless a task's training dataset does work up front that such readers must not wait
        for (the stereo task's prefill)."""
        return self.build_dataset(split)

    def collate(self, samples: list[Any]) -> Any:
        """Batch samples (default: torch's default_collate)."""
        return torch.utils.data.default_collate(samples)

    def build_evaluator(self) -> Evaluator:
        raise NotImplementedError

    # --- steps ------------------------------------------------------------------------------
    def training_step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Forward + loss on one batch already moved to the device; returns (loss, scalars to log)."""
        raise NotImplementedError

    def predict(self, model: nn.Module, batch: Any) -> Any:
        """Inference forward on a batch already on the device (used by validation, profiling, streaming)."""
        raise NotImplementedError

    def validation_step(self, model: nn.Module, batch: Any, evaluator: Evaluator) -> None:
        """Forward one batch (the trainer wraps this in no_grad) and feed ``evaluator.process``."""
        evaluator.process(batch, self.predict(model, batch))

    def example_batch(self, batch_size: int = 1) -> Any:
        """One batch for profiling/benchmarks (default: the first ``batch_size`` val samples)."""
        dataset = self.build_reading_dataset("val")
        return self.collate([dataset[i] for i in range(min(batch_size, len(dataset)))])

    def move_batch(self, batch: Any, device: torch.device) -> Any:
        """Move a batch to ``device`` (tensors inside dicts/lists/tuples; others untouched)."""
        if isinstance(batch, torch.Tensor):
            return batch.to(device, non_blocking=True)
        if isinstance(batch, dict):
            return {k: self.move_batch(v, device) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.move_batch(v, device) for v in batch)
        return batch

    def reset(self, model: nn.Module) -> None:
        """Reset spiking state at sample/recording boundaries (default: SpikingJelly reset_net).

        The engine's single reset point: called before every training and validation forward."""
        from spikingjelly.activation_based import functional
        functional.reset_net(model)

    # --- engine hooks -----------------------------------------------------------------------
    def param_groups(self, model: nn.Module) -> list:
        """Parameters (or parameter-group dicts, e.g. with their own ``lr``) for the optimizer;
        default: every parameter with ``requires_grad``."""
        return [p for p in model.parameters() if p.requires_grad]

    def on_epoch_end(self, model: nn.Module, epoch: int) -> None:
        """Called after each training epoch (0-based ``epoch``), before validation, with the bare model;
        must do the same on every rank. Default: nothing."""

    def extra_state(self, model: nn.Module) -> dict:
        """Extra things to save in a checkpoint (e.g. a genotype); default none."""
        return {}

    def load_extra_state(self, extra: dict) -> None:
        """Receives a checkpoint's ``extra`` (what :meth:`extra_state` returned) before :meth:`build_model`,
        on resume and in ``load_model_from_checkpoint`` (e.g. a searched genotype). Default: nothing."""
