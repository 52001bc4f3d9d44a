"""One progress-bar helper for the whole suite (tqdm on stderr, silenced with EVENTVISION_NO_PROGRESS=1)."""

from __future__ import annotations

import os
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             disable: bool | None = None, **kwargs) -> tqdm:
    """Wrap ``iterable`` in a tqdm bar (unit e.g. 'win', 'batch', 'frame'); shows rate as unit/s."""
    if disable is None:
        disable = os.environ.get("EVENTVISION_NO_PROGRESS", "") not in ("", "0")
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, **kwargs)
