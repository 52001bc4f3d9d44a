"""Checkpoints: one ``torch.save`` dict per file, written atomically (temp file + rename).

Layout (``format="eventvision-checkpoint"``, ``version=1``)::

    task, config (plain dict), model (state_dict), optimizer, scheduler, scaler, rng, rng_per_rank,
    epoch (epochs completed), batch_in_epoch (batches done in the next epoch, for mid-epoch stops),
    step (optimizer steps), metrics (dict of floats), best (best metric so far), extra (task extras),
    code_version, torch_version, world_size

Only ``format``, ``version``, ``task``, ``config`` and ``model`` are required, so a checkpoint
converted from another code base (weights + config) loads too.
"""

from __future__ import annotations

import functools
import os
import pickle
import subprocess
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from eventvision.config import (Config, apply_overrides, config_from_dict, load_config_and_choices,
                                validate_config, with_missing_keys)
from eventvision.errors import CheckpointError, UserError
from eventvision.utils.io import atomic_path

FORMAT = "eventvision-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("task", "config", "model")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>`` plus ``+g<commit>`` when the package sits in a git checkout."""
    from eventvision import __version__
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+g{sha}" if sha else __version__


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_checkpoint(path: str | os.PathLike, *, task: str, config: Mapping, model: nn.Module | Mapping,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None, scaler: Any = None,
                    rng: dict | None = None, epoch: int = 0, step: int = 0, metrics: Mapping | None = None,
                    extra: Mapping | None = None, **more: Any) -> Path:
    """Write a checkpoint atomically; ``model`` is a module (unwrapped from DDP here) or a state_dict."""
    if isinstance(model, nn.Module):
        model = unwrap(model).state_dict()
    ckpt = {
        "format": FORMAT,
        "version": VERSION,
        "task": task,
        "config": _plain(config),
        "model": model,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng,
        "epoch": int(epoch),
        "step": int(step),
        "metrics": {str(k): float(v) for k, v in (metrics or {}).items()},
        "extra": dict(extra or {}),
        "code_version": code_version(),
        "torch_version": torch.__version__,
        **more,
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def average_checkpoints(paths: Iterable[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Write the uniform average of the model weights of ``paths`` (fine-tunes of one network from one start: a
    "model soup", Wortsman et al., ICML 2022) to ``out``, with the first checkpoint's task, config, extra, epoch and
    step; BatchNorm running statistics are averaged like the weights, integer buffers (batch counts) come from the
    first. No optimizer state. A checkpoint whose tensors differ in names or shapes: one CheckpointError."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise CheckpointError(f"averaging needs at least two checkpoints, got {len(paths)}")
    first = load_checkpoint(paths[0])
    states = [first["model"]] + [load_checkpoint(p, expected_task=first["task"])["model"] for p in paths[1:]]
    for path, state in zip(paths[1:], states[1:]):
        if set(state) != set(states[0]) or any(state[k].shape != v.shape for k, v in states[0].items()):
            raise CheckpointError(f"{path}: its weights do not match those of {paths[0]} (other tensors or shapes); "
                                  "only checkpoints of the same network can be averaged")
    average = {k: (sum(s[k].double() for s in states) / len(states)).to(v.dtype) if v.is_floating_point() else v
               for k, v in states[0].items()}
    return save_checkpoint(out, task=first["task"], config=first["config"], model=average, epoch=first["epoch"],
                           step=first["step"], extra=first.get("extra"),
                           averaged_from=[str(p) for p in paths])


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" not in str(exc).lower() and "weights only" not in str(exc).lower():
            raise
    # a task extra holds a non-tensor object: checkpoints are pickles, only load files you trust
    return torch.load(path, map_location="cpu", weights_only=False)


def load_checkpoint(path: str | os.PathLike, *, expected_task: str | None = None) -> dict:
    """Read and check a checkpoint; CheckpointError (one line) if missing, unreadable, foreign or for another
    task."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found; check the path (training writes "
                              f"<output_dir>/last.pt and best.pt)")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file; give <folder>/best.pt or last.pt")
    try:
        ckpt = _torch_load(path)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError,
            AttributeError, ImportError, IndexError, KeyError, TypeError, MemoryError) as exc:
        reason = " ".join(str(exc).split()).split(". ")[0][:160] or type(exc).__name__
        raise CheckpointError(f"{path}: cannot read checkpoint, the file is corrupt or truncated ({reason}); "
                              f"re-train or use another checkpoint") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an eventvision checkpoint (no format='{FORMAT}' header); "
                              f"use a checkpoint written by 'eventvision train'")
    version = ckpt.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version!r} is newer than this eventvision "
                              f"supports ({VERSION}); upgrade eventvision")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}; it is incomplete, re-train")
    if expected_task is not None and ckpt["task"] != expected_task:
        raise CheckpointError(f"{path}: checkpoint is for task '{ckpt['task']}', not '{expected_task}'; "
                              f"use 'eventvision eval {ckpt['task']}' or a {expected_task} checkpoint")
    return ckpt


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel (or ``model`` itself)."""
    wrapped = isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel))
    return model.module if wrapped else model


def load_state_into(model: nn.Module, state: Mapping, *, source: str | os.PathLike,
                    allow_missing: bool = False) -> list[str]:
    """``load_state_dict`` (strict) with a one-line CheckpointError naming what does not match. With
    ``allow_missing`` (a fine-tuning start that adds modules) the model's keys the checkpoint lacks keep their
    initialisation and are returned; unexpected keys and shape mismatches are still errors."""
    try:
        result = unwrap(model).load_state_dict(dict(state), strict=False)
    except RuntimeError as exc:  # shape mismatch
        reason = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"{source}: weights do not fit the model built from the config ({reason}); "
                              f"use the config the checkpoint was trained with") from None
    problems = []
    if result.missing_keys and not allow_missing:
        problems.append(f"{len(result.missing_keys)} missing (e.g. {result.missing_keys[0]})")
    if result.unexpected_keys:
        problems.append(f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[0]})")
    if problems:
        raise CheckpointError(f"{source}: weights do not fit the model built from the config: "
                              f"{'; '.join(problems)}; use the config the checkpoint was trained with")
    return list(result.missing_keys)


