"""Optimisers and learning-rate schedules from ``cfg.train.optimizer`` / ``cfg.train.scheduler``.

Schedules are stepped once per optimizer step; epoch-valued settings (``warmup_epochs``,
``step_size``) are converted with the number of steps per epoch, so a run stopped and resumed
mid-epoch follows exactly the same learning-rate curve.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import torch

from eventvision.errors import ConfigError

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("cosine", "step", "none")


def build_optimizer(params: Iterable[Any], opt_cfg: Mapping) -> torch.optim.Optimizer:
    """``params``: tensors or param-group dicts (a group may carry its own ``lr``/``weight_decay``)."""
    name = str(opt_cfg.get("name", "adamw")).lower()
    lr = float(opt_cfg.get("lr", 1e-3))
    wd = float(opt_cfg.get("weight_decay", 0.0))
    params = list(params)
    if not params:
        raise ConfigError("the model has no trainable parameters; check the model config")
    if name not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer.name '{name}' is unknown; use one of {', '.join(OPTIMIZERS)}")
    try:
        if name == "sgd":
            momentum = float(opt_cfg.get("momentum", 0.0))
            return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=momentum)
        betas = tuple(float(b) for b in opt_cfg.get("betas", (0.9, 0.999)))
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        return cls(params, lr=lr, weight_decay=wd, betas=betas)
    except ValueError as exc:  # torch's range checks (negative lr, betas outside [0, 1), ...)
        raise ConfigError(f"train.optimizer: {exc}; fix the value in the config") from None


def lr_factor(step: int, *, name: str, total_steps: int, warmup_steps: int = 0, warmup_factor: float = 1e-3,
              min_lr_ratio: float = 0.0, step_size_steps: int = 1, gamma: float = 0.1) -> float:
    """Multiplier of the base lr before optimizer step ``step`` (0-based); pure function."""
    if warmup_steps > 0 and step < warmup_steps:
        alpha = step / warmup_steps
        return warmup_factor + (1.0 - warmup_factor) * alpha
    if name == "none":
        return 1.0
    if name == "step":
        return gamma ** (step // max(1, step_size_steps))
    if name == "cosine":
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ConfigError(f"train.scheduler.name '{name}' is unknown; use one of {', '.join(SCHEDULERS)}")


def build_scheduler(optimizer: torch.optim.Optimizer, sched_cfg: Mapping, *, steps_per_epoch: int,
                    epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
    name = str(sched_cfg.get("name", "none")).lower()
    if name not in SCHEDULERS:
        raise ConfigError(f"train.scheduler.name '{name}' is unknown; use one of {', '.join(SCHEDULERS)}")
    kwargs = dict(name=name, total_steps=max(1, steps_per_epoch * epochs),
                  warmup_steps=int(round(float(sched_cfg.get("warmup_epochs", 0)) * steps_per_epoch)),
                  warmup_factor=float(sched_cfg.get("warmup_factor", 1e-3)),
                  min_lr_ratio=float(sched_cfg.get("min_lr_ratio", 0.0)),
                  step_size_steps=max(1, int(sched_cfg.get("step_size", 1)) * steps_per_epoch),
                  gamma=float(sched_cfg.get("gamma", 0.1)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, **kwargs))
