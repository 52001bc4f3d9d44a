"""Device selection (never `.cuda()` in `__init__`: modules are moved by whoever runs them)."""

from __future__ import annotations

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
