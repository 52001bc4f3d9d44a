"""Device selection (never `.cuda()` in `__init__`: modules are moved by whoever runs them)."""

from __future__ import annotations

import os

import torch

from eventvision.errors import InvalidValueError


def select_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cpu``; ``cuda``/``cuda:N`` (InvalidValueError if absent)."""
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidValueError(f"device '{spec}' requested but CUDA is not available here; use device=cpu "
                                "or device=auto")
    try:
        return torch.device(spec)
    except RuntimeError:
        raise InvalidValueError(f"unknown device '{spec}'; use auto, cpu, cuda or cuda:N") from None


def free_cores() -> int:
    """Cores this process may use that the 1-minute load average leaves idle (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, int(cores - load + 0.5)))


def training_threads(requested: int, *, free: int, current: int, processes: int = 1,
                     omp_env: str | None = None) -> int | None:
    """torch intra-op threads for a training process -> a count, or None to leave torch's setting.

    ``requested`` > 0 (``train.threads``) as given. 0 (automatic): None when the user set ``OMP_NUM_THREADS``
    (``omp_env``), else the ``free`` idle cores shared by the machine's ``processes`` training processes (torchrun's
    local world size), at least 1 and never more than torch's ``current`` setting (automatic only lowers it: a
    caller's ``torch.set_num_threads`` stays a ceiling). Why not torch's default (one thread per core): its workers
    spin at every join, so beside one busy process two threads trained the stereo network 1.7-2x slower than one
    (with both cores idle two were 1.5x faster), measured on the 2-core build machine (docs/engine.md "Threads")."""
    requested = int(requested)
    if requested < 0:
        raise InvalidValueError(f"train.threads must be >= 0 (0 = automatic), got {requested}")
    if requested:
        return requested
    if omp_env:
        return None
    return max(1, min(int(current), int(free) // max(1, int(processes))))