def restore_task_extra(task: Any, ckpt: Mapping) -> None:
    """Hand ``ckpt["extra"]`` (what ``task.extra_state(model)`` returned) back to the task BEFORE it builds
    its model, through ``task.load_extra_state(extra)`` (e.g. a searched genotype)."""
    if ckpt.get("extra"):
        task.load_extra_state(dict(ckpt["extra"]))


def checkpoint_config(ckpt: Mapping, path, overrides: Iterable[str] = ()) -> Config:
    """The config stored in ``ckpt`` plus ``overrides``, checked like a config file
    (:class:`~eventvision.errors.CheckpointError`). Its ``device`` is ``auto`` unless an override names one."""
    from eventvision.tasks import TASKS

    raw = ckpt.get("config")
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
        raise CheckpointError(f"{path}: the stored config is a {type(raw).__name__}, not a mapping of keys "
                              "to values; the checkpoint was edited or is corrupt")
    if not isinstance(ckpt.get("task"), str) or ckpt["task"] not in TASKS:
        raise CheckpointError(f"{path}: stored task {ckpt.get('task')!r} is not one of {', '.join(TASKS)}; "
                              "the checkpoint was edited or is corrupt")
    cfg: Config = config_from_dict(raw)
    try:   # keys added to the suite after the checkpoint was written: their defaults (which keep the old behaviour)
        defaults, choices = load_config_and_choices(f"{ckpt['task']}/default")
        cfg = with_missing_keys(cfg, defaults)
    except UserError:
        choices = {}
    if "device" in cfg:   # where it was trained (device: cuda in a GPU recipe) is no request of whoever reads it
        cfg = apply_overrides(cfg, ["device=auto"], source=f"{path} (reading)")
    overrides = list(overrides)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    try:
        validate_config(cfg, source=f"{path} (stored config)", choices=choices)
    except UserError as exc:
        raise CheckpointError(str(exc)) from None
    return cfg


def load_model_from_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu",
                               task_name: str | None = None, overrides: Iterable[str] = ()):
    """Rebuild the task from the config stored inside, load the weights -> ``(task, model, ckpt)``.

    ``overrides`` (``key=value``) are applied to the stored config first (e.g. a data path or
    ``device=cpu``). The model is returned in eval mode on ``device``.
    """
    from eventvision.tasks import get_task_class
    from eventvision.utils.device import select_device

    ckpt = load_checkpoint(path, expected_task=task_name)
    cfg = checkpoint_config(ckpt, path, overrides)
    try:
        task = get_task_class(ckpt["task"]).from_config(cfg)
        restore_task_extra(task, ckpt)
        model = task.build_model()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # a hand-edited config that passed the checks above but does not build the model
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        raise CheckpointError(f"{path}: the config stored in the checkpoint does not build a "
                              f"{ckpt['task']} model ({reason}); use an unedited checkpoint or fix its "
                              "config") from None
    load_state_into(model, ckpt["model"], source=path)
    model.to(select_device(device))
    model.eval()
    return task, model, ckpt
