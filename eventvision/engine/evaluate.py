"""Evaluation loop shared by the trainer and ``eventvision eval``.

Distributed: each rank evaluates its shard (``r::world_size``), the evaluators' ``state()`` are
gathered with ``all_gather_object`` and merged on rank 0, and the metrics are broadcast back so every
rank returns the same dict. An evaluator without ``state``/``merge`` is run on rank 0 alone over the
whole split (the other ranks wait).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from eventvision.engine import distributed
from eventvision.engine.checkpoint import unwrap
from eventvision.engine.sampling import ShardSampler
from eventvision.evaluation.base import Evaluator
from eventvision.utils.progress import progress


def supports_merge(evaluator: Evaluator) -> bool:
    cls = type(evaluator)
    return cls.state is not Evaluator.state and cls.merge is not Evaluator.merge


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype`` (None: a no-op context)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def numeric_first(metrics: dict) -> dict:
    """Metrics with numbers (python, numpy, 0-d tensors) as floats; anything else is kept as is."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        out[str(key)] = float(value) if number else value
    return out


def evaluate(task: Any, model: nn.Module, split: str = "val", device: str | torch.device | None = None, *,
             batch_size: int = 1, num_workers: int = 0, dataset: Dataset | None = None,
             amp_dtype: torch.dtype | None = None, desc: str | None = None,
             evaluator: Any = None) -> dict[str, float]:
    """Run ``task.validation_step`` over ``split`` and return ``evaluator.evaluate()`` (same on every rank).

    ``batch_size`` is per process. ``task.reset(model)`` is called once before every batch (spiking state).
    ``evaluator``: use this one (e.g. to draw its pictures afterwards) instead of ``task.build_evaluator()``.
    """
    model = unwrap(model)
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    info = distributed.info()
    if evaluator is None:
        evaluator = task.build_evaluator()
    evaluator.reset()
    sharded = info.enabled and supports_merge(evaluator)
    if info.enabled and not sharded and not info.is_main:
        return distributed.broadcast_object(None)
    if dataset is None:
        dataset = task.build_dataset(split)
    sampler = ShardSampler(len(dataset), rank=info.rank, world_size=info.world_size) if sharded else None
    loader = DataLoader(dataset, batch_size=max(1, int(batch_size)), sampler=sampler, shuffle=False,
                        collate_fn=task.collate, num_workers=num_workers, pin_memory=device.type == "cuda")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in progress(loader, total=len(loader), desc=desc or f"eval {split}", unit="batch",
                                  disable=None if info.is_main else True, leave=False):
                batch = task.move_batch(batch, device)
                task.reset(model)  # the one reset of this forward path
                with autocast(device, amp_dtype):
                    task.validation_step(model, batch, evaluator)
    finally:
        model.train(was_training)
    if sharded:
        states = distributed.all_gather_object(evaluator.state())
        if info.is_main:
            evaluator.merge(states)
    metrics = numeric_first(evaluator.evaluate()) if info.is_main else None
    return distributed.broadcast_object(metrics) if info.enabled else metrics
